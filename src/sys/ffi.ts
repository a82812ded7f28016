/**
 * The system calls Node lacks, through koffi: the only module that imports
 * it. Each wrapper checks the call's result and throws an `Errno` built
 * from the thread's errno, read right after the failing call (koffi saves
 * it per call), so callers handle failures like any other errno.
 *
 * koffi and libc are loaded at the first call, not at import: every CLI
 * command imports the library, and only a daemon with mappable devices
 * needs them (loading costs a few hundred ms on a busy machine).
 *
 * Linux only; constants are the generic/x86_64 values of the uapi headers.
 */
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';
import { E, Errno, errnoName } from '../errno.js';

/** An opaque pointer returned by mmap(); only this module looks inside. */
export type Pointer = unknown;

/* include/uapi/linux/memfd.h */
export const MFD_CLOEXEC = 0x0001;
export const MFD_ALLOW_SEALING = 0x0002;

/* include/uapi/linux/fcntl.h */
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 0x0001;
export const F_SEAL_SHRINK = 0x0002;
export const F_SEAL_GROW = 0x0004;

/* include/uapi/asm-generic/mman-common.h */
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;

/** The libc functions, each prototype parsed once by koffi. A new call goes here, with a typed wrapper below. */
function bind(koffi: typeof Koffi) {
  const libc = koffi.load('libc.so.6');
  return {
    koffi,
    // ioctl and fcntl are variadic in libc; the argument's type is given per call.
    ioctl: libc.func('int ioctl(int fd, unsigned long request, ...)'),
    // The same with a fixed third argument, for calls on a worker thread (ioctlAsync): pointer or
    // integer, both passed in a general register on x86_64 as the variadic call passes them.
    ioctl_ptr: libc.func('int ioctl(int fd, unsigned long request, void *arg)'),
    ioctl_val: libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)'),
    fcntl: libc.func('int fcntl(int fd, int cmd, ...)'),
    memfd_create: libc.func('int memfd_create(const char *name, unsigned int flags)'),
    ftruncate: libc.func('int ftruncate(int fd, int64_t length)'),
    flock: libc.func('int flock(int fd, int operation)'),
    // The address is an integer: MAP_FIXED places a mapping at an address computed here.
    mmap: libc.func('void *mmap(uintptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
    munmap: libc.func('int munmap(void *addr, size_t length)'),
    sysconf: libc.func('long sysconf(int name)'),
    socket: libc.func('int socket(int domain, int type, int protocol)'),
    socketpair: libc.func('int socketpair(int domain, int type, int protocol, void *sv)'),
    bind: libc.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
    getsockname: libc.func('int getsockname(int fd, void *addr, void *addrlen)'),
    sendto: libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
    setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
    // The message header is laid out by hand: in memory koffi allocated (recvmsgNetlink), or in a Buffer (receiveFd).
    recvmsg: libc.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
    ppoll: libc.func('int ppoll(_Inout_ uint8_t *fds, uint64_t nfds, const void *timeout, void *sigmask)'),
    // Buffers pass as pointers to their memory, not copies.
    read: libc.func('intptr_t read(int fd, void *buf, size_t count)'),
    pread: libc.func('intptr_t pread(int fd, void *buf, size_t count, int64_t offset)'),
    write: libc.func('intptr_t write(int fd, const void *buf, size_t count)'),
    // The iovec arrays are built here as bytes: their bases are addresses, in this process and in another.
    process_vm_readv: libc.func(
      'intptr_t process_vm_readv(int pid, const void *local, unsigned long liovcnt, const void *remote, unsigned long riovcnt, unsigned long flags)',
    ),
    process_vm_writev: libc.func(
      'intptr_t process_vm_writev(int pid, const void *local, unsigned long liovcnt, const void *remote, unsigned long riovcnt, unsigned long flags)',
    ),
  };
}

let bound: ReturnType<typeof bind> | null = null;
const lib = (): ReturnType<typeof bind> => (bound ??= bind(createRequire(import.meta.url)('koffi') as typeof Koffi));

const MAP_FAILED = 0xffffffffffffffffn;
const _SC_PAGESIZE = 30;

function fail(call: string): never {
  const errno = lib().koffi.errno();
  throw new Errno(errno, `${call}: ${errnoName(errno)}`);
}

function check(call: string, r: number): number {
  if (r < 0) fail(call);
  return r;
}

/** ioctl(fd, request, arg) with a pointer argument; the kernel reads and writes `arg` in place. Returns ioctl's result. */
export function ioctl(fd: number, request: number, arg: Buffer): number {
  return check('ioctl', lib().ioctl(fd, request, 'void *', arg) as number);
}

/**
 * ioctl(fd, request, arg) on a libuv worker thread, for a real device's
 * command that may sleep (TCSETSW and TCSBRK wait until the output has
 * drained at the line's speed: tty_ioctl.c tty_wait_until_sent()), which
 * must not hold the daemon's thread. `arg` is a Buffer the kernel reads
 * and writes in place (kept referenced until the call returns), or an
 * integer (TCFLSH's queue): never an address of another process, which
 * would be taken as one of this one. Resolves to ioctl's result, rejects
 * with an Errno.
 */
export function ioctlAsync(fd: number, request: number, arg: Buffer | bigint): Promise<number> {
  const l = lib();
  const call = Buffer.isBuffer(arg) ? l.ioctl_ptr : l.ioctl_val;
  return new Promise((resolve, reject) => {
    call.async(fd, request, arg, (err: unknown, r: number) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      if (r >= 0) return resolve(r);
      const errno = l.koffi.errno(); // koffi keeps the worker's errno for the callback
      reject(new Errno(errno, `ioctl: ${errnoName(errno)}`));
    });
  });
}

/** fcntl(fd, cmd, arg) with an integer argument. */
export function fcntl(fd: number, cmd: number, arg: number): number {
  return check('fcntl', lib().fcntl(fd, cmd, 'int', arg) as number);
}

/** memfd_create(2): a file descriptor for an anonymous shmem file. */
export function memfdCreate(name: string, flags: number): number {
  return check('memfd_create', lib().memfd_create(name, flags) as number);
}

export function ftruncate(fd: number, length: number): void {
  check('ftruncate', lib().ftruncate(fd, length) as number);
}

/* include/uapi/asm-generic/fcntl.h */
const LOCK_EX = 2;
const LOCK_NB = 4;

/**
 * flock(fd, LOCK_EX | LOCK_NB): true once this open file holds the lock,
 * false when another open file of the same inode holds it (EWOULDBLOCK).
 * The kernel drops it when the last descriptor of this open file closes,
 * which includes the process dying.
 */
export function tryLockExclusive(fd: number): boolean {
  if ((lib().flock(fd, LOCK_EX | LOCK_NB) as number) === 0) return true;
  if (lib().koffi.errno() === E.EAGAIN) return false;
  fail('flock');
}

/** Adds seals (F_SEAL_*) to a memfd created with MFD_ALLOW_SEALING. */
export function addSeals(fd: number, seals: number): void {
  fcntl(fd, F_ADD_SEALS, seals);
}

export function getSeals(fd: number): number {
  return fcntl(fd, F_GET_SEALS, 0);
}

/**
 * mmap(2). `at` is the address for MAP_FIXED (which replaces whatever was
 * mapped there), else 0; `fd` is -1 with MAP_ANONYMOUS.
 */
export function mmap(length: number, prot: number, flags: number, fd: number, offset: number, at = 0n): Pointer {
  const p: Pointer = lib().mmap(at, length, prot, flags, fd, offset);
  if (p === null || lib().koffi.address(p) === MAP_FAILED) fail('mmap');
  return p;
}

export function munmap(p: Pointer, length: number): void {
  check('munmap', lib().munmap(p, length) as number);
}

/**
 * An ArrayBuffer over `length` bytes of mapped memory, without copy
 * (koffi.view). It stays valid only while the pages stay mapped: touching
 * it after munmap() crashes the process.
 */
export function view(p: Pointer, length: number): ArrayBuffer {
  return lib().koffi.view(p, length);
}

/** The address a pointer holds. */
export function address(p: Pointer): bigint {
  return lib().koffi.address(p);
}

let page = 0;
/** sysconf(_SC_PAGESIZE): the unit of mappings, and uio's map offset unit. */
export function pageSize(): number {
  return (page ||= lib().sysconf(_SC_PAGESIZE) as number);
}

/* include/linux/socket.h, include/uapi/linux/netlink.h */
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_USERSOCK = 2;
/** The kernel connector (drivers/connector/connector.c), which carries the process events (cn_proc.c). */
export const NETLINK_CONNECTOR = 11;
const MSG_DONTWAIT = 0x40;
const SOCKADDR_NL_SIZE = 12;

/** struct sockaddr_nl { sa_family_t nl_family; u16 nl_pad; u32 nl_pid; u32 nl_groups; } */
function sockaddrNl(port: number, groups: number): Buffer {
  const b = Buffer.alloc(SOCKADDR_NL_SIZE);
  b.writeUInt16LE(AF_NETLINK, 0);
  b.writeUInt32LE(port >>> 0, 4);
  b.writeUInt32LE(groups >>> 0, 8);
  return b;
}

/** socket(2); close the result with fs.closeSync. */
export function socket(domain: number, type: number, protocol: number): number {
  return check('socket', lib().socket(domain, type, protocol) as number);
}

/** bind(2) of a netlink socket; port 0 lets the kernel pick one (netlink_autobind()). */
export function bindNetlink(fd: number, port: number, groups: number): void {
  check('bind', lib().bind(fd, sockaddrNl(port, groups), SOCKADDR_NL_SIZE) as number);
}

/** The port a netlink socket is bound to (getsockname(2)'s nl_pid). */
export function netlinkPort(fd: number): number {
  const addr = Buffer.alloc(SOCKADDR_NL_SIZE);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(SOCKADDR_NL_SIZE);
  check('getsockname', lib().getsockname(fd, addr, len) as number);
  return addr.readUInt32LE(4);
}

/**
 * sendto(2) of one datagram to a netlink port, without blocking
 * (MSG_DONTWAIT): a receiver whose queue is full gets EAGAIN instead of
 * stalling the caller, a port nobody holds ECONNREFUSED.
 */
export function sendtoNetlink(fd: number, data: Buffer, port: number): void {
  check('sendto', Number(lib().sendto(fd, data, data.length, MSG_DONTWAIT, sockaddrNl(port, 0), SOCKADDR_NL_SIZE)));
}

/**
 * read(2) of up to `length` bytes into `buf`: the byte count, or -errno
 * instead of a throw. For a hot path on a non-blocking descriptor, where
 * EAGAIN is routine and an exception costs more than the read; koffi's
 * call is also cheaper than fs.readSync's (about 0.45 against 0.7 µs for
 * a 16-byte read of /dev/zero, measured on Node 20).
 */
export function readOrErrno(fd: number, buf: Buffer, length: number): number {
  const r = Number(lib().read(fd, buf, length));
  return r < 0 ? -lib().koffi.errno() : r;
}

/** pread(2) of up to `length` bytes at `offset` into `buf`: the byte count, or -errno (see readOrErrno). */
export function preadOrErrno(fd: number, buf: Buffer, length: number, offset: number): number {
  const r = Number(lib().pread(fd, buf, length, offset));
  return r < 0 ? -lib().koffi.errno() : r;
}

/** write(2) of buf[0, length): the byte count, or -errno instead of a throw (see readOrErrno). */
export function writeOrErrno(fd: number, buf: Buffer, length: number): number {
  const r = Number(lib().write(fd, buf, length));
  return r < 0 ? -lib().koffi.errno() : r;
}

/**
 * write(2) of all of `buf` on a libuv worker thread: the byte count, or
 * -errno. For a write that may block in the kernel on something only the
 * main thread can release (a FUSE invalidation waiting for a directory
 * lock: src/fuse/notifier.ts PoolNotifier), so the main thread stays free
 * to release it. `buf` stays referenced by the callback until the call
 * returns.
 */
export function writeAsyncOrErrno(fd: number, buf: Buffer): Promise<number> {
  const l = lib();
  return new Promise((resolve, reject) => {
    l.write.async(fd, buf, buf.length, (err: unknown, r: number | bigint) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      const n = Number(r);
      resolve(n < 0 ? -l.koffi.errno() : n); // koffi keeps the worker's errno for the callback
    });
  });
}

/* include/uapi/asm-generic/socket.h, include/linux/socket.h */
const SOL_SOCKET = 1;
const SO_PASSCRED = 16;
const SCM_CREDENTIALS = 2;
/** struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }, then struct ucred { pid_t pid; uid_t uid; gid_t gid; } */
const CMSG_HDR_SIZE = 16;
const UCRED_SIZE = 12;
/** CMSG_SPACE(sizeof(struct ucred)): the payload padded to 8 bytes. */
const CMSG_SPACE_UCRED = CMSG_HDR_SIZE + 16;

/**
 * setsockopt(fd, SOL_SOCKET, SO_PASSCRED, 1): every datagram read with
 * recvmsgNetlink() then carries the credentials of the process that sent
 * it, which the kernel recorded at send time (netlink_sendmsg() ->
 * scm_send(): the sender's tgid, uid and gid; a sender can name another
 * pid only with CAP_SYS_ADMIN, another uid only with CAP_SETUID,
 * net/core/scm.c scm_check_creds()).
 */
export function passCredentials(fd: number): void {
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  check('setsockopt', lib().setsockopt(fd, SOL_SOCKET, SO_PASSCRED, one, 4) as number);
}

const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;

/**
 * Asks for a receive queue of `bytes` on socket `fd`: SO_RCVBUFFORCE,
 * which may exceed net.core.rmem_max but needs CAP_NET_ADMIN
 * (net/core/sock.c sk_setsockopt()), else SO_RCVBUF, capped at rmem_max.
 * For a socket that takes datagrams it never asked for (a multicast
 * group's), which the kernel drops (ENOBUFS at the next read) once the
 * queue is full.
 */
export function setReceiveBuffer(fd: number, bytes: number): void {
  const size = Buffer.alloc(4);
  size.writeInt32LE(bytes);
  if ((lib().setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) as number) === 0) return;
  check('setsockopt', lib().setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4) as number);
}

/** Who sent a datagram: its port (NETLINK_CB(skb).portid) and, with passCredentials(), its pid, uid and gid (-1 when absent). */
export interface NetlinkSender {
  port: number;
  pid: number;
  uid: number;
  gid: number;
}

/** Larger than any datagram a peer sends (netlink's default is a page, NLMSG_GOODSIZE). */
export const NETLINK_DATAGRAM_MAX = 65536;

/*
 * recvmsg()'s memory, allocated once and never moved: struct msghdr
 * (x86_64: msg_name 0, msg_namelen 8, msg_iov 16, msg_iovlen 24,
 * msg_control 32, msg_controllen 40, msg_flags 48; 56 bytes), one struct
 * iovec { iov_base; iov_len; }, the sender's sockaddr_nl, the control
 * buffer, then the datagram. The kernel writes into it; only the main
 * thread calls, and each datagram is copied out before the next call.
 */
const MSG_OFF = 0;
const IOV_OFF = 56;
const NAME_OFF = IOV_OFF + 16;
const CONTROL_OFF = NAME_OFF + 16;
const DATA_OFF = CONTROL_OFF + CMSG_SPACE_UCRED;
let recvMemory: { ptr: Pointer; view: Buffer } | null = null;

function recvmsgMemory(): { ptr: Pointer; view: Buffer } {
  if (recvMemory) return recvMemory;
  const { koffi } = lib();
  const size = DATA_OFF + NETLINK_DATAGRAM_MAX;
  const ptr: Pointer = koffi.alloc('uint8_t', size);
  const view = Buffer.from(koffi.view(ptr, size));
  const base = koffi.address(ptr);
  view.writeBigUInt64LE(base + BigInt(NAME_OFF), MSG_OFF);
  view.writeBigUInt64LE(base + BigInt(IOV_OFF), MSG_OFF + 16);
  view.writeBigUInt64LE(1n, MSG_OFF + 24);
  view.writeBigUInt64LE(base + BigInt(CONTROL_OFF), MSG_OFF + 32);
  view.writeBigUInt64LE(base + BigInt(DATA_OFF), IOV_OFF);
  view.writeBigUInt64LE(BigInt(NETLINK_DATAGRAM_MAX), IOV_OFF + 8);
  return (recvMemory = { ptr, view });
}

const NO_CREDENTIALS = { pid: -1, uid: -1, gid: -1 };

/**
 * recvmsg(2) of one datagram without blocking: a copy of it, and its
 * sender (the real port, whatever the message's nlmsg_pid says, and the
 * SCM_CREDENTIALS the kernel attached), or -errno in `n` (EAGAIN: none
 * queued) instead of a throw.
 */
export function recvmsgNetlink(fd: number): { n: number; data: Buffer | null; sender: NetlinkSender } {
  const { ptr, view } = recvmsgMemory();
  view.writeUInt32LE(SOCKADDR_NL_SIZE, MSG_OFF + 8);
  view.writeBigUInt64LE(BigInt(CMSG_SPACE_UCRED), MSG_OFF + 40);
  view.writeInt32LE(0, MSG_OFF + 48);
  const r = Number(lib().recvmsg(fd, ptr, MSG_DONTWAIT));
  if (r < 0) return { n: -lib().koffi.errno(), data: null, sender: { port: 0, ...NO_CREDENTIALS } };
  const data = Buffer.from(view.subarray(DATA_OFF, DATA_OFF + r));
  const port = view.readUInt32LE(NAME_OFF + 4);
  const creds =
    view.readBigUInt64LE(MSG_OFF + 40) >= BigInt(CMSG_HDR_SIZE + UCRED_SIZE) &&
    view.readBigUInt64LE(CONTROL_OFF) >= BigInt(CMSG_HDR_SIZE + UCRED_SIZE) &&
    view.readInt32LE(CONTROL_OFF + 8) === SOL_SOCKET &&
    view.readInt32LE(CONTROL_OFF + 12) === SCM_CREDENTIALS;
  if (!creds) return { n: r, data, sender: { port, ...NO_CREDENTIALS } };
  const cred = CONTROL_OFF + CMSG_HDR_SIZE;
  return { n: r, data, sender: { port, pid: view.readInt32LE(cred), uid: view.readUInt32LE(cred + 4), gid: view.readUInt32LE(cred + 8) } };
}

/* include/uapi/asm-generic/poll.h */
export const POLLIN = 0x001;

const pollfd = Buffer.alloc(8); // struct pollfd { int fd; short events; short revents; }
// struct timespec { int64_t tv_sec; long tv_nsec; }, written as 32-bit halves:
// a BigInt per field would be two allocations on every wait for a request.
const timespec = Buffer.alloc(16);

/**
 * ppoll(2) on one descriptor for up to `timeoutNs`: the revents (0 on
 * timeout). EINTR counts as a timeout. Blocks the calling thread, so only
 * for bounded waits.
 */
export function pollOne(fd: number, events: number, timeoutNs: number): number {
  pollfd.writeInt32LE(fd, 0);
  pollfd.writeInt16LE(events, 4);
  pollfd.writeInt16LE(0, 6);
  const sec = Math.min(Math.floor(timeoutNs / 1e9), 0xffffffff);
  timespec.writeUInt32LE(sec, 0);
  timespec.writeUInt32LE(0, 4);
  timespec.writeUInt32LE(Math.floor(timeoutNs % 1e9), 8);
  timespec.writeUInt32LE(0, 12);
  const r = lib().ppoll(pollfd, 1, timespec, null) as number;
  if (r < 0) {
    if (lib().koffi.errno() === 4) return 0; // EINTR
    fail('ppoll');
  }
  return r === 0 ? 0 : pollfd.readInt16LE(6);
}

/** One struct iovec { void *iov_base; size_t iov_len; }, as bytes. */
function iovec(base: bigint, length: number): Buffer {
  const v = Buffer.alloc(16);
  v.writeBigUInt64LE(base, 0);
  v.writeBigUInt64LE(BigInt(length), 8);
  return v;
}

/**
 * process_vm_readv(2) or process_vm_writev(2) of `local`'s bytes from or to
 * `remote` in thread `tid`'s address space: resolves to the bytes copied,
 * which is fewer than asked when the remote range runs into a page that
 * cannot be accessed (the kernel stops there), and rejects with an Errno
 * when not even the first byte could be (EFAULT), the thread is gone
 * (ESRCH) or may not be traced by this process (EPERM).
 *
 * The call runs on a libuv worker thread, not the main thread: copying
 * faults the other process's pages in, which can wait on any file system,
 * even for a READ of this daemon's own mount (a program may pass a pointer
 * into a private mapping of one of its files), which only a free main
 * thread can serve.
 */
function processVm(call: 'process_vm_readv' | 'process_vm_writev', tid: number, local: Buffer, remote: bigint): Promise<number> {
  if (local.length === 0) return Promise.resolve(0);
  const l = lib();
  // Both arrays and `local` stay referenced by this closure until the call returns.
  const localIov = iovec(l.koffi.address(local), local.length);
  const remoteIov = iovec(remote, local.length);
  return new Promise((resolve, reject) => {
    l[call].async(tid, localIov, 1, remoteIov, 1, 0, (err: unknown, r: number | bigint) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      const n = Number(r);
      if (n >= 0) return resolve(n);
      const errno = l.koffi.errno(); // koffi keeps the worker's errno for the callback
      reject(new Errno(errno, `${call}: ${errnoName(errno)}`));
    });
  });
}

/** Copies `into.length` bytes at `remote` in thread `tid` into `into` (see processVm). */
export function processVmRead(tid: number, remote: bigint, into: Buffer): Promise<number> {
  return processVm('process_vm_readv', tid, into, remote);
}

/** Copies `from` to `remote` in thread `tid` (see processVm). */
export function processVmWrite(tid: number, remote: bigint, from: Buffer): Promise<number> {
  return processVm('process_vm_writev', tid, from, remote);
}

/* include/linux/socket.h, include/uapi/linux/net.h */
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;

/**
 * socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two connected stream
 * sockets, close-on-exec (a child gets one only where spawn's stdio puts
 * it). Close them with fs.closeSync.
 */
export function unixSocketPair(): [number, number] {
  const sv = Buffer.alloc(8);
  check('socketpair', lib().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) as number);
  return [sv.readInt32LE(0), sv.readInt32LE(4)];
}

/*
 * receiveFd's memory, one Buffer per call: struct msghdr (56 bytes, laid
 * out as for recvmsgNetlink), one struct iovec, the one data byte a sender
 * of descriptors must send (unix(7)), and the control buffer:
 * CMSG_SPACE(sizeof(int)) = 24, a struct cmsghdr then the int.
 */
const FD_IOV_OFF = 56;
const FD_DATA_OFF = FD_IOV_OFF + 16;
const FD_CONTROL_OFF = FD_DATA_OFF + 8;
const CMSG_SPACE_INT = CMSG_HDR_SIZE + 8;

/**
 * recvmsg(2) of one descriptor sent with SCM_RIGHTS over the stream socket
 * `fd` (what fusermount3 does with the /dev/fuse descriptor it mounted: one
 * byte of data, one descriptor), without blocking: the descriptor,
 * received close-on-exec (MSG_CMSG_CLOEXEC), or null when none is queued
 * (EAGAIN) or the peer closed its end without sending one.
 */
export function receiveFd(fd: number): number | null {
  const l = lib();
  const mem = Buffer.alloc(FD_CONTROL_OFF + CMSG_SPACE_INT);
  const base = l.koffi.address(mem);
  mem.writeBigUInt64LE(base + BigInt(FD_IOV_OFF), 16); // msg_iov
  mem.writeBigUInt64LE(1n, 24); // msg_iovlen
  mem.writeBigUInt64LE(base + BigInt(FD_CONTROL_OFF), 32); // msg_control
  mem.writeBigUInt64LE(BigInt(CMSG_SPACE_INT), 40); // msg_controllen
  mem.writeBigUInt64LE(base + BigInt(FD_DATA_OFF), FD_IOV_OFF); // iov_base
  mem.writeBigUInt64LE(1n, FD_IOV_OFF + 8); // iov_len
  const n = Number(l.recvmsg(fd, mem, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n < 0) {
    if (l.koffi.errno() === E.EAGAIN) return null;
    fail('recvmsg');
  }
  const rights =
    mem.readBigUInt64LE(40) >= BigInt(CMSG_HDR_SIZE + 4) &&
    mem.readBigUInt64LE(FD_CONTROL_OFF) >= BigInt(CMSG_HDR_SIZE + 4) &&
    mem.readInt32LE(FD_CONTROL_OFF + 8) === SOL_SOCKET &&
    mem.readInt32LE(FD_CONTROL_OFF + 12) === SCM_RIGHTS;
  return n > 0 && rights ? mem.readInt32LE(FD_CONTROL_OFF + CMSG_HDR_SIZE) : null;
}
