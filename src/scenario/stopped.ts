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
import { liveThreads, type ThreadState } from './threads.js';

/** States in which a thread runs no code of its own until it is continued. */
const STOPPED = new Set(['T', 't']);

/**
 * The threads of process `pid` that are not stopped (empty once every
 * thread is); null if the process is gone or only its zombie is left.
 */
export function unstoppedThreads(pid: number): ThreadState[] | null {
  return liveThreads(pid)?.filter((t) => !STOPPED.has(t.state)) ?? null;
}

/** For a failure: `tid 4242 (cmdproc-uio0) in state D, ...`. */
export function describeThreads(threads: readonly ThreadState[]): string {
  return threads.map((t) => `tid ${t.tid} (${t.comm}) in state ${t.state}`).join(', ');
}
