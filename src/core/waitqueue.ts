/**
 * The kernel's wait-queue idiom for models: `await wq.wait(cond, signal)` is
 * wait_event_interruptible(wq, cond) and `wq.wake()` is wake_up_interruptible(wq),
 * which also wakes pollers (poll_wait() puts a poll table entry on the same queue).
 */
import { Errno } from '../errno.js';

/**
 * The errno a cancelled wait or handler fails with: the signal's reason when
 * it is an Errno (unplug aborts with its cancellation, the transport may pass
 * EINTR), otherwise EINTR, what an interrupted wait_event_interruptible()
 * turns into for the caller.
 */
export function abortErrno(signal: AbortSignal): Errno {
  return signal.reason instanceof Errno ? signal.reason : new Errno('EINTR');
}

const ONCE = { once: true } as const;

/**
 * One sleeper: its condition, how to settle its wait, and, as its own
 * abort listener (handleEvent), its signal. An object rather than a
 * closure per role: a blocked reader keeps it until it is woken, and a
 * thousand of them are failed at once by kill().
 */
class Waiter {
  constructor(
    private readonly queue: Set<Waiter>,
    readonly cond: () => boolean,
    private readonly signal: AbortSignal | undefined,
    private readonly done: () => void,
    private readonly failed: (err: unknown) => void,
  ) {}

  resolve(): void {
    this.leave();
    this.done();
  }

  reject(err: unknown): void {
    this.leave();
    this.failed(err);
  }

  /** Fails the wait and leaves the listener on its signal (WaitQueue.kill). */
  fail(err: unknown): void {
    this.failed(err);
  }

  /** The signal aborted (EventTarget calls an object listener's handleEvent). */
  handleEvent(): void {
    this.reject(abortErrno(this.signal!));
  }

  private leave(): void {
    this.queue.delete(this);
    this.signal?.removeEventListener('abort', this);
  }
}

export class WaitQueue {
  private readonly waiters = new Set<Waiter>();
  private readonly pollers = new Set<() => void>();
  private dead: Errno | null = null;

  /**
   * Resolves once `cond()` is true, re-checked on every wake. As with
   * wait_event(), the condition may be false again by the time the waiter
   * runs (another waiter consumed it): consumers loop. Rejects with
   * abortErrno(signal) when the signal aborts, and with unplug's cancellation once
   * the device is gone (evdev_read() checking !evdev->exist after waking).
   */
  wait(cond: () => boolean, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.dead) return reject(this.dead);
      if (cond()) return resolve();
      if (signal?.aborted) return reject(abortErrno(signal));
      const waiter = new Waiter(this.waiters, cond, signal, resolve, reject);
      this.waiters.add(waiter);
      signal?.addEventListener('abort', waiter, ONCE);
    });
  }

  /**
   * Re-checks every waiter, then notifies (once) every poller registered
   * since the last wake. Most wakes find nobody (a write to a pipe nobody
   * waits on): then nothing is copied or cleared, which in V8 would
   * allocate a fresh table, once per request.
   */
  wake(): void {
    if (this.waiters.size > 0) this.wakeWaiters();
    this.wakePollers();
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) {
      let ready: boolean;
      try {
        ready = w.cond();
      } catch (err) {
        w.reject(err);
        continue;
      }
      if (ready) w.resolve();
    }
  }

  /**
   * poll_wait(): `notify` is called once, at the next wake, then forgotten
   * (the kernel re-polls and registers again). Returns a function that
   * unregisters it. A dead queue never changes again, so nothing is kept.
   */
  pollWait(notify: () => void): () => void {
    if (this.dead) return () => {};
    this.pollers.add(notify);
    return () => this.pollers.delete(notify);
  }

  /**
   * The device is gone: current and future waits fail with `reason`, and
   * pollers are told to look again (they then see the unplug poll mask).
   * Like uio_unregister_device() clearing idev->info and waking idev->wait.
   *
   * The waiters' abort listeners stay on their signals: taking a thousand
   * of them off (removeEventListener, ~3 µs each on Node 20) held the first
   * failed wait's reply back by ~3 ms, and unplug aborts those signals one
   * turn later (core/unplug.ts cancelWaiters), when each listener goes with
   * its event and finds its wait settled. A signal that never aborts keeps
   * its listener, and the settled waiter, until it is collected.
   */
  kill(reason: Errno): void {
    this.dead = reason;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w.fail(reason);
    this.wakePollers();
  }

  private wakePollers(): void {
    if (this.pollers.size === 0) return;
    const pollers = [...this.pollers];
    this.pollers.clear();
    for (const notify of pollers) notify();
  }
}
