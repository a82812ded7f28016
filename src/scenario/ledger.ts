/**
 * What a run knows of each device generation: the target's instances when
 * the run starts, and every event since. The expectations ask it for
 * positive evidence (the generation existed, was opened, was unplugged,
 * every file of it was closed: README.md, "Scenarios"), so an expectation
 * about something that never happened fails instead of holding vacuously.
 */
import { CoreEvent, type DeviceEvent } from '../core/events.js';
import type { TargetDevice } from './target.js';

/** The core events of a file after its open, each with the file's number (`file`) and its opener's `pid`. */
const AFTER_OPEN: ReadonlySet<string> = new Set([CoreEvent.released, CoreEvent.late_released, CoreEvent.sleeping, CoreEvent.sleep_ended]);

export interface GenerationRecord {
  readonly name: string;
  readonly generation: number;
  /**
   * Its unplug began during the run. One begun before (a daemon's zombie,
   * another client's unplug) is not the run's: the program, started
   * after, could hold none of its files, so what it releases says nothing
   * of the program.
   */
  unplugged: boolean;
  /** Its unplug's drain ended (`drained`). */
  drained: boolean;
  /** Files open when the run started (the holders listed then). */
  openAtStart: number;
  /** Files opened during the run. */
  opened: number;
  /** The program's files (the Ledger says which are) open now: what `released` and `lateReleases` wait to see closed. */
  programsOpen: number;
  /** The program's files closed after the unplug. */
  lateReleases: number;
  /** Handlers an unplug of it gave up on (`drained`'s count). */
  stuck: number;
  /**
   * The program's files open when its unplug began, and opened after (an
   * open in flight then): what its drain could find stuck in the program.
   * An orderly unplug that tells the program first (`unplug_notice`:
   * tcmu's REMOVED_DEVICE) begins there: what the program closes on that
   * notice it closes for the unplug.
   */
  openAtUnplug: number;
}

/**
 * Which files are the program's. On the run's own emulator, every file:
 * no one else is served there, and its devices are plugged after the run
 * starts. On a daemon others use (`shared`), a file opened during the run
 * by a caller not placed as another client's (window.ts ANOTHER_CLIENT):
 * a file open when the run started was opened before the program was, and
 * what another client closes after an unplug, or holds on after it, says
 * nothing of the program.
 */
export class Ledger {
  private readonly gens = new Map<string, GenerationRecord>();
  /** On a shared target: the program's files, by device, generation and file number. */
  private readonly programs = new Set<string>();
  /** Why the event stream ended early; null while it flows. */
  lost: string | null = null;

  constructor(private readonly shared: boolean) {}

  private get(name: string, generation: number): GenerationRecord {
    const key = `${name}\0${generation}`;
    let g = this.gens.get(key);
    if (!g) {
      g = { name, generation, unplugged: false, drained: false, openAtStart: 0, opened: 0, programsOpen: 0, lateReleases: 0, stuck: 0, openAtUnplug: 0 };
      this.gens.set(key, g);
    }
    return g;
  }

  /**
   * The target's instances when the run starts, taken after subscribing:
   * an open in both this list and an event is counted twice, which can
   * only make a release look missing, never one look done.
   */
  start(devices: readonly TargetDevice[]): void {
    for (const d of devices) {
      const g = this.get(d.name, d.generation);
      g.openAtStart = d.holders.length;
      if (!this.shared) g.programsOpen = g.openAtStart;
    }
  }

  /**
   * Whether file number `file` of `name`'s generation `generation` is the
   * program's (see the class). A file without a number (a holder listed by
   * a daemon that gives none) cannot be placed, and is, as a caller that
   * cannot be placed counts.
   */
  programsFile(name: string, generation: number, file: unknown): boolean {
    return !this.shared || typeof file !== 'number' || this.programs.has(fileKey(name, generation, file));
  }

  /**
   * Whether `e` is an event of a file not the program's (a release, a
   * read asleep): its `pid` is the opener's, who may be gone by then (a
   * client that handed its file to a child and exited), and then could
   * not be placed (window.ts instanceOf()); the file was placed at its open.
   */
  ofOthersFile(e: DeviceEvent): boolean {
    return AFTER_OPEN.has(e.type) && !this.programsFile(e.device, e.generation, e.file);
  }

  /** Records `e`; `ofAnotherClient`: its caller was placed as another client's (an `opened` of a file not the program's). */
  record(e: DeviceEvent, ofAnotherClient: boolean): void {
    const g = this.get(e.device, e.generation);
    const programs = (): boolean => this.programsFile(e.device, e.generation, e.file);
    switch (e.type) {
      case 'opened':
        g.opened++;
        if (this.shared && !ofAnotherClient) this.programs.add(fileKey(e.device, e.generation, e.file));
        if (!programs()) break;
        g.programsOpen++;
        if (g.unplugged) g.openAtUnplug++;
        break;
      case 'released':
        if (programs()) g.programsOpen--;
        break;
      case 'late_released':
        if (!programs()) break;
        g.programsOpen--;
        g.lateReleases++;
        break;
      case 'unplug_notice':
        g.openAtUnplug = g.programsOpen;
        break;
      case 'unplug_started':
        g.openAtUnplug = Math.max(g.openAtUnplug, g.programsOpen);
        g.unplugged = true;
        break;
      case 'drained':
        g.drained = true;
        g.stuck += typeof e.stuck === 'number' ? e.stuck : 0;
        break;
    }
  }

  /**
   * The read (write) calls made through the program's files of `name`
   * opened in `counted` (a count window's events: window.ts): a closed
   * file's as its release carried them, an open one's as `devices` list
   * its holder now. A file whose release is not read yet while the
   * listing has dropped it counts nothing until it is. Null when the
   * target gives no such count (a daemon from before files carried them):
   * then only the device's own count is known.
   */
  programsCalls(counted: readonly DeviceEvent[], devices: readonly TargetDevice[], name: string, counter: 'reads' | 'writes'): number | null {
    const counts = new Map<string, unknown>();
    for (const d of devices) for (const h of d.holders) counts.set(fileKey(d.name, d.generation, h.file), h[counter]);
    for (const e of counted) if (e.device === name && (e.type === CoreEvent.released || e.type === CoreEvent.late_released)) counts.set(fileKey(e.device, e.generation, e.file), e[counter]);
    let n = 0;
    for (const e of counted) {
      if (e.type !== CoreEvent.opened || e.device !== name || !this.programsFile(e.device, e.generation, e.file)) continue;
      const key = fileKey(e.device, e.generation, e.file);
      if (!counts.has(key)) continue;
      const c = counts.get(key);
      if (typeof c !== 'number') return null;
      n += c;
    }
    return n;
  }

  generations(name: string): GenerationRecord[] {
    return [...this.gens.values()].filter((g) => g.name === name);
  }

  all(): GenerationRecord[] {
    return [...this.gens.values()];
  }

  names(): string[] {
    return [...new Set([...this.gens.values()].map((g) => g.name))].sort();
  }
}

/** The key of file number `file` of `name`'s generation `generation`. */
const fileKey = (name: string, generation: number, file: unknown): string => `${name}\0${generation}\0${String(file)}`;

/** Whether any file of `g` was ever seen open. */
export const everOpened = (g: GenerationRecord): boolean => g.openAtStart + g.opened > 0;

/** Whether a file of the program's of `g` was open when its unplug began (or opened while it ran): one the unplug could find held. */
export const heldAtUnplug = (g: GenerationRecord): boolean => g.openAtUnplug > 0;

/**
 * The reads of `g` asleep now, one line each: its `sleeping` events whose
 * `sleep_ended` (same file, same thread) has not come.
 */
export function stillAsleep(events: readonly DeviceEvent[], g: GenerationRecord): string[] {
  const asleep: DeviceEvent[] = [];
  for (const e of events) {
    if (e.device !== g.name || e.generation !== g.generation) continue;
    if (e.type === 'sleeping') asleep.push(e);
    else if (e.type === 'sleep_ended') {
      const i = asleep.findIndex((s) => s.file === e.file && s.pid === e.pid);
      if (i >= 0) asleep.splice(i, 1);
    }
  }
  return asleep.map(
    (e) =>
      `${g.name}: ${String(e.op)} by pid ${String(e.pid)} (${String(e.comm)}) asleep since the unplug, as its driver's read sleeps on after unregister: the program hangs there on a real machine until a signal ends the read`,
  );
}
