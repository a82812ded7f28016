/**
 * One bound device: identity, lifecycle state, references, the op gate, the
 * wait queue, counters and events, and the error boundary every model call
 * goes through. Probe, the file operations and unplug live in probe.ts,
 * fops.ts and unplug.ts.
 */
import { E, Errno, toErrno, type ErrnoName } from '../errno.js';
import { POLLERR, POLLHUP, type IoContext, type OpenContext, type PollMask } from '../devio.js';
import { CoreEvent, declaredType, fieldTypeOf, isCoreEvent, type DeviceEvent } from './events.js';
import type { OpenFile } from './file.js';
import { OpGate, type Caller, type InFlightOp } from './gate.js';
import type { FaultableOp, Logger, OpCall, OpInterceptor, PublishedDevice, UnplugReport } from './host.js';
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

/** The caller recorded for operations started through the control API (actions, attribute stores). */
const CONTROL: Caller = { pid: 0, comm: 'cdevemu' };

type OpCounter = Exclude<keyof Counters, 'inFlight' | 'stuck'>;

/** A model method as DeviceInstance.call calls it: the file (null for actions and stores), the argument, the signal. */
export type ModelMethod<F, A, R> = (file: F, arg: A, signal: AbortSignal) => R | Promise<R>;

/**
 * What DeviceInstance.call does for one kind of call, besides what it does
 * for all: one constant per operation (fops.ts), so a call allocates
 * nothing to say it.
 */
export interface CallKind<A, R> {
  /** The fault rules' name for it; null: no rule applies (fsync, actions, attribute stores). */
  readonly fault: FaultableOp | null;
  /** The ioctl command fault rules match on. */
  readonly cmdOf?: (arg: A) => number;
  /**
   * False for RELEASE alone: never refused by the gate (full_proxy_release()),
   * and its result is nobody's answer (__fput() ignores ->release's), so its
   * failures are logged, not counted as errors.
   */
  readonly answered: boolean;
  /** What a model without the method answers, inside the gate (vfs_read(): EINVAL; vfs_ioctl(): ENOTTY). */
  readonly missing?: ErrnoName;
  /** Else, the result a model without the method gives (poll's default mask; nothing for open, release). */
  readonly absent?: R;
  /** Checks the reply against the request; one that does not fit (a longer read) is a model bug. */
  readonly check?: (reply: R, arg: A) => R;
  /** The answer when unplug gives up on the call; unset: the unplug errno it gave up with. */
  readonly abandonedErrno?: Errno;
  /** Runs once the model's own result has settled, however late (OPEN's reference). */
  readonly settled?: <S>(inst: DeviceInstance<S>, file: OpenFile<S> | null, ok: boolean, h: InFlightOp) => void;
}

/** Actions and attribute stores: model code run for the control API, through the gate so unplug drains it; no fault rule applies. */
export const CONTROL_CALL = { fault: null, answered: true } as const satisfies CallKind<unknown, unknown>;

/** Given to model methods that do not take a signal: it never aborts, and costs nothing. */
const NEVER_ABORTED = new AbortController().signal;

/**
 * The signal for a model method: made only if the method declares its
 * third parameter (mocha and Express read Function.length the same way).
 * A method that never names the signal cannot observe it, and most (zero,
 * null, register reads) answer at once.
 */
function signalFor(model: (...args: never[]) => unknown, h: InFlightOp): AbortSignal {
  return model.length >= 3 ? h.signal : NEVER_ABORTED;
}

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
  /** whenReleased()'s waiters, until the last open file closes. */
  private releaseWaiters: (() => void)[] = [];

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
   * The one way into the model for a file operation, an action or an
   * attribute store, like debugfs's FULL_PROXY_FUNC. In order: the gate
   * (refused with the unplug errno once it is closed; RELEASE is counted
   * but never refused, full_proxy_release()), which takes the instance
   * reference the operation holds until the model's own result settles,
   * however late; the fault interceptor, skipped while no rule is in force;
   * the model, given the request's signal only if it names that parameter
   * (signalFor); the reply check (`kind.check`); and the settling, once: a
   * failure becomes an Errno (errnoOf), and an asynchronous answer races
   * unplug's abandonment, so a stuck model's request is answered at once.
   * A model that answers synchronously is answered synchronously: most
   * model calls do, and a promise chain per call costs a request's worth
   * of latency.
   */
  call<F extends OpenFile<S> | null, A, R>(
    kind: CallKind<A, R>,
    op: string,
    file: F,
    io: IoContext | OpenContext | null,
    arg: A,
    model: ModelMethod<F, A, R> | undefined,
  ): R | Promise<R> {
    let h: InFlightOp;
    try {
      if (kind.answered) {
        if (file?.closed) throw new Errno('EBADF');
        // Only OPEN, READ and WRITE carry f_flags; the others leave the last known ones.
        if (file && io?.flags !== undefined) file.flags = io.flags;
        h = this.gate.enter(op, file ?? CONTROL, io ?? undefined);
      } else h = this.gate.track(op, file ?? CONTROL, io ?? undefined);
    } catch (err) {
      this.count.errors++;
      throw err;
    }
    let r: R | Promise<R>;
    try {
      r = this.callMethod(kind, h, file, arg, model);
    } catch (err) {
      this.gate.exit(h);
      const e = this.errnoOf(err, op, h);
      kind.settled?.(this, file, false, h);
      if (kind.answered) this.count.errors++;
      throw e;
    }
    if (!(r instanceof Promise)) {
      this.gate.exit(h);
      kind.settled?.(this, file, true, h);
      return r;
    }
    const run = r.catch((err: unknown) => {
      throw this.errnoOf(err, op, h);
    });
    void run.then(
      () => {
        this.gate.exit(h);
        kind.settled?.(this, file, true, h);
      },
      () => {
        this.gate.exit(h);
        kind.settled?.(this, file, false, h);
      },
    );
    return Promise.race([run, h.abandoned]).catch((err: unknown) => {
      if (kind.answered) this.count.errors++;
      throw h.stuck && kind.abandonedErrno ? kind.abandonedErrno : err;
    });
  }

  /** The model's method, through the fault interceptor when a rule is in force, and its reply checked. */
  private callMethod<F extends OpenFile<S> | null, A, R>(
    kind: CallKind<A, R>,
    h: InFlightOp,
    file: F,
    arg: A,
    model: ModelMethod<F, A, R> | undefined,
  ): R | Promise<R> {
    if (!model && kind.missing) throw new Errno(kind.missing);
    const hook = this.host.interceptor;
    const r: R | Promise<R> =
      !kind.fault || !file || !hook || hook.idle
        ? model
          ? model(file, arg, signalFor(model, h))
          : kind.absent!
        : hook.intercept(this.describe(kind.fault, file, h, kind.cmdOf?.(arg)), arg, (a: A) => (model ? model(file, a, signalFor(model, h)) : kind.absent!));
    const check = kind.check;
    if (!check) return r;
    return r instanceof Promise ? r.then((v) => check(v, arg)) : check(r, arg);
  }

  /** The call as the interceptor (the fault engine) sees it. */
  private describe(op: FaultableOp, file: OpenFile<S>, h: InFlightOp, cmd: number | undefined): OpCall {
    return {
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
    };
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
