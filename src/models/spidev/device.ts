/**
 * One SPI device and the emulated controller it hangs off, as the SPI core
 * (drivers/spi/spi.c) runs it for spidev: the settings spi_setup() accepts,
 * the checks __spi_validate() makes on a message, and the message itself
 * on the wire, a clock at a time, through the chip at this chip select,
 * taking the time the wire takes (docs/models.md#spidev).
 *
 * The controller: mode bits CPOL, CPHA, CS_HIGH, LSB_FIRST, 3WIRE, LOOP,
 * NO_CS and TX/RX DUAL and QUAD (octal bits are dropped, as spi_setup()
 * drops unsupported multi-wire bits; anything else is EINVAL), 4 to 32
 * bits per word, 1 kHz to 50 MHz.
 */
import { sleep } from '../../awaitable.js';
import { Errno } from '../../errno.js';
import {
  eshutdown,
  SPI_3WIRE,
  SPI_CPHA,
  SPI_CPOL,
  SPI_CS_HIGH,
  SPI_CS_WORD,
  SPI_LOOP,
  SPI_LSB_FIRST,
  SPI_NBITS_DUAL,
  SPI_NBITS_QUAD,
  SPI_NBITS_SINGLE,
  SPI_NO_CS,
  SPI_RX_DUAL,
  SPI_RX_OCTAL,
  SPI_RX_QUAD,
  SPI_TX_DUAL,
  SPI_TX_OCTAL,
  SPI_TX_QUAD,
} from './abi.js';
import type { IocTransfer } from './abi.js';
import type { Chip } from './chips.js';

export const CONTROLLER_MODE_BITS =
  SPI_CPHA |
  SPI_CPOL |
  SPI_CS_HIGH |
  SPI_LSB_FIRST |
  SPI_3WIRE |
  SPI_LOOP |
  SPI_NO_CS |
  SPI_TX_DUAL |
  SPI_TX_QUAD |
  SPI_RX_DUAL |
  SPI_RX_QUAD;
export const CONTROLLER_MIN_HZ = 1000;
export const CONTROLLER_MAX_HZ = 50_000_000;
export const MIN_BITS_PER_WORD = 4;
export const MAX_BITS_PER_WORD = 32;
/** spi_transfer_one_message()'s CS-inactive time between transfers when cs_change sets none. */
const CS_CHANGE_DELAY_US = 10;
const MULTI_WIRE = SPI_TX_DUAL | SPI_TX_QUAD | SPI_TX_OCTAL | SPI_RX_DUAL | SPI_RX_QUAD | SPI_RX_OCTAL;

/** What spi_setup() applies to: spi->mode, spi->bits_per_word, spi->max_speed_hz. */
export interface Settings {
  mode: number;
  bitsPerWord: number;
  maxSpeedHz: number;
}

/** A transfer as the SPI core gets it: the caller's fields, with the tx data copied in (or none) and whether rx is wanted. */
export interface Transfer extends Omit<IocTransfer, 'txBuf' | 'rxBuf'> {
  tx: Buffer | null;
  rx: boolean;
}

export interface Counters {
  messages: number;
  transfers: number;
  bytesOut: number;
  bytesIn: number;
  /** The time the messages took on the wire, in microseconds, by their clocks and delays. */
  wireUs: number;
}

const popcount = (n: number): number => {
  let c = 0;
  for (let v = n >>> 0; v; v &= v - 1) c++;
  return c;
};

/** 1, 2 or 4 bytes per word in memory (__spi_validate()'s w_size). */
export const wordSize = (bits: number): number => (bits <= 8 ? 1 : bits <= 16 ? 2 : 4);

/**
 * spi_setup(): the settings as the device would hold them, or EINVAL.
 * Unsupported multi-wire bits are dropped (the kernel warns "ignoring
 * unsupported mode bits"), other unsupported bits refused; bits per word
 * 0 means 8; a speed of 0 or above the controller's is the controller's.
 */
export function setup(want: Settings): Settings {
  let mode = want.mode;
  if (popcount(mode & (SPI_TX_DUAL | SPI_TX_QUAD)) > 1 || popcount(mode & (SPI_RX_DUAL | SPI_RX_QUAD)) > 1) throw new Errno('EINVAL');
  if (mode & SPI_3WIRE && mode & MULTI_WIRE) throw new Errno('EINVAL');
  const bad = mode & ~(CONTROLLER_MODE_BITS | SPI_CS_WORD);
  mode &= ~(bad & MULTI_WIRE);
  if (bad & ~MULTI_WIRE) throw new Errno('EINVAL');
  const bitsPerWord = want.bitsPerWord || 8;
  if (bitsPerWord < MIN_BITS_PER_WORD || bitsPerWord > MAX_BITS_PER_WORD) throw new Errno('EINVAL');
  const maxSpeedHz = !want.maxSpeedHz || want.maxSpeedHz > CONTROLLER_MAX_HZ ? CONTROLLER_MAX_HZ : want.maxSpeedHz;
  return { mode, bitsPerWord, maxSpeedHz };
}

/** Whether `nbits` lines may carry a direction given the device's DUAL and QUAD mode bits. */
function nbitsAllowed(nbits: number, mode: number, dual: number, quad: number): boolean {
  if (nbits === SPI_NBITS_SINGLE) return true;
  if (nbits === SPI_NBITS_DUAL) return (mode & (dual | quad)) !== 0;
  if (nbits === SPI_NBITS_QUAD) return (mode & quad) !== 0;
  return false;
}

/** A transfer with every default filled in, as __spi_validate() leaves it. */
interface Settled extends Transfer {
  speedHz: number;
  bitsPerWord: number;
}

export class SpiDevice {
  settings: Settings;
  /** spidev->speed_hz: the default speed of transfers; SPI_IOC_WR_MAX_SPEED_HZ sets it, the last close resets it. */
  speedHz: number;
  /** Open files (spidev->users). */
  users = 0;
  readonly counters: Counters = { messages: 0, transfers: 0, bytesOut: 0, bytesIn: 0, wireUs: 0 };
  /** spidev->spi == NULL: spidev_remove() ran. */
  private removed = false;
  private readonly removal = new AbortController();
  /** spidev->spi_lock: one call at a time, in order. */
  private lockTail: Promise<void> = Promise.resolve();
  /** When the wire is free again (performance.now() ms): what messages have not yet waited for. */
  private busyUntil = 0;
  /** Whether the chip select is asserted (a message ended with cs_change keeps it so). */
  private csActive = false;

  constructor(
    readonly bufsiz: number,
    readonly chip: Chip,
    maxSpeedHz: number,
  ) {
    this.settings = setup({ mode: 0, bitsPerWord: 0, maxSpeedHz });
    this.speedHz = this.settings.maxSpeedHz;
  }

  /**
   * Runs `fn` holding the device (spidev's spi_lock), then checks what
   * every spidev op checks first: a removed device is ESHUTDOWN. Waiting
   * for the lock, like the transfer itself, cannot be interrupted
   * (mutex_lock(), spi_sync()'s wait_for_completion()).
   */
  async locked<T>(fn: () => Promise<T> | T): Promise<T> {
    const before = this.lockTail;
    let unlock!: () => void;
    this.lockTail = new Promise((resolve) => (unlock = resolve));
    await before;
    try {
      if (this.removed) throw eshutdown();
      return await fn();
    } finally {
      unlock();
    }
  }

  /** spidev_remove(): later calls fail ESHUTDOWN; a message still on the wire ends now. */
  remove(): void {
    this.removed = true;
    this.removal.abort(eshutdown());
  }

  /** spidev_release() of the last open file: the default speed goes back to the device's. Answers whether it changed. */
  lastClosed(): boolean {
    const changed = this.speedHz !== this.settings.maxSpeedHz;
    this.speedHz = this.settings.maxSpeedHz;
    return changed;
  }

  /**
   * spi_sync() of one message: __spi_validate()'s checks (EINVAL), then
   * the transfers on the wire through the chip, then the wait for the
   * time they took. Answers what each transfer received (empty for
   * transfers that receive nothing).
   */
  async transfer(transfers: readonly Transfer[]): Promise<Buffer[]> {
    const settled = this.validate(transfers);
    let us = 0;
    const received = settled.map((t, i) => {
      const last = i === settled.length - 1;
      if (i === 0) this.setCs(true);
      const rx = this.shift(t);
      us += this.wireTime(t) + t.delayUsecs;
      if (t.csChange && !last) {
        this.setCs(false);
        us += CS_CHANGE_DELAY_US;
        this.setCs(true);
      }
      if (last && !t.csChange) this.setCs(false);
      return rx;
    });
    const c = this.counters;
    c.messages++;
    c.transfers += settled.length;
    c.bytesOut += settled.reduce((n, t) => n + (t.tx ? t.len : 0), 0);
    c.bytesIn += settled.reduce((n, t) => n + (t.rx ? t.len : 0), 0);
    c.wireUs += us;
    await this.occupy(us);
    return received;
  }

  /** __spi_validate() for this device and controller. */
  private validate(transfers: readonly Transfer[]): Settled[] {
    const { mode } = this.settings;
    // A 3-wire bus carries one direction at a time.
    if (mode & SPI_3WIRE && transfers.some((t) => t.tx && t.rx)) throw new Errno('EINVAL');
    return transfers.map((t) => {
      const bitsPerWord = t.bitsPerWord || this.settings.bitsPerWord;
      const speedHz = Math.min(t.speedHz || this.settings.maxSpeedHz, CONTROLLER_MAX_HZ);
      if (bitsPerWord < MIN_BITS_PER_WORD || bitsPerWord > MAX_BITS_PER_WORD) throw new Errno('EINVAL');
      if (t.len % wordSize(bitsPerWord) !== 0) throw new Errno('EINVAL');
      if (speedHz < CONTROLLER_MIN_HZ) throw new Errno('EINVAL');
      const txNbits = t.tx && !t.txNbits ? SPI_NBITS_SINGLE : t.txNbits;
      const rxNbits = t.rx && !t.rxNbits ? SPI_NBITS_SINGLE : t.rxNbits;
      if (t.tx && !nbitsAllowed(txNbits, mode, SPI_TX_DUAL, SPI_TX_QUAD)) throw new Errno('EINVAL');
      if (t.rx && !nbitsAllowed(rxNbits, mode, SPI_RX_DUAL, SPI_RX_QUAD)) throw new Errno('EINVAL');
      return { ...t, bitsPerWord, speedHz, txNbits, rxNbits };
    });
  }

  /**
   * The chip select line. It does not move with NO_CS (no chip select is
   * driven): a chip that needs a falling CS to start, as the ADC does,
   * then never starts.
   */
  private setCs(active: boolean): void {
    if (this.settings.mode & SPI_NO_CS || active === this.csActive) return;
    this.csActive = active;
    if (active) this.chip.select();
    else this.chip.deselect();
  }

  /**
   * Clocks one transfer through the chip, word by word, each word's
   * bitsPerWord bits MSB first (LSB first with SPI_LSB_FIRST), in words of
   * 1, 2 or 4 bytes in host order. MOSI is low where there is nothing to
   * send (the SPI core's zeroed dummy buffer). With SPI_LOOP the
   * controller receives what it sends; the chip still sees the clocks.
   */
  private shift(t: Settled): Buffer {
    const size = wordSize(t.bitsPerWord);
    const words = t.len / size;
    if (!t.tx && !t.rx) {
      this.chip.clockZeros(words * t.bitsPerWord);
      return Buffer.alloc(0);
    }
    const { mode } = this.settings;
    const lsbFirst = (mode & SPI_LSB_FIRST) !== 0;
    const loop = (mode & SPI_LOOP) !== 0;
    const rx = Buffer.alloc(t.rx ? t.len : 0);
    const mask = t.bitsPerWord === 32 ? 0xffffffff : (1 << t.bitsPerWord) - 1;
    for (let w = 0; w < words; w++) {
      const out = t.tx ? t.tx.readUIntLE(w * size, size) & mask : 0;
      let got = 0;
      for (let b = 0; b < t.bitsPerWord; b++) {
        const pos = lsbFirst ? b : t.bitsPerWord - 1 - b;
        const mosi = (out >>> pos) & 1;
        const miso = this.chip.clock(mosi);
        if (loop ? mosi : miso) got = (got | (1 << pos)) >>> 0;
      }
      if (t.rx) rx.writeUIntLE(got, w * size, size);
    }
    return rx;
  }

  /** Clocks at the transfer's speed, a word's bits spread over its lines (dual, quad), plus the delays between words. */
  private wireTime(t: Settled): number {
    const words = t.len / wordSize(t.bitsPerWord);
    const lines = Math.max(t.tx ? t.txNbits : 1, t.rx ? t.rxNbits : 1);
    const clocks = words * Math.ceil(t.bitsPerWord / lines);
    return (clocks * 1e6) / t.speedHz + t.wordDelayUsecs * Math.max(0, words - 1);
  }

  /**
   * Holds the caller for the message's time on the wire. Messages follow
   * one another on it, so their times add up; a wait shorter than a timer
   * can measure (1 ms) is carried over to the next message, which keeps a
   * stream of small messages at the wire's pace.
   */
  private async occupy(us: number): Promise<void> {
    const now = performance.now();
    this.busyUntil = Math.max(this.busyUntil, now) + us / 1000;
    const ms = this.busyUntil - now;
    if (ms >= 1) await sleep(ms, this.removal.signal);
  }
}
