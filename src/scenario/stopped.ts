/**
 * Whether a SIGSTOP has taken effect on every thread of the program.
 * kill(2) returns once the signal is queued: each thread stops only when
 * it next passes through do_signal_stop() (kernel/signal.c) on its way
 * back to user space. A thread on another CPU, or waiting for one on a
 * loaded machine, runs on meanwhile (a consumer's ring thread may take a
 * command queued "after" the signal), and a thread in an uninterruptible
 * or killable sleep (a FUSE request waiting for its answer, a vfork()
 * parent waiting for its child) stops only once that sleep ends. So a
 * `signal: SIGSTOP` step waits until /proc/PID/task/TID/stat shows every
 * thread stopped: state T (group stop), or t (a tracer's stop), which
 * runs nothing either.
 */
import { readdirSync } from 'node:fs';
import { readStat } from '../sys/procstat.js';

export interface ThreadState {
  tid: number;
  comm: string;
  state: string;
}

/** States in which a thread runs no code of its own until it is continued. */
const STOPPED = new Set(['T', 't']);
/** A thread that has exited (a group leader stays Z while other threads live): it will never run again. */
const DEAD = new Set(['Z', 'X']);

/**
 * The threads of process `pid` that are not stopped (empty once every
 * thread is); null if the process is gone or only its zombie is left.
 */
export function unstoppedThreads(pid: number): ThreadState[] | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const live: ThreadState[] = [];
  for (const tid of tids) {
    const s = readStat(`/proc/${pid}/task/${tid}/stat`);
    // A thread that exited between the listing and the read is not waited for.
    if (s && !DEAD.has(s.state)) live.push({ tid: Number(tid), comm: s.comm, state: s.state });
  }
  if (live.length === 0) return null;
  return live.filter((t) => !STOPPED.has(t.state));
}

/** For a failure: `tid 4242 (cmdproc-uio0) in state D, ...`. */
export function describeThreads(threads: readonly ThreadState[]): string {
  return threads.map((t) => `tid ${t.tid} (${t.comm}) in state ${t.state}`).join(', ');
}
