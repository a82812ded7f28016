/**
 * The vocabulary of character-device I/O shared by the layers: what fs/
 * asks of a device node and what core/ provides. Neither layer imports the
 * other; both speak these types (like include/linux/fs.h's file_operations
 * sits between the VFS and a driver).
 */
import type { UserMemory } from './usermem.js';

/* poll(2) bits, as in include/uapi/asm-generic/poll.h. */
export const POLLIN = 0x001;
export const POLLPRI = 0x002;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const POLLRDNORM = 0x040;
export const POLLWRNORM = 0x100;
/** What the VFS reports for a file whose driver has no poll (DEFAULT_POLLMASK). */
export const DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

export type PollMask = number;

/* open(2) flags that matter to a device (x86_64 / generic values). */
export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;

/** An attribute entry that is an (empty) directory rather than a file: configfs groups such as alua/. */
export const SYS_DIR: unique symbol = Symbol('sys directory');

/** Who made a request: the caller's ids as the kernel reports them in fuse_in_header. */
export interface Caller {
  pid: number;
  uid: number;
  gid: number;
}

/** Context of one read/write/ioctl/poll/fsync call on an open file. */
export interface IoContext extends Caller {
  /**
   * The file's f_flags at the time of this call. O_NONBLOCK may be set by
   * fcntl(F_SETFL) or FIONBIO after open, so this, not the open flags, says
   * whether a read may block (fuse_read_args_fill copies f_flags per request).
   * Undefined for IOCTL, POLL and FSYNC, whose requests carry no f_flags.
   */
  flags: number | undefined;
  /** Aborted when the caller is interrupted by a signal, or through `abort`. */
  readonly signal: AbortSignal;
  /**
   * Cancels this request: aborts `signal` with `reason`. The device layer
   * calls it on unplug, so one signal serves both causes.
   */
  abort(reason: Error): void;
}

export interface OpenContext extends Caller {
  flags: number;
  readonly signal: AbortSignal;
  abort(reason: Error): void;
}

/* _IOC encoding, include/uapi/asm-generic/ioctl.h. */
export const IOC_NONE = 0;
export const IOC_WRITE = 1;
export const IOC_READ = 2;

export function IOC(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
export const IO = (type: number, nr: number): number => IOC(IOC_NONE, type, nr, 0);
export const IOR = (type: number, nr: number, size: number): number => IOC(IOC_READ, type, nr, size);
export const IOW = (type: number, nr: number, size: number): number => IOC(IOC_WRITE, type, nr, size);
export const IOWR = (type: number, nr: number, size: number): number =>
  IOC(IOC_READ | IOC_WRITE, type, nr, size);

export const iocDir = (cmd: number): number => (cmd >>> 30) & 0x3;
export const iocType = (cmd: number): number => (cmd >>> 8) & 0xff;
export const iocNr = (cmd: number): number => cmd & 0xff;
export const iocSize = (cmd: number): number => (cmd >>> 16) & 0x3fff;

/**
 * An ioctl as a FUSE mount can deliver it. Regular (non-CUSE) mounts are
 * restricted: the kernel copies in _IOC_SIZE(cmd) bytes when the command has
 * _IOC_WRITE and accepts up to _IOC_SIZE(cmd) bytes back when it has
 * _IOC_READ. A command without a size (e.g. TCGETS) carries only `arg`,
 * which `user` follows.
 */
export interface IoctlRequest {
  cmd: number;
  /** The raw third argument of ioctl(2): an integer, or a pointer into the caller's memory (`user`). */
  arg: bigint;
  /** Bytes copied from the caller (length _IOC_SIZE for _IOC_WRITE commands, else empty). */
  in: Buffer;
  /** Bytes the caller can receive (_IOC_SIZE for _IOC_READ commands, else 0). */
  outSize: number;
  /** Set for a 32-bit caller on a 64-bit kernel (FUSE_IOCTL_COMPAT). */
  compat: boolean;
  /**
   * The thread that called ioctl(2) (fuse_in_header.pid): whose memory `arg`
   * points into. Not the opener's: a descriptor outlives fork() and travels
   * over Unix sockets.
   */
  pid: number;
  /**
   * That thread's memory, for copy_from_user()/copy_to_user() through `arg`
   * and the pointers it leads to; valid until the request is answered.
   */
  user: UserMemory;
}

export interface IoctlReply {
  /** The return value of ioctl(2) in the caller; default 0. */
  result?: number;
  /** Bytes copied back to the caller; at most `outSize`. */
  out?: Buffer;
}

/** A byte range of a device's regions taken as one file (region N at N * page size). */
export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * A device's shared regions as one file, region N at byte N * page size
 * (src/core/regions.ts), for a filesystem that cannot hand programs the
 * pages themselves (no FUSE passthrough): it answers their page reads and
 * writebacks from `bytes` and keeps their page caches in step at the
 * synchronisation points (docs/models.md#shared-memory-mmap).
 */
export interface DevicePages {
  /** The whole file. Stays readable after the device is freed, for files still open. */
  readonly bytes: Uint8Array;
  /** Page reads and writebacks from here on fail EIO (revoked regions); the file's size while none is. */
  readonly revokedFrom: number;
  /** Connects the one mirror of programs' page caches of this device, or disconnects it (null). */
  attach(mirror: PageSync | null): void;
}

/** Programs' page caches of a device, as the filesystem keeps them (src/fs/page-mirror.ts). */
export interface PageSync {
  /** Merges what programs stored into `ranges` (default: every page a program holds) into `bytes`. */
  pull(ranges?: readonly ByteRange[]): Promise<void> | undefined;
  /**
   * Queues what changed in `bytes` within `ranges` (default: every page a
   * program holds) for programs' page caches; the answer to the request
   * being handled, if any, reaches its program after them.
   */
  push(ranges?: readonly ByteRange[]): void;
  /** Settles once everything pushed is in the page caches; undefined when nothing is on its way. */
  flush(): Promise<void> | undefined;
  /** Drops programs' cached pages from `from` on: their next touch reads a page, which fails (SIGBUS). */
  revoke(from: number): Promise<void>;
}

/**
 * One open file description of a device node: what fs/ calls for READ,
 * WRITE, IOCTL, POLL, FSYNC and RELEASE on the fh it handed out at OPEN.
 * Methods throw an `Errno` to fail. `release` is called exactly once.
 */
export interface DeviceFile {
  /**
   * A file whose pages mmap(MAP_SHARED) of this open file maps (the
   * device's shared regions, through FUSE passthrough); valid until
   * release. Absent: mmap fails ENODEV.
   */
  readonly backingFd?: number;
  /** The same regions as bytes, for page-cache mappings when no backing file can be registered. */
  readonly pages?: DevicePages;
  /**
   * At most `size` bytes; write's count at most the data's length; ioctl's
   * `out` at most `outSize` bytes. The file checks its replies (core does,
   * src/core/fops.ts): fs/ passes them on as they are.
   */
  read?(size: number, io: IoContext): Buffer | Promise<Buffer>;
  write?(data: Buffer, io: IoContext): number | Promise<number>;
  ioctl?(req: IoctlRequest, io: IoContext): IoctlReply | Promise<IoctlReply>;
  /**
   * Current readiness. When `wake` is given, the file calls it once when its
   * readiness may have changed (the kernel then polls again).
   */
  poll?(events: PollMask, wake: (() => void) | null, io: IoContext): PollMask | Promise<PollMask>;
  fsync?(io: IoContext): void | Promise<void>;
  release(): void | Promise<void>;
}

/** A device node: what fs/ calls for OPEN. Throw `Errno` to refuse. */
export interface DeviceEndpoint {
  open(ctx: OpenContext): DeviceFile | Promise<DeviceFile>;
}
