/**
 * The chips on the emulated bus, as they behave on the wire: each sees the
 * address phase of every START addressed to it (and may NACK it), the
 * bytes the master writes, the bytes it reads, repeated STARTs and the
 * STOP. All three take the first byte written after their address as a
 * pointer (an EEPROM's word address, an LM75's pointer register, a
 * register number), as such chips do, so the same SMBus transactions
 * reach them all (docs/models.md#i2c).
 */
import { Errno } from '../../errno.js';
import { parseOptions } from '../options.js';
import { intOption } from '../util.js';

export type ChipType = 'eeprom' | 'lm75' | 'regs';
export const CHIP_TYPES: readonly ChipType[] = ['eeprom', 'lm75', 'regs'];

/** What one write phase put into effect: the pointer it started at and the data bytes after it. */
export interface ChipWrite {
  reg: number;
  bytes: number[];
}

interface Common {
  addr: number;
  tenBit: boolean;
  driver: string | undefined;
  stretchMs: number;
}

/**
 * A chip with a pointer register: the first byte of a write sets it, the
 * bytes after it are data. start() (a repeated START) and stop() end a
 * write phase and answer what it put into effect.
 */
export abstract class Chip {
  abstract readonly type: ChipType;
  readonly addr: number;
  readonly tenBit: boolean;
  /** A kernel driver bound to this address: I2C_SLAVE fails EBUSY (i2cdetect prints UU). */
  readonly driver: string | undefined;
  /** How long the chip holds SCL low in each transfer it is addressed in (clock stretching). */
  stretchMs: number;
  private phase: 'idle' | 'pointer' | 'data' = 'idle';
  private reg = 0;
  private written: number[] = [];

  constructor(c: Common) {
    this.addr = c.addr;
    this.tenBit = c.tenBit;
    this.driver = c.driver;
    this.stretchMs = c.stretchMs;
  }

  /** The address phase of a START or repeated START for this chip; false NACKs it. */
  select(read: boolean): boolean {
    if (this.busy()) return false;
    this.phase = read ? 'idle' : 'pointer';
    if (read) this.beginRead();
    return true;
  }

  write(byte: number): void {
    if (this.phase === 'pointer') {
      this.reg = byte;
      this.setPointer(byte);
      this.phase = 'data';
    } else if (this.phase === 'data') {
      this.store(byte);
      this.written.push(byte);
    }
  }

  abstract read(): number;

  /** A repeated START after this chip was addressed. */
  start(): ChipWrite | null {
    return this.endWrite(false);
  }

  /** STOP. */
  stop(): ChipWrite | null {
    return this.endWrite(true);
  }

  private endWrite(stop: boolean): ChipWrite | null {
    const w = this.written.length > 0 ? { reg: this.reg, bytes: this.written } : null;
    this.written = [];
    this.phase = 'idle';
    return this.settle(w, stop);
  }

  protected busy(): boolean {
    return false;
  }

  protected beginRead(): void {}

  /** The write phase ended: what took effect (an EEPROM commits its page only at STOP). */
  protected settle(w: ChipWrite | null, _stop: boolean): ChipWrite | null {
    return w;
  }

  protected abstract setPointer(byte: number): void;
  protected abstract store(byte: number): void;
  /** The chip's memory or registers from `reg`, for the peek action; no pointer moves. */
  abstract peek(reg: number, length: number | undefined): Buffer;
  /** Stores bytes from `reg` behind the bus's back (the poke action). */
  abstract poke(reg: number, bytes: Buffer): void;

  describe(): Record<string, unknown> {
    return {
      type: this.type,
      addr: this.addr,
      ...(this.tenBit ? { tenBit: true } : {}),
      ...(this.driver ? { driver: this.driver } : {}),
      stretchMs: this.stretchMs,
    };
  }
}

/** `length` bytes of `mem` from `at`, wrapping at its end. */
function wrapped(mem: Buffer, at: number, length: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => mem[(at + i) % mem.length]!));
}

/**
 * A 24c02: 256 bytes in 8-byte pages. A write's first byte is the word
 * address; data bytes fill the page buffer, the address rolling over
 * within the page, and are written at STOP (a repeated START drops them).
 * During the write cycle that follows the chip NACKs its address (the
 * "acknowledge polling" at24 does). Reads are sequential across the whole
 * chip, wrapping at its end.
 */
export class Eeprom extends Chip {
  readonly type = 'eeprom';
  readonly mem = Buffer.alloc(256, 0xff);
  private pointer = 0;
  private pending = new Map<number, number>();
  private busyUntil = 0;

  constructor(
    c: Common,
    readonly pageSize: number,
    readonly writeCycleMs: number,
    contents: Buffer,
  ) {
    super(c);
    contents.copy(this.mem);
  }

  protected override busy(): boolean {
    return performance.now() < this.busyUntil;
  }

  protected setPointer(byte: number): void {
    this.pointer = byte;
  }

  protected store(byte: number): void {
    this.pending.set(this.pointer, byte);
    const page = this.pointer & ~(this.pageSize - 1);
    this.pointer = page | ((this.pointer + 1) & (this.pageSize - 1));
  }

  read(): number {
    const b = this.mem[this.pointer]!;
    this.pointer = (this.pointer + 1) % this.mem.length;
    return b;
  }

  protected override settle(w: ChipWrite | null, stop: boolean): ChipWrite | null {
    const pending = this.pending;
    this.pending = new Map();
    if (!stop || pending.size === 0) return null;
    for (const [at, b] of pending) this.mem[at] = b;
    this.busyUntil = performance.now() + this.writeCycleMs;
    return w;
  }

  peek(reg: number, length: number | undefined): Buffer {
    return wrapped(this.mem, reg, length ?? this.mem.length);
  }

  poke(reg: number, bytes: Buffer): void {
    bytes.forEach((b, i) => (this.mem[(reg + i) % this.mem.length] = b));
  }

  override describe(): Record<string, unknown> {
    return { ...super.describe(), pageSize: this.pageSize, writeCycleMs: this.writeCycleMs };
  }
}

/* LM75 pointer register values */
const LM75_TEMP = 0;
const LM75_CONF = 1;
const LM75_THYST = 2;
const LM75_TOS = 3;

/** °C as an LM75 register: 9-bit two's complement in 0.5 °C steps, in bits 15..7, clamped to -55..125 °C. */
export function lm75Raw(celsius: number): number {
  const halves = Math.max(-110, Math.min(250, Math.round(celsius * 2)));
  return (halves << 7) & 0xffff;
}

export function lm75Celsius(raw: number): number {
  return ((raw << 16) >> 16) / 256;
}

/**
 * An LM75: the pointer register's low two bits pick temperature (read
 * only), configuration (one byte), T_HYST or T_OS (two bytes, MSB first:
 * the bytes of an SMBus word read arrive swapped, as on the real chip).
 * Reading past a register's end repeats it; the pointer does not move.
 */
export class Lm75 extends Chip {
  readonly type = 'lm75';
  /** temp, thyst, tos as 16-bit register values; conf in its own byte. */
  readonly regs = [0, 0, 0, 0];
  private pointer = LM75_TEMP;
  private index = 0;

  constructor(c: Common, celsius: number, thyst: number, tos: number) {
    super(c);
    this.regs[LM75_TEMP] = lm75Raw(celsius);
    this.regs[LM75_THYST] = lm75Raw(thyst);
    this.regs[LM75_TOS] = lm75Raw(tos);
  }

  get celsius(): number {
    return lm75Celsius(this.regs[LM75_TEMP]!);
  }

  set celsius(c: number) {
    this.regs[LM75_TEMP] = lm75Raw(c);
  }

  private bytesOf(reg: number): number[] {
    const v = this.regs[reg]!;
    return reg === LM75_CONF ? [v] : [v >> 8, v & 0xff];
  }

  protected setPointer(byte: number): void {
    this.pointer = byte & 3;
    this.index = 0;
  }

  protected override beginRead(): void {
    this.index = 0;
  }

  protected store(byte: number): void {
    const p = this.pointer;
    const i = this.index++;
    if (p === LM75_CONF && i === 0) this.regs[p] = byte & 0x1f;
    else if ((p === LM75_THYST || p === LM75_TOS) && i < 2) {
      // Only the 9 bits D15..D7 exist.
      const v = this.regs[p]!;
      this.regs[p] = i === 0 ? (byte << 8) | (v & 0x80) : (v & 0xff00) | (byte & 0x80);
    }
  }

  read(): number {
    const bytes = this.bytesOf(this.pointer);
    return bytes[this.index++ % bytes.length]!;
  }

  peek(reg: number): Buffer {
    return Buffer.from(this.bytesOf(reg & 3));
  }

  poke(reg: number, bytes: Buffer): void {
    const p = reg & 3;
    this.regs[p] =
      p === LM75_CONF ? bytes[0]! : bytes.length >= 2 ? bytes.readUInt16BE(0) & 0xff80 : (bytes[0]! << 8) | (this.regs[p]! & 0x80);
  }

  override describe(): Record<string, unknown> {
    return {
      ...super.describe(),
      celsius: this.celsius,
      config: this.regs[LM75_CONF],
      thyst: lm75Celsius(this.regs[LM75_THYST]!),
      tos: lm75Celsius(this.regs[LM75_TOS]!),
    };
  }
}

/** 256 8-bit registers behind an 8-bit pointer that moves on each byte read or written (unless autoIncrement is off). */
export class Registers extends Chip {
  readonly type = 'regs';
  private pointer = 0;

  constructor(
    c: Common,
    readonly regs: Buffer,
    readonly autoIncrement: boolean,
  ) {
    super(c);
  }

  private step(): void {
    if (this.autoIncrement) this.pointer = (this.pointer + 1) & 0xff;
  }

  protected setPointer(byte: number): void {
    this.pointer = byte;
  }

  protected store(byte: number): void {
    this.regs[this.pointer] = byte;
    this.step();
  }

  read(): number {
    const b = this.regs[this.pointer]!;
    this.step();
    return b;
  }

  peek(reg: number, length: number | undefined): Buffer {
    return wrapped(this.regs, reg, length ?? 1);
  }

  poke(reg: number, bytes: Buffer): void {
    bytes.forEach((b, i) => (this.regs[(reg + i) & 0xff] = b));
  }

  override describe(): Record<string, unknown> {
    return { ...super.describe(), autoIncrement: this.autoIncrement };
  }
}

/** Pairs of hex digits as bytes; `what` names the field in the error. */
export function hexBytes(what: string, value: unknown, max: number): Buffer {
  if (typeof value !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(value)) throw new Errno('EINVAL', `${what} must be pairs of hex digits`);
  const b = Buffer.from(value, 'hex');
  if (b.length > max) throw new Errno('EINVAL', `${what} holds ${b.length} bytes, at most ${max}`);
  return b;
}

/** A register number or byte value from JSON: a number, or a string in decimal or 0x hex (an object key). */
export function regNumber(what: string, value: unknown): number {
  const n = typeof value === 'string' && /^(0x[0-9a-fA-F]+|\d+)$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xff)
    throw new Errno('EINVAL', `${what}: a register or a byte is 0 to 255 (0xff), got ${JSON.stringify(value)}`);
  return n;
}

const COMMON_SPEC = { type: 'string', addr: 'number', tenBit: 'boolean', driver: 'string', stretchMs: 'number' } as const;
const TYPE_SPEC = {
  eeprom: { pageSize: 'number', writeCycleMs: 'number', contents: 'string' },
  lm75: { celsius: 'number', thyst: 'number', tos: 'number' },
  regs: { registers: 'object', autoIncrement: 'boolean' },
} as const;

/**
 * One entry of the `chips` option. 7-bit addresses are 0x08..0x77, as
 * i2c_check_7bit_addr_validity_strict() accepts them; 10-bit ones
 * 0..0x3ff.
 */
export function parseChip(where: string, spec: unknown): Chip {
  const type = (spec as { type?: unknown } | null)?.type;
  if (!CHIP_TYPES.includes(type as ChipType))
    throw new Errno('EINVAL', `${where}.type must be one of ${CHIP_TYPES.join(', ')}, got ${JSON.stringify(type)}`);
  const t = type as ChipType;
  const o = parseOptions(`i2c: ${where}`, spec, { ...COMMON_SPEC, ...TYPE_SPEC[t] }) as Record<string, unknown>;
  const tenBit = (o.tenBit as boolean | undefined) ?? false;
  if (o.addr === undefined) throw new Errno('EINVAL', `${where}.addr is required`);
  const c: Common = {
    addr: tenBit
      ? intOption('i2c', `${where}.addr`, o.addr as number, 0, 0, 0x3ff)
      : intOption('i2c', `${where}.addr`, o.addr as number, 0, 0x08, 0x77),
    tenBit,
    driver: o.driver as string | undefined,
    stretchMs: intOption('i2c', `${where}.stretchMs`, o.stretchMs as number | undefined, 0, 0, 3_600_000),
  };
  switch (t) {
    case 'eeprom': {
      const pageSize = intOption('i2c', `${where}.pageSize`, o.pageSize as number | undefined, 8, 1, 256);
      if (pageSize & (pageSize - 1)) throw new Errno('EINVAL', `i2c: ${where}.pageSize must be a power of two, got ${pageSize}`);
      const contents = o.contents === undefined ? Buffer.alloc(0) : hexBytes(`i2c: ${where}.contents`, o.contents, 256);
      return new Eeprom(
        c,
        pageSize,
        intOption('i2c', `${where}.writeCycleMs`, o.writeCycleMs as number | undefined, 0, 0, 60_000),
        contents,
      );
    }
    case 'lm75': {
      const celsius = (key: string, fallback: number): number => {
        const v = (o[key] as number | undefined) ?? fallback;
        if (v < -55 || v > 125) throw new Errno('EINVAL', `i2c: ${where}.${key} must be from -55 to 125 (°C), got ${v}`);
        return v;
      };
      return new Lm75(c, celsius('celsius', 25), celsius('thyst', 75), celsius('tos', 80));
    }
    case 'regs': {
      const regs = Buffer.alloc(256);
      const given = (o.registers ?? {}) as Record<string, unknown>;
      if (typeof given !== 'object' || Array.isArray(given)) throw new Errno('EINVAL', `i2c: ${where}.registers must be an object`);
      for (const [key, value] of Object.entries(given)) {
        const reg = regNumber(`i2c: ${where}.registers`, key);
        const bytes =
          typeof value === 'number'
            ? Buffer.from([regNumber(`i2c: ${where}.registers[${key}]`, value)])
            : hexBytes(`i2c: ${where}.registers[${key}]`, value, 256);
        bytes.forEach((b, i) => (regs[(reg + i) & 0xff] = b));
      }
      return new Registers(c, regs, (o.autoIncrement as boolean | undefined) ?? true);
    }
  }
}
