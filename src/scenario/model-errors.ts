/**
 * A model that threw (a `model_error` event: a TypeError, a read longer
 * than asked) broke the emulation under the program: the call was answered
 * EIO, which a program may take in its stride as a device error and go on
 * to exit 0. A run must not pass on that, so it fails on a model error of
 * its devices (README, "What a scenario checks"), unless the scenario takes
 * them in hand itself with a wait or an expectation on `model_error`.
 *
 * Its devices: every device of its own emulator; on a daemon's
 * (`--socket`), which other runs may share, those the scenario names.
 */
import { CoreEvent, type DeviceEvent } from '../core/events.js';
import { globMatcher } from '../faults/glob.js';
import type { Scenario } from './schema.js';

export class ModelErrors {
  private readonly seen: DeviceEvent[] = [];
  private readonly ours: (device: string) => boolean;
  /** The scenario waits for or expects model errors: they are its subject, not a failure of the run. */
  private readonly expected: boolean;

  constructor(s: Scenario, sharedTarget: boolean) {
    this.expected = s.filters.some((f) => f.type === CoreEvent.model_error);
    if (!sharedTarget) {
      this.ours = () => true;
      return;
    }
    const names = new Set(s.refs.filter((r) => r.use !== 'glob').map((r) => r.name));
    const globs = s.refs.filter((r) => r.use === 'glob').map((r) => globMatcher(r.name));
    this.ours = (device) => names.has(device) || globs.some((g) => g(device));
  }

  /** Notes `e` if it is a model error of the run's devices; the line to print then, or null. */
  note(e: DeviceEvent): string | null {
    if (e.type !== CoreEvent.model_error || !this.ours(e.device)) return null;
    this.seen.push(e);
    return `model error: ${describe(e)}`;
  }

  /** Why the run fails for them, or null. */
  failure(): string | null {
    if (this.expected || this.seen.length === 0) return null;
    const first = this.seen[0]!;
    const more = this.seen.length > 1 ? ` (and ${this.seen.length - 1} more model error(s), each in the event history)` : '';
    return (
      `${describe(first)}${more}: the emulation broke under the program, whatever it did with the EIO it got; ` +
      `the stack is in the emulator's log (a scenario about model errors waits for or expects model_error events)`
    );
  }
}

function describe(e: DeviceEvent): string {
  return `the model of ${e.device} (generation ${e.generation}) threw in ${String(e.op)}: ${String(e.error)}`;
}
