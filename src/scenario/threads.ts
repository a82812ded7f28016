/**
 * A program's threads as /proc shows them: each one's id, name and state
 * (/proc/PID/task/TID/stat), for the SIGSTOP step's check (stopped.ts) and
 * for a failed step's report, which adds the kernel function each one
 * sleeps in (/proc/PID/task/TID/wchan): `request_wait_answer` is a FUSE
 * request waiting for the daemon's answer (fs/fuse/dev.c),
 * `poll_schedule_timeout` a poll(2) or ppoll(2) waiting for an event,
 * `futex_do_wait` a lock (the names vary with the kernel's version), so a
 * consumer stuck in a call to a device can be told from one waiting for an
 * event that never came. wchan needs ptrace read access, which the user
 * who started the program has (its own user namespace included); where it
 * is refused the state alone is given.
 */
import { readFileSync } from 'node:fs';
import { exited, threadStats } from '../sys/procstat.js';

export interface ThreadState {
  tid: number;
  comm: string;
  state: string;
}

/** Threads a report names at most; it says how many more there were. */
const MAX_REPORTED = 16;

/**
 * The threads of process `pid` that have not exited (a group leader stays
 * Z while other threads live); null if the process is gone or only its
 * zombie is left.
 */
export function liveThreads(pid: number): ThreadState[] | null {
  const live = [...threadStats(pid)].flatMap(([tid, s]) => (exited(s) ? [] : [{ tid, comm: s.comm, state: s.state }]));
  return live.length ? live : null;
}

/** `tid 4242 (cmdproc-uio0) S in poll_schedule_timeout; ...`, or null if the process is gone. */
export function describeWhereThreadsAre(pid: number): string | null {
  const threads = liveThreads(pid);
  if (!threads) return null;
  const parts = threads.slice(0, MAX_REPORTED).map((t) => {
    const wchan = readWchan(`/proc/${pid}/task/${t.tid}/wchan`);
    return `tid ${t.tid} (${t.comm}) ${t.state}${wchan ? ` in ${wchan}` : ''}`;
  });
  const more = threads.length - MAX_REPORTED;
  return parts.join('; ') + (more > 0 ? `; and ${more} more` : '');
}

/** The function a sleeping thread waits in; null when running, refused or gone ("0" is a thread on a CPU). */
function readWchan(path: string): string | null {
  try {
    const w = readFileSync(path, 'latin1').trim();
    return w && w !== '0' ? w : null;
  } catch {
    return null;
  }
}
