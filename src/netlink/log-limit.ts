/**
 * Warnings about what other processes send, bounded: anyone who can reach
 * a socket can send a million bad datagrams, and each must not cost a log
 * line. As the kernel's printk_ratelimit (lib/ratelimit.c ___ratelimit(),
 * DEFAULT_RATELIMIT_INTERVAL 5 s, DEFAULT_RATELIMIT_BURST 10): the first
 * `burst` warnings of a kind in an interval are logged, the rest counted,
 * and the count is logged once when the interval ends (or at flush()) as
 * one line: "KIND: N more in the last 5 s, not logged".
 */

export interface LogLimitOptions {
  /** Warnings of one kind logged per interval; default 10. */
  burst?: number;
  /** Default 5000 ms. */
  intervalMs?: number;
}

interface Window {
  startedAt: number;
  logged: number;
  suppressed: number;
  timer: NodeJS.Timeout | null;
}

export class LogLimit {
  private readonly burst: number;
  private readonly intervalMs: number;
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly warn: (obj: object, msg: string) => void,
    o: LogLimitOptions = {},
  ) {
    this.burst = o.burst ?? 10;
    this.intervalMs = o.intervalMs ?? 5000;
  }

  /** Logs `kind` (the message, without what varies: that goes in `obj`) unless its burst is spent. */
  report(kind: string, obj: object): void {
    const now = performance.now();
    let w = this.windows.get(kind);
    if (w && now - w.startedAt >= this.intervalMs) {
      this.summarize(kind, w);
      w = undefined;
    }
    if (!w) this.windows.set(kind, (w = { startedAt: now, logged: 0, suppressed: 0, timer: null }));
    if (w.logged < this.burst) {
      w.logged++;
      this.warn(obj, kind);
      return;
    }
    w.suppressed++;
    // The count is logged when the interval ends even if nothing follows.
    w.timer ??= setTimeout(() => this.summarize(kind, w), Math.max(0, w.startedAt + this.intervalMs - now)).unref();
  }

  /** Logs every count not yet logged (at close: nothing is lost). */
  flush(): void {
    for (const [kind, w] of [...this.windows]) this.summarize(kind, w);
  }

  private summarize(kind: string, w: Window): void {
    if (w.timer) clearTimeout(w.timer);
    if (this.windows.get(kind) === w) this.windows.delete(kind);
    if (w.suppressed > 0) {
      const secs = Math.round((performance.now() - w.startedAt) / 100) / 10;
      this.warn({ suppressed: w.suppressed }, `${kind}: ${w.suppressed} more in the last ${secs} s, not logged`);
    }
  }
}
