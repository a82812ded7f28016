/**
 * One direction of a serial line: bytes queued at one end arrive at the
 * other at the line's character rate (baud / bits per character), as a
 * UART shifts them out. A timer runs only while bytes are in flight, and
 * hands over every byte whose last bit has gone by since the last tick, so
 * a late timer delivers a batch rather than losing time.
 */

/** Ticks no finer than this: at 115200 baud that is ~115 bytes a tick, at 4800 ~5. */
const TICK_MS = 10;

export class Wire {
  private queue: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** performance.now() at which the byte at the head of the queue began. */
  private startedAt = 0;
  private held = false;

  /**
   * `rate` is asked on every tick (characters per second; 0 stops the line,
   * as B0 does), `deliver` gets the bytes that arrived.
   */
  constructor(
    private readonly rate: () => number,
    private readonly deliver: (bytes: number[]) => void,
  ) {}

  /** Bytes still in flight (TIOCOUTQ for the transmit side). */
  get pending(): number {
    return this.queue.length;
  }

  push(bytes: Iterable<number>): void {
    const wasEmpty = this.queue.length === 0;
    for (const b of bytes) this.queue.push(b);
    if (wasEmpty && this.queue.length) {
      this.startedAt = performance.now();
      this.schedule();
    }
  }

  /** Flow control (XOFF, CTS low, TCOOFF): nothing moves while held; the byte in the shifter starts over. */
  hold(on: boolean): void {
    if (this.held === on) return;
    this.held = on;
    if (on) this.cancel();
    else if (this.queue.length) {
      this.startedAt = performance.now();
      this.schedule();
    }
  }

  get isHeld(): boolean {
    return this.held;
  }

  /** Drops what is in flight (TCOFLUSH on the transmit side). */
  flush(): void {
    this.queue = [];
    this.cancel();
  }

  /** Stops for good (the device is removed). */
  stop(): void {
    this.flush();
    this.held = true;
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer || this.held) return;
    const cps = this.rate();
    if (cps <= 0) return; // B0: the line is down until the speed changes (kick())
    this.timer = setTimeout(() => this.tick(), Math.max(TICK_MS, 1000 / cps));
  }

  /** The speed changed: a line stopped at B0 starts moving again. */
  kick(): void {
    if (this.queue.length && !this.timer) {
      this.startedAt = performance.now();
      this.schedule();
    }
  }

  private tick(): void {
    this.timer = null;
    const cps = this.rate();
    if (cps <= 0 || this.held) return;
    const now = performance.now();
    const n = Math.min(this.queue.length, Math.floor(((now - this.startedAt) * cps) / 1000));
    if (n > 0) {
      this.startedAt += (n * 1000) / cps;
      this.deliver(this.queue.splice(0, n));
    }
    if (this.queue.length) this.schedule();
  }
}
