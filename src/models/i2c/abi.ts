/**
 * What a program hands /dev/i2c-N, as include/uapi/linux/i2c.h and
 * i2c-dev.h define it for a 64-bit caller: the ioctl numbers (none has an
 * _IOC encoding, so every structure travels through the caller's memory),
 * message flags, functionality bits and the SMBus transaction sizes, and
 * the layouts of struct i2c_msg, i2c_rdwr_ioctl_data and
 * i2c_smbus_ioctl_data.
 */

/* include/uapi/linux/i2c-dev.h */
export const I2C_RETRIES = 0x0701;
export const I2C_TIMEOUT = 0x0702;
export const I2C_SLAVE = 0x0703;
export const I2C_TENBIT = 0x0704;
export const I2C_FUNCS = 0x0705;
export const I2C_SLAVE_FORCE = 0x0706;
export const I2C_RDWR = 0x0707;
export const I2C_PEC = 0x0708;
export const I2C_SMBUS = 0x0720;
/** I2C_RDWR_IOCTL_MAX_MSGS: the most messages one I2C_RDWR may carry. */
export const I2C_RDWR_IOCTL_MAX_MSGS = 42;
/** i2c-dev.c's "sane amount" for one message, a read() and a write(). */
export const I2C_MSG_MAX = 8192;

/* struct i2c_msg flags, include/uapi/linux/i2c.h */
export const I2C_M_RD = 0x0001;
export const I2C_M_TEN = 0x0010;
export const I2C_M_RECV_LEN = 0x0400;
export const I2C_M_STOP = 0x8000;
/** i2c_client flag (include/linux/i2c.h) that asks SMBus transactions for a packet error code. */
export const I2C_CLIENT_PEC = 0x04;

/* Adapter functionality, include/uapi/linux/i2c.h */
export const I2C_FUNC_I2C = 0x00000001;
export const I2C_FUNC_10BIT_ADDR = 0x00000002;
export const I2C_FUNC_SMBUS_PEC = 0x00000008;
export const I2C_FUNC_SMBUS_BLOCK_PROC_CALL = 0x00008000;
export const I2C_FUNC_SMBUS_QUICK = 0x00010000;
export const I2C_FUNC_SMBUS_READ_BYTE = 0x00020000;
export const I2C_FUNC_SMBUS_WRITE_BYTE = 0x00040000;
export const I2C_FUNC_SMBUS_READ_BYTE_DATA = 0x00080000;
export const I2C_FUNC_SMBUS_WRITE_BYTE_DATA = 0x00100000;
export const I2C_FUNC_SMBUS_READ_WORD_DATA = 0x00200000;
export const I2C_FUNC_SMBUS_WRITE_WORD_DATA = 0x00400000;
export const I2C_FUNC_SMBUS_PROC_CALL = 0x00800000;
export const I2C_FUNC_SMBUS_READ_BLOCK_DATA = 0x01000000;
export const I2C_FUNC_SMBUS_WRITE_BLOCK_DATA = 0x02000000;
export const I2C_FUNC_SMBUS_READ_I2C_BLOCK = 0x04000000;
export const I2C_FUNC_SMBUS_WRITE_I2C_BLOCK = 0x08000000;
/** I2C_FUNC_SMBUS_EMUL_ALL: every SMBus transaction the core emulates over I2C messages (with I2C_M_RECV_LEN). */
export const I2C_FUNC_SMBUS_EMUL_ALL =
  I2C_FUNC_SMBUS_QUICK |
  I2C_FUNC_SMBUS_READ_BYTE |
  I2C_FUNC_SMBUS_WRITE_BYTE |
  I2C_FUNC_SMBUS_READ_BYTE_DATA |
  I2C_FUNC_SMBUS_WRITE_BYTE_DATA |
  I2C_FUNC_SMBUS_READ_WORD_DATA |
  I2C_FUNC_SMBUS_WRITE_WORD_DATA |
  I2C_FUNC_SMBUS_PROC_CALL |
  I2C_FUNC_SMBUS_WRITE_BLOCK_DATA |
  I2C_FUNC_SMBUS_READ_I2C_BLOCK |
  I2C_FUNC_SMBUS_WRITE_I2C_BLOCK |
  I2C_FUNC_SMBUS_PEC |
  I2C_FUNC_SMBUS_READ_BLOCK_DATA |
  I2C_FUNC_SMBUS_BLOCK_PROC_CALL;

/* SMBus, include/uapi/linux/i2c.h */
export const I2C_SMBUS_BLOCK_MAX = 32;
export const I2C_SMBUS_READ = 1;
export const I2C_SMBUS_WRITE = 0;
export const I2C_SMBUS_QUICK = 0;
export const I2C_SMBUS_BYTE = 1;
export const I2C_SMBUS_BYTE_DATA = 2;
export const I2C_SMBUS_WORD_DATA = 3;
export const I2C_SMBUS_PROC_CALL = 4;
export const I2C_SMBUS_BLOCK_DATA = 5;
export const I2C_SMBUS_I2C_BLOCK_BROKEN = 6;
export const I2C_SMBUS_BLOCK_PROC_CALL = 7;
export const I2C_SMBUS_I2C_BLOCK_DATA = 8;
/** sizeof(union i2c_smbus_data): block[I2C_SMBUS_BLOCK_MAX + 2]. */
export const SMBUS_DATA_SIZE = I2C_SMBUS_BLOCK_MAX + 2;

/** struct i2c_msg {u16 addr; u16 flags; u16 len; u8 *buf;} on x86_64: 16 bytes. */
export const I2C_MSG_SIZE = 16;
/** struct i2c_rdwr_ioctl_data {struct i2c_msg *msgs; u32 nmsgs;}: 16 bytes. */
export const RDWR_DATA_SIZE = 16;
/** struct i2c_smbus_ioctl_data {u8 read_write; u8 command; u32 size; union i2c_smbus_data *data;}: 16 bytes. */
export const SMBUS_IOCTL_SIZE = 16;

/** One struct i2c_msg as the caller laid it out: `buf` is its pointer into the caller's memory. */
export interface UserMsg {
  addr: number;
  flags: number;
  len: number;
  buf: bigint;
}

export function decodeMsgs(raw: Buffer, count: number): UserMsg[] {
  return Array.from({ length: count }, (_, i) => {
    const at = i * I2C_MSG_SIZE;
    return { addr: raw.readUInt16LE(at), flags: raw.readUInt16LE(at + 2), len: raw.readUInt16LE(at + 4), buf: raw.readBigUInt64LE(at + 8) };
  });
}

export interface SmbusIoctl {
  readWrite: number;
  command: number;
  size: number;
  data: bigint;
}

export function decodeSmbusIoctl(raw: Buffer): SmbusIoctl {
  return { readWrite: raw[0]!, command: raw[1]!, size: raw.readUInt32LE(4), data: raw.readBigUInt64LE(8) };
}
