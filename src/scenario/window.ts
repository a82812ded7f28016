/**
 * What waits and event expectations count (README.md, "Scenarios"): what
 * happened since the program's current instance was started, the run's
 * start for the first. Counting from the step itself would miss an event
 * that came between the start and the step (a consumer that registered
 * before the wait began: a false fail); counting from the run's start
 * would let what a stopped instance did satisfy a wait about the one
 * started after it (a false pass).
 */
import type { TargetDevice } from './target.js';

type Ops = { reads: number; writes: number };

const key = (name: string, generation: number): string => `${name}\0${generation}`;

export class CountWindow {
  private constructor(
    /** Index, in the run's list of events, of the first event in the window. */
    readonly firstEvent: number,
    /** The read and write counts of each instance listed when the window opened; one plugged later starts at 0. */
    private readonly opsAtOpen: ReadonlyMap<string, Ops>,
  ) {}

  /** A window opening now: `events` seen so far, `devices` as the target lists them now. */
  static open(events: number, devices: readonly TargetDevice[]): CountWindow {
    return new CountWindow(events, new Map(devices.map((d) => [key(d.name, d.generation), { reads: d.reads, writes: d.writes }])));
  }

  /** The read (write) calls on instance `d` since the window opened. */
  opsSince(d: TargetDevice, counter: keyof Ops): number {
    return d[counter] - (this.opsAtOpen.get(key(d.name, d.generation))?.[counter] ?? 0);
  }
}
