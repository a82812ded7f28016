/**
 * Where a program's threads are, for a failed step's report: each one's
 * state and the kernel function it sleeps in (/proc/PID/task/TID/wchan).
 * `request_wait_answer` is a FUSE request waiting for the daemon's answer
 * (fs/fuse/dev.c), `poll_schedule_timeout` a poll(2) or ppoll(2) waiting
 * for an event, `futex_do_wait` a lock (the names vary with the kernel's
 * version): so a consumer stuck in a call to a device can be told from
 * one waiting for an event that never came.
 * wchan needs ptrace read access, which the user who started the program
 * has (its own user namespace included); where it is refused the state
 * alone is given.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readStat } from '../sys/procstat.js';

/** Threads named at most; a report of a thread pool says how many more there were. */
const MAX_THREADS = 16;

/** `tid 4242 (cmdproc-uio0) S in poll_schedule_timeout; ...`, or null if the process is gone. */
export function describeWhereThreadsAre(pid: number): string | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const parts: string[] = [];
  for (const tid of tids.slice(0, MAX_THREADS)) {
    const s = readStat(`/proc/${pid}/task/${tid}/stat`);
    if (!s) continue; // exited since the listing
    const wchan = readWchan(`/proc/${pid}/task/${tid}/wchan`);
    parts.push(`tid ${tid} (${s.comm}) ${s.state}${wchan ? ` in ${wchan}` : ''}`);
  }
  if (parts.length === 0) return null;
  const more = tids.length - MAX_THREADS;
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
