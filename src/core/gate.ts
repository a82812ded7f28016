/**
 * The op gate of one instance: every model handler runs between enter() and
 * exit(), holding an instance reference. Unplug closes the gate, cancels
 * what is inside and drains it, like debugfs's active_users count with
 * debugfs_file_get()/debugfs_file_put() and the wait in remove_one(), and
 * like cdev "generic shutdown": after removal no new op starts and every
 * handler has exited.
 */
import { Errno } from '../errno.js';
import type { CallingThread } from './calling-thread.js';
import type { Kref } from './kref.js';
import { abortErrno } from './waitqueue.js';

/** A transport request a handler serves: its signal, and the means to abort it (devio IoContext). */
export interface Cancellable {
  readonly signal: AbortSignal;
  abort(reason: Error): void;
}

/**
 * One operation in flight in a model (an op, action or attribute store):
 * who it runs for, since when, its cancellation, and whether unplug gave
 * up on it. The op gate keeps the list of them.
 */
export class InFlightOp {
  readonly startedAt = performance.now();
  /** Set when unplug stopped waiting for this handler; its request was answered without it. */
  stuck = false;
  /**
   * Set by callModel() for a call that went asynchronous: answers its
   * request at once, as a call made after unplug is (UnplugAnswers), so a
   * stuck model's request is not left waiting; the model's late result is
   * then dropped.
   */
  onAbandon: (() => void) | null = null;
  /** Set by OpGate.exit(): the handler's own promise has settled. */
  exited = false;
  /** For handlers without a request (actions): made on first use of `signal`. */
  private own: AbortController | null = null;
  /** OpGate's list of the handlers inside. */
  prevInside: InFlightOp | null = null;
  nextInside: InFlightOp | null = null;

  /**
   * `request` is the transport's request this handler serves: its signal
   * aborts on an interrupt, and unplug aborts it through request.abort(),
   * so one signal serves both causes, made only if somebody looks at it.
   * `signalMade`: the model was handed that signal before the handler was
   * recorded (a call that went asynchronous, fops.ts callModel()).
   */
  constructor(
    readonly op: string,
    /** Who the handler runs for: the thread that made the call (fops.ts callerOf). */
    readonly caller: CallingThread,
    private readonly request: Cancellable | undefined,
    private signalMade = false,
  ) {}

  /** Aborts on a transport interrupt OR on unplug, whichever comes first. */
  get signal(): AbortSignal {
    this.signalMade = true;
    return this.request ? this.request.signal : (this.own ??= new AbortController()).signal;
  }

  get signalExists(): boolean {
    return this.signalMade;
  }

  /** Why the handler was cancelled, if it was and it could have noticed (its signal exists). */
  get abortReason(): Errno | null {
    if (!this.signalMade) return null;
    const signal = this.signal;
    return signal.aborted ? abortErrno(signal) : null;
  }

  abort(reason: Errno): void {
    if (this.request) this.request.abort(reason);
    else (this.own ??= new AbortController()).abort(reason);
  }

  /** Unplug stops waiting for this handler (drain timed out). */
  abandon(): void {
    this.stuck = true;
    this.onAbandon?.();
  }
}

export class OpGate {
  /** Set by close(), never cleared: a field, as every file operation reads it. */
  closed = false;
  /**
   * The handlers inside, oldest first, linked through themselves: a Set
   * would allocate a new table each time it shrinks back to empty, which
   * is once per request.
   */
  private first: InFlightOp | null = null;
  private last: InFlightOp | null = null;
  private inside = 0;
  private onIdle: (() => void) | null = null;

  constructor(private readonly refs: Kref) {}

  /** The handlers inside now, oldest first (a fresh array). */
  get handlers(): InFlightOp[] {
    const out: InFlightOp[] = [];
    for (let h = this.first; h; h = h.nextInside) out.push(h);
    return out;
  }

  /**
   * Records a handler inside, holding an instance reference until exit().
   * Refusing calls once the gate is closed (debugfs_file_get() failing) is
   * callModel()'s (src/core/fops.ts), which records only the calls that go
   * asynchronous; release is recorded but never refused
   * (full_proxy_release()), as it is model code that drain must wait for.
   */
  track(op: string, caller: CallingThread, request?: Cancellable, signalMade = false): InFlightOp {
    this.refs.get();
    const h = new InFlightOp(op, caller, request, signalMade);
    h.prevInside = this.last;
    if (this.last) this.last.nextInside = h;
    else this.first = h;
    this.last = h;
    this.inside++;
    return h;
  }

  /** Called once, when the handler's own promise settles, stuck or not: only then is its reference dropped. */
  exit(h: InFlightOp): void {
    h.exited = true;
    if (h.prevInside) h.prevInside.nextInside = h.nextInside;
    else this.first = h.nextInside;
    if (h.nextInside) h.nextInside.prevInside = h.prevInside;
    else this.last = h.prevInside;
    h.prevInside = h.nextInside = null;
    if (--this.inside === 0) this.onIdle?.();
    this.refs.put();
  }

  close(): void {
    this.closed = true;
  }

  /**
   * Aborts the signal of every handler inside, and of those of `also` that
   * have exited meanwhile but whose signal exists, since a model may still
   * listen to it (debugfs_enter_cancellation() callbacks). An exited
   * handler that never made its signal has nothing left to tell.
   */
  cancel(reason: Errno, also: readonly InFlightOp[] = []): void {
    for (const h of this.handlers) h.abort(reason);
    for (const h of also) if (h.exited && h.signalExists) h.abort(reason);
  }

  /**
   * Waits until no handler runs or `giveUp` resolves; returns those still
   * running. One cancel pass before it suffices, unlike debugfs's
   * cancel-then-wait loop: the gate is closed so nothing new enters, and an
   * aborted AbortSignal stays aborted, so a handler that starts waiting after
   * the cancel sees it at once.
   */
  async drain(giveUp: Promise<unknown>): Promise<InFlightOp[]> {
    if (this.inside > 0) {
      await Promise.race([new Promise<void>((resolve) => (this.onIdle = resolve)), giveUp]);
      this.onIdle = null;
    }
    return this.handlers;
  }
}
