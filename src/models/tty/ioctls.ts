/**
 * A serial port's ioctls as drivers/tty/tty_io.c tty_ioctl(),
 * tty_ioctl.c tty_mode_ioctl() and n_tty_ioctl() answer them for a
 * usb-serial port. Most commands have no _IOC size, so their structures
 * travel through the caller's memory (req.user); TCGETS2/TCSETS2* and
 * TIOCGEXCL are encoded and travel in the request.
 *
 * Not here (ENOTTY): job control (TIOCSCTTY, TIOCNOTTY, TIOCGPGRP,
 * TIOCSPGRP, TIOCGSID; a FUSE file cannot be anyone's controlling
 * terminal), pty and console commands, RS-485. FIONREAD/TIOCINQ, FIONBIO,
 * FIOASYNC, FIOCLEX never arrive: the VFS answers them.
 */
import { Errno } from '../../errno.js';
import { IOR, IOW, type IoctlReply, type IoctlRequest } from '../../devio.js';
import type { File } from '../../core/index.js';
import { CAP_SYS_ADMIN, callerCapable, getUserInt, intReply, putUserInt, s32 } from '../util.js';
import { drain, sendBreak, waitOrEio } from './io.js';
import { hungUp, TIOCM_CD, TIOCM_CTS, TIOCM_DSR, TIOCM_OUT, TIOCM_RI, type TtyPort } from './port.js';
import {
  CLOCAL,
  copyTermios,
  decodeTermio,
  decodeTermios,
  encodeTermio,
  encodeTermios,
  outputSpeed,
  TERMIO_SIZE,
  TERMIOS_SIZE,
  TERMIOS2_SIZE,
  VSTART,
  VSTOP,
  type Termios,
} from './termios.js';

/* include/uapi/asm-generic/ioctls.h */
export const TCGETS = 0x5401;
export const TCSETS = 0x5402;
export const TCSETSW = 0x5403;
export const TCSETSF = 0x5404;
export const TCGETA = 0x5405;
export const TCSETA = 0x5406;
export const TCSETAW = 0x5407;
export const TCSETAF = 0x5408;
export const TCSBRK = 0x5409;
export const TCXONC = 0x540a;
export const TCFLSH = 0x540b;
export const TIOCEXCL = 0x540c;
export const TIOCNXCL = 0x540d;
export const TIOCSPGRP = 0x5410;
export const TIOCOUTQ = 0x5411;
export const TIOCSTI = 0x5412;
export const TIOCGWINSZ = 0x5413;
export const TIOCSWINSZ = 0x5414;
export const TIOCMGET = 0x5415;
export const TIOCMBIS = 0x5416;
export const TIOCMBIC = 0x5417;
export const TIOCMSET = 0x5418;
export const TIOCGSOFTCAR = 0x5419;
export const TIOCSSOFTCAR = 0x541a;
/** FIONREAD: answered by the VFS for a node that stats as a regular file; never reaches the model. */
export const TIOCINQ = 0x541b;
export const TIOCGSERIAL = 0x541e;
export const TIOCSSERIAL = 0x541f;
export const TIOCSETD = 0x5423;
export const TIOCGETD = 0x5424;
export const TCSBRKP = 0x5425;
export const TIOCSBRK = 0x5427;
export const TIOCCBRK = 0x5428;
export const TIOCVHANGUP = 0x5437;
export const TIOCMIWAIT = 0x545c;
export const TIOCGICOUNT = 0x545d;
const T = 0x54; // 'T'
export const TCGETS2 = IOR(T, 0x2a, TERMIOS2_SIZE);
export const TCSETS2 = IOW(T, 0x2b, TERMIOS2_SIZE);
export const TCSETSW2 = IOW(T, 0x2c, TERMIOS2_SIZE);
export const TCSETSF2 = IOW(T, 0x2d, TERMIOS2_SIZE);
export const TIOCGEXCL = IOR(T, 0x40, 4);

/* TCFLSH and TCXONC arguments (include/uapi/asm-generic/termbits-common.h) */
const TCIFLUSH = 0;
const TCOFLUSH = 1;
const TCIOFLUSH = 2;
const TCOOFF = 0;
const TCOON = 1;
const TCIOFF = 2;
const TCION = 3;

/** The commands tty_ioctl() makes wait for the output to drain first (not TIOCCBRK). */
const DRAIN_FIRST = new Set([TIOCSBRK, TCSBRK, TCSBRKP, TIOCSETD]);

/** send_break()'s duration for TCSBRK 0. */
const BREAK_MS = 250;
/** struct serial_struct and struct serial_icounter_struct on x86_64. */
export const SERIAL_STRUCT_SIZE = 72;
export const ICOUNTER_SIZE = 80;

/** set_termios() for TCSETS*, TCSETA*, TCSETS2*: W waits for the output to drain, F also flushes the input. */
async function setTermios(file: File<TtyPort>, wanted: Termios, wait: boolean, flush: boolean, signal: AbortSignal): Promise<IoctlReply> {
  if (wait || flush) await drain(file, signal);
  const p = file.instance.state;
  if (flush) p.ldisc.flushInput();
  p.setTermios(wanted);
  return {};
}

/** struct serial_struct as usb-serial's serial_get_serial() fills it: type PORT_UNKNOWN, the minor as line, times in 10 ms. */
function serialStruct(file: File<TtyPort>): Buffer {
  const p = file.instance.state;
  const b = Buffer.alloc(SERIAL_STRUCT_SIZE);
  b.writeInt32LE(Number(/\d+$/.exec(file.instance.name)?.[0] ?? 0), 4);
  b.writeInt32LE(outputSpeed(p.termios), 28); // baud_base: tty_get_baud_rate()
  b.writeUInt16LE(p.closeDelay, 32);
  b.writeUInt16LE(p.closingWait, 40);
  return b;
}

function icounter(p: TtyPort): Buffer {
  const c = p.icount;
  const fields = [c.cts, c.dsr, c.rng, c.dcd, c.rx, c.tx, c.frame, c.overrun, c.parity, c.brk, c.bufOverrun];
  return Buffer.concat([...fields.map(s32), Buffer.alloc(ICOUNTER_SIZE - fields.length * 4)]);
}

/** n_tty's TCXONC: stop or restart output; send a STOP or START character ahead of the queue (tty_send_xchar()). */
function tcxonc(p: TtyPort, arg: number): IoctlReply {
  switch (arg) {
    case TCOOFF:
    case TCOON:
      p.stopped.tco = arg === TCOOFF;
      p.updateHold();
      break;
    case TCIOFF:
    case TCION: {
      const c = p.termios.cc[arg === TCIOFF ? VSTOP : VSTART]!;
      if (c !== 0) p.transmitted([c]);
      break;
    }
    default:
      throw new Errno('EINVAL');
  }
  p.wake();
  return {};
}

/** TIOCMIWAIT: until one of the masked input lines changes (usb_serial_generic_tiocmiwait). */
async function tiocmiwait(file: File<TtyPort>, mask: number, signal: AbortSignal): Promise<IoctlReply> {
  const c = file.instance.state.icount;
  const before = { ...c };
  const changed = (): boolean =>
    (!!(mask & TIOCM_RI) && c.rng !== before.rng) ||
    (!!(mask & TIOCM_DSR) && c.dsr !== before.dsr) ||
    (!!(mask & TIOCM_CD) && c.dcd !== before.dcd) ||
    (!!(mask & TIOCM_CTS) && c.cts !== before.cts);
  await waitOrEio(file, changed, signal);
  return {};
}

export async function ttyIoctl(file: File<TtyPort>, req: IoctlRequest, signal: AbortSignal): Promise<IoctlReply> {
  // hung_up_tty_ioctl()
  if (hungUp(file)) throw new Errno(req.cmd === TIOCSPGRP ? 'ENOTTY' : 'EIO');
  const p = file.instance.state;
  const arg = Number(req.arg & 0xffffffffn);
  // tty_ioctl()'s common prep: these wait until the output has gone
  // (tty_wait_until_sent()) before anything else, so a break follows the
  // data written before it, and waits as long as flow control holds it.
  if (DRAIN_FIRST.has(req.cmd)) await drain(file, signal);
  switch (req.cmd) {
    case TCGETS:
      await req.user.write(req.arg, encodeTermios(p.termios, false));
      return {};
    case TCSETS:
    case TCSETSW:
    case TCSETSF:
      return setTermios(file, decodeTermios(await req.user.read(req.arg, TERMIOS_SIZE), p.termios), req.cmd !== TCSETS, req.cmd === TCSETSF, signal);
    case TCGETS2:
      return { out: encodeTermios(p.termios, true) };
    case TCSETS2:
    case TCSETSW2:
    case TCSETSF2:
      return setTermios(file, decodeTermios(req.in, p.termios), req.cmd !== TCSETS2, req.cmd === TCSETSF2, signal);
    case TCGETA:
      await req.user.write(req.arg, encodeTermio(p.termios));
      return {};
    case TCSETA:
    case TCSETAW:
    case TCSETAF:
      return setTermios(file, decodeTermio(await req.user.read(req.arg, TERMIO_SIZE), p.termios), req.cmd !== TCSETA, req.cmd === TCSETAF, signal);
    case TCSBRK:
      // tcdrain() is TCSBRK 1; tcsendbreak() is TCSBRK 0.
      if (arg === 0) await sendBreak(file, BREAK_MS, signal);
      return {};
    case TCSBRKP:
      await sendBreak(file, arg ? arg * 100 : BREAK_MS, signal);
      return {};
    case TIOCSBRK:
      file.instance.emit('tty_break', { on: true });
      p.icount.brk++;
      if (p.device.source === 'loopback') p.receiveBreak();
      return {};
    case TIOCCBRK:
      file.instance.emit('tty_break', { on: false });
      return {};
    case TCXONC:
      return tcxonc(p, arg);
    case TCFLSH:
      if (arg !== TCIFLUSH && arg !== TCOFLUSH && arg !== TCIOFLUSH) throw new Errno('EINVAL');
      if (arg !== TCOFLUSH) p.ldisc.flushInput();
      if (arg !== TCIFLUSH) p.tx.flush();
      p.wake();
      return {};
    case TIOCEXCL:
      p.exclusive = true;
      return {};
    case TIOCNXCL:
      p.exclusive = false;
      return {};
    case TIOCGEXCL:
      return intReply(p.exclusive ? 1 : 0);
    case TIOCOUTQ:
      await putUserInt(req.user, req.arg, p.tx.pending);
      return {};
    case TIOCSTI: {
      // tiocsti(): the port is nobody's controlling terminal, so only
      // capable(CAP_SYS_ADMIN) of the caller may, checked before get_user().
      if (!(await callerCapable(req, CAP_SYS_ADMIN))) throw new Errno('EPERM');
      const c = await req.user.read(req.arg, 1);
      p.ldisc.receive(c, p.termios);
      p.wake();
      return {};
    }
    case TIOCGWINSZ:
      await req.user.write(req.arg, p.winsize);
      return {};
    case TIOCSWINSZ:
      p.winsize = await req.user.read(req.arg, 8);
      return {};
    case TIOCMGET:
      await putUserInt(req.user, req.arg, p.lines);
      return {};
    case TIOCMSET:
    case TIOCMBIS:
    case TIOCMBIC: {
      const val = (await getUserInt(req.user, req.arg)) & TIOCM_OUT;
      p.setLines(req.cmd === TIOCMBIS ? p.lines | val : req.cmd === TIOCMBIC ? p.lines & ~val : (p.lines & ~TIOCM_OUT) | val);
      return {};
    }
    case TIOCMIWAIT:
      return tiocmiwait(file, arg, signal);
    case TIOCGICOUNT:
      await req.user.write(req.arg, icounter(p));
      return {};
    case TIOCGSERIAL:
      await req.user.write(req.arg, serialStruct(file));
      return {};
    case TIOCSSERIAL: {
      // usb-serial's serial_set_serial(): only a caller capable(CAP_SYS_ADMIN) changes the close timings.
      const ss = await req.user.read(req.arg, SERIAL_STRUCT_SIZE);
      const closeDelay = ss.readUInt16LE(32);
      const closingWait = ss.readUInt16LE(40);
      if ((closeDelay !== p.closeDelay || closingWait !== p.closingWait) && !(await callerCapable(req, CAP_SYS_ADMIN))) throw new Errno('EPERM');
      p.closeDelay = closeDelay;
      p.closingWait = closingWait;
      return {};
    }
    case TIOCGSOFTCAR:
      await putUserInt(req.user, req.arg, p.termios.cflag & CLOCAL ? 1 : 0);
      return {};
    case TIOCSSOFTCAR: {
      const t = copyTermios(p.termios);
      t.cflag = (await getUserInt(req.user, req.arg)) ? t.cflag | CLOCAL : t.cflag & ~CLOCAL;
      p.setTermios(t);
      return {};
    }
    case TIOCGETD:
      await putUserInt(req.user, req.arg, p.termios.line);
      return {};
    case TIOCSETD:
      // Only N_TTY is here; tty_set_ldisc() fails EINVAL for a discipline it cannot load.
      if ((await getUserInt(req.user, req.arg)) !== 0) throw new Errno('EINVAL');
      return {};
    case TIOCVHANGUP:
      // tty_ioctl(): capable(CAP_SYS_ADMIN) of the caller, not the opener.
      if (!(await callerCapable(req, CAP_SYS_ADMIN))) throw new Errno('EPERM');
      p.hangup('TIOCVHANGUP');
      return {};
    default:
      throw new Errno('ENOTTY');
  }
}
