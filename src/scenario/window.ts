/**
 * What waits and event expectations count (README.md, "Scenarios"): what
 * happened since the program's current instance was started, the run's
 * start for the first. Counting from the step itself would miss an event
 * that came between the start and the step (a consumer that registered
 * before the wait began: a false fail); counting from the run's start
 * would let what a stopped instance did satisfy a wait about the one
 * started after it (a false pass).
 *
 * An event that came after the start can still be a stopped instance's: an
 * open its process had begun when the stop killed it is answered, and
 * recorded, after (a FUSE request the daemon has taken is waited out:
 * fs/fuse/dev.c request_wait_answer()), and a release comes when the
 * kernel sends it. So an event whose `pid` was a process (or thread) of a
 * stopped instance's tree, as collected at its stop (tree.ts), or a
 * thread of one of its processes that had exited by then, is left out of
 * the windows of the instances after it.
 */
import { CORE_EVENT_FIELDS, declaredFields, type DeviceEvent } from '../core/events.js';
import { processOfSync } from '../sys/procmaps.js';
import { readStat, type ProcStat } from '../sys/procstat.js';
import type { TargetDevice } from './target.js';
import type { ProcessTree } from './tree.js';

type Ops = { reads: number; writes: number };

const key = (name: string, generation: number): string => `${name}\0${generation}`;

/**
 * The event types whose `pid` is a process (or thread) of whoever caused
 * them: every core event that carries one (core/events.ts; the opener's
 * for a file's events, the calling thread's for `stuck` and
 * `fault_fired`), and the tcmu model's `netlink_registered` (the
 * datagram's SCM_CREDENTIALS pid). Another model's `pid` may mean
 * something else: it is not taken for one.
 */
const PID_OF_A_CALLER: ReadonlySet<string> = new Set([
  ...Object.entries(CORE_EVENT_FIELDS).flatMap(([type, decl]) => (declaredFields(decl).has('pid') ? [type] : [])),
  'netlink_registered',
]);

/**
 * The process of each thread an event named, noted as the event came in:
 * a thread that opened a file may exit before its process is stopped,
 * and then no tree collected has its id, while the file's late release
 * still carries it. Read at once: the event of an open is recorded while
 * the opening thread waits in open(2) (in-process, the subscriber is
 * called then).
 */
export class CallerProcesses {
  private readonly owner = new Map<number, number>();
  /** Callers found in no instance's tree (instanceOf(): another client's), each with its start time: one collection each. */
  private readonly others = new Map<number, number>();

  /** Whether `pid`, running now (`now`: its stat), was found to be another client's. */
  isOther(pid: number, now: ProcStat): boolean {
    return this.others.get(pid) === now.start;
  }

  /** Notes that `pid` (`now`: its stat) is in no instance's tree: a process cannot join one later (its parent is fixed at its fork). */
  noteOther(pid: number, now: ProcStat): void {
    this.others.set(pid, now.start);
  }

  /** The process of thread `tid`: as /proc shows it now, else as it was last seen. */
  of(tid: number): number | undefined {
    const now = processOfSync(tid);
    if (now === null) return this.owner.get(tid);
    // Only threads other than a process's own are kept (a tree has the
    // process's id); an id another process's main thread took drops its
    // old entry.
    if (now === tid) this.owner.delete(tid);
    else this.owner.set(tid, now);
    return now;
  }
}

/**
 * What instanceOf() answers for an event of another client of a daemon
 * (`--socket`): its caller is a live process in no instance's tree. No
 * window counts it: another program's open of a device the scenario names
 * must not meet a wait about the program under test's.
 */
export const ANOTHER_CLIENT = 0;

/**
 * The number of the stopped instance whose process `e` came from, by its
 * `pid` or that thread's process (the latest, if several had it);
 * undefined if none (or `e` carries no caller's pid). An instance counts
 * once its tree was collected, at its stop: so ask as the event comes in,
 * while a pid the tree had is not yet another process's.
 *
 * On a daemon others may use (`shared`), an event of none of them whose
 * caller is still alive is placed once more, with the latest instance's
 * tree collected now (a child started since the last collection is in it),
 * and is ANOTHER_CLIENT's if it is still in none and was there all along
 * the collection. A caller already gone cannot be placed (its parent link
 * went with it) and counts, as every event does on the run's own emulator,
 * which no one else is served by: also one that exits during the
 * collection, which may have missed it (a program's child that opens, closes
 * and exits at once, whose open is read while it exits).
 * Without a program there is nothing to place an event in.
 */
export function instanceOf(
  e: DeviceEvent,
  instances: readonly { n: number; program: { tree: ProcessTree } }[],
  callers: CallerProcesses,
  shared: boolean,
): number | undefined {
  if (!PID_OF_A_CALLER.has(e.type) || typeof e.pid !== 'number') return undefined;
  const pid = e.pid;
  const owner = callers.of(pid);
  const find = (): number | undefined =>
    [...instances].reverse().find((i) => i.program.tree.had(pid) || (owner !== undefined && owner !== pid && i.program.tree.had(owner)))?.n;
  const found = find();
  const latest = instances.at(-1);
  const now = found === undefined && shared && latest ? readStat(`/proc/${pid}/stat`) : null;
  if (!now || !latest) return found;
  if (callers.isOther(pid, now)) return ANOTHER_CLIENT;
  latest.program.tree.collect();
  const placed = find();
  if (placed !== undefined) return placed;
  if (readStat(`/proc/${pid}/stat`)?.start !== now.start) return undefined;
  callers.noteOther(pid, now);
  return ANOTHER_CLIENT;
}

export class CountWindow {
  private constructor(
    /** Index, in the run's list of events, of the first event in the window. */
    readonly firstEvent: number,
    /** The read and write counts of each instance listed when the window opened; one plugged later starts at 0. */
    private readonly opsAtOpen: ReadonlyMap<string, Ops>,
    /** The instance of the program the window is about: 1 for the first. */
    private readonly instance: number,
  ) {}

  /** A window opening now for instance `instance` of the program: `events` seen so far, `devices` as the target lists them now. */
  static open(events: number, devices: readonly TargetDevice[], instance: number): CountWindow {
    return new CountWindow(
      events,
      new Map(devices.map((d) => [key(d.name, d.generation), { reads: d.reads, writes: d.writes }])),
      instance,
    );
  }

  /** Whether an event in the window counts: not one of an instance before this one, nor another client's (`from`: instanceOf()'s answer). */
  counts(from: number | undefined): boolean {
    return from === undefined || (from !== ANOTHER_CLIENT && from >= this.instance);
  }

  /** The read (write) calls on instance `d` since the window opened. */
  opsSince(d: TargetDevice, counter: keyof Ops): number {
    return d[counter] - (this.opsAtOpen.get(key(d.name, d.generation))?.[counter] ?? 0);
  }
}
