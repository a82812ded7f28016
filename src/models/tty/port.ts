/**
 * One serial port and the device wired to it: the port's settings, line
 * discipline, modem lines and counters (what usb-serial and tty_port keep),
 * the two directions of the line, and what the device sends.
 *
 * - Terminal settings belong to the port, not to an open file, and last
 *   across closes (usb-serial keeps driver->termios[]); a new device starts
 *   from usb-serial's 9600 8N1 CLOCAL.
 * - The device talks at its own speed and frame; while the port's input
 *   speed or frame differs, what arrives is garbage, as a UART at the wrong
 *   speed reads it. While no file has the port open its bytes are lost, as
 *   usb-serial reads nothing then.
 * - DTR and RTS are the port's (raised at first open unless B0, dropped at
 *   last close with HUPCL and when the speed goes to B0); CTS, DSR, CD and
 *   RI are the device's.
 */
import { POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM } from '../../devio.js';
import type { File, Instance } from '../../core/index.js';
import { LineDiscipline } from './ldisc.js';
import { nmeaBurst, type Fix } from './nmea.js';
import { B0, bitsPerChar, CBAUD, CREAD, CRTSCTS, CSIZE, CSTOPB, HUPCL, ICANON, inputSpeed, IXON, outputSpeed, PARENB, PARODD, settle, usbSerialTermios, VMIN, VTIME, type Termios } from './termios.js';
import { Wire } from './wire.js';

/* TIOCM_* (include/uapi/asm-generic/termios.h) */
export const TIOCM_DTR = 0x002;
export const TIOCM_RTS = 0x004;
export const TIOCM_CTS = 0x020;
export const TIOCM_CD = 0x040;
export const TIOCM_RI = 0x080;
export const TIOCM_DSR = 0x100;
/** The lines the port drives; tty_tiocmset() lets programs set only these (usb-serial drivers ignore OUT1, OUT2, LOOP). */
export const TIOCM_OUT = TIOCM_DTR | TIOCM_RTS;
/** The lines the device drives. */
export const TIOCM_IN = TIOCM_CTS | TIOCM_CD | TIOCM_RI | TIOCM_DSR;
export const LINE_NAMES: ReadonlyArray<readonly [number, string]> = [
  [TIOCM_DTR, 'dtr'],
  [TIOCM_RTS, 'rts'],
  [TIOCM_CTS, 'cts'],
  [TIOCM_DSR, 'dsr'],
  [TIOCM_CD, 'cd'],
  [TIOCM_RI, 'ri'],
];
export const lineNames = (lines: number): string[] => LINE_NAMES.filter(([bit]) => lines & bit).map(([, name]) => name);

/** The usb-serial write fifo (a kfifo of PAGE_SIZE). */
export const WRITE_ROOM = 4096;
/** hung_up_tty_poll(). */
export const HUNG_UP_POLL = POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM;

/** What the device on the line is: `none` speaks only through the `input` action. */
export type Source = 'none' | 'loopback' | 'nmea';

/** struct serial_icounter_struct: line transitions and traffic since the port was created. */
export interface Icount {
  cts: number;
  dsr: number;
  rng: number;
  dcd: number;
  rx: number;
  tx: number;
  frame: number;
  overrun: number;
  parity: number;
  brk: number;
  bufOverrun: number;
}

/** file->private_data of an open port. */
interface TtyFile {
  /** This file was hung up (carrier loss, vhangup): hung_up_tty_fops. */
  hungUp: boolean;
}

export const hungUp = (file: File<TtyPort>): boolean => (file.private as TtyFile).hungUp;

export interface DeviceSettings {
  source: Source;
  /** The device's speed. */
  baud: number;
  /** Its frame: CSIZE | PARENB | PARODD | CSTOPB bits. */
  frame: number;
  fix: Fix;
  intervalMs: number;
  /** Its lines (TIOCM_IN bits) at plug. */
  lines: number;
}

/** "8N1": data bits, parity, stop bits of cflag bits. */
export function framingName(cflag: number): string {
  const parity = cflag & PARENB ? (cflag & PARODD ? 'O' : 'E') : 'N';
  return `${5 + ((cflag & CSIZE) >> 4)}${parity}${cflag & CSTOPB ? 2 : 1}`;
}

/** Characters per second of a line at `baud` with `cflag`'s frame. */
const cps = (baud: number, cflag: number): number => baud / bitsPerChar(cflag);

/** A byte read at the wrong speed or frame: never a valid ASCII character, so no line or sentence ever forms. */
const garble = (b: number): number => 0x80 | ((b * 37 + 11) & 0x7f);

export class TtyPort {
  termios: Termios = usbSerialTermios();
  readonly ldisc: LineDiscipline;
  /** Device to port, at the device's speed. */
  readonly rx: Wire;
  /** Port to device, at the port's output speed. */
  readonly tx: Wire;
  /** TIOCM_* bits. */
  lines: number;
  readonly icount: Icount = { cts: 0, dsr: 0, rng: 0, dcd: 0, rx: 0, tx: 0, frame: 0, overrun: 0, parity: 0, brk: 0, bufOverrun: 0 };
  /** The files open on the port, opens waiting for carrier included (their tty is set up and receiving). */
  readonly files = new Set<File<TtyPort>>();
  /** Opens waiting for carrier (port->blocked_open). */
  blockedOpens = 0;
  /** TTY_EXCLUSIVE. */
  exclusive = false;
  winsize: Buffer = Buffer.alloc(8);
  /** serial_struct close_delay and closing_wait, in 10 ms (tty_port_init()'s 0.5 s and 30 s). */
  closeDelay = 50;
  closingWait = 3000;
  /** Output held by a received STOP (IXON) or by TCOOFF (tty->flow.stopped, tco_stopped). */
  readonly stopped = { xoff: false, tco: false };
  /** The last WRITE_ROOM bytes the port transmitted, and how many in all. */
  sent: number[] = [];
  sentTotal = 0;
  fix: Fix;
  private nmeaTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly inst: Instance<TtyPort>,
    readonly device: DeviceSettings,
  ) {
    this.lines = device.lines;
    this.fix = device.fix;
    this.ldisc = new LineDiscipline({
      echo: (bytes) => this.tx.push(bytes),
      flow: (stop) => {
        this.stopped.xoff = stop;
        this.updateHold();
      },
      flushOutput: () => this.tx.flush(),
    });
    this.rx = new Wire(
      () => cps(device.baud, device.frame),
      (bytes) => this.arrive(bytes, false),
    );
    this.tx = new Wire(
      () => cps(outputSpeed(this.termios), this.termios.cflag),
      (bytes) => this.transmitted(bytes),
    );
  }

  wake(): void {
    this.inst.wq.wake();
  }

  /**
   * Does the port read the device's bytes as sent? The speeds agree within
   * 2% (what a UART's sampling tolerates) and so do data bits and parity.
   */
  get inStep(): boolean {
    const baud = inputSpeed(this.termios);
    const bits = CSIZE | PARENB | PARODD;
    return (this.termios.cflag & bits) === (this.device.frame & bits) && baud > 0 && Math.abs(baud - this.device.baud) <= this.device.baud / 50;
  }

  /**
   * An open: the first makes a fresh line discipline and sets the receiver
   * talking; every open raises DTR/RTS (a non-blocking one included:
   * `stty -F` raises a DTR a program had dropped).
   */
  opened(file: File<TtyPort>): void {
    file.private = { hungUp: false } satisfies TtyFile;
    if (this.files.size === 0) {
      this.ldisc.flushInput();
      this.ldisc.column = 0;
      if (this.device.source === 'nmea') this.startNmea();
    }
    this.raiseOut();
    this.files.add(file);
  }

  /**
   * tty_port_block_til_ready()'s "Indicate we are open": DTR and RTS up
   * unless the speed is B0, at a non-blocking open, and on each pass of a
   * blocking open's carrier wait (ttyOpen()).
   */
  raiseOut(): void {
    if ((this.termios.cflag & CBAUD) !== B0) this.setLines(this.lines | TIOCM_OUT);
  }

  /** The last close: the tty and its buffers go, DTR/RTS drop with HUPCL (tty_port_close()), exclusivity ends. */
  closed(file: File<TtyPort>): void {
    this.files.delete(file);
    if (this.files.size > 0) return;
    this.exclusive = false;
    this.ldisc.flushInput();
    this.tx.flush();
    this.rx.flush();
    this.stopNmea();
    if (this.termios.cflag & HUPCL) this.setLines(this.lines & ~TIOCM_OUT);
  }

  /** The device is removed: nothing moves on the line again. */
  remove(): void {
    this.stopNmea();
    this.rx.stop();
    this.tx.stop();
  }

  /** Bytes off the line into the port: dropped while nobody has it open or CREAD is off. */
  arrive(bytes: number[], sameLine: boolean): void {
    if (this.files.size === 0 || !(this.termios.cflag & CREAD)) return;
    this.icount.rx += bytes.length;
    let data = bytes;
    if (!sameLine && !this.inStep) {
      this.icount.frame += bytes.length;
      data = bytes.map(garble);
    }
    const before = this.ldisc.overruns;
    this.ldisc.receive(data, this.termios);
    this.icount.bufOverrun += this.ldisc.overruns - before;
    this.wake();
  }

  /** Bytes the port transmitted reach the device; a loopback sends them straight back. */
  transmitted(bytes: number[]): void {
    this.icount.tx += bytes.length;
    this.sentTotal += bytes.length;
    this.sent.push(...bytes);
    if (this.sent.length > WRITE_ROOM) this.sent.splice(0, this.sent.length - WRITE_ROOM);
    if (this.device.source === 'loopback') this.arrive(bytes, true);
    this.wake();
  }

  /** A break on the line, seen by the port (n_tty_receive_break). */
  receiveBreak(): void {
    if (this.files.size === 0) return;
    this.ldisc.receiveBreak(this.termios);
    this.wake();
  }

  /** Output is held by XOFF, TCOOFF, or CRTSCTS with CTS low. */
  updateHold(): void {
    this.tx.hold(this.stopped.xoff || this.stopped.tco || (!!(this.termios.cflag & CRTSCTS) && !(this.lines & TIOCM_CTS)));
  }

  setLines(lines: number): void {
    const changed = this.lines ^ lines;
    this.lines = lines;
    if (changed & TIOCM_OUT) this.inst.emit('tty_modem', { lines: lineNames(lines) });
    if (changed & TIOCM_CTS) this.icount.cts++;
    if (changed & TIOCM_DSR) this.icount.dsr++;
    if (changed & TIOCM_RI) this.icount.rng++;
    if (changed & TIOCM_CD) this.icount.dcd++;
    this.updateHold();
    this.wake();
  }

  /**
   * tty_set_termios() and the driver's set_termios: the speeds settled and
   * re-encoded, DTR/RTS dropped at B0 and raised when leaving it, the line
   * discipline told, flow control rechecked (a port leaving IXON restarts).
   */
  setTermios(wanted: Termios): void {
    const old = this.termios;
    const t = settle(wanted);
    this.termios = t;
    const wasB0 = (old.cflag & CBAUD) === B0;
    const isB0 = (t.cflag & CBAUD) === B0;
    if (isB0 && !wasB0) this.setLines(this.lines & ~TIOCM_OUT);
    else if (wasB0 && !isB0 && this.files.size > 0) this.setLines(this.lines | TIOCM_OUT);
    this.ldisc.setTermios(old, t);
    if (!(t.iflag & IXON)) this.stopped.xoff = false;
    this.updateHold();
    this.tx.kick();
    this.rx.kick();
    const words = (x: Termios): string => [x.iflag, x.oflag, x.cflag, x.lflag, x.ispeed, x.ospeed, ...x.cc].join();
    if (words(old) !== words(t)) this.inst.emit('tty_termios', this.termiosView());
    this.wake();
  }

  termiosView(): Record<string, unknown> {
    const t = this.termios;
    return {
      ispeed: inputSpeed(t),
      ospeed: outputSpeed(t),
      framing: framingName(t.cflag),
      canonical: (t.lflag & ICANON) !== 0,
      iflag: t.iflag,
      oflag: t.oflag,
      cflag: t.cflag,
      lflag: t.lflag,
      vmin: t.cc[VMIN],
      vtime: t.cc[VTIME],
    };
  }

  /** tty_vhangup() / __tty_hangup(): every open file gets hung_up_tty_fops; the buffers are flushed. */
  hangup(why: string): number {
    let n = 0;
    for (const f of this.files) {
      const p = f.private as TtyFile;
      if (!p.hungUp) {
        p.hungUp = true;
        n++;
      }
    }
    this.ldisc.flushInput();
    this.tx.flush();
    this.inst.emit('tty_hangup', { files: n, why });
    this.wake();
    return n;
  }

  /**
   * The NMEA receiver talks while the port is open: a burst of sentences
   * at the start of every interval (receivers report on the second). What
   * it says while nobody has the port open is lost anyway, so it says
   * nothing then, and an idle daemon keeps no timer.
   */
  private startNmea(): void {
    const next = (): number => this.device.intervalMs - (Date.now() % this.device.intervalMs);
    const tick = (): void => {
      this.rx.push(Buffer.from(nmeaBurst(this.fix, new Date()), 'latin1'));
      this.nmeaTimer = setTimeout(tick, next());
    };
    this.nmeaTimer = setTimeout(tick, next());
  }

  private stopNmea(): void {
    if (this.nmeaTimer) clearTimeout(this.nmeaTimer);
    this.nmeaTimer = null;
  }
}
