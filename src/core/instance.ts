/**
 * One bound device: identity, lifecycle state, references, the op gate, the
 * wait queue, counters and events, and the error boundary every model call
 * goes through (errnoOf). Probe, the file operations with callModel(), the
 * one way into the model, and unplug live in probe.ts, fops.ts and
 * unplug.ts.
 */
import { Errno, toErrno } from '../errno.js';
import { processOfSync } from '../sys/procmaps.js';
import { CoreEvent, declaredType, fieldTypeOf, isCoreEvent, type DeviceEvent } from './events.js';
import type { OpenFile } from './file.js';
import { OpGate, type InFlightOp } from './gate.js';
import type { Logger, OpInterceptor, PublishedDevice, UnplugReport } from './host.js';
import { Kref } from './kref.js';
import type { Counters, DeviceModel, Holder, InFlight, Instance, Lifecycle, Region, UnplugIoctl } from './model.js';
import type { DeviceRegions } from './regions.js';
import { SleepingReads } from './sleeping-reads.js';
import { unplugAnswersOf, type UnplugAnswerSet } from './unplug-answers.js';
import type { UnplugBound } from './unplug-bound.js';
import { WaitQueue } from './waitqueue.js';

export interface InstanceHost {
  logger: Logger;
  /** Publisher.mappings, when the host can count mappings. */
  mappings?(dev: PublishedDevice, openers: Set<number>): Promise<number>;
  interceptor: OpInterceptor | null;
  record(e: DeviceEvent): void;
  /** Instance.unplugSelf(): a surprise unplug of this instance, unless one has begun. */
  unplug(inst: DeviceInstance): void;
  onFreed(inst: DeviceInstance): void;
  /** Instance.modelData: one map per model and device manager. */
  modelData: Map<string, unknown>;
}

/** Openers remembered per instance with regions (noteOpener). */
const MAX_OPENERS = 1024;

type OpCounter = Exclude<keyof Counters, 'inFlight' | 'stuck'>;

export class DeviceInstance<S = unknown> implements Instance<S> {
  lifecycle: Lifecycle = 'live';
  state!: S;
  published: PublishedDevice;
  readonly wq = new WaitQueue();
  /** What calls answer once unplug began (the model's `unplugged`, defaults filled in). */
  readonly unplugAnswers: UnplugAnswerSet<S>;
  /**
   * The reason unplug cancels with (the wait queue killed, handlers'
   * signals aborted): an ENODEV of this instance's own, which callModel()
   * tells by identity from an answer a model chose, and answers as a call
   * made after unplug would be (UnplugAnswers), as a driver's check after
   * its wait answers (evdev_read() testing !evdev->exist once woken).
   */
  readonly unplugCancel = new Errno('ENODEV');
  /**
   * The device's data for reads when unplug began (UnplugAnswers.readPending),
   * until a read after unplug takes it: one per device, as rtc->irq_data is
   * (unplug-answers.ts unplugReadOf).
   */
  unplugReadData: Buffer | null = null;
  /**
   * The most bytes a read or write after unplug takes
   * (UnplugAnswers.maxIoSize, kept when the gate closed: unplug-answers.ts
   * keepUnplugMaxIoSize); no limit without one.
   */
  unplugMaxIoSize = Infinity;
  /**
   * What an ioctl after unplug answers (UnplugAnswers.ioctl): its errno, or
   * the ioctl its function returned when the gate closed
   * (unplug-answers.ts keepUnplugIoctl). EIO until then, and if that
   * function failed.
   */
  unplugIoctl: Errno | UnplugIoctl<S> = new Errno('EIO');
  /** Reads asleep after unplug (UnplugAnswers.read 'sleep'). */
  readonly sleepers = new SleepingReads((type, details) => this.record(type, details));
  /** The shared memory regions, mapped before create() (probe.ts); null when the model declares none. */
  shared: DeviceRegions | null = null;
  /**
   * Programs map the regions' backing file itself (FUSE passthrough), so a
   * mapping does not hold the node's file and RELEASE comes at close()
   * while it lives: a release then waits for the mapping (fops.ts release()).
   */
  mapsBypassFiles = false;
  /** Starts at 1: the plug reference, dropped by the last unplug step. */
  readonly refs: Kref;
  readonly gate: OpGate;
  readonly files = new Set<OpenFile<S>>();
  /** Resolves when remove() has returned; late releases wait for it. */
  readonly removal: Promise<void>;
  markRemoved!: () => void;
  /** The unplug in progress or done, so that a second unplug request joins it. */
  unplugging: Promise<UnplugReport> | null = null;
  /** When that unplug's waits give up; a later, shorter unplug request brings it forward. */
  unplugBound: UnplugBound | null = null;
  readonly count: Record<OpCounter, number> = {
    opens: 0,
    releases: 0,
    lateReleases: 0,
    reads: 0,
    writes: 0,
    ioctls: 0,
    polls: 0,
    actions: 0,
    faults: 0,
    errors: 0,
    bytesRead: 0,
    bytesWritten: 0,
  };
  private lastFileId = 0;
  private readonly openers = new Set<number>();
  /** whenReleased()'s waiters, until the last open file closes. */
  private releaseWaiters: (() => void)[] = [];

  constructor(
    readonly driver: DeviceModel<S>,
    readonly name: string,
    readonly generation: number,
    readonly options: unknown,
    /** Read by fops.ts's callModel() on every call: a field, not a getter. */
    readonly host: InstanceHost,
  ) {
    this.unplugAnswers = unplugAnswersOf(driver);
    this.published = { name, generation, nodePath: name, stream: driver.stream ?? false, size: 0 };
    this.refs = new Kref(() => this.free());
    this.gate = new OpGate(this.refs);
    this.removal = new Promise((resolve) => {
      this.markRemoved = resolve;
    });
  }

  get model(): string {
    return this.driver.name;
  }

  get modelData(): Map<string, unknown> {
    return this.host.modelData;
  }

  get nodePath(): string {
    return this.published.nodePath;
  }

  get log(): Logger {
    return this.host.logger;
  }

  get counters(): Counters {
    const running = this.gate.handlers;
    return { ...this.count, inFlight: running.length, stuck: running.filter((h) => h.stuck).length };
  }

  get regions(): readonly Region[] {
    return this.shared?.list ?? [];
  }

  async mappings(): Promise<number> {
    return this.shared ? ((await this.host.mappings?.(this.published, this.openers)) ?? 0) : 0;
  }

  /** The mappings of the regions held by process `pid` (noteOpener's answer) and what it forked. */
  async mappingsBy(pid: number): Promise<number> {
    return this.shared ? ((await this.host.mappings?.(this.published, new Set([pid]))) ?? 0) : 0;
  }

  /**
   * Who opened a file of this instance, when it has regions: the processes
   * that can have mapped them (a mapping outlives close), which are where
   * mappings() looks, with their descendants; the most recent
   * MAX_OPENERS, and the counting drops those that exited. Kept by
   * process, resolved while the opening thread waits in open(2): a
   * worker thread that opens, maps and exits leaves its mappings to its
   * process. Returns that process (the thread's id if it could not be
   * read).
   */
  noteOpener(tid: number): number {
    const pid = processOfSync(tid) ?? tid;
    this.openers.delete(pid);
    this.openers.add(pid);
    if (this.openers.size > MAX_OPENERS) this.openers.delete(this.openers.values().next().value!);
    return pid;
  }

  /**
   * Resolves once no file of this instance is open, at once if none is:
   * the one wait for a program to let go of the device (api.ts released(),
   * the emulator's stop, tcmu's wait for the consumer's close). Bound it
   * with `within()` (src/awaitable.ts).
   */
  whenReleased(): Promise<void> {
    if (this.files.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.releaseWaiters.push(resolve));
  }

  /** A file left `files` (its release began): wakes whenReleased() once none is left. */
  fileClosed(): void {
    if (this.files.size > 0 || this.releaseWaiters.length === 0) return;
    const waiters = this.releaseWaiters;
    this.releaseWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** See Instance.unplugSelf() (core/model.ts). */
  unplugSelf(): void {
    if (this.lifecycle !== 'live' || this.unplugging) return;
    // Not from inside the caller's handler: unplug waits for running handlers to drain.
    setImmediate(() => {
      if (this.lifecycle === 'live' && !this.unplugging) this.host.unplug(this as DeviceInstance);
    });
  }

  get holders(): Holder[] {
    return [...this.files].map((f) => ({ file: f.id, pid: f.pid, comm: f.comm, openedAt: f.openedAt, reads: f.reads, writes: f.writes }));
  }

  /** The handlers in the gate, then the reads asleep after unplug (not handlers: no model code runs for them). */
  get inFlight(): InFlight[] {
    const now = performance.now();
    const calls = this.gate.handlers.map((h) => ({
      op: h.op,
      pid: h.caller.tid,
      comm: h.caller.name,
      sinceMs: Math.round(now - h.startedAt),
      stuck: h.stuck,
      sleeping: false,
    }));
    for (const r of this.sleepers.list) {
      calls.push({ op: 'read', pid: r.caller.tid, comm: r.caller.name, sinceMs: Math.round(now - r.startedAt), stuck: false, sleeping: true });
    }
    return calls;
  }

  nextFileId(): number {
    return ++this.lastFileId;
  }

  emit(type: string, details: Record<string, unknown> = {}): void {
    if (isCoreEvent(type)) throw new Error(`model ${this.model} cannot emit core event '${type}'`);
    const declared = this.driver.events;
    if (declared) {
      const fields = Object.hasOwn(declared, type) ? declared[type]! : null;
      if (!fields) throw new Error(`model ${this.model} emits '${type}', which its events do not declare`);
      for (const [k, v] of Object.entries(details)) {
        const want = declaredType(fields, k);
        if (!want) throw new Error(`model ${this.model}: event '${type}' carries '${k}', which its events do not declare`);
        // A scenario's comparisons were checked against the declared type (src/scenario/check.ts).
        const got = fieldTypeOf(v);
        if (want !== 'any' && got !== null && got !== want) throw new Error(`model ${this.model}: event '${type}' field '${k}' is a ${got}, declared ${want}`);
      }
    }
    // A timer the model forgot to cancel in remove() must not append to a finished lifecycle.
    if (this.lifecycle === 'gone' || this.lifecycle === 'freed') {
      this.log.warn({ device: this.name, generation: this.generation, type }, 'model emitted an event after remove(); dropped');
      return;
    }
    this.record(type, details);
  }

  record(type: string, details: Record<string, unknown> = {}): void {
    // What `{ ...details, type, ... }` means (details first, the identity
    // overriding them), without the spread: Node 20 takes a generic path
    // for it that costs ~50x Object.assign, two events per open+close.
    const e = Object.assign({}, details) as DeviceEvent;
    e.type = type;
    e.device = this.name;
    e.generation = this.generation;
    e.at = Date.now();
    this.host.record(e);
  }

  /**
   * The plugin error boundary: an Errno is an answer, an AbortError from an
   * API the handler passed its signal to is the cancellation it was asked
   * for, a Node system error keeps its code, anything else is a model bug:
   * logged with its stack and answered EIO.
   */
  errnoOf(err: unknown, op: string, h?: InFlightOp): Errno {
    if (err instanceof Errno) return err;
    const reason = h?.abortReason;
    if (reason && (err === reason || (err instanceof Error && err.name === 'AbortError'))) return reason;
    return new Errno(toErrno(err, (bug) => this.modelThrew(bug, op, '; answering EIO')));
  }

  /** Model code that answers no request (remove, lateRelease, free on a failed probe): its failures are reported, not answered. */
  async runModel(op: string, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.modelThrew(err, op);
    }
  }

  /**
   * A bug in the model, not an answer: logged with its stack and recorded
   * as a `model_error` event, so that a test whose program took the EIO
   * in its stride cannot pass on an emulation that broke (a scenario run
   * fails on it, README "What a scenario checks"), as a kernel driver's
   * BUG would not go unseen.
   */
  private modelThrew(err: unknown, op: string, outcome = ''): void {
    this.log.error({ err, device: this.name, generation: this.generation, op }, `model ${this.model} threw in ${op}${outcome}`);
    this.record(CoreEvent.model_error, { op, error: describeThrown(err) });
  }

  /**
   * The kref release hook (uio_device_release()): the plug reference, every
   * file and every handler are gone, so nothing can reach the state again.
   */
  private free(): void {
    try {
      this.driver.free?.(this);
    } catch (err) {
      this.modelThrew(err, 'free');
    }
    // After free() the model has no business with its regions: its views
    // are dropped; programs' mappings of 'keep' regions hold their pages.
    this.shared?.drop();
    this.lifecycle = 'freed';
    this.record(CoreEvent.freed);
    this.host.onFreed(this as DeviceInstance);
  }
}

/** The most of a thrown message an event keeps (events stay in the history). */
const THROWN_TEXT_MAX = 300;

/** What a model threw, in one line: `TypeError: Cannot read properties of null`. */
function describeThrown(err: unknown): string {
  let text: string;
  try {
    text = err instanceof Error ? `${err.name}: ${err.message}` : `threw ${typeof err === 'string' ? JSON.stringify(err) : String(err)}`;
  } catch {
    text = `threw ${Object.prototype.toString.call(err)}`; // an object with no usable toString
  }
  return text.length > THROWN_TEXT_MAX ? `${text.slice(0, THROWN_TEXT_MAX)}...` : text;
}
