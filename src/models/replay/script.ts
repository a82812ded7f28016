/**
 * What a device trace (../record/device-trace.ts) asks a replay to do,
 * laid out for playing: the bytes the device gave readers, each at its
 * time; the bytes programs wrote, as one stream to compare writes with;
 * the ioctl answers; the unplug. Times count from the trace's first open,
 * as the replay's count from the first open of the emulated node: a
 * program starts reading when it has opened, however long after the plug.
 */
import type { DeviceTrace, IoctlEntry } from '../record/device-trace.js';

export interface Chunk {
  /** ms after the first open. */
  at: number;
  /** What one read got; empty is an end of file. */
  data: Buffer;
}

export interface ReplayScript {
  sysfs: Record<string, string>;
  chunks: Chunk[];
  /** Everything programs wrote that the device took, in order. */
  written: Buffer;
  /**
   * How many of the chunks' bytes came before the last write: the part of
   * the dialogue a program must read. What came after is a stream it may
   * stop listening to whenever it is done (a GPS, an RNG).
   */
  readBeforeLastWrite: number;
  ioctls: IoctlEntry[];
  /** How many opens the device took. */
  opens: number;
  unplug: { at: number; errno: string } | null;
}

export function scriptOf(trace: DeviceTrace): ReplayScript {
  const anchor = trace.entries.find((e) => e.op === 'open')?.t ?? 0;
  const at = (t: number): number => Math.max(0, t - anchor);
  const chunks: Chunk[] = [];
  const writes: Buffer[] = [];
  const ioctls: IoctlEntry[] = [];
  let opens = 0;
  let read = 0;
  let readBeforeLastWrite = 0;
  let unplug: ReplayScript['unplug'] = null;
  for (const e of trace.entries) {
    if (e.op === 'read' && e.data !== undefined && e.errno === undefined) {
      chunks.push({ at: at(e.t), data: Buffer.from(e.data, 'hex') });
      read += chunks.at(-1)!.data.length;
    } else if (e.op === 'write' && e.result !== undefined) {
      writes.push(Buffer.from(e.data, 'hex').subarray(0, e.result));
      readBeforeLastWrite = read;
    }    else if (e.op === 'ioctl') ioctls.push(e);
    else if (e.op === 'open' && e.errno === undefined) opens++;
    else if (e.op === 'unplug') unplug = { at: at(e.t), errno: e.errno };
  }
  return { sysfs: trace.header.sysfs, chunks, written: Buffer.concat(writes), readBeforeLastWrite, ioctls, opens, unplug };
}
