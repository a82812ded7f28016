/**
 * echo: a bounded byte pipe shared by every opener, like a FIFO (fs/pipe.c):
 * read blocks while it is empty, write blocks while it is full (a write that
 * finds some room takes what fits and returns short), O_NONBLOCK gives
 * EAGAIN instead of blocking, and poll reports POLLIN/POLLOUT as data and
 * room come and go.
 */
import { POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM } from '../devio.js';
import { defineSchema, type DeviceModel, type File, type Values } from '../core/index.js';
import { waitUnlessNonblock } from './util.js';

export interface EchoState {
  chunks: Buffer[];
  bytes: number;
  capacity: number;
  /** Somebody has polled the pipe (pipe->poll_usage): every write then wakes. */
  polled: boolean;
}

const OPTIONS = defineSchema({
  // A pipe's default size (16 pages); at most what one buffer holds comfortably.
  capacity: { type: 'integer', min: 1, max: 1 << 30, default: 65536, description: 'bytes the pipe holds before writes block' },
});

function take(s: EchoState, size: number): Buffer {
  const out: Buffer[] = [];
  let want = size;
  while (want > 0 && s.chunks.length) {
    const head = s.chunks[0]!;
    if (head.length <= want) {
      out.push(head);
      s.chunks.shift();
      want -= head.length;
    } else {
      out.push(head.subarray(0, want));
      s.chunks[0] = head.subarray(want);
      want = 0;
    }
  }
  const got = size - want;
  s.bytes -= got;
  return out.length === 1 ? out[0]! : Buffer.concat(out, got);
}

/**
 * Takes up to `size` bytes. Like pipe_read(), it wakes only if the pipe was
 * full: readers and writers share one wait queue here, and a read can make
 * true only what waits for room (blocked writers, pollers that got no
 * POLLOUT).
 */
function takeAndWake(file: File<EchoState>, size: number): Buffer {
  const s = file.instance.state;
  const wasFull = s.bytes >= s.capacity;
  const out = take(s, size);
  if (wasFull) file.instance.wq.wake();
  return out;
}

/**
 * Takes what fits, copied: the request buffer is reused once the write
 * returns (pipe_write copies too). Like pipe_write(), it wakes if the pipe
 * was empty, what blocked readers and POLLIN pollers wait for, or if the
 * pipe was ever polled: an edge-triggered epoll expects an event for every
 * write.
 */
function put(file: File<EchoState>, data: Buffer): number {
  const s = file.instance.state;
  const wasEmpty = s.bytes === 0;
  const n = Math.min(data.length, s.capacity - s.bytes);
  s.chunks.push(Buffer.from(data.subarray(0, n)));
  s.bytes += n;
  if (wasEmpty || s.polled) file.instance.wq.wake();
  return n;
}

async function writeBlocking(file: File<EchoState>, data: Buffer, signal: AbortSignal): Promise<number> {
  const s = file.instance.state;
  while (s.bytes >= s.capacity) await waitUnlessNonblock(file, () => s.bytes < s.capacity, signal);
  return put(file, data);
}

async function readBlocking(file: File<EchoState>, size: number, signal: AbortSignal): Promise<Buffer> {
  const s = file.instance.state;
  // Loop like pipe_read(): another reader may have taken the data first.
  while (s.bytes === 0) await waitUnlessNonblock(file, () => s.bytes > 0, signal);
  return takeAndWake(file, size);
}

export const echoModel: DeviceModel<EchoState> = {
  name: 'echo',
  events: {},
  stream: true,
  description: 'a bounded byte pipe shared by every opener, like a FIFO',
  options: OPTIONS,
  create(_inst, options) {
    const { capacity } = options as Values<typeof OPTIONS>;
    return { chunks: [], bytes: 0, capacity, polled: false };
  },
  read(file, size, signal) {
    const s = file.instance.state;
    // Data waiting is answered at once; only an empty pipe needs the wait.
    return s.bytes > 0 ? takeAndWake(file, size) : readBlocking(file, size, signal);
  },
  write(file, data, signal) {
    const s = file.instance.state;
    if (data.length === 0) return 0;
    return s.bytes < s.capacity ? put(file, data) : writeBlocking(file, data, signal);
  },
  poll(file) {
    const s = file.instance.state;
    s.polled = true;
    return (s.bytes > 0 ? POLLIN | POLLRDNORM : 0) | (s.bytes < s.capacity ? POLLOUT | POLLWRNORM : 0);
  },
};
