/**
 * Writes a device trace (device-trace.ts) as the recording goes: the
 * header at once, each entry as it happens, written before the call it
 * traces is answered, so a daemon that dies keeps what it recorded until
 * then, and a write that fails (a full file system) is known at the entry
 * it cut short. Times are ms since the header, to the µs.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Errno } from '../../errno.js';
import { traceLine, type TraceEntry, type TraceHeader } from './device-trace.js';

/** An entry before its time is stamped. */
export type Unstamped = TraceEntry extends infer E ? (E extends TraceEntry ? Omit<E, 't'> : never) : never;

export class TraceWriter {
  private readonly fd: number;
  private readonly start = performance.now();
  /** The error of the write that failed; the trace ends before the entry it was writing, and nothing is written after it. */
  failed: Error | null = null;

  /** Opens (truncates) `path` and writes the header now, so a path that cannot be written is refused at plug. */
  constructor(
    readonly path: string,
    header: TraceHeader,
  ) {
    try {
      this.fd = openSync(path, 'w', 0o644);
    } catch (err) {
      throw new Errno('EINVAL', `record: cannot write the trace ${path}: ${(err as Error).message}`);
    }
    this.write(traceLine(header));
    if (this.failed) {
      closeSync(this.fd);
      throw new Errno('EINVAL', `record: cannot write the trace ${path}: ${this.failed.message}`);
    }
  }

  /** Appends `e`, stamped now; false if the trace could not be written (failed says why), now or before. */
  add(e: Unstamped): boolean {
    const t = Math.round((performance.now() - this.start) * 1000) / 1000;
    return this.write(traceLine({ t, ...e } as TraceEntry));
  }

  close(): void {
    closeSync(this.fd);
  }

  private write(line: string): boolean {
    if (this.failed) return false;
    const bytes = Buffer.from(line);
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(this.fd, bytes, at);
    } catch (err) {
      this.failed = err as Error;
    }
    return !this.failed;
  }
}
