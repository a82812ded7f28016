/**
 * One open file of the real device behind the record model, opened
 * O_NONBLOCK so that no read or write of it ever holds the daemon's only
 * thread, and a readiness watch over all of them: Node has no watcher for
 * an arbitrary descriptor (epoll refuses a file whose driver has no
 * ->poll, as hw_random's, with EPERM), so the watch asks poll(2) with a
 * zero timeout on a short interval, and wakes the device's wait queue
 * when an answer changed (which also re-asks the kernel's pollers).
 * POLLHUP it tells the model of: the device hung up.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI, POLLRDNORM, POLLWRNORM, type PollMask } from '../../devio.js';
import { pollOne, readOrErrno, writeOrErrno } from '../../sys/ffi.js';
import type { WaitQueue } from '../../core/index.js';

const EVENTS = POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLWRNORM;
/** How often the watch asks: a tenth of a character time at 9600 baud is 0.1 ms, but a program's reads come in lines. */
const WATCH_INTERVAL_MS = 5;

export class RealFile {
  /** revents as last seen (the watch, or the program's poll). */
  mask: PollMask = 0;

  private constructor(readonly fd: number) {}

  /** open(2) of `path` with the emulated open's access mode; O_NOCTTY: the daemon must not acquire a terminal. */
  static open(path: string, accmode: number): RealFile {
    return new RealFile(openSync(path, accmode | constants.O_NONBLOCK | constants.O_NOCTTY));
  }

  /** The node's readiness now: poll(2) with no wait. */
  poll(): PollMask {
    return (this.mask = pollOne(this.fd, EVENTS, 0));
  }

  /** read(2): the bytes, or -errno (EAGAIN when nothing is there). */
  read(size: number): Buffer | number {
    const buf = Buffer.allocUnsafe(size);
    const n = readOrErrno(this.fd, buf, size);
    return n < 0 ? n : buf.subarray(0, n);
  }

  /** write(2): the count taken, or -errno. */
  write(data: Buffer): number {
    return writeOrErrno(this.fd, data, data.length);
  }

  /** Forgets a readiness the node no longer has (a read that found nothing), so a waiter waits for the watch to see it again. */
  notReady(bits: PollMask): void {
    this.mask &= ~bits;
  }

  /** Whether a read (POLLIN) or a write (POLLOUT) is worth trying again. */
  ready(bits: PollMask): boolean {
    return (this.mask & (bits | POLLERR | POLLHUP)) !== 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The watch over a device's open real files, running while any is open; it tells of a hang-up (POLLHUP) it sees. */
export class ReadinessWatch {
  private readonly files = new Set<RealFile>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly wq: WaitQueue,
    private readonly hungUp: () => void,
  ) {}

  add(f: RealFile): void {
    this.files.add(f);
    this.timer ??= setInterval(() => this.tick(), WATCH_INTERVAL_MS);
  }

  delete(f: RealFile): void {
    this.files.delete(f);
    if (this.files.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    let changed = false;
    for (const f of this.files) {
      const before = f.mask;
      try {
        if (f.poll() !== before) changed = true;
      } catch {
        // A descriptor poll(2) refuses is no reason to stop watching the others: its
        // waiters wake and try the real node, which answers them its error.
        f.mask = POLLERR;
        changed ||= before !== POLLERR;
      }
    }
    if ([...this.files].some((f) => f.mask & POLLHUP)) this.hungUp();
    if (changed) this.wq.wake();
  }
}
