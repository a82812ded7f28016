/**
 * SMBus transactions as drivers/i2c/i2c-core-smbus.c carries them out on
 * an adapter that only moves I2C messages: __i2c_smbus_xfer()'s checks,
 * then i2c_smbus_xfer_emulated() turns each transaction into one or two
 * messages (a write of the command byte and data, a read after a repeated
 * START), adds and checks the packet error code when the client asked for
 * PEC, and unpacks what was read into union i2c_smbus_data (`data`,
 * SMBUS_DATA_SIZE bytes: byte, little-endian word, or block with its
 * length in block[0]).
 */
import { Errno } from '../../errno.js';
import {
  I2C_CLIENT_PEC,
  I2C_FUNC_I2C,
  I2C_FUNC_SMBUS_BLOCK_PROC_CALL,
  I2C_FUNC_SMBUS_PROC_CALL,
  I2C_FUNC_SMBUS_QUICK,
  I2C_FUNC_SMBUS_READ_BLOCK_DATA,
  I2C_FUNC_SMBUS_READ_BYTE,
  I2C_FUNC_SMBUS_READ_BYTE_DATA,
  I2C_FUNC_SMBUS_READ_I2C_BLOCK,
  I2C_FUNC_SMBUS_READ_WORD_DATA,
  I2C_FUNC_SMBUS_WRITE_BLOCK_DATA,
  I2C_FUNC_SMBUS_WRITE_BYTE,
  I2C_FUNC_SMBUS_WRITE_BYTE_DATA,
  I2C_FUNC_SMBUS_WRITE_I2C_BLOCK,
  I2C_FUNC_SMBUS_WRITE_WORD_DATA,
  I2C_M_RD,
  I2C_M_RECV_LEN,
  I2C_M_TEN,
  I2C_SMBUS_BLOCK_DATA,
  I2C_SMBUS_BLOCK_MAX,
  I2C_SMBUS_BLOCK_PROC_CALL,
  I2C_SMBUS_BYTE,
  I2C_SMBUS_BYTE_DATA,
  I2C_SMBUS_I2C_BLOCK_DATA,
  I2C_SMBUS_PROC_CALL,
  I2C_SMBUS_QUICK,
  I2C_SMBUS_READ,
  I2C_SMBUS_WORD_DATA,
} from './abi.js';
import type { I2cAdapter, I2cMsg } from './bus.js';

/** One SMBus transaction from a client (the file's address and flags). */
export interface SmbusXfer {
  addr: number;
  /** i2c_client flags: I2C_M_TEN, I2C_CLIENT_PEC. */
  flags: number;
  readWrite: number;
  command: number;
  size: number;
}

/** i2c_smbus_pec(): CRC-8, polynomial x^8 + x^2 + x + 1, over the bytes in order. */
export function smbusPec(crc: number, bytes: Iterable<number>): number {
  let c = crc;
  for (const b of bytes) {
    c ^= b;
    for (let i = 0; i < 8; i++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  }
  return c;
}

/** i2c_smbus_msg_pec(): the address byte as it goes on the wire (i2c_8bit_addr_from_msg), then the message's bytes. */
function msgPec(crc: number, m: I2cMsg): number {
  const addrByte = ((m.addr << 1) | (m.flags & I2C_M_RD)) & 0xff;
  return smbusPec(smbusPec(crc, [addrByte]), m.buf.subarray(0, m.len));
}

/** The functionality bit a controller needs for a transaction it runs itself (no I2C_FUNC_I2C to emulate it). */
function needed(size: number, read: boolean): number {
  switch (size) {
    case I2C_SMBUS_QUICK:
      return I2C_FUNC_SMBUS_QUICK;
    case I2C_SMBUS_BYTE:
      return read ? I2C_FUNC_SMBUS_READ_BYTE : I2C_FUNC_SMBUS_WRITE_BYTE;
    case I2C_SMBUS_BYTE_DATA:
      return read ? I2C_FUNC_SMBUS_READ_BYTE_DATA : I2C_FUNC_SMBUS_WRITE_BYTE_DATA;
    case I2C_SMBUS_WORD_DATA:
      return read ? I2C_FUNC_SMBUS_READ_WORD_DATA : I2C_FUNC_SMBUS_WRITE_WORD_DATA;
    case I2C_SMBUS_PROC_CALL:
      return I2C_FUNC_SMBUS_PROC_CALL;
    case I2C_SMBUS_BLOCK_DATA:
      return read ? I2C_FUNC_SMBUS_READ_BLOCK_DATA : I2C_FUNC_SMBUS_WRITE_BLOCK_DATA;
    case I2C_SMBUS_BLOCK_PROC_CALL:
      return I2C_FUNC_SMBUS_BLOCK_PROC_CALL;
    default:
      return read ? I2C_FUNC_SMBUS_READ_I2C_BLOCK : I2C_FUNC_SMBUS_WRITE_I2C_BLOCK;
  }
}

/**
 * i2c_smbus_xfer() with `data` (the union, read and filled in place).
 * An adapter without I2C_FUNC_I2C stands for an SMBus controller running
 * transactions itself: one whose functionality lacks the transaction
 * answers EOPNOTSUPP ("Unsupported transaction"), as such drivers do.
 */
export async function smbusXfer(bus: I2cAdapter, x: SmbusXfer, data: Buffer, signal: AbortSignal): Promise<void> {
  const size = x.size;
  let readWrite = x.readWrite;
  const read = readWrite === I2C_SMBUS_READ;
  const block = data[0]!;
  // __i2c_smbus_xfer(): a block the caller sizes must hold 1..32 bytes.
  if (
    (size === I2C_SMBUS_I2C_BLOCK_DATA || size === I2C_SMBUS_BLOCK_PROC_CALL || (size === I2C_SMBUS_BLOCK_DATA && !read)) &&
    (block === 0 || block > I2C_SMBUS_BLOCK_MAX)
  ) {
    throw new Errno('EINVAL', `i2c: SMBus block of ${block} bytes`);
  }
  if (!(bus.algo & I2C_FUNC_I2C) && !(bus.algo & needed(size, read)))
    throw new Errno('EOPNOTSUPP', `i2c: the adapter has no SMBus transaction ${size}`);
  const flags = x.flags & (I2C_M_TEN | I2C_CLIENT_PEC);
  const msgFlags = flags & I2C_M_TEN;
  const buf0 = Buffer.alloc(I2C_SMBUS_BLOCK_MAX + 3);
  const buf1 = Buffer.alloc(I2C_SMBUS_BLOCK_MAX + 2);
  const msgs: I2cMsg[] = [
    { addr: x.addr, flags: msgFlags, len: 1, buf: buf0 },
    { addr: x.addr, flags: msgFlags | I2C_M_RD, len: 0, buf: buf1 },
  ];
  let nmsgs = read ? 2 : 1;
  const wantsPec = (flags & I2C_CLIENT_PEC) !== 0 && size !== I2C_SMBUS_QUICK && size !== I2C_SMBUS_I2C_BLOCK_DATA;
  buf0[0] = x.command;
  switch (size) {
    case I2C_SMBUS_QUICK:
      // The read/write bit is the data.
      msgs[0] = { ...msgs[0]!, len: 0, flags: msgFlags | (read ? I2C_M_RD : 0) };
      nmsgs = 1;
      break;
    case I2C_SMBUS_BYTE:
      if (read) {
        msgs[0]!.flags = msgFlags | I2C_M_RD;
        nmsgs = 1;
      }
      break;
    case I2C_SMBUS_BYTE_DATA:
      if (read) msgs[1]!.len = 1;
      else {
        msgs[0]!.len = 2;
        buf0[1] = data[0]!;
      }
      break;
    case I2C_SMBUS_WORD_DATA:
      if (read) msgs[1]!.len = 2;
      else {
        msgs[0]!.len = 3;
        buf0[1] = data[0]!;
        buf0[2] = data[1]!;
      }
      break;
    case I2C_SMBUS_PROC_CALL:
      nmsgs = 2;
      readWrite = I2C_SMBUS_READ;
      msgs[0]!.len = 3;
      msgs[1]!.len = 2;
      buf0[1] = data[0]!;
      buf0[2] = data[1]!;
      break;
    case I2C_SMBUS_BLOCK_DATA:
      if (read) {
        msgs[1]!.flags |= I2C_M_RECV_LEN;
        msgs[1]!.len = 1; // the bus driver adds the block length
      } else {
        msgs[0]!.len = block + 2;
        data.copy(buf0, 1, 0, block + 1);
      }
      break;
    case I2C_SMBUS_BLOCK_PROC_CALL:
      nmsgs = 2;
      readWrite = I2C_SMBUS_READ;
      msgs[0]!.len = block + 2;
      data.copy(buf0, 1, 0, block + 1);
      msgs[1]!.flags |= I2C_M_RECV_LEN;
      msgs[1]!.len = 1;
      break;
    case I2C_SMBUS_I2C_BLOCK_DATA:
      if (read) msgs[1]!.len = block;
      else {
        msgs[0]!.len = block + 1;
        data.copy(buf0, 1, 1, block + 1);
      }
      break;
    default:
      throw new Errno('EOPNOTSUPP', `i2c: unsupported SMBus transaction ${size}`);
  }
  const used = msgs.slice(0, nmsgs);
  const last = used[nmsgs - 1]!;
  let partialPec = 0;
  if (wantsPec) {
    const first = used[0]!;
    if (!(first.flags & I2C_M_RD)) {
      if (nmsgs === 1)
        first.buf[first.len++] = msgPec(0, first); // i2c_smbus_add_pec()
      else partialPec = msgPec(0, first);
    }
    if (last.flags & I2C_M_RD) last.len++;
  }
  if ((await bus.transfer(used, signal)) !== nmsgs) throw new Errno('EIO');
  if (wantsPec && last.flags & I2C_M_RD) {
    // i2c_smbus_check_pec(): the last byte read is the chip's PEC.
    const received = last.buf[--last.len]!;
    if (received !== msgPec(partialPec, last)) throw new Errno('EBADMSG', 'i2c: bad PEC');
  }
  if (readWrite !== I2C_SMBUS_READ) return;
  switch (size) {
    case I2C_SMBUS_BYTE:
      data[0] = buf0[0]!;
      break;
    case I2C_SMBUS_BYTE_DATA:
      data[0] = buf1[0]!;
      break;
    case I2C_SMBUS_WORD_DATA:
    case I2C_SMBUS_PROC_CALL:
      data[0] = buf1[0]!;
      data[1] = buf1[1]!;
      break;
    case I2C_SMBUS_I2C_BLOCK_DATA:
      buf1.copy(data, 1, 0, block);
      break;
    case I2C_SMBUS_BLOCK_DATA:
    case I2C_SMBUS_BLOCK_PROC_CALL:
      buf1.copy(data, 0, 0, buf1[0]! + 1);
      break;
  }
}
