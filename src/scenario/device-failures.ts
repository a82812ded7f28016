/**
 * What fails a run whatever its steps said: an event that says the
 * emulation under the program broke, or that the program went wrong in a
 * way only the device saw (README, "What a scenario checks"):
 *
 * - `model_error`: a model threw (a TypeError, a read longer than asked);
 *   the call was answered EIO, which a program may take in its stride as a
 *   device error and go on to exit 0;
 * - an event its model marks `fails: true` (replay's strict mismatch: the
 *   program wrote what the recording did not, and was answered EIO; its
 *   strict incomplete: the program left part of the recording undone).
 *
 * An event a wait or an expectation of the scenario is about (its filter,
 * with an expectation's fields, holds on it) the scenario judges itself;
 * another of the same type (of another device, with other values) still
 * fails the run. The run's devices: every device of its own emulator; on
 * a daemon's (`--socket`), which other runs may share, those it names and
 * those the program under test called (a one-liner names none).
 */
import { CoreEvent, type DeviceEvent } from '../core/events.js';
import { globMatcher } from '../faults/glob.js';
import type { Scenario } from './schema.js';
import { judgedBy } from './values.js';

export class DeviceFailures {
  private readonly seen: DeviceEvent[] = [];
  /** A daemon's devices the program under test called. */
  private readonly called = new Set<string>();
  private readonly named: (device: string) => boolean;
  /** Whether a wait or an expectation of the scenario is about an event: its subject, not a failure of the run. */
  private readonly judged: (e: DeviceEvent) => boolean;

  constructor(s: Scenario, sharedTarget: boolean) {
    this.judged = judgedBy(s);
    if (!sharedTarget) {
      this.named = () => true;
      return;
    }
    const names = new Set(s.refs.filter((r) => r.use !== 'glob').map((r) => r.name));
    const globs = s.refs.filter((r) => r.use === 'glob').map((r) => globMatcher(r.name));
    this.named = (device) => names.has(device) || globs.some((g) => g(device));
  }

  /** Whether the run answers for `device`: every device of its own emulator; a daemon's that it names or its program called. */
  ours(device: string): boolean {
    return this.named(device) || this.called.has(device);
  }

  /** Notes `e` (`fromProgram`: a call of the program under test made it) if it fails the run; the line to print then, or null. */
  note(e: DeviceEvent, fromProgram: boolean): string | null {
    if (fromProgram) this.called.add(e.device);
    if ((e.type !== CoreEvent.model_error && e.fails !== true) || this.judged(e) || !this.ours(e.device)) return null;
    this.seen.push(e);
    return describe(e);
  }

  /** Why the run fails for them, or null. */
  failure(): string | null {
    const first = this.seen[0];
    if (!first) return null;
    const more = this.seen.length > 1 ? ` (and ${this.seen.length - 1} more such event(s), each in the event history)` : '';
    const why =
      first.type === CoreEvent.model_error
        ? "the emulation broke under the program, whatever it did with the EIO it got; the stack is in the emulator's log"
        : 'its model says the program went wrong there, whatever the program did next';
    return `${describe(first)}${more}: ${why} (a scenario about such events waits for or expects them, and judges those its filter matches itself)`;
  }
}

function describe(e: DeviceEvent): string {
  if (e.type === CoreEvent.model_error) return `model error: the model of ${e.device} (generation ${e.generation}) threw in ${String(e.op)}: ${String(e.error)}`;
  const { type, device, generation, at: _at, fails: _fails, ...details } = e;
  return `${type} on ${device} (generation ${generation}): ${JSON.stringify(details)}`;
}
