/**
 * The chips on the emulated bus, as they behave on the wire: each sees the
 * address phase of every START addressed to it (and may NACK it), the
 * bytes the master writes, the bytes it reads, repeated STARTs and the
 * STOP. All three take the first byte written after their address as a
 * pointer (an EEPROM's word address, an LM75's pointer register, a
 * register number), as such chips do, so the same SMBus transactions
 * reach them all (docs/models.md#i2c).
 */
import { checkField, checkValues, defineSchema, SchemaError, type Values } from '../../core/index.js';

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

/** Hex bytes, at most `max` of them; `what` names the field in the error. */
export function hexBytes(what: string, field: string, value: string, max: number): Buffer {
  const b = Buffer.from(value, 'hex');
  if (b.length > max) throw new SchemaError(`${what} ${field} holds ${b.length} bytes, at most ${max}`, field);
  return b;
}

/** A register number or byte value from JSON: a number, or a string in decimal or 0x hex (an object key). */
export const REG = { type: ['integer', 'string'], min: 0, max: 0xff, description: 'a register (or byte): 0 to 255, a number or a string in decimal or 0x hex' } as const;

export function regNumber(what: string, field: string, value: unknown): number {
  const n = typeof value === 'string' && /^(0x[0-9a-fA-F]+|\d+)$/.test(value) ? Number(value) : value;
  return checkField(what, field, { ...REG, type: 'integer' }, n);
}

const CELSIUS = { type: 'number', min: -55, max: 125 } as const;
const COMMON = {
  type: { type: 'string', enum: CHIP_TYPES, required: true, description: 'eeprom (an AT24), lm75, or regs (a register map)' },
  // i2c_check_7bit_addr_validity_strict(): 0x08..0x77; a 10-bit address 0..0x3ff.
  addr: { type: 'integer', min: 0, max: 0x3ff, required: true, description: 'the address: 0x08 to 0x77, or 0 to 0x3ff with tenBit' },
  tenBit: { type: 'boolean', default: false, description: 'a 10-bit address' },
  driver: { type: 'string', description: 'a kernel driver bound to it: I2C_SLAVE fails EBUSY (i2cdetect prints UU)' },
  stretchMs: { type: 'integer', min: 0, max: 3_600_000, default: 0, description: 'clock stretching: ms every transfer to it takes' },
} as const;
/** Each chip type's fields, with the common ones: `chips` entries are checked against the schema of their `type`. */
export const CHIP_SCHEMAS = {
  eeprom: defineSchema({
    ...COMMON,
    pageSize: { type: 'integer', min: 1, max: 256, default: 8, description: 'bytes a write may cross before it wraps (a power of two)' },
    writeCycleMs: { type: 'integer', min: 0, max: 60_000, default: 0, description: 'ms the chip NACKs after a write' },
    contents: { type: 'string', format: 'hex', description: 'its first bytes, hex (at most 256)' },
  }),
  lm75: defineSchema({
    ...COMMON,
    celsius: { ...CELSIUS, default: 25, description: 'temperature, °C' },
    thyst: { ...CELSIUS, default: 75, description: 'hysteresis, °C' },
    tos: { ...CELSIUS, default: 80, description: 'overtemperature shutdown, °C' },
  }),
  regs: defineSchema({
    ...COMMON,
    registers: { type: 'object', description: '{reg: byte or hex bytes from reg on}' },
    autoIncrement: { type: 'boolean', default: true, description: 'the pointer moves on after each byte' },
  }),
} as const;

/** One entry of the `chips` option, checked against the schema of its type. */
export function parseChip(where: string, spec: unknown): Chip {
  const what = 'i2c: option';
  const type = checkField(what, `${where}.type`, COMMON.type, (spec as { type?: unknown } | null)?.type ?? null) as ChipType;
  const o = checkValues(`i2c: option ${where}:`, CHIP_SCHEMAS[type], spec) as Values<typeof CHIP_SCHEMAS.eeprom> & Values<typeof CHIP_SCHEMAS.lm75> & Values<typeof CHIP_SCHEMAS.regs>;
  const c: Common = {
    addr: o.tenBit ? o.addr : checkField(what, `${where}.addr`, { ...COMMON.addr, min: 0x08, max: 0x77 }, o.addr),
    tenBit: o.tenBit,
    driver: o.driver,
    stretchMs: o.stretchMs,
  };
  switch (type) {
    case 'eeprom': {
      if (o.pageSize & (o.pageSize - 1)) throw new SchemaError(`${what} ${where}.pageSize must be a power of two, got ${o.pageSize}`, `${where}.pageSize`);
      const contents = o.contents === undefined ? Buffer.alloc(0) : hexBytes(what, `${where}.contents`, o.contents, 256);
      return new Eeprom(c, o.pageSize, o.writeCycleMs, contents);
    }
    case 'lm75':
      return new Lm75(c, o.celsius, o.thyst, o.tos);
    case 'regs': {
      const regs = Buffer.alloc(256);
      for (const [key, value] of Object.entries(o.registers ?? {})) {
        const reg = regNumber(what, `${where}.registers`, key);
        const field = `${where}.registers[${key}]`;
        const bytes =
          typeof value === 'number'
            ? Buffer.from([regNumber(what, field, value)])
            : hexBytes(what, field, checkField(what, field, { type: 'string', format: 'hex', description: '' }, value), 256);
        bytes.forEach((b, i) => (regs[(reg + i) & 0xff] = b));
      }
      return new Registers(c, regs, o.autoIncrement);
    }
  }
}
