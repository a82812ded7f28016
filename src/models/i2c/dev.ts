/**
 * The file operations of /dev/i2c-N as drivers/i2c/i2c-dev.c implements
 * them. Each open file has an anonymous i2c_client (i2cdev_open()): the
 * address I2C_SLAVE sets (0 until then) and the TENBIT and PEC flags,
 * used by read(), write() and I2C_SMBUS; I2C_RDWR messages carry their
 * own addresses. No command has an _IOC encoding, so every structure and
 * buffer travels through the caller's memory (req.user), with the
 * kernel's order of copies and checks, and its EFAULTs.
 *
 * A 32-bit caller's I2C_FUNCS, I2C_RDWR and I2C_SMBUS (compat_i2cdev_ioctl's
 * layouts) answer ENOTTY: only 64-bit layouts are read here.
 */
import { Errno } from '../../errno.js';
import type { IoctlReply, IoctlRequest } from '../../devio.js';
import type { File, Instance, UnplugIoctl } from '../../core/index.js';
import {
  decodeMsgs,
  decodeSmbusIoctl,
  I2C_CLIENT_PEC,
  I2C_FUNC_I2C,
  I2C_FUNCS,
  I2C_M_RD,
  I2C_M_RECV_LEN,
  I2C_M_TEN,
  I2C_MSG_MAX,
  I2C_MSG_SIZE,
  I2C_PEC,
  I2C_RDWR,
  I2C_RDWR_IOCTL_MAX_MSGS,
  I2C_RETRIES,
  I2C_SLAVE,
  I2C_SLAVE_FORCE,
  I2C_SMBUS,
  I2C_SMBUS_BLOCK_MAX,
  I2C_SMBUS_BLOCK_PROC_CALL,
  I2C_SMBUS_BYTE,
  I2C_SMBUS_BYTE_DATA,
  I2C_SMBUS_I2C_BLOCK_BROKEN,
  I2C_SMBUS_I2C_BLOCK_DATA,
  I2C_SMBUS_PROC_CALL,
  I2C_SMBUS_QUICK,
  I2C_SMBUS_READ,
  I2C_SMBUS_WORD_DATA,
  I2C_SMBUS_WRITE,
  I2C_TENBIT,
  I2C_TIMEOUT,
  RDWR_DATA_SIZE,
  SMBUS_DATA_SIZE,
  SMBUS_IOCTL_SIZE,
} from './abi.js';
import type { I2cAdapter, I2cBus, I2cMsg } from './bus.js';
import { GoneAdapter } from './gone.js';
import { smbusXfer } from './smbus.js';

/** The file's anonymous i2c_client. */
export interface I2cClient {
  addr: number;
  /** I2C_M_TEN and I2C_CLIENT_PEC. */
  flags: number;
}

const INT_MAX = 0x7fffffffn;
const client = (file: File<I2cBus>): I2cClient => file.private as I2cClient;

export function i2cOpen(file: File<I2cBus>): void {
  file.private = { addr: 0, flags: 0 } satisfies I2cClient;
}

function requireI2c(bus: I2cAdapter): void {
  // "The adapter must support I2C transfers."
  if (!(bus.algo & I2C_FUNC_I2C)) throw new Errno('EOPNOTSUPP');
}

/** One message to the file's address (i2c_master_recv/send): only I2C_M_TEN of the client's flags goes along. */
function clientMsg(file: File<I2cBus>, flags: number, buf: Buffer): I2cMsg {
  const c = client(file);
  return { addr: c.addr, flags: flags | (c.flags & I2C_M_TEN), len: buf.length, buf };
}

/** i2cdev_read(): at most 8192 bytes from the file's address. */
export function i2cRead(file: File<I2cBus>, size: number, signal: AbortSignal): Buffer | Promise<Buffer> {
  const bus = file.instance.state;
  requireI2c(bus);
  const m = clientMsg(file, I2C_M_RD, Buffer.alloc(Math.min(size, I2C_MSG_MAX)));
  const n = bus.transfer([m], signal);
  return typeof n === 'number' ? m.buf : n.then(() => m.buf);
}

/** i2cdev_write(): at most 8192 bytes to the file's address; answers the count. */
export function i2cWrite(file: File<I2cBus>, data: Buffer, signal: AbortSignal): number | Promise<number> {
  const bus = file.instance.state;
  requireI2c(bus);
  const m = clientMsg(file, 0, Buffer.from(data.subarray(0, I2C_MSG_MAX)));
  const n = bus.transfer([m], signal);
  return typeof n === 'number' ? m.len : n.then(() => m.len);
}

/** I2C_RDWR: i2cdev_ioctl() reads the array, i2cdev_ioctl_rdwr() each buffer (read ones too), then the transfer, then the reads go back. */
async function rdwr(bus: I2cAdapter, req: IoctlRequest, signal: AbortSignal): Promise<IoctlReply> {
  const arg = await req.user.read(req.arg, RDWR_DATA_SIZE);
  const msgsAt = arg.readBigUInt64LE(0);
  const nmsgs = arg.readUInt32LE(8);
  if (msgsAt === 0n || nmsgs === 0 || nmsgs > I2C_RDWR_IOCTL_MAX_MSGS) throw new Errno('EINVAL');
  const user = decodeMsgs(await req.user.read(msgsAt, nmsgs * I2C_MSG_SIZE), nmsgs);
  requireI2c(bus);
  const msgs: I2cMsg[] = [];
  for (const u of user) {
    if (u.len > I2C_MSG_MAX) throw new Errno('EINVAL');
    const buf = await req.user.read(u.buf, u.len);
    let len = u.len;
    if (u.flags & I2C_M_RECV_LEN) {
      // The buffer must hold the largest block after the bytes buf[0] says come with it (the count, a PEC).
      if (!(u.flags & I2C_M_RD) || u.len < 1 || buf[0]! < 1 || u.len < buf[0]! + I2C_SMBUS_BLOCK_MAX) throw new Errno('EINVAL');
      len = buf[0]!;
    }
    msgs.push({ addr: u.addr, flags: u.flags, len, buf });
  }
  const n = await bus.transfer(msgs, signal);
  let fault = false;
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i]!;
    if (!(m.flags & I2C_M_RD)) continue;
    // Every read buffer is copied back; one that cannot be makes the answer EFAULT.
    await req.user.write(user[i]!.buf, m.buf.subarray(0, m.len)).catch((err: unknown) => {
      if (!(err instanceof Errno && err.code === 'EFAULT')) throw err;
      fault = true;
    });
  }
  if (fault) throw new Errno('EFAULT');
  return { result: n };
}

/** I2C_SMBUS: i2cdev_ioctl_smbus(). */
async function smbus(bus: I2cAdapter, file: File<I2cBus>, req: IoctlRequest, signal: AbortSignal): Promise<IoctlReply> {
  const c = client(file);
  const a = decodeSmbusIoctl(await req.user.read(req.arg, SMBUS_IOCTL_SIZE));
  // Sizes run from I2C_SMBUS_QUICK (0) to I2C_SMBUS_I2C_BLOCK_DATA (8).
  if (a.size > I2C_SMBUS_I2C_BLOCK_DATA) throw new Errno('EINVAL');
  if (a.readWrite !== I2C_SMBUS_READ && a.readWrite !== I2C_SMBUS_WRITE) throw new Errno('EINVAL');
  const temp = Buffer.alloc(SMBUS_DATA_SIZE);
  const xfer = { addr: c.addr, flags: c.flags, readWrite: a.readWrite, command: a.command, size: a.size };
  // Quick, and a byte written (its value is the command), use no data.
  if (a.size === I2C_SMBUS_QUICK || (a.size === I2C_SMBUS_BYTE && a.readWrite === I2C_SMBUS_WRITE)) {
    await smbusXfer(bus, xfer, temp, signal);
    return {};
  }
  if (a.data === 0n) throw new Errno('EINVAL');
  const datasize =
    a.size === I2C_SMBUS_BYTE || a.size === I2C_SMBUS_BYTE_DATA
      ? 1
      : a.size === I2C_SMBUS_WORD_DATA || a.size === I2C_SMBUS_PROC_CALL
        ? 2
        : SMBUS_DATA_SIZE;
  const exchange = a.size === I2C_SMBUS_PROC_CALL || a.size === I2C_SMBUS_BLOCK_PROC_CALL;
  if (exchange || a.size === I2C_SMBUS_I2C_BLOCK_DATA || a.readWrite === I2C_SMBUS_WRITE)
    (await req.user.read(a.data, datasize)).copy(temp);
  if (a.size === I2C_SMBUS_I2C_BLOCK_BROKEN) {
    // The old I2C block size: a read asks for the largest block.
    xfer.size = I2C_SMBUS_I2C_BLOCK_DATA;
    if (a.readWrite === I2C_SMBUS_READ) temp[0] = I2C_SMBUS_BLOCK_MAX;
  }
  await smbusXfer(bus, xfer, temp, signal);
  if (exchange || a.readWrite === I2C_SMBUS_READ) await req.user.write(a.data, temp.subarray(0, datasize));
  return {};
}

/** i2cdev_ioctl() on the live adapter. */
export function i2cIoctl(file: File<I2cBus>, req: IoctlRequest, signal: AbortSignal): Promise<IoctlReply> {
  return i2cdevIoctl(file.instance.state, file, req, signal);
}

/** Nothing a gone adapter does waits: its transfers fail at once. */
const NEVER_ABORTED = new AbortController().signal;

/**
 * The ioctl of a file still open once the adapter is unplugged
 * (UnplugAnswers.ioctl), made when the gate closes: i2c-dev's own code,
 * which outlives the adapter's hardware, over what is left of the adapter
 * (GoneAdapter), one for all the files, as they share the struct
 * i2c_adapter (I2C_RETRIES and I2C_TIMEOUT set it for all of them).
 */
export function i2cUnplugIoctl(inst: Instance<I2cBus>): UnplugIoctl<I2cBus> {
  const adapter = new GoneAdapter(inst.state);
  return (file, req) => i2cdevIoctl(adapter, file, req, NEVER_ABORTED);
}

/** i2cdev_ioctl(): the file's client's adapter is `bus`. */
async function i2cdevIoctl(bus: I2cAdapter, file: File<I2cBus>, req: IoctlRequest, signal: AbortSignal): Promise<IoctlReply> {
  const c = client(file);
  const arg = req.arg;
  if (req.compat && (req.cmd === I2C_FUNCS || req.cmd === I2C_RDWR || req.cmd === I2C_SMBUS)) throw new Errno('ENOTTY');
  switch (req.cmd) {
    case I2C_SLAVE:
    case I2C_SLAVE_FORCE:
      if (arg > 0x3ffn || (!(c.flags & I2C_M_TEN) && arg > 0x7fn)) throw new Errno('EINVAL');
      // i2cdev_check_addr(): an address a driver is bound to is busy, unless forced.
      if (req.cmd === I2C_SLAVE && bus.claimed(Number(arg))) throw new Errno('EBUSY');
      c.addr = Number(arg);
      return {};
    case I2C_TENBIT:
      c.flags = arg ? c.flags | I2C_M_TEN : c.flags & ~I2C_M_TEN;
      return {};
    case I2C_PEC:
      c.flags = arg ? c.flags | I2C_CLIENT_PEC : c.flags & ~I2C_CLIENT_PEC;
      return {};
    case I2C_FUNCS: {
      // put_user() of an unsigned long.
      const funcs = Buffer.alloc(8);
      funcs.writeBigUInt64LE(BigInt(bus.functionality >>> 0));
      await req.user.write(arg, funcs);
      return {};
    }
    case I2C_RDWR:
      return rdwr(bus, req, signal);
    case I2C_SMBUS:
      return smbus(bus, file, req, signal);
    case I2C_RETRIES:
      // The adapter's, shared by every file.
      if (arg > INT_MAX) throw new Errno('EINVAL');
      bus.retries = Number(arg);
      return {};
    case I2C_TIMEOUT:
      // In units of 10 ms.
      if (arg > INT_MAX / 10n) throw new Errno('EINVAL');
      bus.timeoutMs = Number(arg) * 10;
      return {};
    default:
      throw new Errno('ENOTTY');
  }
}
