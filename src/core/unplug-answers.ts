/**
 * What calls on a file of an unplugged device answer: the model's
 * UnplugAnswers (model.ts) with the defaults filled in, and each file's
 * poll mask, fixed once when unplug begins. The answers are the driver's
 * checks after unregister (uio_read() and uio_write() once idev->info is
 * NULL, evdev_poll() once !evdev->exist), given by the core: no model code
 * runs for them.
 */
import { Errno } from '../errno.js';
import { POLLERR, POLLHUP, type PollMask } from '../devio.js';
import type { OpenFile } from './file.js';
import type { DeviceInstance } from './instance.js';
import type { DeviceModel, File, ReadSizes } from './model.js';

/** What a read after unplug answers, besides data: an errno, end of file, or a sleep until a signal. */
export type UnplugRead = Errno | 'eof' | 'sleep';

/** A model's UnplugAnswers with its defaults: EIO for read, write and ioctl, POLLERR|POLLHUP for poll. */
export interface UnplugAnswerSet<S> {
  readonly read: UnplugRead;
  /** null: the driver takes reads of any size. */
  readonly readSizes: ReadSizes | null;
  readonly write: Errno;
  readonly ioctl: Errno;
  readonly poll: PollMask | ((file: File<S>) => PollMask);
}

const EIO = new Errno('EIO');
const EINVAL = new Errno('EINVAL');
/** debugfs full_proxy_poll() answers EPOLLHUP once the file is removed; POLLERR says the device failed. */
const GONE_POLL = POLLERR | POLLHUP;

export function unplugAnswersOf<S>(model: DeviceModel<S>): UnplugAnswerSet<S> {
  const a = model.unplugged ?? {};
  return {
    read: a.read ?? EIO,
    readSizes: a.readSizes ?? null,
    write: a.write ?? EIO,
    ioctl: a.ioctl ?? EIO,
    poll: a.poll ?? GONE_POLL,
  };
}

/** Whether a driver whose read takes `sizes` takes a read of `size` bytes (`count`). */
export function readSizeFits(sizes: ReadSizes, size: number): boolean {
  return size === sizes.exact || (sizes.atLeast !== undefined && size >= sizes.atLeast);
}

/**
 * What a read of `size` bytes answers after unplug, in the order of the
 * driver's read: its size check first (uio_read() and rtc_dev_read() fail
 * EINVAL before they look at the device), then the model's answer.
 */
export function unplugReadOf<S>(inst: DeviceInstance<S>, size: number): UnplugRead {
  const answers = inst.unplugAnswers;
  if (answers.readSizes !== null && !readSizeFits(answers.readSizes, size)) return EINVAL;
  return answers.read;
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
