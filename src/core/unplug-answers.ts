/**
 * What calls on a file of an unplugged device answer: the model's
 * UnplugAnswers (model.ts) with the defaults filled in, each file's poll
 * mask, fixed once when unplug begins, and the device's read data pending
 * then. The answers are the driver's checks after unregister (uio_read()
 * and uio_write() once idev->info is NULL, evdev_poll() once
 * !evdev->exist), given by the core: no driver code runs for them. The
 * one exception is an ioctl a model gives as a function: the code of a
 * character-device layer that outlives its driver (i2cdev_ioctl()), kept
 * when unplug begins and run over what it kept then.
 */
import { Errno } from '../errno.js';
import { POLLERR, POLLHUP, POLLIN, POLLRDNORM, type IoctlReply, type IoctlRequest, type PollMask } from '../devio.js';
import type { OpenFile } from './file.js';
import type { DeviceInstance } from './instance.js';
import type { DeviceModel, File, Instance, IoSizes, UnplugIoctl } from './model.js';

/** What a read after unplug answers, besides data: an errno, end of file, or a sleep until a signal. */
export type UnplugRead = Errno | 'eof' | 'sleep';

/** A model's UnplugAnswers with its defaults: EIO for read, write and ioctl, POLLERR|POLLHUP for poll. */
export interface UnplugAnswerSet<S> {
  readonly read: UnplugRead;
  /** null: the driver takes reads of any size. */
  readonly readSizes: IoSizes | null;
  /** null: the driver takes writes of any size. */
  readonly writeSizes: IoSizes | null;
  /** null: the device holds no data for reads at unplug. */
  readonly readPending: ((inst: Instance<S>) => Uint8Array | null) | null;
  readonly write: Errno;
  /** null: no limit outlives the device. */
  readonly maxIoSize: ((inst: Instance<S>) => number) | null;
  /** An errno, or the function that gives the ioctl after unplug when the gate closes (keepUnplugIoctl). */
  readonly ioctl: Errno | ((inst: Instance<S>) => UnplugIoctl<S>);
  readonly poll: PollMask | ((file: File<S>) => PollMask);
}

const EIO = new Errno('EIO');
const EINVAL = new Errno('EINVAL');
const EMSGSIZE = new Errno('EMSGSIZE');
/** debugfs full_proxy_poll() answers EPOLLHUP once the file is removed; POLLERR says the device failed. */
const GONE_POLL = POLLERR | POLLHUP;

export function unplugAnswersOf<S>(model: DeviceModel<S>): UnplugAnswerSet<S> {
  const a = model.unplugged ?? {};
  return {
    read: a.read ?? EIO,
    readSizes: a.readSizes ?? null,
    readPending: a.readPending ?? null,
    writeSizes: a.writeSizes ?? null,
    write: a.write ?? EIO,
    maxIoSize: a.maxIoSize ?? null,
    ioctl: a.ioctl ?? EIO,
    poll: a.poll ?? GONE_POLL,
  };
}

/** Whether a driver whose read (or write) takes `sizes` takes one of `size` bytes (`count`). */
export function ioSizeFits(sizes: IoSizes, size: number): boolean {
  return size === sizes.exact || (sizes.atLeast !== undefined && size >= sizes.atLeast);
}

/**
 * The driver's limit on one read or write (UnplugAnswers.maxIoSize), kept
 * when the gate closes (unplug.ts closeGate), before remove(). A function
 * that throws is a model bug, and leaves no limit.
 */
export function keepUnplugMaxIoSize<S>(inst: DeviceInstance<S>): void {
  const maxIoSize = inst.unplugAnswers.maxIoSize;
  const max = maxIoSize === null ? undefined : atGateClose(inst, 'maxIoSize', maxIoSize);
  if (max !== undefined) inst.unplugMaxIoSize = max;
}

/**
 * The model's `unplugged.NAME` function, run as the gate closes (before
 * remove(), while model code may run): undefined when it throws, a model
 * bug (logged by errnoOf), which then keeps nothing.
 */
function atGateClose<S, T>(inst: DeviceInstance<S>, name: string, f: (inst: DeviceInstance<S>) => T): T | undefined {
  try {
    return f(inst);
  } catch (err) {
    inst.errnoOf(err, `unplugged.${name}`);
    return undefined;
  }
}

/**
 * What a read of `size` bytes answers after unplug, in the order of the
 * driver's read: its size checks first (spidev_read() fails EMSGSIZE past
 * bufsiz, uio_read() and rtc_dev_read() fail EINVAL on a size they do not
 * take, before they look at the device), then the data the device held
 * when unplug began (rtc_dev_read() takes irq_data before it would sleep),
 * then the model's answer. The data is the device's, so the read of any
 * file takes it, once.
 */
export function unplugReadOf<S>(inst: DeviceInstance<S>, size: number): Buffer | UnplugRead {
  const answers = inst.unplugAnswers;
  if (size > inst.unplugMaxIoSize) return EMSGSIZE;
  if (answers.readSizes !== null && !ioSizeFits(answers.readSizes, size)) return EINVAL;
  const pending = inst.unplugReadData;
  if (pending === null) return answers.read;
  inst.unplugReadData = null;
  return pending.subarray(0, size);
}

/** What a write of `size` bytes answers after unplug: the driver's size checks first (spidev_write(), evdev_write()), then the model's errno. */
export function unplugWriteOf<S>(inst: DeviceInstance<S>, size: number): Errno {
  const answers = inst.unplugAnswers;
  if (size > inst.unplugMaxIoSize) return EMSGSIZE;
  return answers.writeSizes !== null && !ioSizeFits(answers.writeSizes, size) ? EINVAL : answers.write;
}

/**
 * The device's data for reads when the gate closes (unplug.ts closeGate),
 * kept for the first read after unplug: the model's readPending, called
 * then, before remove(), while model code may run. It is a copy: what the
 * model counts afterwards, until remove() stops it, reaches no file, as
 * nothing reaches one from a device being unplugged. A function that
 * throws is a model bug, and leaves no data.
 */
export function keepUnplugReadData<S>(inst: DeviceInstance<S>): void {
  const pending = inst.unplugAnswers.readPending;
  const data = pending === null ? undefined : atGateClose(inst, 'readPending', pending);
  if (data !== undefined) inst.unplugReadData = data !== null && data.length > 0 ? Buffer.from(data) : null;
}

/**
 * What poll answers after unplug: the file's fixed mask, readable too while
 * the device's data for reads is still there to take (rtc_dev_poll()
 * reports EPOLLIN|EPOLLRDNORM while irq_data is not 0).
 */
export function unplugPollNow<S>(inst: DeviceInstance<S>, file: OpenFile<S>): PollMask {
  const mask = unplugPollOf(inst, file);
  return inst.unplugReadData !== null ? mask | POLLIN | POLLRDNORM : mask;
}

/**
 * The file's poll answer after unplug, fixed at its first asking: for each
 * file open then, when the gate closes (unplug.ts closeGate), and for an
 * open in flight then, when it completes (fops.ts opened()), both before
 * remove(), so a model's function of the file runs while model code may.
 * Nothing the mask depends on changes afterwards: no new event reaches a
 * gone device, and reads fail without the model. A file never asked before
 * remove() (there should be none) gets POLLERR|POLLHUP rather than model
 * code; a function that throws is a model bug, answered POLLERR, as
 * fuse_file_poll() turns a failed POLL into EPOLLERR.
 */
export function unplugPollOf<S>(inst: DeviceInstance<S>, file: OpenFile<S>): PollMask {
  if (file.unplugPoll !== null) return file.unplugPoll;
  const poll = inst.unplugAnswers.poll;
  let mask: PollMask;
  if (typeof poll === 'number') mask = poll;
  else if (inst.lifecycle !== 'unplugging') mask = GONE_POLL;
  else {
    try {
      mask = poll(file);
    } catch (err) {
      inst.errnoOf(err, 'unplugged.poll');
      mask = POLLERR;
    }
  }
  return (file.unplugPoll = mask);
}

/**
 * What ioctls after unplug answer, fixed when the gate closes (unplug.ts
 * closeGate): the model's errno, or the ioctl its function returns then,
 * before remove(), while the function may still look at the device
 * (i2c-dev's answers come from the adapter struct, which the open file
 * keeps: i2cdev_open()'s i2c_get_adapter()). A function that throws is a
 * model bug, and leaves every ioctl EIO.
 */
export function keepUnplugIoctl<S>(inst: DeviceInstance<S>): void {
  const ioctl = inst.unplugAnswers.ioctl;
  const kept = ioctl instanceof Errno ? ioctl : atGateClose(inst, 'ioctl', ioctl);
  if (kept !== undefined) inst.unplugIoctl = kept;
}

/** An ioctl after unplug: the errno, or the character-device layer's ioctl kept when the gate closed (its reply is settled as a model's: fops.ts). */
export function unplugIoctlOf<S>(inst: DeviceInstance<S>, file: File<S>, req: IoctlRequest): IoctlReply | Promise<IoctlReply> {
  const ioctl = inst.unplugIoctl;
  if (ioctl instanceof Errno) throw ioctl;
  return ioctl(file, req);
}
