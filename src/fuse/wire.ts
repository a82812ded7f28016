/**
 * Struct codecs for the FUSE wire. Pure functions over Buffers: no I/O, no
 * state. Field names are the kernel's (include/uapi/linux/fuse.h). The wire
 * is host-endian; cdevemu runs on little-endian Linux (x86_64, arm64). A
 * request's own header (fuse_in_header, and the fuse_out_header of its
 * answer) is read and written by the request itself (session.ts Context).
 */
import { SIZEOF, FUSE_COMPAT_22_INIT_OUT_SIZE, NotifyCode } from './abi.js';

/**
 * The protocol's 64-bit fields. Node's readBigUInt64LE and
 * writeBigUInt64LE make three or four intermediate BigInts per call; the
 * values a session meets on most requests (file handles, node ids,
 * offsets of stream files) are below 2^32 and need one BigInt to read and
 * none to write. Those intermediates were a sixth of the bytes an
 * echo round trip allocated (sampling heap profile).
 */
function u64(b: Buffer, off: number): bigint {
  return b.readUInt32LE(off + 4) === 0 ? BigInt(b.readUInt32LE(off)) : b.readBigUInt64LE(off);
}

function putU64(b: Buffer, off: number, v: bigint): void {
  if (v >= 0n && v <= 0xffffffffn) {
    b.writeUInt32LE(Number(v), off);
    b.writeUInt32LE(0, off + 4);
  } else b.writeBigUInt64LE(v, off);
}

/**
 * A zero-filled reply struct from Node's buffer pool: Buffer.alloc gives
 * every small buffer an ArrayBuffer of its own, the costliest allocation of
 * a small request. Zeroed all the same: padding goes to the kernel.
 */
const zeroed = (n: number): Buffer => Buffer.allocUnsafe(n).fill(0);

/** Thrown by a decoder when a request body is shorter than its struct. */
export class MalformedRequest extends Error {}

function need(b: Buffer, n: number, what: string): void {
  if (b.length < n) throw new MalformedRequest(`${what}: body has ${b.length} bytes, needs ${n}`);
}

/** A NUL-terminated name as LOOKUP carries it. */
export function decodeName(b: Buffer): { name: string } {
  const end = b.indexOf(0);
  if (end < 0) throw new MalformedRequest('name is not NUL-terminated');
  return { name: b.toString('utf8', 0, end) };
}

export interface fuse_init_in {
  major: number;
  minor: number;
  max_readahead: number;
  flags: number;
  /** Bits 32..63 of the flags; present only when the kernel sent the 7.36+ struct. */
  flags2: number;
}
export function decodeInitIn(b: Buffer): fuse_init_in {
  need(b, 8, 'fuse_init_in');
  // Before 7.6 only major/minor existed; before 7.36 the struct is 16 bytes.
  const long = b.length >= SIZEOF.fuse_init_in;
  return {
    major: b.readUInt32LE(0),
    minor: b.readUInt32LE(4),
    max_readahead: b.length >= 12 ? b.readUInt32LE(8) : 0,
    flags: b.length >= 16 ? b.readUInt32LE(12) : 0,
    flags2: long ? b.readUInt32LE(16) : 0,
  };
}

export interface fuse_forget_in {
  nlookup: bigint;
}
export function decodeForgetIn(b: Buffer): fuse_forget_in {
  need(b, SIZEOF.fuse_forget_in, 'fuse_forget_in');
  return { nlookup: u64(b, 0) };
}

export interface fuse_forget_one {
  nodeid: bigint;
  nlookup: bigint;
}
export function decodeBatchForgetIn(b: Buffer): { forgets: fuse_forget_one[] } {
  need(b, SIZEOF.fuse_batch_forget_in, 'fuse_batch_forget_in');
  const count = b.readUInt32LE(0);
  const avail = Math.floor((b.length - SIZEOF.fuse_batch_forget_in) / SIZEOF.fuse_forget_one);
  // go-fuse doBatchForget: a count beyond the payload is a kernel/daemon mismatch; never read past it.
  if (count > avail) throw new MalformedRequest(`BATCH_FORGET count ${count} exceeds payload (${avail})`);
  const forgets: fuse_forget_one[] = [];
  for (let i = 0; i < count; i++) {
    const o = SIZEOF.fuse_batch_forget_in + i * SIZEOF.fuse_forget_one;
    forgets.push({ nodeid: u64(b, o), nlookup: u64(b, o + 8) });
  }
  return { forgets };
}

export interface fuse_getattr_in {
  getattr_flags: number;
  fh: bigint;
}
export function decodeGetattrIn(b: Buffer): fuse_getattr_in {
  // Kernels before 7.9 sent no body; treat it as "no fh".
  if (b.length < SIZEOF.fuse_getattr_in) return { getattr_flags: 0, fh: 0n };
  return { getattr_flags: b.readUInt32LE(0), fh: u64(b, 8) };
}

export interface fuse_setattr_in {
  valid: number;
  fh: bigint;
  size: bigint;
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
  atimensec: number;
  mtimensec: number;
  ctimensec: number;
  mode: number;
  uid: number;
  gid: number;
}
export function decodeSetattrIn(b: Buffer): fuse_setattr_in {
  need(b, SIZEOF.fuse_setattr_in, 'fuse_setattr_in');
  return {
    valid: b.readUInt32LE(0),
    fh: u64(b, 8),
    size: u64(b, 16),
    atime: u64(b, 32),
    mtime: u64(b, 40),
    ctime: u64(b, 48),
    atimensec: b.readUInt32LE(56),
    mtimensec: b.readUInt32LE(60),
    ctimensec: b.readUInt32LE(64),
    mode: b.readUInt32LE(68),
    uid: b.readUInt32LE(76),
    gid: b.readUInt32LE(80),
  };
}

export interface fuse_open_in {
  flags: number;
  open_flags: number;
}
export function decodeOpenIn(b: Buffer): fuse_open_in {
  need(b, SIZEOF.fuse_open_in, 'fuse_open_in');
  return { flags: b.readUInt32LE(0), open_flags: b.readUInt32LE(4) };
}

export interface fuse_release_in {
  fh: bigint;
  flags: number;
  release_flags: number;
  lock_owner: bigint;
}
export function decodeReleaseIn(b: Buffer): fuse_release_in {
  need(b, SIZEOF.fuse_release_in, 'fuse_release_in');
  return {
    fh: u64(b, 0),
    flags: b.readUInt32LE(8),
    release_flags: b.readUInt32LE(12),
    lock_owner: u64(b, 16),
  };
}

export interface fuse_flush_in {
  fh: bigint;
  lock_owner: bigint;
}
export function decodeFlushIn(b: Buffer): fuse_flush_in {
  need(b, SIZEOF.fuse_flush_in, 'fuse_flush_in');
  return { fh: u64(b, 0), lock_owner: u64(b, 16) };
}

export interface fuse_read_in {
  fh: bigint;
  offset: bigint;
  size: number;
  read_flags: number;
  /** The file's current f_flags (fuse_read_args_fill), so O_NONBLOCK set by fcntl shows here. */
  flags: number;
}
export function decodeReadIn(b: Buffer): fuse_read_in {
  need(b, SIZEOF.fuse_read_in, 'fuse_read_in');
  return {
    fh: u64(b, 0),
    offset: u64(b, 8),
    size: b.readUInt32LE(16),
    read_flags: b.readUInt32LE(20),
    flags: b.readUInt32LE(32),
  };
}

export interface fuse_write_in {
  fh: bigint;
  offset: bigint;
  size: number;
  write_flags: number;
  flags: number;
  /** The bytes written; a view into the request buffer until the session copies it. */
  data: Buffer;
}
export function decodeWriteIn(b: Buffer): fuse_write_in {
  need(b, SIZEOF.fuse_write_in, 'fuse_write_in');
  const size = b.readUInt32LE(16);
  if (b.length < SIZEOF.fuse_write_in + size) {
    throw new MalformedRequest(`WRITE of ${size} bytes carries ${b.length - SIZEOF.fuse_write_in}`);
  }
  return {
    fh: u64(b, 0),
    offset: u64(b, 8),
    size,
    write_flags: b.readUInt32LE(20),
    flags: b.readUInt32LE(32),
    data: b.subarray(SIZEOF.fuse_write_in, SIZEOF.fuse_write_in + size),
  };
}

export interface fuse_fsync_in {
  fh: bigint;
  fsync_flags: number;
}
export function decodeFsyncIn(b: Buffer): fuse_fsync_in {
  need(b, SIZEOF.fuse_fsync_in, 'fuse_fsync_in');
  return { fh: u64(b, 0), fsync_flags: b.readUInt32LE(8) };
}

export interface fuse_access_in {
  mask: number;
}
export function decodeAccessIn(b: Buffer): fuse_access_in {
  need(b, SIZEOF.fuse_access_in, 'fuse_access_in');
  return { mask: b.readUInt32LE(0) };
}

export interface fuse_interrupt_in {
  unique: bigint;
}
export function decodeInterruptIn(b: Buffer): fuse_interrupt_in {
  need(b, SIZEOF.fuse_interrupt_in, 'fuse_interrupt_in');
  return { unique: u64(b, 0) };
}

export interface fuse_ioctl_in {
  fh: bigint;
  flags: number;
  cmd: number;
  arg: bigint;
  in_size: number;
  out_size: number;
  /** in_size bytes copied from the caller. */
  in_data: Buffer;
}
export function decodeIoctlIn(b: Buffer): fuse_ioctl_in {
  need(b, SIZEOF.fuse_ioctl_in, 'fuse_ioctl_in');
  const in_size = b.readUInt32LE(24);
  if (b.length < SIZEOF.fuse_ioctl_in + in_size) throw new MalformedRequest(`IOCTL in_size ${in_size} exceeds body`);
  return {
    fh: u64(b, 0),
    flags: b.readUInt32LE(8),
    cmd: b.readUInt32LE(12),
    arg: u64(b, 16),
    in_size,
    out_size: b.readUInt32LE(28),
    in_data: b.subarray(SIZEOF.fuse_ioctl_in, SIZEOF.fuse_ioctl_in + in_size),
  };
}

export interface fuse_poll_in {
  fh: bigint;
  kh: bigint;
  flags: number;
  /** Requested events; sent from 7.21 on, else 0 (meaning "any"). */
  events: number;
}
export function decodePollIn(b: Buffer): fuse_poll_in {
  need(b, 20, 'fuse_poll_in');
  return {
    fh: u64(b, 0),
    kh: u64(b, 8),
    flags: b.readUInt32LE(16),
    events: b.length >= SIZEOF.fuse_poll_in ? b.readUInt32LE(20) : 0,
  };
}

/* ---- replies ---- */

/** fuse_out_header of a notification (unique 0, error the notify code); answers write their own (session.ts Context). */
export function encodeOutHeader(len: number, error: number, unique: bigint): Buffer {
  const b = Buffer.allocUnsafe(SIZEOF.fuse_out_header);
  writeOutHeader(b, 0, len, error, unique);
  return b;
}

/** fuse_out_header at b[off]. */
function writeOutHeader(b: Buffer, off: number, len: number, error: number, unique: bigint): void {
  b.writeUInt32LE(len, off);
  b.writeInt32LE(error, off + 4);
  putU64(b, off + 8, unique);
}

export interface fuse_attr {
  ino: bigint;
  size: number;
  blocks: number;
  atime: number;
  mtime: number;
  ctime: number;
  atimensec: number;
  mtimensec: number;
  ctimensec: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

function writeAttr(b: Buffer, o: number, a: fuse_attr): void {
  putU64(b, o, a.ino);
  putU64(b, o + 8, BigInt(a.size));
  putU64(b, o + 16, BigInt(a.blocks));
  putU64(b, o + 24, BigInt(a.atime));
  putU64(b, o + 32, BigInt(a.mtime));
  putU64(b, o + 40, BigInt(a.ctime));
  b.writeUInt32LE(a.atimensec, o + 48);
  b.writeUInt32LE(a.mtimensec, o + 52);
  b.writeUInt32LE(a.ctimensec, o + 56);
  b.writeUInt32LE(a.mode, o + 60);
  b.writeUInt32LE(a.nlink, o + 64);
  b.writeUInt32LE(a.uid, o + 68);
  b.writeUInt32LE(a.gid, o + 72);
  b.writeUInt32LE(a.rdev, o + 76);
  b.writeUInt32LE(a.blksize, o + 80);
  b.writeUInt32LE(0, o + 84); // flags (FUSE_ATTR_SUBMOUNT etc.): none
}

/** Cache lifetimes split into the seconds + nanoseconds pairs the kernel wants. */
function writeValid(b: Buffer, secOff: number, nsecOff: number, ms: number): void {
  putU64(b, secOff, BigInt(Math.floor(ms / 1000)));
  b.writeUInt32LE((ms % 1000) * 1_000_000, nsecOff);
}

export interface fuse_entry_out {
  nodeid: bigint;
  generation: bigint;
  entry_valid_ms: number;
  attr_valid_ms: number;
  attr: fuse_attr;
}
export function encodeEntryOut(e: fuse_entry_out): Buffer {
  const b = zeroed(SIZEOF.fuse_entry_out);
  writeEntryOut(b, 0, e);
  return b;
}
function writeEntryOut(b: Buffer, o: number, e: fuse_entry_out): void {
  putU64(b, o, e.nodeid);
  putU64(b, o + 8, e.generation);
  writeValid(b, o + 16, o + 32, e.entry_valid_ms);
  writeValid(b, o + 24, o + 36, e.attr_valid_ms);
  writeAttr(b, o + 40, e.attr);
}

export interface fuse_attr_out {
  attr_valid_ms: number;
  attr: fuse_attr;
}
export function encodeAttrOut(a: fuse_attr_out): Buffer {
  const b = zeroed(SIZEOF.fuse_attr_out);
  writeValid(b, 0, 8, a.attr_valid_ms);
  writeAttr(b, 16, a.attr);
  return b;
}

export interface fuse_open_out {
  fh: bigint;
  open_flags: number;
  /** With FOPEN_PASSTHROUGH: the id FUSE_DEV_IOC_BACKING_OPEN returned (the padding field before 7.40). */
  backing_id?: number;
}
export function encodeOpenOut(o: fuse_open_out): Buffer {
  const b = zeroed(SIZEOF.fuse_open_out);
  putU64(b, 0, o.fh);
  b.writeUInt32LE(o.open_flags, 8);
  b.writeInt32LE(o.backing_id ?? 0, 12);
  return b;
}

/** struct fuse_backing_map {fd, flags, padding}: the argument of FUSE_DEV_IOC_BACKING_OPEN. */
export function encodeBackingMap(fd: number): Buffer {
  const b = Buffer.alloc(SIZEOF.fuse_backing_map);
  b.writeInt32LE(fd, 0);
  return b;
}

export function encodeWriteOut(size: number): Buffer {
  const b = zeroed(SIZEOF.fuse_write_out);
  b.writeUInt32LE(size, 0);
  return b;
}

export interface fuse_kstatfs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}
export function encodeStatfsOut(s: fuse_kstatfs): Buffer {
  const b = Buffer.alloc(SIZEOF.fuse_kstatfs);
  putU64(b, 0, BigInt(s.blocks));
  putU64(b, 8, BigInt(s.bfree));
  putU64(b, 16, BigInt(s.bavail));
  putU64(b, 24, BigInt(s.files));
  putU64(b, 32, BigInt(s.ffree));
  b.writeUInt32LE(s.bsize, 40);
  b.writeUInt32LE(s.namelen, 44);
  b.writeUInt32LE(s.frsize, 48);
  return b;
}

export function encodePollOut(revents: number): Buffer {
  const b = zeroed(SIZEOF.fuse_poll_out);
  b.writeUInt32LE(revents >>> 0, 0);
  return b;
}

/** fuse_ioctl_out followed by the output bytes (restricted ioctl: no iovecs). */
export function encodeIoctlOut(result: number, out: Buffer | undefined): Buffer {
  const len = out?.length ?? 0;
  const b = zeroed(SIZEOF.fuse_ioctl_out + len);
  b.writeInt32LE(result, 0);
  if (out) out.copy(b, SIZEOF.fuse_ioctl_out);
  return b;
}

export interface fuse_init_out {
  major: number;
  minor: number;
  max_readahead: number;
  flags: number;
  max_background: number;
  congestion_threshold: number;
  max_write: number;
  time_gran: number;
  max_pages: number;
  flags2: number;
  /** 7.40: how deep backing files may stack; 1 with FUSE_PASSTHROUGH (backing files on non-stacked filesystems). */
  max_stack_depth?: number;
}
/**
 * fuse_init_out is 24 bytes for a kernel whose minor is below 23
 * (FUSE_COMPAT_22_INIT_OUT_SIZE); longer replies would be rejected there.
 */
export function encodeInitOut(o: fuse_init_out, kernelMinor: number): Buffer {
  const b = Buffer.alloc(SIZEOF.fuse_init_out);
  b.writeUInt32LE(o.major, 0);
  b.writeUInt32LE(o.minor, 4);
  b.writeUInt32LE(o.max_readahead, 8);
  b.writeUInt32LE(o.flags >>> 0, 12);
  b.writeUInt16LE(o.max_background, 16);
  b.writeUInt16LE(o.congestion_threshold, 18);
  b.writeUInt32LE(o.max_write, 20);
  b.writeUInt32LE(o.time_gran, 24);
  b.writeUInt16LE(o.max_pages, 28);
  b.writeUInt32LE(o.flags2 >>> 0, 32);
  b.writeUInt32LE(o.max_stack_depth ?? 0, 36);
  return kernelMinor < 23 ? b.subarray(0, FUSE_COMPAT_22_INIT_OUT_SIZE) : b;
}

export interface DirEntry {
  ino: bigint;
  /** The offset of the NEXT entry (what the kernel passes back to continue). */
  off: number;
  type: number;
  name: string;
  /** READDIRPLUS only: the entry as LOOKUP would return it. nodeid 0 for "." and "..". */
  entry?: fuse_entry_out;
}

const align8 = (n: number): number => (n + 7) & ~7;

/**
 * Packs dirents (or direntplus records) into at most `size` bytes. Returns
 * the buffer and how many entries fit, so READDIRPLUS can count a lookup for
 * exactly the entries the kernel will see.
 */
export function encodeDirents(entries: DirEntry[], size: number, plus: boolean): { buf: Buffer; count: number } {
  const chunks: Buffer[] = [];
  let used = 0;
  let count = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const head = plus ? SIZEOF.fuse_entry_out : 0;
    const reclen = head + align8(SIZEOF.fuse_dirent + name.length);
    if (used + reclen > size) break;
    const b = Buffer.alloc(reclen);
    if (plus) {
      writeEntryOut(b, 0, e.entry ?? nullEntry);
    }
    putU64(b, head, e.ino);
    putU64(b, head + 8, BigInt(e.off));
    b.writeUInt32LE(name.length, head + 16);
    b.writeUInt32LE(e.type, head + 20);
    name.copy(b, head + SIZEOF.fuse_dirent);
    chunks.push(b);
    used += reclen;
    count++;
  }
  return { buf: Buffer.concat(chunks, used), count };
}

const nullEntry: fuse_entry_out = {
  nodeid: 0n,
  generation: 0n,
  entry_valid_ms: 0,
  attr_valid_ms: 0,
  attr: {
    ino: 0n, size: 0, blocks: 0, atime: 0, mtime: 0, ctime: 0, atimensec: 0, mtimensec: 0, ctimensec: 0,
    mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0,
  },
};

/* ---- notifications (unique 0, error = notify code) ---- */

function notify(code: NotifyCode, body: Buffer): Buffer {
  const h = encodeOutHeader(SIZEOF.fuse_out_header + body.length, code, 0n);
  return Buffer.concat([h, body]);
}

/** FUSE_NOTIFY_POLL: wakes every poller registered under `kh`; they poll again. */
export function encodeNotifyPoll(kh: bigint): Buffer {
  const b = Buffer.alloc(SIZEOF.fuse_notify_poll_wakeup_out);
  putU64(b, 0, kh);
  return notify(NotifyCode.POLL, b);
}

/**
 * FUSE_NOTIFY_INVAL_ENTRY. The name is followed by a NUL: go-fuse notes that
 * many kernels produce stack traces without it.
 */
export function encodeNotifyInvalEntry(parent: bigint, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(SIZEOF.fuse_notify_inval_entry_out + n.length + 1);
  putU64(b, 0, parent);
  b.writeUInt32LE(n.length, 8);
  n.copy(b, SIZEOF.fuse_notify_inval_entry_out);
  return notify(NotifyCode.INVAL_ENTRY, b);
}

/**
 * FUSE_NOTIFY_INVAL_INODE: drops the inode's cached pages from `off` for
 * `len` bytes (len 0: to the end), writing dirty ones back first
 * (fs/fuse/inode.c fuse_reverse_inval_inode); off -1 drops attributes only.
 */
export function encodeNotifyInvalInode(ino: bigint, off: number, len: number): Buffer {
  const b = Buffer.alloc(SIZEOF.fuse_notify_inval_inode_out);
  putU64(b, 0, ino);
  b.writeBigInt64LE(BigInt(off), 8);
  b.writeBigInt64LE(BigInt(len), 16);
  return notify(NotifyCode.INVAL_INODE, b);
}

/**
 * The head of a FUSE_NOTIFY_STORE of `size` bytes at `offset`: the
 * fuse_out_header and fuse_notify_store_out; the bytes follow it in the
 * same write (fs/fuse/dev.c fuse_notify_store checks the length).
 */
export function encodeNotifyStoreHead(nodeid: bigint, offset: number, size: number): Buffer {
  const b = Buffer.alloc(SIZEOF.fuse_out_header + SIZEOF.fuse_notify_store_out);
  writeOutHeader(b, 0, b.length + size, NotifyCode.STORE, 0n);
  putU64(b, SIZEOF.fuse_out_header, nodeid);
  putU64(b, SIZEOF.fuse_out_header + 8, BigInt(offset));
  b.writeUInt32LE(size, SIZEOF.fuse_out_header + 16);
  return b;
}

/**
 * FUSE_NOTIFY_RETRIEVE: asks for `size` bytes of the inode's page cache at
 * `offset`. The kernel answers with a FUSE_NOTIFY_REPLY request whose
 * unique is `notifyUnique` (fs/fuse/dev.c fuse_retrieve).
 */
export function encodeNotifyRetrieve(notifyUnique: bigint, nodeid: bigint, offset: number, size: number): Buffer {
  const b = Buffer.alloc(SIZEOF.fuse_notify_retrieve_out);
  putU64(b, 0, notifyUnique);
  putU64(b, 8, nodeid);
  putU64(b, 16, BigInt(offset));
  b.writeUInt32LE(size, 24);
  return notify(NotifyCode.RETRIEVE, b);
}

export interface fuse_notify_retrieve_in {
  offset: number;
  size: number;
  /** A view of the request buffer: the cached bytes from `offset`, up to the first page not cached. */
  data: Buffer;
}

/** The body of a FUSE_NOTIFY_REPLY: fuse_notify_retrieve_in, then `size` bytes. */
export function decodeNotifyRetrieveIn(b: Buffer): fuse_notify_retrieve_in {
  need(b, SIZEOF.fuse_notify_retrieve_in, 'fuse_notify_retrieve_in');
  const offset = Number(u64(b, 8));
  const size = b.readUInt32LE(16);
  if (b.length - SIZEOF.fuse_notify_retrieve_in < size) throw new MalformedRequest(`NOTIFY_REPLY carries ${b.length - SIZEOF.fuse_notify_retrieve_in} of its ${size} bytes`);
  return { offset, size, data: b.subarray(SIZEOF.fuse_notify_retrieve_in, SIZEOF.fuse_notify_retrieve_in + size) };
}
