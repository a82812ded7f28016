/**
 * When one unplug stops waiting: for the kernel to drop the node, then for
 * the handlers still running (unplug.ts steps 1 and 4). It starts with the
 * unplug's own steps and lasts its drain timeout, unless a later unplug of
 * the same instance asks for less: the shutdown's window bounds an unplug
 * already in progress too (src/emulator.ts stop()), where a timer fixed at
 * the start would outlast it.
 */
export class UnplugBound {
  private at = Infinity;
  private cap = Infinity;
  private started = false;
  private timer: NodeJS.Timeout | undefined;
  private fire!: () => void;
  /** Resolves when the bound is reached. */
  readonly reached = new Promise<void>((resolve) => (this.fire = resolve));

  constructor(private readonly timeoutMs: number) {}

  start(): void {
    this.started = true;
    this.at = Math.min(performance.now() + this.timeoutMs, this.cap);
    this.arm();
  }

  /** At most `ms` from now, before or after start(); never later than it already is. */
  shorten(ms: number): void {
    const at = performance.now() + ms;
    this.cap = Math.min(this.cap, at);
    if (this.started && at < this.at) {
      this.at = at;
      this.arm();
    }
  }

  /** The unplug is done: nothing waits on the timer any more. */
  stop(): void {
    clearTimeout(this.timer);
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(this.fire, Math.max(0, this.at - performance.now()));
  }
}
