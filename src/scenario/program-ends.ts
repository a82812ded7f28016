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
 */
import { describeExit, type ProgramExit } from './program.js';
import type { ProgramInstance } from './restart.js';

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
    return `${describeExit(e)}, a signal the run did not send it: it crashed (a scenario that expects this end says so: expect: { exit: ${e.signal} })`;
  }
  return null;
}
