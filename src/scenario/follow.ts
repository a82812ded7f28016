/**
 * Follows log files the program under test writes (tcmu-runner's
 * tcmu-runner.log), like `tail -F`: new complete lines are passed on as
 * they appear; a file that does not exist yet is waited for. Polled,
 * because the files live in the run's own directory and are small.
 */
import { open } from 'node:fs/promises';

const POLL_MS = 200;

export class LogFollower {
  private readonly offsets = new Map<string, number>();
  private readonly partial = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly files: readonly string[],
    private readonly onLine: (file: string, line: string) => void,
  ) {}

  start(): void {
    if (this.files.length === 0) return;
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  /** Reads what is left, passes on a last line without its newline, and stops. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.poll();
    for (const [file, rest] of this.partial) if (rest) this.onLine(file, rest);
    this.partial.clear();
  }

  private poll(): Promise<void> {
    this.reading = this.reading.then(async () => {
      for (const f of this.files) await this.readNew(f);
    });
    return this.reading;
  }

  private async readNew(file: string): Promise<void> {
    let fh;
    try {
      fh = await open(file, 'r');
    } catch {
      return; // not written yet
    }
    try {
      let off = this.offsets.get(file) ?? 0;
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, off);
        if (bytesRead === 0) break;
        off += bytesRead;
        const text = (this.partial.get(file) ?? '') + buf.subarray(0, bytesRead).toString('utf8');
        const lines = text.split('\n');
        this.partial.set(file, lines.pop()!);
        for (const l of lines) this.onLine(file, l);
      }
      this.offsets.set(file, off);
    } finally {
      await fh.close();
    }
  }
}
