/**
 * The op gate of one instance: every model handler runs between enter() and
 * exit(), holding an instance reference. Unplug closes the gate, cancels
 * what is inside and drains it, like debugfs's active_users count with
 * debugfs_file_get()/debugfs_file_put() and the wait in remove_one(), and
 * like cdev "generic shutdown": after removal no new op starts and every
 * handler has exited.
 */
import { Errno } from '../errno.js';
import type { Kref } from './kref.js';
import { abortErrno } from './waitqueue.js';

/** Who a handler runs for: the opener of the file, or the control API for actions. */
export interface Caller {
  readonly pid: number;
  readonly comm: string;
}

/** One model handler in flight. */
export class Handler {
  readonly startedAt = performance.now();
  /** Set when unplug stopped waiting for this handler; its request was answered without it. */
  stuck = false;
  /** Why the handler was cancelled (transport interrupt, or unplug), once it was. */
  abortReason: Errno | null = null;
  private abandonedPromise: Promise<never> | null = null;
  private abandonReason: Errno | null = null;
  private rejectAbandoned: ((err: Errno) => void) | null = null;
  /**
   * Made on first use of `signal`. Most handlers answer without looking at
   * it, and an AbortSignal (with its link to the transport's) costs more
   * than the rest of a small request.
   */
  private controller: AbortController | null = null;
  private readonly onInterrupt = (): void => this.abort(abortErrno(this.transport!));

  constructor(
    readonly op: string,
    readonly caller: Caller,
    private readonly transport: AbortSignal | undefined,
  ) {}

  /** Aborts on a transport interrupt OR on unplug, whichever comes first. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason) this.controller.abort(this.abortReason);
      else if (this.transport?.aborted) this.onInterrupt();
      else this.transport?.addEventListener('abort', this.onInterrupt, { once: true });
    }
    return this.controller.signal;
  }

  abort(reason: Errno): void {
    if (this.abortReason) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  /**
   * Rejects when unplug abandons the handler. Callers race it against the
   * handler's own result, so a stuck handler's request is answered at once
   * and its late result is dropped. Made only for handlers that go async:
   * most model calls return before anyone could abandon them.
   */
  get abandoned(): Promise<never> {
    if (!this.abandonedPromise) {
      this.abandonedPromise = this.abandonReason
        ? Promise.reject(this.abandonReason)
        : new Promise<never>((_, reject) => {
            this.rejectAbandoned = reject;
          });
      this.abandonedPromise.catch(() => {}); // only observed through Promise.race: never an unhandled rejection
    }
    return this.abandonedPromise;
  }

  abandon(reason: Errno): void {
    this.stuck = true;
    this.abandonReason = reason;
    this.rejectAbandoned?.(reason);
  }

  /** Detach from the transport's signal so that it does not collect listeners. */
  finish(): void {
    if (this.controller) this.transport?.removeEventListener('abort', this.onInterrupt);
  }
}

export class OpGate {
  private closed = false;
  private readonly running = new Set<Handler>();
  private onIdle: (() => void) | null = null;

  constructor(
    private readonly refs: Kref,
    private readonly closedErrno: number,
  ) {}

  get isOpen(): boolean {
    return !this.closed;
  }

  get handlers(): readonly Handler[] {
    return [...this.running];
  }

  /** debugfs_file_get(): fails with the unplug errno once the gate is closed. */
  enter(op: string, caller: Caller, transport?: AbortSignal): Handler {
    if (this.closed) throw new Errno(this.closedErrno);
    return this.track(op, caller, transport);
  }

  /**
   * Counts a handler without gating it: release is never gated
   * (full_proxy_release()), yet it is model code that drain must wait for.
   */
  track(op: string, caller: Caller, transport?: AbortSignal): Handler {
    this.refs.get();
    const h = new Handler(op, caller, transport);
    this.running.add(h);
    return h;
  }

  /** Called when the handler's own promise settles, stuck or not: only then is its reference dropped. */
  exit(h: Handler): void {
    h.finish();
    this.running.delete(h);
    if (this.running.size === 0) this.onIdle?.();
    this.refs.put();
  }

  close(): void {
    this.closed = true;
  }

  /** Aborts the signal of every handler inside (debugfs_enter_cancellation() callbacks). */
  cancel(reason: Errno): void {
    for (const h of this.running) h.abort(reason);
  }

  /**
   * Waits until no handler runs or `timeoutMs` passed; returns those still
   * running. One cancel pass before it suffices, unlike debugfs's
   * cancel-then-wait loop: the gate is closed so nothing new enters, and an
   * aborted AbortSignal stays aborted, so a handler that starts waiting after
   * the cancel sees it at once.
   */
  async drain(timeoutMs: number): Promise<Handler[]> {
    if (this.running.size > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.onIdle = null;
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        this.onIdle = done;
      });
    }
    return [...this.running];
  }
}
