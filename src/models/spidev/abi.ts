/**
 * The spidev user ABI (include/uapi/linux/spi/spidev.h, spi.h): ioctl
 * numbers, mode bits and struct spi_ioc_transfer.
 */
import { Errno } from '../../errno.js';
import { IOR, IOW } from '../../devio.js';

export const SPI_IOC_MAGIC = 0x6b; // 'k'
const K = SPI_IOC_MAGIC;
export const SPI_IOC_RD_MODE = IOR(K, 1, 1);
export const SPI_IOC_WR_MODE = IOW(K, 1, 1);
export const SPI_IOC_RD_LSB_FIRST = IOR(K, 2, 1);
export const SPI_IOC_WR_LSB_FIRST = IOW(K, 2, 1);
export const SPI_IOC_RD_BITS_PER_WORD = IOR(K, 3, 1);
export const SPI_IOC_WR_BITS_PER_WORD = IOW(K, 3, 1);
export const SPI_IOC_RD_MAX_SPEED_HZ = IOR(K, 4, 4);
export const SPI_IOC_WR_MAX_SPEED_HZ = IOW(K, 4, 4);
export const SPI_IOC_RD_MODE32 = IOR(K, 5, 4);
export const SPI_IOC_WR_MODE32 = IOW(K, 5, 4);

/** sizeof(struct spi_ioc_transfer): the same for 32- and 64-bit callers. */
export const XFER_SIZE = 32;
/** _IOC_SIZEBITS is 14: SPI_MSGSIZE(N) is 0 for N transfers that do not fit. */
const IOC_SIZE_LIMIT = 1 << 14;

/** SPI_IOC_MESSAGE(n): _IOW('k', 0, char[SPI_MSGSIZE(n)]). */
export function SPI_IOC_MESSAGE(n: number): number {
  const size = n * XFER_SIZE;
  return IOW(K, 0, size < IOC_SIZE_LIMIT ? size : 0);
}

/* spi_device.mode bits (include/uapi/linux/spi/spi.h) */
export const SPI_CPHA = 1 << 0;
export const SPI_CPOL = 1 << 1;
export const SPI_CS_HIGH = 1 << 2;
export const SPI_LSB_FIRST = 1 << 3;
export const SPI_3WIRE = 1 << 4;
export const SPI_LOOP = 1 << 5;
export const SPI_NO_CS = 1 << 6;
export const SPI_READY = 1 << 7;
export const SPI_TX_DUAL = 1 << 8;
export const SPI_TX_QUAD = 1 << 9;
export const SPI_RX_DUAL = 1 << 10;
export const SPI_RX_QUAD = 1 << 11;
export const SPI_CS_WORD = 1 << 12;
export const SPI_TX_OCTAL = 1 << 13;
export const SPI_RX_OCTAL = 1 << 14;
export const SPI_3WIRE_HIZ = 1 << 15;
export const SPI_RX_CPHA_FLIP = 1 << 16;
export const SPI_MOSI_IDLE_LOW = 1 << 17;
/** The bits user space may hold in spi->mode (SPI_MODE_USER_MASK). */
export const SPI_MODE_USER_MASK = (1 << 18) - 1;

/** drivers/spi/spidev.c SPI_MODE_MASK: the bits SPI_IOC_WR_MODE* may set; others are EINVAL. */
export const SPIDEV_MODE_MASK =
  SPI_CPHA |
  SPI_CPOL |
  SPI_CS_HIGH |
  SPI_LSB_FIRST |
  SPI_3WIRE |
  SPI_LOOP |
  SPI_NO_CS |
  SPI_READY |
  SPI_TX_DUAL |
  SPI_TX_QUAD |
  SPI_TX_OCTAL |
  SPI_RX_DUAL |
  SPI_RX_QUAD |
  SPI_RX_OCTAL |
  SPI_RX_CPHA_FLIP |
  SPI_3WIRE_HIZ |
  SPI_MOSI_IDLE_LOW;

/* spi_transfer.tx_nbits / rx_nbits */
export const SPI_NBITS_SINGLE = 1;
export const SPI_NBITS_DUAL = 2;
export const SPI_NBITS_QUAD = 4;

/** What spidev answers once spidev_remove() has cleared spidev->spi. */
export const eshutdown = (): Errno => new Errno('ESHUTDOWN');

/** One struct spi_ioc_transfer as the caller wrote it. */
export interface IocTransfer {
  /** User pointers; 0 for none. */
  txBuf: bigint;
  rxBuf: bigint;
  len: number;
  speedHz: number;
  delayUsecs: number;
  bitsPerWord: number;
  csChange: boolean;
  txNbits: number;
  rxNbits: number;
  wordDelayUsecs: number;
}

/**
 * The array SPI_IOC_MESSAGE(n) carries (FUSE copied it in: the command
 * encodes its size). A 32-bit caller's pointers are 32 bits wide
 * (spidev_compat_ioc_message()'s compat_ptr()).
 */
export function decodeTransfers(buf: Buffer, compat: boolean): IocTransfer[] {
  const ptr = (v: bigint): bigint => (compat ? v & 0xffffffffn : v);
  return Array.from({ length: Math.floor(buf.length / XFER_SIZE) }, (_, i) => {
    const o = i * XFER_SIZE;
    return {
      txBuf: ptr(buf.readBigUInt64LE(o)),
      rxBuf: ptr(buf.readBigUInt64LE(o + 8)),
      len: buf.readUInt32LE(o + 16),
      speedHz: buf.readUInt32LE(o + 20),
      delayUsecs: buf.readUInt16LE(o + 24),
      bitsPerWord: buf.readUInt8(o + 26),
      csChange: buf.readUInt8(o + 27) !== 0,
      txNbits: buf.readUInt8(o + 28),
      rxNbits: buf.readUInt8(o + 29),
      wordDelayUsecs: buf.readUInt8(o + 30),
    };
  });
}
