/**
 * The calling thread's memory, as a driver reaches it from an ioctl with
 * copy_from_user() and copy_to_user(): the one way a model follows a user
 * pointer (docs/writing-a-model.md#user-memory).
 *
 * A FUSE mount passes an ioctl's argument as an integer and copies only
 * what the command's _IOC encoding declares, so commands without one
 * (TCGETS, I2C_RDWR) and structures holding pointers (spi_ioc_transfer's
 * tx_buf) carry nothing more. The request names the calling thread
 * (fuse_in_header.pid is pid_nr_ns(task_pid(current)), fs/fuse/dev.c: the
 * thread's id, not its process's), and that thread sits in ioctl(2) until
 * the request is answered: the kernel's request_wait_answer() does not let
 * it return or exit before. Its memory is read and written with
 * process_vm_readv/writev (src/sys/ffi.ts), as root or as its ancestor.
 */
import { Errno } from './errno.js';
import { processVmRead, processVmWrite } from './sys/ffi.js';

/** A user address: a pointer-sized integer from the caller (an ioctl's arg, a u64 field of its structure). */
export type UserAddress = bigint | number;

/**
 * The caller's memory for the duration of one request (IoctlRequest.user).
 * Both methods are all-or-nothing as the kernel's ioctl handlers use the
 * copies (`if (copy_from_user(...)) return -EFAULT;`): they reject with
 * EFAULT when any byte of the range cannot be accessed, and that EFAULT,
 * thrown on, is the caller's answer.
 */
export interface UserMemory {
  /**
   * copy_from_user(): `length` bytes at `addr`. Rejects EFAULT when any of
   * them cannot be read (an unmapped page, no read permission, an address
   * past the user range); nothing is returned then.
   */
  read(addr: UserAddress, length: number): Promise<Buffer>;
  /**
   * copy_to_user(): all of `bytes` at `addr`. Rejects EFAULT when any of
   * them cannot be written (unmapped, or a read-only mapping); the bytes
   * before the first page that failed may have been stored, as
   * copy_to_user() leaves them.
   */
  write(addr: UserAddress, bytes: Uint8Array): Promise<void>;
}

const U64_END = 1n << 64n;

/** The range as the kernel's access_ok() sees it: a negative or wrapping range is EFAULT, not a model bug. */
function range(addr: UserAddress, length: number): bigint {
  if (!Number.isSafeInteger(length) || length < 0) throw new TypeError(`user memory: length must be a non-negative integer, got ${length}`);
  const a = typeof addr === 'bigint' ? addr : Number.isSafeInteger(addr) ? BigInt(addr) : -1n;
  if (a < 0n || a + BigInt(length) > U64_END) throw new Errno('EFAULT');
  return a;
}

/**
 * The memory of thread `tid` while its request is unanswered. The request's
 * owner calls revoke() once it is answered: the thread has returned from
 * ioctl(2) and reuses that memory, so a model still running then (a stuck
 * handler answered by unplug) gets EFAULT instead of writing into it.
 */
export class CallerMemory implements UserMemory {
  private revoked = false;

  constructor(readonly tid: number) {}

  revoke(): void {
    this.revoked = true;
  }

  async read(addr: UserAddress, length: number): Promise<Buffer> {
    const at = range(addr, length);
    const into = Buffer.alloc(length);
    this.check();
    if ((await processVmRead(this.tid, at, into)) !== length) throw new Errno('EFAULT');
    return into;
  }

  async write(addr: UserAddress, bytes: Uint8Array): Promise<void> {
    const at = range(addr, bytes.length);
    this.check();
    const from = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    if ((await processVmWrite(this.tid, at, from)) !== bytes.length) throw new Errno('EFAULT');
  }

  private check(): void {
    if (this.revoked) throw new Errno('EFAULT', `user memory of thread ${this.tid} used after its request was answered`);
  }
}
