/**
 * The file operations fs/ calls on a device node. Like debugfs's
 * full_proxy_* wrappers, every op re-enters the instance's gate, so an op on
 * a file that outlived its device fails with the unplug errno and never
 * reaches the model; release is never gated.
 */
import { after, type Awaitable } from '../awaitable.js';
import { Errno } from '../errno.js';
import {
  DEFAULT_POLLMASK,
  POLLERR,
  type DeviceFile,
  type DevicePages,
  type IoContext,
  type IoctlReply,
  type IoctlRequest,
  type OpenContext,
  type PollMask,
} from '../devio.js';
import { CoreEvent } from './events.js';
import { OpenFile } from './file.js';
import type { CallKind, DeviceInstance } from './instance.js';

/**
 * The file operations as DeviceInstance.call sees them, one row each: the
 * fault rules' name, what a model without the method answers, the reply
 * check, and what OPEN and RELEASE do besides.
 */
const OPEN: CallKind<undefined, unknown> = {
  fault: 'open',
  answered: true,
  absent: undefined,
  // OPEN is answered ENODEV when unplug gives up on it, like an open that
  // found the device gone.
  abandonedErrno: new Errno('ENODEV'),
  settled: (inst, file, ok, h) => {
    // do_dentry_open(): a failed ->open is never released. An OPEN that
    // unplug gave up on was answered ENODEV: nobody will release its file,
    // so close it here (it gets lateRelease).
    if (!ok) inst.refs.put();
    else if (h.stuck) void release(inst, file!);
  },
};
const RELEASE: CallKind<undefined, unknown> = { fault: 'release', answered: false, absent: undefined };
const READ: CallKind<number, Buffer> = {
  fault: 'read',
  answered: true,
  // vfs_read(): a file without ->read is EINVAL.
  missing: 'EINVAL',
  // A longer reply would make the kernel fail the request with EIO (fuse_copy_out_args).
  check: (buf, size) => {
    if (!Buffer.isBuffer(buf) || buf.length > size) {
      throw new Error(`read returned ${Buffer.isBuffer(buf) ? `${buf.length} bytes` : typeof buf} for a ${size}-byte read`);
    }
    return buf;
  },
};
const WRITE: CallKind<Buffer, number> = {
  fault: 'write',
  answered: true,
  missing: 'EINVAL',
  check: (n, data) => {
    if (!Number.isInteger(n) || n < 0 || n > data.length) throw new Error(`write returned ${String(n)} for a ${data.length}-byte write`);
    return n;
  },
};
const IOCTL: CallKind<IoctlRequest, IoctlReply> = {
  fault: 'ioctl',
  cmdOf: (req) => req.cmd,
  answered: true,
  // vfs_ioctl(): no ->unlocked_ioctl is ENOTTY, which programs probe with.
  missing: 'ENOTTY',
  // More than _IOC_SIZE would overrun the caller's buffer.
  check: (reply, req) => {
    if ((reply.out?.length ?? 0) > req.outSize) throw new Error(`ioctl 0x${req.cmd.toString(16)} returned ${reply.out!.length} bytes, caller accepts ${req.outSize}`);
    return reply;
  },
};
const POLL: CallKind<undefined, PollMask> = { fault: 'poll', answered: true, absent: DEFAULT_POLLMASK };
/** vfs_fsync_range(): a file without ->fsync is EINVAL. Models have no fsync. */
const FSYNC: CallKind<undefined, void> = { fault: null, answered: true, missing: 'EINVAL' };

/**
 * OPEN. Answered synchronously when the model's open is (zero, null and
 * most models have none): only a model whose open returns a promise pays
 * for the race against unplug's abandonment.
 */
export function openFile<S>(inst: DeviceInstance<S>, ctx: OpenContext): Awaitable<DeviceFile> {
  // The node can outlive unpublish in the kernel's dentry cache, and an
  // OPEN may already be past LOOKUP: refuse like evdev_open_device() once
  // !evdev->exist.
  if (inst.lifecycle !== 'live') {
    inst.count.errors++;
    throw new Errno('ENODEV');
  }
  const file = new OpenFile(inst.nextFileId(), inst, ctx);
  if (inst.shared) inst.noteOpener(ctx.pid);
  // The file's reference is taken before the model's open runs
  // (cxl_memdev_open() holds the device across ->open), so an unplug racing
  // the open cannot free the instance under it; OPEN.settled drops it if
  // the open fails.
  inst.refs.get();
  const r = inst.call(OPEN, 'open', file, ctx, undefined, inst.driver.open);
  // Also reached when unplug began during the model's open: that file is a
  // normal open file of a device being removed.
  return r instanceof Promise ? r.then(() => opened(inst, file)) : opened(inst, file);
}

/** The file the model opened, counted and handed to fs/. */
function opened<S>(inst: DeviceInstance<S>, file: OpenFile<S>): DeviceFile {
  inst.files.add(file);
  inst.count.opens++;
  inst.record(CoreEvent.opened, { file: file.id, pid: file.pid, comm: file.comm, flags: file.openFlags });
  return new CoreFile(inst, file);
}

/**
 * The DeviceFile fs/ calls for one open file. Its methods live on the
 * prototype: an open file costs this one object, not a closure (and a
 * closure context) per operation.
 */
class CoreFile<S> implements DeviceFile {
  readonly backingFd: number | undefined;
  readonly pages: DevicePages | undefined;

  constructor(
    private readonly inst: DeviceInstance<S>,
    private readonly file: OpenFile<S>,
  ) {
    this.backingFd = inst.shared?.backingFd;
    this.pages = inst.shared ?? undefined;
  }

  // The synchronisation points of regions mapped through programs' page
  // caches (DeviceRegions.beforeKick, beforeAnswer): read answers the
  // interrupt, write kicks, ioctl may do either.

  read(size: number, io: IoContext): Awaitable<Buffer> {
    return thenAnswer(this.inst, read(this.inst, this.file, size, io));
  }

  write(data: Buffer, io: IoContext): Awaitable<number> {
    return afterKick(this.inst, () => write(this.inst, this.file, data, io));
  }

  ioctl(req: IoctlRequest, io: IoContext): Awaitable<IoctlReply> {
    return thenAnswer(this.inst, afterKick(this.inst, () => ioctl(this.inst, this.file, req, io)));
  }

  poll(_events: PollMask, wake: (() => void) | null, io: IoContext): Awaitable<PollMask> {
    return poll(this.inst, this.file, wake, io);
  }

  fsync(io: IoContext): Awaitable<void> {
    return fsync(this.inst, this.file, io);
  }

  release(): Awaitable<void> {
    return release(this.inst, this.file);
  }
}

/** Runs `op` once what programs stored in the regions is pulled in (at once when there is nothing to pull). */
function afterKick<S, T>(inst: DeviceInstance<S>, op: () => Awaitable<T>): Awaitable<T> {
  const pulled = inst.shared?.beforeKick(inst.driver.regionSync ?? 'auto');
  return pulled ? pulled.then(op) : op();
}

/** `answer`, once what the model changed in the regions is pushed to programs' page caches. */
function thenAnswer<S, T>(inst: DeviceInstance<S>, answer: Awaitable<T>): Awaitable<T> {
  const shared = inst.shared;
  if (!shared) return answer;
  return after(answer, (v) => {
    shared.beforeAnswer(inst.driver.regionSync ?? 'auto');
    return v;
  });
}

/** The answer of a read at end of file. */
const EOF = Buffer.alloc(0);

function read<S>(inst: DeviceInstance<S>, file: OpenFile<S>, size: number, io: IoContext): Awaitable<Buffer> {
  inst.count.reads++;
  if (!inst.gate.isOpen && inst.driver.unplugRead === 'eof') return EOF;
  const data = inst.call(READ, 'read', file, io, size, inst.driver.read);
  return data instanceof Promise ? data.then((buf) => countRead(inst, buf)) : countRead(inst, data);
}

function countRead<S>(inst: DeviceInstance<S>, buf: Buffer): Buffer {
  inst.count.bytesRead += buf.length;
  return buf;
}

function write<S>(inst: DeviceInstance<S>, file: OpenFile<S>, data: Buffer, io: IoContext): Awaitable<number> {
  inst.count.writes++;
  const n = inst.call(WRITE, 'write', file, io, data, inst.driver.write);
  return n instanceof Promise ? n.then((m) => countWritten(inst, m)) : countWritten(inst, n);
}

function countWritten<S>(inst: DeviceInstance<S>, n: number): number {
  inst.count.bytesWritten += n;
  return n;
}

function ioctl<S>(inst: DeviceInstance<S>, file: OpenFile<S>, req: IoctlRequest, io: IoContext): Awaitable<IoctlReply> {
  inst.count.ioctls++;
  return inst.call(IOCTL, 'ioctl', file, io, req, inst.driver.ioctl);
}

function poll<S>(inst: DeviceInstance<S>, file: OpenFile<S>, wake: (() => void) | null, io: IoContext): Awaitable<PollMask> {
  inst.count.polls++;
  // debugfs full_proxy_poll() answers EPOLLHUP once the file is removed; no
  // registration is kept, the mask will not change again.
  if (!inst.gate.isOpen) return inst.unpollMask;
  // poll_wait() before computing the mask, so a wake in between is not lost.
  if (wake) file.pollWait(inst.wq, wake);
  // Poll has no errno to give: fuse_file_poll() turns a failed POLL into EPOLLERR.
  try {
    const mask = inst.call(POLL, 'poll', file, io, undefined, inst.driver.poll);
    return mask instanceof Promise ? mask.catch(() => POLLERR) : mask;
  } catch {
    return POLLERR;
  }
}

function fsync<S>(inst: DeviceInstance<S>, file: OpenFile<S>, io: IoContext): Awaitable<void> {
  // A live device answers EINVAL (FSYNC.missing); the gate answers the unplug errno.
  return inst.call(FSYNC, 'fsync', file, io, undefined, undefined);
}

/** RELEASE; synchronous, like OPEN, when the model's release is. */
function release<S>(inst: DeviceInstance<S>, file: OpenFile<S>): Awaitable<void> {
  if (file.closed) return;
  file.closed = true;
  file.cancelPoll();
  inst.files.delete(file);
  inst.fileClosed();
  if (inst.lifecycle !== 'live') return lateRelease(inst, file);
  inst.count.releases++;
  let r: unknown;
  try {
    r = inst.call(RELEASE, 'release', file, null, undefined, inst.driver.release);
  } catch {
    // __fput() ignores ->release's result; call() has logged a model bug.
  }
  if (!(r instanceof Promise)) return released(inst, file, false);
  const done = (): void => released(inst, file, false);
  return r.then(done, done);
}

async function lateRelease<S>(inst: DeviceInstance<S>, file: OpenFile<S>): Promise<void> {
  inst.count.lateReleases++;
  // uio's late_release: a file closed after unregister is still cleaned
  // up (tcmu leaked its memory when release was skipped). It runs after
  // remove() so the model only ever sees it on a removed device.
  try {
    await inst.removal;
    await inst.runModel('lateRelease', () => inst.driver.lateRelease?.(file));
  } catch {
    // runModel() has logged a model bug; the file is released regardless.
  } finally {
    released(inst, file, true);
  }
}

/** The file's last act: its event, and its instance reference dropped (uio_release()'s put_device()). */
function released<S>(inst: DeviceInstance<S>, file: OpenFile<S>, late: boolean): void {
  inst.record(late ? CoreEvent.late_released : CoreEvent.released, { file: file.id, pid: file.pid });
  inst.refs.put();
}
