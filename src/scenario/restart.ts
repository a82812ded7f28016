/**
 * The program under test across restarts (README.md, "Restarting the
 * program"): the run starts its first instance, each `start` step another
 * once the one before has exited, and a `stop` step ends the current one.
 * `exit`, `running`, `signal` and the waits are about the current
 * instance; a leak report says under which instance a held file was
 * opened.
 */
import type { Program, ProgramExit } from './program.js';
import { within } from '../awaitable.js';

export interface ProgramInstance {
  /** 1 for the program the run starts, then 2, 3... for each `start` step. */
  readonly n: number;
  readonly program: Program;
  /** Epoch ms, the clock of a holder's `openedAt`: taken just before it was spawned. */
  readonly startedAt: number;
  /** Epoch ms its exit was seen; null while it runs. */
  endedAt: number | null;
  /** An `expect: {exit}` step held on it: the scenario judged how it ended (program-ends.ts). */
  exitJudged: boolean;
}

export type StopOutcome = { exit: ProgramExit; killed: false } | { exit: ProgramExit | null; killed: true };

/**
 * Sends `signal` to the program's process group and to every process of
 * its tree (program.ts signalAll: what it forked, also what left the
 * group; as the end of a run does) and waits up to `boundMs` for the
 * program to exit; if it has not, SIGKILL to both and up to `boundMs` more
 * (a process in a FUSE request is killable: fuse's request_wait_answer()
 * waits killably). What the program left behind is killed once it has
 * exited.
 */
export async function stopProgram(p: Program, signal: NodeJS.Signals, boundMs: number): Promise<StopOutcome> {
  p.signalAll(signal);
  const exit = await within<ProgramExit | null>(p.exited, boundMs, () => null);
  if (exit) {
    await p.stop(); // what it left behind
    return { exit, killed: false };
  }
  p.signalAll('SIGKILL');
  return { exit: await within<ProgramExit | null>(p.exited, boundMs, () => null), killed: true };
}

/**
 * For a leak report once the program has been restarted: whether holder
 * `pid` is the running instance, else under which instance (by the time
 * it opened the file) it did; empty with one instance, where the report's
 * pid says it all.
 */
export function openedUnder(instances: readonly ProgramInstance[], pid: number, openedAt: number): string {
  if (instances.length < 2) return '';
  const self = instances.find((i) => i.endedAt === null && i.program.pid === pid);
  if (self) return `; it is the program (instance ${self.n} of ${instances.length})`;
  const during = [...instances].reverse().find((i) => i.startedAt <= openedAt && (i.endedAt === null || openedAt <= i.endedAt));
  return during ? `; opened while instance ${during.n} of the program (pid ${during.program.pid ?? '?'}) ran` : '; opened while no instance of the program ran';
}
