/**
 * Small helpers the device models share: the kernel's user-copy idioms
 * (get_user/put_user of an int, str_to_user, bits_to_user), bitmaps as the input
 * core keeps them, sysfs formatting and blocking with O_NONBLOCK. Options
 * and action arguments are checked by their schema (core/schema.ts).
 */
import { readFile, readlink } from 'node:fs/promises';
import { Errno } from '../errno.js';
import type { IoctlReply, IoctlRequest } from '../devio.js';
import type { UserAddress, UserMemory } from '../usermem.js';
import type { File } from '../core/index.js';

/** An int (s32, little-endian as on x86_64) as put_user() would copy it. */
export function s32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value | 0, 0);
  return b;
}

/** An ioctl answer that copies out one int (put_user(val, (int __user *)arg)). */
export function intReply(value: number): IoctlReply {
  return { out: s32(value) };
}

/** Several s32 fields packed in order (struct rtc_time, struct input_absinfo...). */
export function packS32(values: readonly number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v | 0, i * 4));
  return b;
}

export function unpackS32(buf: Buffer, count: number, offset = 0): number[] {
  if (buf.length < offset + count * 4) throw new Errno('EFAULT');
  return Array.from({ length: count }, (_, i) => buf.readInt32LE(offset + i * 4));
}

/** A fixed-size, NUL-padded char array (struct watchdog_info.identity). */
export function cString(text: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.write(text.slice(0, size - 1), 'latin1');
  return b;
}

/**
 * evdev's str_to_user(): copies strlen+1 bytes, at most maxlen (so a
 * truncated string is not NUL-terminated, as in the kernel); the ioctl
 * returns the count. A missing string is ENOENT.
 */
export function strToUser(text: string | undefined, maxlen: number): IoctlReply {
  if (text === undefined) throw new Errno('ENOENT');
  const full = Buffer.concat([Buffer.from(text, 'utf8'), Buffer.alloc(1)]);
  const out = full.subarray(0, Math.min(full.length, maxlen));
  return { result: out.length, out };
}

/**
 * get_user() of an int at a user address (req.user, docs/writing-a-model.md#user-memory):
 * for commands that pass a pointer to an int FUSE does not copy in, either
 * unencoded (TIOCMSET) or encoded _IOR although the driver reads the value
 * (WDIOC_SETOPTIONS). Rejects EFAULT as get_user() fails.
 */
export async function getUserInt(user: UserMemory, addr: UserAddress): Promise<number> {
  return (await user.read(addr, 4)).readInt32LE(0);
}

/** put_user() of an int at a user address, for unencoded commands (TIOCMGET). */
export function putUserInt(user: UserMemory, addr: UserAddress, value: number): Promise<void> {
  return user.write(addr, s32(value));
}

/* include/uapi/linux/capability.h */
export const CAP_SYS_ADMIN = 21;
export const CAP_SYS_TIME = 25;

/**
 * capable(cap) for the caller of an ioctl: the thread that made the request
 * (`req.pid`, fuse_in_header.pid), never the opener, since the kernel
 * checks whoever calls (a descriptor outlives fork() and setuid(), and
 * travels over Unix sockets).
 */
export function callerCapable(req: IoctlRequest, cap: number): Promise<boolean> {
  return threadCapable(req.pid, cap);
}

/**
 * capable(cap) for thread `tid` (fuse_in_header.pid of a request: for an
 * open, the opener). Capabilities are per thread: read from its CapEff in
 * /proc/TID/status. capable() asks about the initial user namespace; a
 * thread in a user namespace other than the daemon's holds its
 * capabilities there only, so it has none here. False when the thread
 * cannot be looked at (tid 0: it is outside the daemon's pid namespace; or
 * it has exited).
 */
export async function threadCapable(tid: number, cap: number): Promise<boolean> {
  if (tid <= 0) return false;
  try {
    const [status, ns, ours] = await Promise.all([
      readFile(`/proc/${tid}/status`, 'latin1'),
      readlink(`/proc/${tid}/ns/user`),
      readlink('/proc/self/ns/user'),
    ]);
    const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return ns === ours && eff !== undefined && ((BigInt(`0x${eff}`) >> BigInt(cap)) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** A bitmap of `bits` bits, stored as the kernel's unsigned long arrays are on a little-endian machine. */
export class Bitmap {
  readonly bytes: Buffer;

  constructor(readonly bits: number) {
    this.bytes = Buffer.alloc(Math.ceil(bits / 64) * 8);
  }

  static of(bits: number, set: Iterable<number>): Bitmap {
    const b = new Bitmap(bits);
    for (const n of set) b.set(n, true);
    return b;
  }

  test(n: number): boolean {
    return n >= 0 && n < this.bits && (this.bytes[n >> 3]! & (1 << (n & 7))) !== 0;
  }

  set(n: number, on: boolean): void {
    if (n < 0 || n >= this.bits) return;
    if (on) this.bytes[n >> 3]! |= 1 << (n & 7);
    else this.bytes[n >> 3]! &= ~(1 << (n & 7));
  }

  isEmpty(): boolean {
    return this.bytes.every((b) => b === 0);
  }

  /** The set bits, ascending. */
  list(): number[] {
    const out: number[] = [];
    for (let n = 0; n < this.bits; n++) if (this.test(n)) out.push(n);
    return out;
  }

  /**
   * bits_to_user(): BITS_TO_LONGS(maxbit) longs (4-byte longs for a 32-bit
   * caller), at most maxlen bytes; the ioctl returns the count copied.
   */
  toUser(maxbit: number, maxlen: number, compat: boolean): IoctlReply {
    const word = compat ? 4 : 8;
    const len = Math.min(Math.ceil(maxbit / (word * 8)) * word, maxlen);
    const out = Buffer.alloc(len);
    this.bytes.copy(out, 0, 0, Math.min(len, this.bytes.length));
    return { result: len, out };
  }

  /**
   * input_print_bitmap(): the longs as hex, most significant first, leading
   * empty longs skipped, "0" when empty; one line (sysfs capabilities/*).
   */
  toSysfs(maxbit: number): string {
    const words: string[] = [];
    for (let i = Math.ceil(maxbit / 64) - 1; i >= 0; i--) {
      const w = i * 8 < this.bytes.length ? this.bytes.readBigUInt64LE(i * 8) : 0n;
      if (words.length === 0 && w === 0n) continue;
      words.push(w.toString(16));
    }
    return `${words.length ? words.join(' ') : '0'}\n`;
  }
}

/**
 * Waits for `cond` like a driver's read loop: EAGAIN at once with O_NONBLOCK
 * (file.nonblock follows fcntl changes), otherwise sleeps on the device's
 * wait queue. Callers re-check their condition after it returns.
 */
export function waitUnlessNonblock(file: File<unknown>, cond: () => boolean, signal: AbortSignal): Promise<void> {
  // Not async: the wait queue's own promise is returned, one link fewer in
  // the chain every blocked reader holds.
  if (cond()) return Promise.resolve();
  if (file.nonblock) return Promise.reject(new Errno('EAGAIN'));
  return file.instance.wq.wait(cond, signal);
}

/** "0x" and 16 hex digits: the kernel's %pa for a phys_addr_t on 64-bit (uio maps/mapN/addr and size). */
export function hex64(n: number): string {
  return `0x${n.toString(16).padStart(16, '0')}`;
}
