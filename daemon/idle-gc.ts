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
 * Every CHECK_MS this looks at the event loop and the heap: when the loop
 * was idle through the interval (eventLoopUtilization below IDLE_ELU) and
 * the heap in use has grown by GROWTH_BYTES since the last collection,
 * it runs one full collection. The cost, some milliseconds, falls only on
 * a daemon with nothing to do. It needs `gc`, which `--expose-gc` on the
 * executable's #! line provides; without it nothing runs.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

const CHECK_MS = 2000;
const IDLE_ELU = 0.02;
const GROWTH_BYTES = 4 * 1024 * 1024;

/** Starts the checks; returns the function that stops them, or null when the runtime exposes no gc. */
export function collectWhenIdle(): (() => void) | null {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return null;
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
    gc();
    settled = getHeapStatistics().used_heap_size;
  }, CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
