/**
 * What a device trace (../record/device-trace.ts) asks a replay to do,
 * laid out for playing: the bytes the device gave readers (or the errno
 * a read failed with), each at its time; the bytes programs wrote, as one
 * stream to compare writes with, and the writes that failed, at their
 * place in it; how each open ended; the ioctl answers; the unplug. Times
 * count from the trace's first open,
 * as the replay's count from the first open of the emulated node: a
 * program starts reading when it has opened, however long after the plug.
 */
import type { DeviceTrace } from '../record/device-trace.js';
import type { PlacedIoctl } from './ioctl-answers.js';

export interface Chunk {
  /** ms after the first open. */
  at: number;
  /** What one read got; empty is an end of file. */
  data: Buffer;
  /** The errno the read failed with instead (data empty then). */
  errno?: string;
}

/** A recorded write the device failed, at its place in the written stream. */
export interface FailedWrite {
  /** Offset in `written`: the bytes taken before it. */
  at: number;
  data: Buffer;
  errno: string;
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
  /**
   * The errnos of the recorded reads the device failed before the last
   * write, in order: a part of the dialogue too, though it has no bytes.
   */
  failedReadsBeforeLastWrite: string[];
  /** In order, as `written` goes. */
  failedWrites: FailedWrite[];
  /** Where in `written` a write the device took short stopped, ascending. */
  shortWriteEnds: number[];
  ioctls: PlacedIoctl[];
  /** Each open in order: null when it was taken, else the errno it failed with. */
  opens: (string | null)[];
  unplug: { at: number; errno: string } | null;
}

export function scriptOf(trace: DeviceTrace): ReplayScript {
  const anchor = trace.entries.find((e) => e.op === 'open')?.t ?? 0;
  const at = (t: number): number => Math.max(0, t - anchor);
  const chunks: Chunk[] = [];
  const writes: Buffer[] = [];
  const ioctls: PlacedIoctl[] = [];
  const failedWrites: FailedWrite[] = [];
  const shortWriteEnds: number[] = [];
  const opens: (string | null)[] = [];
  let wrote = 0;
  let read = 0;
  let readBeforeLastWrite = 0;
  const failedReads: string[] = [];
  let failedReadsBeforeLastWrite = 0;
  let unplug: ReplayScript['unplug'] = null;
  for (const e of trace.entries) {
    if (e.op === 'read') {
      chunks.push({ at: at(e.t), data: Buffer.from(e.data ?? '', 'hex'), ...(e.errno !== undefined ? { errno: e.errno } : {}) });
      read += chunks.at(-1)!.data.length;
      if (e.errno !== undefined) failedReads.push(e.errno);
    } else if (e.op === 'write' && e.errno !== undefined) failedWrites.push({ at: wrote, data: Buffer.from(e.data, 'hex'), errno: e.errno });
    else if (e.op === 'write') {
      writes.push(Buffer.from(e.data, 'hex').subarray(0, e.result));
      wrote += writes.at(-1)!.length;
      if (e.result! < e.data.length / 2) shortWriteEnds.push(wrote);
      readBeforeLastWrite = read;
      failedReadsBeforeLastWrite = failedReads.length;
    } else if (e.op === 'ioctl') ioctls.push({ ...e, wrote });
    else if (e.op === 'open') opens.push(e.errno ?? null);
    else if (e.op === 'unplug') unplug = { at: at(e.t), errno: e.errno };
  }
  return { sysfs: trace.header.sysfs, chunks, written: Buffer.concat(writes), readBeforeLastWrite, failedReadsBeforeLastWrite: failedReads.slice(0, failedReadsBeforeLastWrite), failedWrites, shortWriteEnds, ioctls, opens, unplug };
}
