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
import type { Handler } from './gate.js';
import type { DeviceInstance } from './instance.js';

/**
 * OPEN. Answered synchronously when the model's open is (zero, null and
 * most models have none): a promise here would cost every open a
 * microtask hop and the abandonment race below, which only a model that
 * goes asynchronous needs.
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
  // the open cannot free the instance under it.
  inst.refs.get();
  const h = inst.gate.enter('open', file, ctx);
  const r = callModel(inst, h, 'open', file, () => inst.driver.open?.(file));
  return r instanceof Promise ? openAsync(inst, file, h, r) : opened(inst, file);
}

/**
 * Calls the model's open or release for handler `h`, through the fault
 * interceptor. A result returned at once has left the gate; a promise (a
 * throw becomes a rejected one, for the same errno mapping) is still
 * inside it, for the caller to settle through inst.invoke().
 */
function callModel<S>(inst: DeviceInstance<S>, h: Handler, op: 'open' | 'release', file: OpenFile<S>, model: () => unknown): unknown {
  let r: unknown;
  try {
    r = inst.intercept(op, file, undefined, h, model);
  } catch (err) {
    return Promise.reject(err);
  }
  if (!(r instanceof Promise)) inst.gate.exit(h);
  return r;
}

async function openAsync<S>(inst: DeviceInstance<S>, file: OpenFile<S>, h: Handler, model: Promise<unknown>): Promise<DeviceFile> {
  const run = inst.invoke(h, () => model);
  void run.then(
    // OPEN was answered ENODEV when unplug gave up on it: nobody will
    // release this file, so close it here (it gets lateRelease).
    () => {
      if (h.stuck) void release(inst, file);
    },
    // do_dentry_open(): a failed ->open is never released.
    () => inst.refs.put(),
  );
  try {
    await Promise.race([run, h.abandoned]);
  } catch (err) {
    inst.count.errors++;
    throw h.stuck ? new Errno('ENODEV') : err;
  }
  // Also reached when unplug began during the model's open: that file is a
  // normal open file of a device being removed.
  return opened(inst, file);
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

/** Given to model handlers that do not take a signal: it never aborts, and costs nothing. */
const NEVER_ABORTED = new AbortController().signal;

/**
 * The signal for a model handler: made only if the handler declares its
 * third parameter (mocha and Express read Function.length the same way). A
 * handler that never names the signal cannot observe it, and most (zero,
 * null, register reads) answer at once.
 */
function signalFor(model: (...args: never[]) => unknown, h: Handler): AbortSignal {
  return model.length >= 3 ? h.signal : NEVER_ABORTED;
}

/** The answer of a read at end of file. */
const EOF = Buffer.alloc(0);

function read<S>(inst: DeviceInstance<S>, file: OpenFile<S>, size: number, io: IoContext): Awaitable<Buffer> {
  inst.count.reads++;
  if (!inst.gate.isOpen && inst.driver.unplugRead === 'eof') return EOF;
  const data = inst.gated('read', file, io, (h) => {
    // vfs_read(): a file without ->read is EINVAL.
    const model = inst.driver.read;
    if (!model) throw new Errno('EINVAL');
    return after(inst.intercept('read', file, size, h, (sz: number) => model(file, sz, signalFor(model, h))), (buf) => {
      if (!Buffer.isBuffer(buf) || buf.length > size) {
        throw new Error(`read returned ${Buffer.isBuffer(buf) ? `${buf.length} bytes` : typeof buf} for a ${size}-byte read`);
      }
      return buf;
    });
  });
  return after(data, (buf) => {
    inst.count.bytesRead += buf.length;
    return buf;
  });
}

function write<S>(inst: DeviceInstance<S>, file: OpenFile<S>, data: Buffer, io: IoContext): Awaitable<number> {
  inst.count.writes++;
  const written = inst.gated('write', file, io, (h) => {
    const model = inst.driver.write;
    if (!model) throw new Errno('EINVAL');
    return after(inst.intercept('write', file, data, h, (d: Buffer) => model(file, d, signalFor(model, h))), (n) => {
      if (!Number.isInteger(n) || n < 0 || n > data.length) {
        throw new Error(`write returned ${String(n)} for a ${data.length}-byte write`);
      }
      return n;
    });
  });
  return after(written, (n) => {
    inst.count.bytesWritten += n;
    return n;
  });
}

function ioctl<S>(inst: DeviceInstance<S>, file: OpenFile<S>, req: IoctlRequest, io: IoContext): Awaitable<IoctlReply> {
  inst.count.ioctls++;
  return inst.gated('ioctl', file, io, (h) => {
    // vfs_ioctl(): no ->unlocked_ioctl is ENOTTY, which programs probe with.
    const model = inst.driver.ioctl;
    if (!model) throw new Errno('ENOTTY');
    return after(inst.intercept('ioctl', file, req, h, (r: IoctlRequest) => model(file, r, signalFor(model, h)), req.cmd), (reply) => {
      if ((reply.out?.length ?? 0) > req.outSize) {
        throw new Error(`ioctl 0x${req.cmd.toString(16)} returned ${reply.out!.length} bytes, caller accepts ${req.outSize}`);
      }
      return reply;
    });
  });
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
    const mask = inst.gated('poll', file, io, (h) =>
      inst.intercept('poll', file, undefined, h, () => (inst.driver.poll ? inst.driver.poll(file) : DEFAULT_POLLMASK)),
    );
    return mask instanceof Promise ? mask.catch(() => POLLERR) : mask;
  } catch {
    return POLLERR;
  }
}

function fsync<S>(inst: DeviceInstance<S>, file: OpenFile<S>, io: IoContext): Awaitable<void> {
  // vfs_fsync_range(): a file without ->fsync is EINVAL. Models have no
  // fsync, so a live device answers that; the gate answers the unplug errno.
  return inst.gated('fsync', file, io, () => {
    throw new Errno('EINVAL');
  });
}

/** RELEASE; synchronous, like OPEN, when the model's release is. */
function release<S>(inst: DeviceInstance<S>, file: OpenFile<S>): Awaitable<void> {
  if (file.closed) return;
  file.closed = true;
  file.cancelPoll();
  inst.files.delete(file);
  if (inst.lifecycle !== 'live') return lateRelease(inst, file);
  inst.count.releases++;
  // full_proxy_release(): never gated, but model code that unplug's drain must wait for.
  const h = inst.gate.track('release', file);
  const r = callModel(inst, h, 'release', file, () => inst.driver.release?.(file));
  if (r instanceof Promise) return releaseAsync(inst, file, h, r);
  released(inst, file, false);
}

async function releaseAsync<S>(inst: DeviceInstance<S>, file: OpenFile<S>, h: Handler, model: Promise<unknown>): Promise<void> {
  try {
    await Promise.race([inst.invoke(h, () => model), h.abandoned]);
  } catch {
    // __fput() ignores ->release's result; invoke() has logged any model bug.
  } finally {
    released(inst, file, false);
  }
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
