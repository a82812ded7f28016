/**
 * The file side of a port: read and write as n_tty_read() and
 * n_tty_write() do them, poll as n_tty_poll(), and the waits the ioctls
 * need (drain, break). Every wait ends when the file is hung up or the
 * device unplugged; the caller then answers as hung_up_tty_fops would.
 */
import { Errno } from '../../errno.js';
import { POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, type PollMask } from '../../devio.js';
import type { File, Instance } from '../../core/index.js';
import { HUNG_UP_POLL, hungUp, WRITE_ROOM, type TtyPort } from './port.js';
import { ICANON, VMIN, VTIME } from './termios.js';

/** n_tty_poll(): writable while fewer than WAKEUP_CHARS wait to go out. */
const WAKEUP_CHARS = 256;
const EMPTY = Buffer.alloc(0);

/** Waits until `cond` or `ms` elapsed, on the device's wait queue (a VTIME timer, a break). */
async function waitFor(inst: Instance<TtyPort>, cond: () => boolean, ms: number, signal: AbortSignal): Promise<void> {
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    inst.wq.wake();
  }, ms);
  try {
    await inst.wq.wait(() => expired || cond(), signal);
  } finally {
    clearTimeout(timer);
  }
}

/** A wait that a hang-up or unplug ends: true when one did. `ms` bounds it (a VTIME timer). */
async function waitOrHangup(file: File<TtyPort>, cond: () => boolean, signal: AbortSignal, ms?: number): Promise<boolean> {
  const inst = file.instance;
  try {
    if (ms === undefined) await inst.wq.wait(() => cond() || hungUp(file), signal);
    else await waitFor(inst, () => cond() || hungUp(file), ms, signal);
  } catch (err) {
    // Unplug kills the wait queue: the reader sees what tty_hung_up_p() shows n_tty.
    if (inst.lifecycle !== 'live') return true;
    throw err;
  }
  return hungUp(file);
}

function take(file: File<TtyPort>, size: number): Buffer {
  const p = file.instance.state;
  const out = p.ldisc.read(size, p.termios);
  p.wake();
  return out;
}

/** read(): what is ready is answered at once; only a wait goes asynchronous. */
export function ttyRead(file: File<TtyPort>, size: number, signal: AbortSignal): Buffer | Promise<Buffer> {
  if (hungUp(file)) return EMPTY;
  const p = file.instance.state;
  const t = p.termios;
  const raw = !(t.lflag & ICANON);
  const minimum = raw ? Math.min(Math.max(t.cc[VMIN]!, 1), size) : 1;
  if (p.ldisc.readable(t, minimum) || (raw && t.cc[VMIN] === 0 && t.cc[VTIME] === 0)) return take(file, size);
  return readBlocking(file, size, signal);
}

/**
 * n_tty_read(). Canonical: one line once it is complete (0 bytes for an
 * EOF, or once hung up). Raw, by VMIN and VTIME: MIN 0 TIME t waits up to
 * t tenths for the first byte (t 0: not at all), MIN m TIME 0 for m bytes,
 * MIN m TIME t for the first byte, then until m or until t tenths pass
 * without another. Raw bytes are taken as they arrive, as n_tty copies
 * them to the reader before it sleeps again, so a hang-up returns what the
 * reader already has. O_NONBLOCK: EAGAIN where it would sleep with nothing.
 */
async function readBlocking(file: File<TtyPort>, size: number, signal: AbortSignal): Promise<Buffer> {
  const p = file.instance.state;
  const t = p.termios;
  if (t.lflag & ICANON) {
    while (!p.ldisc.readable(p.termios)) {
      if (file.nonblock) throw new Errno('EAGAIN');
      if (await waitOrHangup(file, () => p.ldisc.readable(p.termios), signal)) return EMPTY;
    }
    return take(file, size);
  }
  const min = t.cc[VMIN]!;
  const tenths = t.cc[VTIME]!;
  const minimum = Math.min(Math.max(min, 1), size);
  // ms to wait for input, undefined for no limit: with MIN 0, TIME times the whole read; with MIN m, nothing until a byte came.
  let timeout: number | undefined = min === 0 ? tenths * 100 : undefined;
  const got: Buffer[] = [];
  let n = 0;
  for (;;) {
    if (p.ldisc.readable(p.termios)) {
      const b = take(file, size - n);
      got.push(b);
      n += b.length;
      if (n >= minimum) break;
      if (tenths > 0) timeout = tenths * 100; // the inter-byte timer starts over
      continue;
    }
    if (hungUp(file) || timeout === 0) break;
    if (file.nonblock) {
      if (n > 0) break;
      throw new Errno('EAGAIN');
    }
    if (await waitOrHangup(file, () => p.ldisc.readable(p.termios), signal, timeout)) break;
    if (!p.ldisc.readable(p.termios)) timeout = 0; // the timer ran out
  }
  return got.length === 1 ? got[0]! : Buffer.concat(got, n);
}

/** Output processing into the transmit queue, as far as it has room: the input bytes consumed. */
function queueOutput(p: TtyPort, data: Buffer): number {
  let i = 0;
  while (i < data.length) {
    const column = p.ldisc.column;
    const out = p.ldisc.output([data[i]!], p.termios);
    if (p.tx.pending + out.length > WRITE_ROOM) {
      p.ldisc.column = column;
      break;
    }
    p.tx.push(out);
    i++;
  }
  return i;
}

/**
 * write(): n_tty_write() blocks until everything is queued; with
 * O_NONBLOCK it writes what fits (EAGAIN if nothing does); a signal or a
 * hang-up part-way returns what was written.
 */
export function ttyWrite(file: File<TtyPort>, data: Buffer, signal: AbortSignal): number | Promise<number> {
  if (hungUp(file)) throw new Errno('EIO');
  if (data.length === 0) return 0;
  const p = file.instance.state;
  const n = queueOutput(p, data);
  if (n === data.length) return n;
  if (file.nonblock) {
    if (n > 0) return n;
    throw new Errno('EAGAIN');
  }
  return writeBlocking(file, data, n, signal);
}

async function writeBlocking(file: File<TtyPort>, data: Buffer, done: number, signal: AbortSignal): Promise<number> {
  const p = file.instance.state;
  let n = done;
  while (n < data.length) {
    let ended: boolean;
    try {
      ended = await waitOrHangup(file, () => p.tx.pending < WRITE_ROOM, signal);
    } catch (err) {
      if (n > 0) return n;
      throw err;
    }
    if (ended) {
      if (n > 0) return n;
      throw new Errno('EIO');
    }
    n += queueOutput(p, data.subarray(n));
  }
  return n;
}

/** poll(): input_available_p() (a raw port with MIN m and TIME 0 polls readable at m bytes) and room to write. */
export function ttyPoll(file: File<TtyPort>): PollMask {
  if (hungUp(file)) return HUNG_UP_POLL;
  const p = file.instance.state;
  const t = p.termios;
  const min = !(t.lflag & ICANON) && t.cc[VTIME] === 0 && t.cc[VMIN]! > 0 ? t.cc[VMIN]! : 1;
  return (p.ldisc.readable(t, min) ? POLLIN | POLLRDNORM : 0) | (p.tx.pending < WAKEUP_CHARS ? POLLOUT | POLLWRNORM : 0);
}

/** Until `cond`; EIO once hung up (tty_wait_until_sent(), TIOCMIWAIT's wait). */
export async function waitOrEio(file: File<TtyPort>, cond: () => boolean, signal: AbortSignal): Promise<void> {
  if (cond()) return;
  if (await waitOrHangup(file, cond, signal)) throw new Errno('EIO');
}

/** tty_wait_until_sent(): the transmit queue empty (tcdrain, TCSETSW, TCSBRK). */
export function drain(file: File<TtyPort>, signal: AbortSignal): Promise<void> {
  const p = file.instance.state;
  return waitOrEio(file, () => p.tx.pending === 0, signal);
}

/** send_break(): the line held in break for `ms`; the device (for a loopback, the port itself) sees it. */
export async function sendBreak(file: File<TtyPort>, ms: number, signal: AbortSignal): Promise<void> {
  const inst = file.instance;
  const p = inst.state;
  inst.emit('tty_break', { ms });
  p.icount.brk++;
  if (p.device.source === 'loopback') p.receiveBreak();
  await waitFor(inst, () => hungUp(file), ms, signal);
}
