/**
 * Terminal settings as the kernel keeps them (struct ktermios) and the user
 * structures its ioctls copy: struct termios (TCGETS, 36 bytes), struct
 * termios2 (TCGETS2, 44 bytes, with the speeds), struct termio (TCGETA,
 * 18 bytes), and the speed rules of drivers/tty/tty_baudrate.c. Values are
 * the x86_64 ones of include/uapi/asm-generic/termbits.h.
 */

/* c_cc indices. */
export const VINTR = 0;
export const VQUIT = 1;
export const VERASE = 2;
export const VKILL = 3;
export const VEOF = 4;
export const VTIME = 5;
export const VMIN = 6;
export const VSTART = 8;
export const VSTOP = 9;
export const VSUSP = 10;
export const VEOL = 11;
export const VREPRINT = 12;
export const VDISCARD = 13;
export const VWERASE = 14;
export const VLNEXT = 15;
export const VEOL2 = 16;
export const NCCS = 19;
/** struct termio's c_cc length. */
const NCC = 8;

/* c_iflag */
export const IGNBRK = 0o1;
export const BRKINT = 0o2;
export const IGNPAR = 0o4;
export const PARMRK = 0o10;
export const INPCK = 0o20;
export const ISTRIP = 0o40;
export const INLCR = 0o100;
export const IGNCR = 0o200;
export const ICRNL = 0o400;
export const IUCLC = 0o1000;
export const IXON = 0o2000;
export const IXANY = 0o4000;

/* c_oflag */
export const OPOST = 0o1;
export const OLCUC = 0o2;
export const ONLCR = 0o4;
export const OCRNL = 0o10;
export const ONOCR = 0o20;
export const ONLRET = 0o40;
export const TABDLY = 0o14000;
export const XTABS = 0o14000;

/* c_cflag */
export const CBAUD = 0o10017;
export const B0 = 0;
export const B4800 = 0o14;
export const B9600 = 0o15;
export const B38400 = 0o17;
export const BOTHER = 0o10000;
export const CBAUDEX = 0o10000;
export const CSIZE = 0o60;
export const CS5 = 0;
export const CS6 = 0o20;
export const CS7 = 0o40;
export const CS8 = 0o60;
export const CSTOPB = 0o100;
export const CREAD = 0o200;
export const PARENB = 0o400;
export const PARODD = 0o1000;
export const HUPCL = 0o2000;
export const CLOCAL = 0o4000;
export const IBSHIFT = 16;
export const CRTSCTS = 0o20000000000;

/* c_lflag */
export const ISIG = 0o1;
export const ICANON = 0o2;
export const ECHO = 0o10;
export const ECHOE = 0o20;
export const ECHOK = 0o40;
export const ECHONL = 0o100;
export const NOFLSH = 0o200;
export const ECHOCTL = 0o1000;
export const ECHOKE = 0o4000;
export const IEXTEN = 0o100000;

export const TERMIOS_SIZE = 36;
export const TERMIOS2_SIZE = 44;
export const TERMIO_SIZE = 18;

export interface Termios {
  iflag: number;
  oflag: number;
  cflag: number;
  lflag: number;
  line: number;
  cc: Uint8Array;
  ispeed: number;
  ospeed: number;
}

/**
 * What a USB serial port starts with: tty_std_termios (include/linux/tty.h
 * INIT_C_CC), with drivers/usb/serial/usb-serial.c's c_cflag
 * B9600 | CS8 | CREAD | HUPCL | CLOCAL and 9600 baud both ways.
 */
export function usbSerialTermios(): Termios {
  const cc = new Uint8Array(NCCS);
  cc[VINTR] = 0x03;
  cc[VQUIT] = 0x1c;
  cc[VERASE] = 0x7f;
  cc[VKILL] = 0x15;
  cc[VEOF] = 0x04;
  cc[VMIN] = 1;
  cc[VSTART] = 0x11;
  cc[VSTOP] = 0x13;
  cc[VSUSP] = 0x1a;
  cc[VREPRINT] = 0x12;
  cc[VDISCARD] = 0x0f;
  cc[VWERASE] = 0x17;
  cc[VLNEXT] = 0x16;
  return {
    iflag: ICRNL | IXON,
    oflag: OPOST | ONLCR,
    cflag: B9600 | CS8 | CREAD | HUPCL | CLOCAL,
    lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
    line: 0,
    cc,
    ispeed: 9600,
    ospeed: 9600,
  };
}

export function copyTermios(t: Termios): Termios {
  return { ...t, cc: Uint8Array.from(t.cc) };
}

/** struct termios (TCGETS) or, with the speeds, struct termios2 (TCGETS2). */
export function encodeTermios(t: Termios, withSpeeds: boolean): Buffer {
  const b = Buffer.alloc(withSpeeds ? TERMIOS2_SIZE : TERMIOS_SIZE);
  b.writeUInt32LE(t.iflag >>> 0, 0);
  b.writeUInt32LE(t.oflag >>> 0, 4);
  b.writeUInt32LE(t.cflag >>> 0, 8);
  b.writeUInt32LE(t.lflag >>> 0, 12);
  b[16] = t.line;
  b.set(t.cc, 17);
  if (withSpeeds) {
    b.writeUInt32LE(t.ispeed >>> 0, 36);
    b.writeUInt32LE(t.ospeed >>> 0, 40);
  }
  return b;
}

/**
 * The new settings from a user struct termios (36 bytes: the speeds stay
 * those of `cur`, as user_termios_to_kernel_termios_1() leaves them) or
 * struct termios2 (44 bytes).
 */
export function decodeTermios(b: Buffer, cur: Termios): Termios {
  return {
    iflag: b.readUInt32LE(0),
    oflag: b.readUInt32LE(4),
    cflag: b.readUInt32LE(8),
    lflag: b.readUInt32LE(12),
    line: b[16]!,
    cc: Uint8Array.from(b.subarray(17, 17 + NCCS)),
    ispeed: b.length >= TERMIOS2_SIZE ? b.readUInt32LE(36) : cur.ispeed,
    ospeed: b.length >= TERMIOS2_SIZE ? b.readUInt32LE(40) : cur.ospeed,
  };
}

/** struct termio (TCGETA): the low 16 bits of each flag word and the first 8 c_cc. */
export function encodeTermio(t: Termios): Buffer {
  const b = Buffer.alloc(TERMIO_SIZE);
  b.writeUInt16LE(t.iflag & 0xffff, 0);
  b.writeUInt16LE(t.oflag & 0xffff, 2);
  b.writeUInt16LE(t.cflag & 0xffff, 4);
  b.writeUInt16LE(t.lflag & 0xffff, 6);
  b[8] = t.line;
  b.set(t.cc.subarray(0, NCC), 9);
  return b;
}

/** user_termio_to_kernel_termios(): SET_LOW_TERMIOS_BITS keeps each word's high half. */
export function decodeTermio(b: Buffer, cur: Termios): Termios {
  const low = (old: number, off: number): number => ((old & 0xffff0000) | b.readUInt16LE(off)) >>> 0;
  const cc = Uint8Array.from(cur.cc);
  cc.set(b.subarray(9, 9 + NCC), 0);
  return { ...cur, iflag: low(cur.iflag, 0), oflag: low(cur.oflag, 2), cflag: low(cur.cflag, 4), lflag: low(cur.lflag, 6), line: b[8]!, cc };
}

/* drivers/tty/tty_baudrate.c: baud_table[], and the CBAUD code of each entry. */
const BAUD_TABLE = [
  0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000,
  921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
];
const baudBits = (i: number): number => (i < 16 ? i : CBAUDEX | (i - 15));

function tableRate(cbaud: number): number {
  const i = cbaud & CBAUDEX ? (cbaud & ~CBAUDEX) + 15 : cbaud;
  return BAUD_TABLE[i] ?? 0;
}

/** tty_termios_baud_rate(): the output speed; BOTHER means c_ospeed. */
export function outputSpeed(t: Termios): number {
  const cbaud = t.cflag & CBAUD;
  return cbaud === BOTHER ? t.ospeed : tableRate(cbaud);
}

/** tty_termios_input_baud_rate(): CIBAUD, where B0 means "as output". */
export function inputSpeed(t: Termios): number {
  const cbaud = (t.cflag >>> IBSHIFT) & CBAUD;
  if (cbaud === B0) return outputSpeed(t);
  return cbaud === BOTHER ? t.ispeed : tableRate(cbaud);
}

/**
 * What set_termios() stores, given the settings a program asked for:
 * c_ispeed/c_ospeed loaded with the real speeds, then the driver's
 * tty_encode_baud_rate() (pl2303, ftdi_sio) re-encodes them, as
 * tty_termios_encode_baud_rate() does: a Bfoo request keeps the nearest
 * table entry within 2%, an exact BOTHER speed becomes its Bfoo, others
 * stay BOTHER; the input bits are set only when the speeds differ or a
 * program gave them.
 */
export function settle(t: Termios): Termios {
  const ibaud = inputSpeed(t);
  const obaud = outputSpeed(t);
  const ibinput = ((t.cflag >>> IBSHIFT) & CBAUD) !== B0;
  let oclose = Math.floor(obaud / 50);
  let iclose = Math.floor(ibaud / 50);
  if ((t.cflag & CBAUD) === BOTHER) {
    oclose = 0;
    if (!ibinput) iclose = 0;
  }
  if (((t.cflag >>> IBSHIFT) & CBAUD) === BOTHER) iclose = 0;
  let cflag = (t.cflag & ~CBAUD & ~(CBAUD << IBSHIFT)) >>> 0;
  let ofound = -1;
  let ifound = -1;
  BAUD_TABLE.forEach((rate, i) => {
    if (obaud - oclose <= rate && obaud + oclose >= rate) {
      cflag |= baudBits(i);
      ofound = i;
    }
    if (ibaud - iclose <= rate && ibaud + iclose >= rate) {
      ifound = i;
      if (!(ofound === i && !ibinput)) cflag |= baudBits(i) << IBSHIFT;
    }
  });
  if (ofound === -1) cflag |= BOTHER;
  if (ifound === -1 && (ibaud !== obaud || ibinput)) cflag |= BOTHER << IBSHIFT;
  return { ...t, cflag: cflag >>> 0, ispeed: ibaud, ospeed: obaud };
}

/** Bits on the wire per character: start, data, parity, stop. */
export function bitsPerChar(cflag: number): number {
  return 1 + 5 + ((cflag & CSIZE) >> 4) + (cflag & PARENB ? 1 : 0) + (cflag & CSTOPB ? 2 : 1);
}

/** A line setting as the two ends of a wire must agree on it: speed and frame. */
export interface LineSetting {
  baud: number;
  /** CSIZE | PARENB | PARODD | CSTOPB bits. */
  frame: number;
}

export const FRAME_BITS = CSIZE | PARENB | PARODD | CSTOPB;

/** "8N1", "7E2"...: a device's frame as cflag bits. */
export function parseFraming(text: string): number | null {
  const m = /^([5-8])([NEO])([12])$/.exec(text);
  if (!m) return null;
  const size = [CS5, CS6, CS7, CS8][Number(m[1]) - 5]!;
  const parity = m[2] === 'N' ? 0 : m[2] === 'E' ? PARENB : PARENB | PARODD;
  return size | parity | (m[3] === '2' ? CSTOPB : 0);
}
