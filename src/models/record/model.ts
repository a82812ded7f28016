/**
 * record: a proxy in front of a real character device node
 * (docs/models.md#record). Every open of the emulated node opens the real
 * one; reads, writes, polls and ioctls are forwarded to it and written to
 * a device trace (device-trace.ts, docs/trace-format.md) with their time,
 * arguments, result and data, which the replay model plays back where
 * there is no such device.
 *
 * - Real files are O_NONBLOCK (real-node.ts): a blocking reader waits on
 *   the device's wait queue, which the readiness watch wakes, so the daemon
 *   keeps serving everyone else meanwhile. EAGAIN answers are not traced:
 *   a replay derives readiness from when the data came.
 * - ioctls: an encoded command goes as FUSE delivers it (_IOC_SIZE bytes
 *   in and out); the tty's unencoded ones through the caller's memory
 *   (pointer-ioctls.ts); anything else is ENOTTY, never forwarded.
 * - ENODEV or EIO from the real device means it went away: the trace gets
 *   an `unplug` there, and the emulated device is unplugged (surprise). So
 *   does POLLHUP on the real node, seen by the program's poll or by the
 *   readiness watch, though no call failed (an `unplug` with EIO).
 * - The device's sysfs attributes are captured at plug (sysfs-capture.ts),
 *   published on the mount, and kept in the trace's header.
 * - A replug is refused (a trace holds one generation).
 * - A trace that cannot be opened or given its header refuses the plug; one
 *   whose writing fails later (a full file system) emits `trace_failed`,
 *   which fails the run (src/scenario/device-failures.ts): it is cut short.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { E, Errno, errnoName, errnoNumber, isErrnoName } from '../../errno.js';
import { IOC_NONE, IOC_READ, IOC_WRITE, iocDir, iocSize, O_ACCMODE, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, type IoctlReply, type IoctlRequest, type PollMask } from '../../devio.js';
import { ioctlAsync } from '../../sys/ffi.js';
import { defineSchema, type DeviceModel, type File, type Instance, type Values } from '../../core/index.js';
import { TRACE_FORMAT, TRACE_VERSION } from './device-trace.js';
import { POINTER_IOCTLS } from './pointer-ioctls.js';
import { ReadinessWatch, RealFile } from './real-node.js';
import { captureSysfs } from './sysfs-capture.js';
import { TraceWriter, type Unstamped } from './trace-writer.js';

export interface RecordState {
  /** The real node. */
  device: string;
  sysfs: Record<string, string>;
  trace: TraceWriter;
  watch: ReadinessWatch;
  /** Set once the real device went away: nothing is traced after its unplug. */
  gone: boolean;
}

type RecordFile = File<RecordState>;

const RECORD_OPTIONS = defineSchema({
  device: { type: 'string', required: true, description: 'the real node to record, e.g. /dev/ttyUSB0; refused unless a character device' },
  trace: { type: 'string', required: true, description: 'the file to write the trace to (truncated at plug)' },
});

const real = (file: RecordFile): RealFile => file.private as RealFile;

function add(inst: Instance<RecordState>, e: Unstamped): void {
  const { trace, gone } = inst.state;
  if (gone || trace.failed || trace.add(e)) return;
  // The trace ends short of the session, and a replay of it would judge a
  // program by a part: the run that recorded it must not pass.
  inst.emit('trace_failed', { trace: trace.path, error: trace.failed!.message, fails: true });
}

/**
 * The real device's errno, traced with the entry `e`; ENODEV and EIO also
 * trace the unplug and unplug the emulated device. Returns the Errno to
 * throw, the one the real device gave.
 */
function failed(file: RecordFile, e: Unstamped, errno: number): Errno {
  const inst = file.instance;
  add(inst, { ...e, errno: errnoName(errno) } as Unstamped);
  if (errno === E.ENODEV || errno === E.EIO) wentAway(inst, errno);
  return new Errno(errno);
}

/** The real device went away: the trace's `unplug`, with `errno`, and a surprise unplug of the emulated device; once. */
function wentAway(inst: Instance<RecordState>, errno: number): void {
  if (inst.state.gone) return;
  add(inst, { op: 'unplug', errno: errnoName(errno) });
  inst.state.gone = true;
  inst.unplugSelf();
}

/**
 * The real node hung up (POLLHUP: a tty whose other side or line went, a
 * device disconnected), seen by a poll with no failed call: as the
 * unplug, with EIO, what a hung-up tty fails a write with
 * (hung_up_tty_write) and no read of it has to fail first.
 */
function hungUp(inst: Instance<RecordState>): void {
  wentAway(inst, E.EIO);
}

const errnoOf = (err: unknown): number => (err instanceof Errno ? err.errno : E.EIO);

function read(file: RecordFile, size: number, signal: AbortSignal): Promise<Buffer> | Buffer {
  const r = real(file).read(size);
  if (typeof r !== 'number') return traced(file, size, r);
  return readLater(file, size, r, signal);
}

async function readLater(file: RecordFile, size: number, first: number, signal: AbortSignal): Promise<Buffer> {
  const rf = real(file);
  for (let r: Buffer | number = first; ; r = rf.read(size)) {
    if (typeof r !== 'number') return traced(file, size, r);
    if (r !== -E.EAGAIN) throw failed(file, { op: 'read', file: file.id, size }, -r);
    if (file.nonblock) throw new Errno('EAGAIN');
    rf.notReady(POLLIN | POLLRDNORM);
    await file.instance.wq.wait(() => rf.ready(POLLIN), signal);
  }
}

function traced(file: RecordFile, size: number, data: Buffer): Buffer {
  add(file.instance, { op: 'read', file: file.id, size, data: data.toString('hex') });
  return data;
}

function write(file: RecordFile, data: Buffer, signal: AbortSignal): Promise<number> | number {
  const n = real(file).write(data);
  if (n >= 0) return written(file, data, n);
  return writeLater(file, data, n, signal);
}

async function writeLater(file: RecordFile, data: Buffer, first: number, signal: AbortSignal): Promise<number> {
  const rf = real(file);
  for (let n = first; ; n = rf.write(data)) {
    if (n >= 0) return written(file, data, n);
    if (n !== -E.EAGAIN) throw failed(file, { op: 'write', file: file.id, data: data.toString('hex') }, -n);
    if (file.nonblock) throw new Errno('EAGAIN');
    rf.notReady(POLLOUT | POLLWRNORM);
    await file.instance.wq.wait(() => rf.ready(POLLOUT), signal);
  }
}

function written(file: RecordFile, data: Buffer, n: number): number {
  add(file.instance, { op: 'write', file: file.id, data: data.toString('hex'), result: n });
  return n;
}

function poll(file: RecordFile): PollMask {
  const mask = real(file).poll();
  add(file.instance, { op: 'poll', file: file.id, result: mask });
  if (mask & POLLHUP) hungUp(file.instance);
  return mask;
}

/** An encoded command: FUSE brought _IOC_SIZE bytes in, and takes as many back. */
async function encodedIoctl(file: RecordFile, req: IoctlRequest): Promise<IoctlReply> {
  const dir = iocDir(req.cmd);
  const buf = Buffer.alloc(iocSize(req.cmd));
  req.in.copy(buf);
  const e = { op: 'ioctl', file: file.id, cmd: req.cmd, ...(dir & IOC_WRITE ? { in: req.in.toString('hex') } : {}) } as const;
  let result: number;
  try {
    result = await ioctlAsync(real(file).fd, req.cmd, buf);
  } catch (err) {
    throw failed(file, e, errnoOf(err));
  }
  const out = dir & IOC_READ ? buf : undefined;
  add(file.instance, { ...e, result, ...(out ? { out: out.toString('hex') } : {}) });
  return { result, ...(out ? { out } : {}) };
}

/** A tty command with its structure at arg in the caller's memory (pointer-ioctls.ts). */
async function pointerIoctl(file: RecordFile, req: IoctlRequest): Promise<IoctlReply> {
  const how = POINTER_IOCTLS.get(req.cmd)!;
  const fd = real(file).fd;
  // The caller's memory failing (EFAULT) is the caller's answer, not the device's: not traced.
  const input = how.kind === 'in' ? await req.user.read(req.arg, how.size) : undefined;
  const out = how.kind === 'out' ? Buffer.alloc(how.size) : undefined;
  const e = {
    op: 'ioctl',
    file: file.id,
    cmd: req.cmd,
    ...(input ? { in: input.toString('hex') } : {}),
    ...(how.kind === 'value' ? { arg: req.arg.toString() } : {}),
  } as const;
  let result: number;
  try {
    result = await ioctlAsync(fd, req.cmd, input ?? out ?? (how.kind === 'value' ? req.arg : 0n));
  } catch (err) {
    throw failed(file, e, errnoOf(err));
  }
  add(file.instance, { ...e, result, ...(out ? { out: out.toString('hex') } : {}) });
  if (out) await req.user.write(req.arg, out);
  return { result };
}

function ioctl(file: RecordFile, req: IoctlRequest): Promise<IoctlReply> | IoctlReply {
  if (iocDir(req.cmd) !== IOC_NONE && iocSize(req.cmd) > 0) return encodedIoctl(file, req);
  if (POINTER_IOCTLS.has(req.cmd)) return pointerIoctl(file, req);
  add(file.instance, { op: 'ioctl', file: file.id, cmd: req.cmd, errno: 'ENOTTY' });
  throw new Errno('ENOTTY');
}

export const recordModel: DeviceModel<RecordState> = {
  name: 'record',
  description: 'a proxy in front of a real character device that traces every open, read, write, poll and ioctl (cdevemu record)',
  options: RECORD_OPTIONS,
  stream: true,
  events: { trace_failed: { trace: 'string', error: 'string', fails: 'boolean' } },
  async create(inst, options) {
    const o = options as Values<typeof RECORD_OPTIONS>;
    // A trace holds one generation, truncated at plug: a replug (same
    // options) would cut the first generation's session out of it, and a
    // replay of what is left would pass a program that did only the rest.
    if (inst.generation > 1) throw new Errno('EINVAL', `record: ${inst.name} was plugged before (generation ${inst.generation}): a trace holds one generation, and this one would truncate ${resolve(o.trace)}; plug it under another name`);
    const device = resolve(o.device);
    let st;
    try {
      st = statSync(device);
    } catch (err) {
      throw new Errno('EINVAL', `record: device ${device}: ${(err as Error).message}`);
    }
    if (!st.isCharacterDevice()) throw new Errno('EINVAL', `record: device ${device} is not a character device node`);
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((Math.floor(st.rdev / 4096) & 0xfff00) >>> 0);
    const sysfs = await captureSysfs(major, minor);
    const trace = new TraceWriter(resolve(o.trace), {
      format: TRACE_FORMAT,
      version: TRACE_VERSION,
      device,
      rdev: `${major}:${minor}`,
      name: inst.name,
      started: new Date().toISOString(),
      sysfs,
    });
    return { device, sysfs, trace, watch: new ReadinessWatch(inst.wq, () => hungUp(inst)), gone: false };
  },
  attributes(inst) {
    return { ...inst.state.sysfs };
  },
  open(file) {
    const s = file.instance.state;
    const flags = file.openFlags;
    try {
      file.private = RealFile.open(s.device, flags & O_ACCMODE);
    } catch (err) {
      throw failed(file, { op: 'open', file: file.id, flags }, systemErrno(err));
    }
    add(file.instance, { op: 'open', file: file.id, flags });
    s.watch.add(real(file));
  },
  release(file) {
    closeReal(file);
    add(file.instance, { op: 'release', file: file.id });
  },
  lateRelease: closeReal,
  read,
  write,
  poll,
  ioctl,
  remove(inst) {
    inst.state.watch.stop();
    inst.state.trace.close();
  },
};

/** openSync's Node system error as its errno. */
function systemErrno(err: unknown): number {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && isErrnoName(code) ? errnoNumber(code) : E.EIO;
}

function closeReal(file: RecordFile): void {
  const rf = file.private as RealFile | undefined;
  if (!rf) return;
  file.instance.state.watch.delete(rf);
  rf.close();
  file.private = undefined;
}
