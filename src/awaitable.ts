import { setTimeout as delay } from 'node:timers/promises';

/**
 * Values that are either ready or promised. The request path passes them
 * through untouched when they are ready: a promise per layer would add a
 * microtask hop, and a request's worth of latency, to every synchronous
 * answer.
 */
export type Awaitable<T> = T | Promise<T>;

/**
 * Applies `f` to a value, or to a promise's result once it settles; an
 * `f` that answers with a promise gives that promise, as `then` would.
 * (Not named `then`: a module exporting `then` is a thenable, and awaiting
 * its namespace would call it.)
 */
export function after<T, U>(v: Awaitable<T>, f: (x: T) => Awaitable<U>): Awaitable<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/**
 * Resolves after `ms`, or rejects with `signal`'s own reason (EINTR,
 * unplug's cancellation) as soon as it aborts: a delayed call fails as the
 * interrupted call would, not with an AbortError.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => {
    throw signal.reason;
  });
}

/**
 * Races `p` against a timer of `ms` that is always cleared, so no timer
 * outlives the wait: `onTimeout` gives the result (or throws) when the
 * timer wins. The one way to bound a wait.
 */
export async function within<T>(p: Promise<T>, ms: number, onTimeout: () => T | Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((resolve, reject) => (timer = setTimeout(() => Promise.resolve().then(onTimeout).then(resolve, reject), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
