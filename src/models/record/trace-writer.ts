/**
 * Writes a device trace (device-trace.ts) as the recording goes: the
 * header at once, each entry as it happens, so a daemon that dies keeps
 * what it recorded until then. Times are ms since the header, to the µs.
 */
import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Errno } from '../../errno.js';
import { traceLine, type TraceEntry, type TraceHeader } from './device-trace.js';

/** An entry before its time is stamped. */
export type Unstamped = TraceEntry extends infer E ? (E extends TraceEntry ? Omit<E, 't'> : never) : never;

export class TraceWriter {
  private readonly out: WriteStream;
  private readonly start = performance.now();
  private failed: Error | null = null;

  /** Opens (truncates) `path` now, so a path that cannot be written is refused at plug. */
  constructor(
    readonly path: string,
    header: TraceHeader,
  ) {
    let fd: number;
    try {
      fd = openSync(path, 'w', 0o644);
    } catch (err) {
      throw new Errno('EINVAL', `record: cannot write the trace ${path}: ${(err as Error).message}`);
    }
    this.out = createWriteStream('', { fd });
    this.out.on('error', (err) => (this.failed = err));
    this.out.write(traceLine(header));
  }

  add(e: Unstamped): void {
    const t = Math.round((performance.now() - this.start) * 1000) / 1000;
    this.out.write(traceLine({ t, ...e } as TraceEntry));
  }

  /** Flushes and closes; rejects with the first write error. */
  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.out.end(() => (this.failed ? reject(this.failed) : resolve()));
    });
  }
}
