/**
 * How each instance of the program under test ended, where the scenario
 * did not judge it (README.md, "What a scenario checks"). An instance that
 * never started (its command not found, its bind namespace not set up)
 * tested nothing, and one killed by a signal the run did not send it
 * crashed (SIGSEGV, SIGABRT; or SIGKILL from the OOM killer): a scenario
 * whose steps are about the devices (an unplug, then `released`) would
 * pass either way, the files closed by the death. So each fails the run,
 * unless an `expect: {exit}` step held on that instance: one that expects
 * the signal says so (`exit: SIGABRT`).
 *
 * A process the program started is judged by the same token, on the
 * kernel's report of its death (process-crashes.ts), with a narrower set
 * of signals: its parent, the program, may rightly end it with SIGTERM,
 * SIGKILL, SIGINT, SIGHUP or SIGPIPE, where only the run has a right to
 * end the program. What is left are CRASH_SIGNALS.
 */
import { describeExit, type ProgramExit } from './program.js';
import type { ProgramInstance } from './restart.js';

/**
 * The signals whose default action dumps core (include/linux/signal.h
 * SIG_KERNEL_COREDUMP_MASK): those the kernel raises on a fault of the
 * process itself (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS:
 * arch/x86/kernel/traps.c, arch/x86/mm/fault.c), abort(3)'s SIGABRT, and
 * SIGQUIT, SIGXCPU, SIGXFSZ. A process that dies of one of them crashed,
 * unless the run sent it.
 */
export const CRASH_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set<NodeJS.Signals>([
  'SIGQUIT',
  'SIGILL',
  'SIGTRAP',
  'SIGABRT',
  'SIGBUS',
  'SIGFPE',
  'SIGSEGV',
  'SIGXCPU',
  'SIGXFSZ',
  'SIGSYS',
]);

/** Whether a death by `signal` is a crash: one of CRASH_SIGNALS that the run did not send (`sent`). */
export function crashedBy(signal: NodeJS.Signals, sent: (s: NodeJS.Signals) => boolean): boolean {
  return CRASH_SIGNALS.has(signal) && !sent(signal);
}

/** Why the run fails for how its instances ended, or null. */
export function unjudgedEnds(instances: readonly ProgramInstance[]): string | null {
  const lines = instances.flatMap((i) => {
    const why = i.exitJudged ? null : wrongEnd(i);
    const pid = i.program.pid === undefined ? '' : ` (pid ${i.program.pid})`;
    return why ? [`${instances.length > 1 ? `instance ${i.n} of the program` : 'the program'}${pid} ${why}`] : [];
  });
  return lines.length ? lines.join('\n') : null;
}

function wrongEnd(i: ProgramInstance): string | null {
  const e: ProgramExit | null = i.program.exit;
  if (e?.notStarted) return `${describeExit(e)}: the scenario tested nothing`;
  if (e?.signal && !i.program.wasSent(e.signal)) {
    // Any signal: only the run may end the program; a SIGKILL the run did not send is the OOM killer's.
    const what = crashedBy(e.signal, (s) => i.program.wasSent(s)) ? 'it crashed' : 'it crashed, or something else killed it';
    return `${describeExit(e)}, a signal the run did not send it: ${what} (a scenario that expects this end says so: expect: { exit: ${e.signal} })`;
  }
  return null;
}
