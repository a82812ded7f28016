/**
 * The spidev file operations (drivers/spi/spidev.c): half-duplex read()
 * and write() of at most bufsiz bytes, the mode, bit order, word size and
 * speed ioctls, and SPI_IOC_MESSAGE(n), whose transfers' tx_buf and rx_buf
 * are user pointers followed through the caller's memory (req.user), in
 * the order spidev_message() follows them.
 */
import { Errno } from '../../errno.js';
import { IOC_WRITE, iocDir, iocNr, iocSize, iocType, type IoctlReply, type IoctlRequest } from '../../devio.js';
import type { File, Instance } from '../../core/index.js';
import {
  decodeTransfers,
  SPI_IOC_MAGIC,
  SPI_IOC_RD_BITS_PER_WORD,
  SPI_IOC_RD_LSB_FIRST,
  SPI_IOC_RD_MAX_SPEED_HZ,
  SPI_IOC_RD_MODE,
  SPI_IOC_RD_MODE32,
  SPI_IOC_WR_BITS_PER_WORD,
  SPI_IOC_WR_LSB_FIRST,
  SPI_IOC_WR_MAX_SPEED_HZ,
  SPI_IOC_WR_MODE,
  SPI_IOC_WR_MODE32,
  SPI_LSB_FIRST,
  SPI_MODE_USER_MASK,
  SPIDEV_MODE_MASK,
  XFER_SIZE,
} from './abi.js';
import { setup, type Settings, type SpiDevice, type Transfer } from './device.js';

const INT_MAX = 0x7fffffff;
/** ARCH_DMA_MINALIGN on x86_64 (__alignof__(unsigned long long)): each transfer's room in a bounce buffer is rounded up to it. */
const DMA_MINALIGN = 8;
const align = (n: number): number => Math.ceil(n / DMA_MINALIGN) * DMA_MINALIGN;

const u8 = (v: number): IoctlReply => ({ out: Buffer.from([v & 0xff]) });
function u32(v: number): IoctlReply {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(v >>> 0);
  return { out };
}

/** A one-transfer message at the file's current settings (spidev_sync_read/write). */
function halfDuplex(dev: SpiDevice, len: number, tx: Buffer | null): Transfer {
  return {
    tx,
    rx: tx === null,
    len,
    speedHz: dev.speedHz,
    bitsPerWord: 0,
    delayUsecs: 0,
    wordDelayUsecs: 0,
    csChange: false,
    txNbits: 0,
    rxNbits: 0,
  };
}

/** spidev_read(): one receive-only transfer of `size` bytes; EMSGSIZE past bufsiz. */
export async function spidevRead(file: File<SpiDevice>, size: number): Promise<Buffer> {
  const dev = file.instance.state;
  if (size > dev.bufsiz) throw new Errno('EMSGSIZE');
  return dev.locked(async () => (await dev.transfer([halfDuplex(dev, size, null)]))[0]!);
}

/** spidev_write(): one transmit-only transfer; EMSGSIZE past bufsiz. */
export async function spidevWrite(file: File<SpiDevice>, data: Buffer): Promise<number> {
  const dev = file.instance.state;
  if (data.length > dev.bufsiz) throw new Errno('EMSGSIZE');
  // spidev's copy into its bounce buffer: the request's buffer may be reused before the lock is ours.
  const tx = Buffer.from(data);
  return dev.locked(async () => {
    await dev.transfer([halfDuplex(dev, tx.length, tx)]);
    return tx.length;
  });
}

/** spi_setup() of the changed settings: kept if it succeeds (the device's maximum speed as it was), else nothing changes; a change is an event. */
function apply(inst: Instance<SpiDevice>, want: Partial<Settings>): void {
  const dev = inst.state;
  const before = dev.settings;
  dev.settings = { ...setup({ ...before, ...want }), maxSpeedHz: before.maxSpeedHz };
  if (before.mode !== dev.settings.mode || before.bitsPerWord !== dev.settings.bitsPerWord) emitSetup(inst);
}

export function emitSetup(inst: Instance<SpiDevice>): void {
  const dev = inst.state;
  inst.emit('spi_setup', { mode: dev.settings.mode, bitsPerWord: dev.settings.bitsPerWord, speedHz: dev.speedHz });
}

/** SPI_IOC_MESSAGE(n): spidev_get_ioc_message()'s checks, then spidev_message(). */
async function message(dev: SpiDevice, req: IoctlRequest): Promise<IoctlReply> {
  if (iocNr(req.cmd) !== 0 || iocDir(req.cmd) !== IOC_WRITE) throw new Errno('ENOTTY');
  const size = iocSize(req.cmd);
  if (size % XFER_SIZE !== 0) throw new Errno('EINVAL');
  if (size === 0) return {};
  // Walk the transfers as the kernel does: sizes, then each tx buffer
  // copied in order; the first failure (EMSGSIZE, EFAULT) ends the call
  // before anything reaches the wire. A bad rx_buf is found only after
  // the transfer, when what was received is copied out.
  const ioc = decodeTransfers(req.in, req.compat);
  const transfers: Transfer[] = [];
  let total = 0;
  let txTotal = 0;
  let rxTotal = 0;
  for (const { txBuf, rxBuf, ...fields } of ioc) {
    total += fields.len;
    if (total > INT_MAX || fields.len > INT_MAX) throw new Errno('EMSGSIZE');
    if (rxBuf !== 0n && (rxTotal += align(fields.len)) > dev.bufsiz) throw new Errno('EMSGSIZE');
    let tx: Buffer | null = null;
    if (txBuf !== 0n) {
      if ((txTotal += align(fields.len)) > dev.bufsiz) throw new Errno('EMSGSIZE');
      tx = await req.user.read(txBuf, fields.len);
    }
    transfers.push({ ...fields, tx, rx: rxBuf !== 0n, speedHz: fields.speedHz || dev.speedHz });
  }
  const received = await dev.transfer(transfers);
  for (const [i, u] of ioc.entries()) if (u.rxBuf !== 0n) await req.user.write(u.rxBuf, received[i]!);
  return { result: total };
}

function ioctlLocked(inst: Instance<SpiDevice>, req: IoctlRequest): IoctlReply | Promise<IoctlReply> {
  const dev = inst.state;
  const { mode } = dev.settings;
  switch (req.cmd) {
    case SPI_IOC_RD_MODE:
      return u8(mode & SPIDEV_MODE_MASK);
    case SPI_IOC_RD_MODE32:
      return u32(mode & SPIDEV_MODE_MASK);
    case SPI_IOC_RD_LSB_FIRST:
      return u8(mode & SPI_LSB_FIRST ? 1 : 0);
    case SPI_IOC_RD_BITS_PER_WORD:
      return u8(dev.settings.bitsPerWord);
    case SPI_IOC_RD_MAX_SPEED_HZ:
      return u32(dev.speedHz);
    case SPI_IOC_WR_MODE:
    case SPI_IOC_WR_MODE32: {
      const want = req.cmd === SPI_IOC_WR_MODE ? req.in.readUInt8(0) : req.in.readUInt32LE(0);
      if (want & ~SPIDEV_MODE_MASK) throw new Errno('EINVAL');
      apply(inst, { mode: (want | (mode & ~SPIDEV_MODE_MASK)) & SPI_MODE_USER_MASK });
      return {};
    }
    case SPI_IOC_WR_LSB_FIRST:
      apply(inst, { mode: req.in.readUInt8(0) ? mode | SPI_LSB_FIRST : mode & ~SPI_LSB_FIRST });
      return {};
    case SPI_IOC_WR_BITS_PER_WORD:
      apply(inst, { bitsPerWord: req.in.readUInt8(0) });
      return {};
    case SPI_IOC_WR_MAX_SPEED_HZ: {
      // spi_setup() checks the speed, but spidev keeps it as its own
      // default (unclamped) and leaves the device's maximum as it was.
      const hz = req.in.readUInt32LE(0);
      if (hz === 0) throw new Errno('EINVAL');
      apply(inst, { maxSpeedHz: hz });
      if (dev.speedHz !== hz) {
        dev.speedHz = hz;
        emitSetup(inst);
      }
      return {};
    }
    default:
      return message(dev, req);
  }
}

/** spidev_ioctl()'s first check, before it looks at the device: another driver's command is ENOTTY. */
export function refuseForeign(req: IoctlRequest): void {
  if (iocType(req.cmd) !== SPI_IOC_MAGIC) throw new Errno('ENOTTY');
}

/** spidev_ioctl(): another driver's command is ENOTTY; the rest run holding the device. */
export async function spidevIoctl(file: File<SpiDevice>, req: IoctlRequest): Promise<IoctlReply> {
  refuseForeign(req);
  const inst = file.instance;
  return inst.state.locked(() => ioctlLocked(inst, req));
}
