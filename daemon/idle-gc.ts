/**
 * Gives the memory of a burst back once the daemon is idle again.
 *
 * A burst (a thousand readers blocked at once, a run of large writes)
 * grows V8's old generation, and what it leaves behind is garbage that
 * only a full collection frees. V8 starts one when the next allocations
 * need room, and its memory reducer, which would start one on an idle
 * heap, runs from idle tasks that Node's platform never schedules. So an
 * idle daemon keeps the burst's pages resident indefinitely: measured
 * here, 1000 blocked readers left RSS 18 MiB higher until the next
 * workload, and a synthetic 30 MiB of dropped objects stayed resident
 * after 5 s idle and went with one gc().
 *
 * Every IDLE_CHECK_MS this looks at the event loop and the heap: when the
 * loop was idle through the interval (eventLoopUtilization below IDLE_ELU)
 * and the heap in use has grown by GROWTH_BYTES since the last collection,
 * it runs a full collection, twice (see below). The cost, some
 * milliseconds, falls only on a daemon with nothing to do. It needs `gc`:
 * `--expose-gc` on the executable's #! line provides it, and runtimeGc()
 * turns it on when the daemon was started without that flag
 * (`node dist/daemon/cli.js`).
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';

/** How often the idle check runs; a collection follows a whole idle interval, so at most 2 x this after a burst. */
export const IDLE_CHECK_MS = 2000;
const IDLE_ELU = 0.02;
const GROWTH_BYTES = 4 * 1024 * 1024;

/**
 * The full collection: the global `gc` of --expose-gc, else the one a
 * context made after turning that flag on exposes (V8 installs `gc` on
 * each new context while the flag is set, and it collects the whole
 * isolate's heap). Null if neither is there.
 */
export function runtimeGc(): (() => void) | null {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return exposed as () => void;
  try {
    setFlagsFromString('--expose-gc');
    const made = runInNewContext('gc') as unknown;
    return typeof made === 'function' ? (made as () => void) : null;
  } catch {
    return null;
  }
}

/** Starts the checks; returns the function that stops them, or null when the runtime exposes no gc. */
export function collectWhenIdle(log: Logger): (() => void) | null {
  const gc = runtimeGc();
  if (!gc) return null;
  // Zero: the first idle interval collects what start-up left (module
  // loading and compilation garbage).
  let settled = 0;
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (busy >= IDLE_ELU) return;
    const used = getHeapStatistics().used_heap_size;
    if (used < settled + GROWTH_BYTES) {
      // Garbage freed by V8's own collections lowers the mark too.
      settled = Math.min(settled, used);
      return;
    }
    // Twice: V8 picks the pages to compact from what the last sweep found
    // live on them, so the first collection frees the burst's garbage and
    // the second moves the survivors off the pages it left sparse, which
    // go back to the system. After 1,000 blocked readers: RSS 66-67 MiB
    // idle, 71 with one collection.
    gc();
    gc();
    settled = getHeapStatistics().used_heap_size;
    log.debug({ heapUsedBefore: used, heapUsedAfter: settled }, 'idle: full garbage collection');
  }, IDLE_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
