/**
 * One bound device: identity, lifecycle state, references, the op gate, the
 * wait queue, counters and events, and the error boundary every model call
 * goes through. Probe, the file operations and unplug live in probe.ts,
 * fops.ts and unplug.ts.
 */
import { E, Errno, toErrno } from '../errno.js';
import { POLLERR, POLLHUP, type IoContext, type PollMask } from '../devio.js';
import { CoreEvent, declaredType, fieldTypeOf, isCoreEvent, type DeviceEvent } from './events.js';
import type { OpenFile } from './file.js';
import { OpGate, type Caller, type Handler } from './gate.js';
import type { FaultableOp, Logger, OpInterceptor, PublishedDevice, UnplugReport } from './host.js';
import { Kref } from './kref.js';
import type { Counters, DeviceModel, Holder, InFlight, Instance, Lifecycle, Region } from './model.js';
import type { DeviceRegions } from './regions.js';
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

/** The caller recorded for handlers started through the control API (actions). */
const CONTROL: Caller = { pid: 0, comm: 'cdevemu' };

type OpCounter = Exclude<keyof Counters, 'inFlight' | 'stuck'>;

export class DeviceInstance<S = unknown> implements Instance<S> {
  lifecycle: Lifecycle = 'live';
  state!: S;
  published: PublishedDevice;
  readonly wq = new WaitQueue();
  /** The shared memory regions, mapped before create() (probe.ts); null when the model declares none. */
  shared: DeviceRegions | null = null;
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

  constructor(
    readonly driver: DeviceModel<S>,
    readonly name: string,
    readonly generation: number,
    readonly options: unknown,
    private readonly host: InstanceHost,
  ) {
    this.published = { name, generation, nodePath: name, stream: driver.stream ?? false, size: 0 };
    this.refs = new Kref(() => this.free());
    this.gate = new OpGate(this.refs, this.unplugErrno);
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

  get unplugErrno(): number {
    return this.driver.unplugErrno?.errno ?? E.EIO;
  }

  get unpollMask(): PollMask {
    return this.driver.unpollMask ?? POLLERR | POLLHUP;
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

  /**
   * Who opened a file of this instance, when it has regions: the processes
   * that can have mapped them (a mapping outlives close), which are where
   * mappings() looks, with their descendants; the most recent
   * MAX_OPENERS, and the counting drops those that exited.
   */
  noteOpener(pid: number): void {
    this.openers.delete(pid);
    this.openers.add(pid);
    if (this.openers.size > MAX_OPENERS) this.openers.delete(this.openers.values().next().value!);
  }

  unplugSelf(): void {
    if (this.lifecycle !== 'live' || this.unplugging) return;
    // Not from inside the caller's handler: unplug waits for running handlers to drain.
    setImmediate(() => {
      if (this.lifecycle === 'live' && !this.unplugging) this.host.unplug(this as DeviceInstance);
    });
  }

  get holders(): Holder[] {
    return [...this.files].map((f) => ({ file: f.id, pid: f.pid, comm: f.comm, openedAt: f.openedAt }));
  }

  get inFlight(): InFlight[] {
    const now = performance.now();
    return this.gate.handlers.map((h) => ({
      op: h.op,
      pid: h.caller.pid,
      comm: h.caller.comm,
      sinceMs: Math.round(now - h.startedAt),
      stuck: h.stuck,
    }));
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
   * Runs one model handler through the gate, like debugfs's FULL_PROXY_FUNC:
   * refused with the unplug errno once the gate is closed, otherwise counted
   * until it returns. The request is answered with the handler's result, or
   * with the unplug errno as soon as unplug gives up on the handler. A
   * handler that answers synchronously is answered synchronously: most
   * model calls do, and a promise chain per call costs a request's worth of
   * latency.
   */
  gated<T>(
    op: string,
    file: OpenFile<S> | null,
    io: IoContext | null,
    fn: (h: Handler) => T | Promise<T>,
  ): T | Promise<T> {
    let h: Handler;
    let r: T | Promise<T>;
    try {
      if (file?.closed) throw new Errno('EBADF');
      // Only READ and WRITE carry f_flags; the others leave the last known ones.
      if (file && io?.flags !== undefined) file.flags = io.flags;
      h = this.gate.enter(op, file ?? CONTROL, io ?? undefined);
    } catch (err) {
      this.count.errors++;
      throw err;
    }
    try {
      r = fn(h);
    } catch (err) {
      this.gate.exit(h);
      this.count.errors++;
      throw this.errnoOf(err, op, h);
    }
    if (!(r instanceof Promise)) {
      this.gate.exit(h);
      return r;
    }
    return Promise.race([this.settle(h, r), h.abandoned]).catch((err: unknown) => {
      this.count.errors++;
      throw err;
    });
  }

  /**
   * Calls the model for a handler already counted by the gate. The promise
   * rejects only with an Errno; the handler leaves the gate (and drops its
   * reference) when the model's own promise settles, however late.
   */
  invoke<T>(h: Handler, fn: (h: Handler) => T | Promise<T>): Promise<T> {
    let r: T | Promise<T>;
    try {
      r = fn(h);
    } catch (err) {
      r = Promise.reject(err);
    }
    return this.settle(h, Promise.resolve(r));
  }

  /** Maps a model promise's failure to an Errno and leaves the gate when it settles. */
  private settle<T>(h: Handler, r: Promise<T>): Promise<T> {
    const run = r.catch((err: unknown) => {
      throw this.errnoOf(err, h.op, h);
    });
    const exit = (): void => this.gate.exit(h);
    void run.then(exit, exit);
    return run;
  }

  /**
   * Runs a model call through the interceptor (fault rules), if any. Called
   * inside the gate, for handler `h`.
   */
  intercept<A, R>(
    op: FaultableOp,
    file: OpenFile<S>,
    arg: A,
    h: Handler,
    proceed: (arg: A) => R | Promise<R>,
    cmd?: number,
  ): R | Promise<R> {
    const hook = this.host.interceptor;
    if (!hook || hook.idle) return proceed(arg);
    return hook.intercept(
      {
        op,
        get signal() {
          return h.signal;
        },
        device: this.name,
        model: this.model,
        generation: this.generation,
        pid: file.pid,
        comm: file.comm,
        ...(cmd !== undefined ? { cmd } : {}),
        fired: (details) => {
          this.count.faults++;
          this.record(CoreEvent.fault_fired, { ...details, op, pid: file.pid, comm: file.comm });
        },
      },
      arg,
      proceed,
    );
  }


  /**
   * The plugin error boundary: an Errno is an answer, an AbortError from an
   * API the handler passed its signal to is the cancellation it was asked
   * for, a Node system error keeps its code, anything else is a model bug:
   * logged with its stack and answered EIO.
   */
  errnoOf(err: unknown, op: string, h?: Handler): Errno {
    if (err instanceof Errno) return err;
    const reason = h?.abortReason;
    if (reason && (err === reason || (err instanceof Error && err.name === 'AbortError'))) return reason;
    return new Errno(
      toErrno(err, (bug) =>
        this.log.error({ err: bug, device: this.name, generation: this.generation, op }, `model ${this.model} threw in ${op}; answering EIO`),
      ),
    );
  }

  /** Model code that answers no request (remove, lateRelease, free on a failed probe): failures are only logged. */
  async runModel(op: string, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log.error({ err, device: this.name, generation: this.generation, op }, `model ${this.model} threw in ${op}`);
    }
  }

  /**
   * The kref release hook (uio_device_release()): the plug reference, every
   * file and every handler are gone, so nothing can reach the state again.
   */
  private free(): void {
    try {
      this.driver.free?.(this);
    } catch (err) {
      this.log.error({ err, device: this.name, generation: this.generation, op: 'free' }, `model ${this.model} threw in free`);
    }
    // After free() the model has no business with its regions: its views
    // are dropped; programs' mappings of 'keep' regions hold their pages.
    this.shared?.drop();
    this.lifecycle = 'freed';
    this.record(CoreEvent.freed);
    this.host.onFreed(this as DeviceInstance);
  }
}
