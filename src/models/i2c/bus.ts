/**
 * The adapter and its bus: i2c_transfer() as drivers/i2c/i2c-core-base.c
 * and a bus driver carry out a list of messages. The bus is locked for a
 * whole transfer (i2c_lock_bus()); each message is a START or repeated
 * START, the address phase, then its bytes; one STOP ends the transfer
 * (or follows a message with I2C_M_STOP). An address nobody acknowledges
 * ends the transfer with the adapter's NACK errno (ENXIO, as
 * Documentation/i2c/fault-codes.rst asks of bus drivers; i2c-bcm2835
 * answers EREMOTEIO). A chip that stretches the clock longer than the
 * adapter's timeout (I2C_TIMEOUT) makes the transfer fail ETIMEDOUT.
 */
import { sleep } from '../../awaitable.js';
import { Errno } from '../../errno.js';
import { I2C_M_RD, I2C_M_RECV_LEN, I2C_M_STOP, I2C_M_TEN, I2C_SMBUS_BLOCK_MAX } from './abi.js';
import type { Chip, ChipWrite } from './chips.js';

/** A message as the bus carries it: `buf` holds what is written, or receives what is read (`len` bytes). */
export interface I2cMsg {
  addr: number;
  flags: number;
  len: number;
  buf: Buffer;
}

/** A write a chip put into effect during a transfer, for the i2c_write event. */
export interface BusWrite extends ChipWrite {
  addr: number;
}

const key = (addr: number, tenBit: boolean): number => (tenBit ? 0x8000 : 0) | addr;

/**
 * What i2c-dev reaches through its client's adapter (client->adapter):
 * the struct i2c_adapter's fields, the clients bound on it, and its bus
 * driver's transfer. The live bus is one; an adapter whose hardware is
 * gone another (gone.ts).
 */
export interface I2cAdapter {
  /** What I2C_FUNCS answers: i2c_get_functionality(). */
  readonly functionality: number;
  /**
   * What the bus driver's methods (adap->algo) can do, in functionality
   * bits: I2C_FUNC_I2C for a master_xfer; without it an SMBus controller's
   * smbus_xfer runs the transactions its bits name. The transfer paths
   * check these; they are the live adapter's functionality, and a pulled
   * bridge keeps them (gone.ts), whatever I2C_FUNCS answers then.
   */
  readonly algo: number;
  /** adap->retries (I2C_RETRIES). */
  retries: number;
  /** adap->timeout in ms (I2C_TIMEOUT). */
  timeoutMs: number;
  /** Whether a kernel driver holds the address (I2C_SLAVE's i2cdev_check_addr()). */
  claimed(addr: number): boolean;
  /** i2c_transfer(): the number of messages, or an Errno. */
  transfer(msgs: I2cMsg[], signal: AbortSignal): number | Promise<number>;
}

export class I2cBus implements I2cAdapter {
  readonly chips = new Map<number, Chip>();
  /** adap->retries: transfers are retried on EAGAIN (lost arbitration), which this bus never has. */
  retries = 0;
  /** adap->timeout in ms: HZ, as i2c_register_adapter() sets it. */
  timeoutMs = 1000;
  transfers = 0;
  nacks = 0;
  private held = false;
  private readonly waiters: Array<() => void> = [];

  /** The adapter's name (sysfs `name`). */
  readonly name: string;
  /** What I2C_FUNCS answers. */
  readonly functionality: number;
  /** A live adapter's driver does what it advertises. */
  get algo(): number {
    return this.functionality;
  }
  /** What a NACKed address fails with. */
  readonly nack: { name: string; errno: number };
  private readonly onWrite: (w: BusWrite) => void;

  constructor(o: {
    name: string;
    functionality: number;
    nack: { name: string; errno: number };
    chips: readonly Chip[];
    onWrite: (w: BusWrite) => void;
  }) {
    this.name = o.name;
    this.functionality = o.functionality;
    this.nack = o.nack;
    this.onWrite = o.onWrite;
    for (const c of o.chips) this.chips.set(key(c.addr, c.tenBit), c);
  }

  /** The chip a message addresses: i2c_8bit_addr_from_msg() keeps 7 bits of a 7-bit address. */
  private chipFor(m: I2cMsg): Chip | undefined {
    const ten = (m.flags & I2C_M_TEN) !== 0;
    return this.chips.get(key(ten ? m.addr & 0x3ff : m.addr & 0x7f, ten));
  }

  /** Transfers waiting for the bus. */
  get queued(): number {
    return this.waiters.length;
  }

  /**
   * An address a kernel driver has bound, for I2C_SLAVE (i2cdev_check_addr()):
   * i2cdev_check() compares the bound client's addr with the number asked
   * for, not its I2C_CLIENT_TEN flag, so a 10-bit client at 0x23 makes
   * 7-bit 0x23 busy too, and the other way round.
   */
  claimed(addr: number): boolean {
    return [...this.chips.values()].some((c) => c.addr === addr && c.driver !== undefined);
  }

  /**
   * i2c_transfer(): the number of messages, or an Errno. Synchronous when
   * the bus is free and nobody addressed stretches the clock.
   */
  transfer(msgs: I2cMsg[], signal: AbortSignal): number | Promise<number> {
    const stretch = Math.max(0, ...msgs.map((m) => this.chipFor(m)?.stretchMs ?? 0));
    if (!this.held && stretch === 0) {
      this.held = true;
      try {
        return this.run(msgs);
      } finally {
        this.release();
      }
    }
    return this.transferLocked(msgs, stretch, signal);
  }

  private async transferLocked(msgs: I2cMsg[], stretch: number, signal: AbortSignal): Promise<number> {
    await this.lock(signal);
    try {
      if (stretch > 0) {
        await sleep(Math.min(stretch, this.timeoutMs), signal);
        if (stretch > this.timeoutMs) throw new Errno('ETIMEDOUT', 'i2c: a chip held the clock longer than the adapter timeout');
      }
      return this.run(msgs);
    } finally {
      this.release();
    }
  }

  /** i2c_lock_bus(): one transfer at a time, in order of arrival. */
  private lock(signal: AbortSignal): Promise<void> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const go = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        this.waiters.splice(this.waiters.indexOf(go), 1);
        reject(signal.reason);
      };
      this.waiters.push(go);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }

  /** The messages on the wire, the bus held. */
  private run(msgs: I2cMsg[]): number {
    this.transfers++;
    const touched = new Set<Chip>();
    const writes: BusWrite[] = [];
    const ended = (c: Chip, w: ChipWrite | null): void => {
      if (w) writes.push({ addr: c.addr, ...w });
    };
    try {
      for (const m of msgs) {
        for (const c of touched) ended(c, c.start());
        const chip = this.chipFor(m);
        const read = (m.flags & I2C_M_RD) !== 0;
        if (!chip || !chip.select(read)) {
          this.nacks++;
          throw new Errno(this.nack.errno, `i2c: no ACK from address 0x${m.addr.toString(16)}`);
        }
        touched.add(chip);
        if (read) readInto(chip, m);
        else for (let i = 0; i < m.len; i++) chip.write(m.buf[i]!);
        if (m.flags & I2C_M_STOP) {
          for (const c of touched) ended(c, c.stop());
          touched.clear();
        }
      }
      return msgs.length;
    } finally {
      for (const c of touched) ended(c, c.stop());
      for (const w of writes) this.onWrite(w);
    }
  }
}

/**
 * A read message. With I2C_M_RECV_LEN the first byte the chip sends is
 * the count of bytes that follow (an SMBus block): the bus driver adds it
 * to `len` (which counted the extra bytes the caller wants: the count byte
 * itself, and a PEC), and refuses 0 or more than I2C_SMBUS_BLOCK_MAX.
 */
function readInto(chip: Chip, m: I2cMsg): void {
  let i = 0;
  if (m.flags & I2C_M_RECV_LEN) {
    const count = chip.read();
    if (count === 0 || count > I2C_SMBUS_BLOCK_MAX) throw new Errno('EPROTO', `i2c: block length ${count} from 0x${m.addr.toString(16)}`);
    m.buf[i++] = count;
    m.len += count;
  }
  for (; i < m.len; i++) m.buf[i] = chip.read();
}
