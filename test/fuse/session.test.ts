/**
 * FuseSession.handle() driven directly with hand-built requests: no
 * /dev/fuse, no mount. A fake channel records each reply exactly as the
 * session hands it to write(); the filesystem is a plain object whose
 * methods each test controls.
 *
 * Kernel rules checked on every reply (fs/fuse/dev.c fuse_dev_do_write,
 * docs/fuse-protocol.md#framing): header len equals the bytes written; error is 0 or
 * negative and > -512; a nonzero error comes with a header-only reply.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { E, Errno } from '../../src/errno.js';
import {
  FUSE_ABORT_ERROR,
  FUSE_ASYNC_READ,
  FUSE_ATOMIC_O_TRUNC,
  FUSE_BIG_WRITES,
  FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2,
  FUSE_DO_READDIRPLUS,
  FUSE_INIT_EXT,
  FUSE_INT_REQ_BIT,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_MAX_PAGES,
  FUSE_NO_OPEN_SUPPORT,
  FUSE_NO_OPENDIR_SUPPORT,
  FUSE_PARALLEL_DIROPS,
  FUSE_PASSTHROUGH_FLAGS2,
  FUSE_WRITEBACK_CACHE,
  Opcode,
} from '../../src/fuse/abi.js';
import type { ChannelEvents, FuseChannel } from '../../src/fuse/channel.js';
import type { FuseFilesystem, RequestContext } from '../../src/fuse/filesystem.js';
import { FuseSession } from '../../src/fuse/session.js';
import type { fuse_attr_out, fuse_read_in } from '../../src/fuse/wire.js';

/* ---------------- little-endian request builders ---------------- */

/** Concatenates little-endian fields: [bits, value] pairs. */
function le(...fields: Array<[8 | 16 | 32 | 64, number | bigint]>): Buffer {
  const parts = fields.map(([bits, v]) => {
    const b = Buffer.alloc(bits / 8);
    if (bits === 64) b.writeBigUInt64LE(BigInt(v));
    else if (bits === 32) b.writeUInt32LE(Number(v));
    else if (bits === 16) b.writeUInt16LE(Number(v));
    else b.writeUInt8(Number(v));
    return b;
  });
  return Buffer.concat(parts);
}

interface ReqOpts {
  nodeid?: bigint;
  uid?: number;
  gid?: number;
  pid?: number;
  /** Override fuse_in_header.len (default: the true length). */
  len?: number;
}

/** fuse_in_header + body. */
function req(opcode: number, unique: bigint, body: Buffer = Buffer.alloc(0), o: ReqOpts = {}): Buffer {
  const header = le(
    [32, o.len ?? 40 + body.length], // len
    [32, opcode], // opcode
    [64, unique], // unique
    [64, o.nodeid ?? 1n], // nodeid
    [32, o.uid ?? 1000], // uid
    [32, o.gid ?? 1000], // gid
    [32, o.pid ?? 4242], // pid
    [16, 0], // total_extlen
    [16, 0], // padding
  );
  return Buffer.concat([header, body]);
}

/** fuse_init_in: the 64-byte form (7.36+) or the 16-byte one. */
function initBody(major: number, minor: number, flags: number, opts: { short?: boolean; flags2?: number } = {}): Buffer {
  const head = le([32, major], [32, minor], [32, 0x20000] /* max_readahead */, [32, flags >>> 0]);
  if (opts.short) return head;
  return Buffer.concat([head, le([32, opts.flags2 ?? 0]), Buffer.alloc(44) /* unused[11] */]);
}

/** fuse_read_in. */
function readBody(fh: bigint, offset: bigint, size: number, flags = 0): Buffer {
  return le([64, fh], [64, offset], [32, size], [32, 0], [64, 0n], [32, flags], [32, 0]);
}

/* ---------------- fakes ---------------- */

interface Reply {
  len: number;
  error: number;
  unique: bigint;
  body: Buffer;
  /** Total bytes handed to write(). */
  total: number;
}

class FakeChannel {
  readonly raw: Buffer[] = [];
  /** What write() reports: null (taken) or the Errno it failed with. */
  writeResult: Errno | null = null;
  /** The session's hooks once it is started, for a test to call as the channel would (waiting, end); no reading starts. */
  events: ChannelEvents | null = null;
  start(_o: unknown, events: ChannelEvents): void {
    this.events = events;
  }
  /** FuseChannel.write: the session may reuse `head` once this returns, so it is copied. */
  write(head: Buffer, body: Buffer | readonly Buffer[] | null = null): Errno | null {
    this.raw.push(Buffer.concat([head, ...(body === null ? [] : Buffer.isBuffer(body) ? [body] : body)]));
    return this.writeResult;
  }
  get replies(): Reply[] {
    return this.raw.map((b) => ({
      len: b.readUInt32LE(0),
      error: b.readInt32LE(4),
      unique: b.readBigUInt64LE(8),
      body: b.subarray(16),
      total: b.length,
    }));
  }
  clear(): void {
    this.raw.length = 0;
  }
}

function unexpected(name: string) {
  return vi.fn(() => {
    throw new Error(`unexpected call to ${name}`);
  });
}

const ATTR_OUT: fuse_attr_out = {
  attr_valid_ms: 1000,
  attr: {
    ino: 1n, size: 0, blocks: 0, atime: 0, mtime: 0, ctime: 0, atimensec: 0, mtimensec: 0, ctimensec: 0,
    mode: 0o040755, nlink: 2, uid: 0, gid: 0, rdev: 0, blksize: 4096,
  },
};

function makeFs() {
  return {
    init: vi.fn(),
    lookup: unexpected('lookup'),
    forget: vi.fn(),
    getattr: vi.fn((_ctx: RequestContext, _fh: bigint | null): fuse_attr_out => ATTR_OUT),
    setattr: unexpected('setattr'),
    open: unexpected('open'),
    read: vi.fn((_ctx: RequestContext, _arg: fuse_read_in): Buffer | Promise<Buffer> => Buffer.from('data')),
    write: unexpected('write'),
    flush: unexpected('flush'),
    release: unexpected('release'),
    fsync: unexpected('fsync'),
    opendir: unexpected('opendir'),
    readdir: unexpected('readdir'),
    direntplusSent: vi.fn(),
    releasedir: unexpected('releasedir'),
    statfs: unexpected('statfs'),
    access: unexpected('access'),
    ioctl: unexpected('ioctl'),
    poll: unexpected('poll'),
    destroy: vi.fn(),
  };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await flush();
}

/** fuse_init_out fields of a reply body (either size). */
function initOut(body: Buffer) {
  return {
    major: body.readUInt32LE(0),
    minor: body.readUInt32LE(4),
    max_readahead: body.readUInt32LE(8),
    flags: body.readUInt32LE(12),
    max_background: body.readUInt16LE(16),
    congestion_threshold: body.readUInt16LE(18),
    max_write: body.readUInt32LE(20),
    time_gran: body.length >= 28 ? body.readUInt32LE(24) : undefined,
    max_pages: body.length >= 30 ? body.readUInt16LE(28) : undefined,
  };
}

/* ---------------- setup ---------------- */

const MAX_WRITE = 128 * 1024;
let ch: FakeChannel;
let fs: ReturnType<typeof makeFs>;
let s: FuseSession;

beforeEach(() => {
  ch = new FakeChannel();
  fs = makeFs();
  s = new FuseSession(ch as unknown as FuseChannel, fs as unknown as FuseFilesystem, {
    maxWrite: MAX_WRITE,
    logger: pino({ level: 'silent' }),
    // Decided for the test, not by who runs it (FuseSession.passthrough).
    mayOpenBackingFiles: true,
  });
});

afterEach(() => {
  // The kernel's checks on every reply (fuse_dev_do_write).
  for (const r of ch.replies) {
    expect(r.len, `reply to ${r.unique}: len vs bytes written`).toBe(r.total);
    expect(r.error === 0 || (r.error < 0 && r.error > -512), `reply to ${r.unique}: error ${r.error} out of range`).toBe(
      true,
    );
    if (r.error !== 0) expect(r.total, `reply to ${r.unique}: an error reply must be header-only`).toBe(16);
  }
});

/** Sends INIT 7.<minor> offering `flags` and clears the recorded replies. */
function doInit(minor = 38, flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES): void {
  s.handle(req(Opcode.INIT, 2n, initBody(7, minor, flags)));
  expect(ch.replies).toHaveLength(1);
  expect(ch.replies[0]!.error).toBe(0);
  ch.clear();
}

/** fuse_notify_retrieve_in (the FUSE_NOTIFY_REPLY body) and the bytes. */
function notifyReplyBody(offset: number, data: Buffer): Buffer {
  return Buffer.concat([le([64, 0n], [64, offset], [32, data.length], [32, 0], [64, 0n], [64, 0n]), data]);
}

/* ---------------- INIT ---------------- */

describe('INIT negotiation', () => {
  it('answers minor = min(kernel, ours) with a 64-byte fuse_init_out and resolves ready', async () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 38, FUSE_BIG_WRITES | FUSE_MAX_PAGES)));
    const [r, ...rest] = ch.replies;
    expect(rest).toHaveLength(0);
    expect(r!.unique).toBe(2n);
    expect(r!.error).toBe(0);
    expect(r!.len).toBe(16 + 64);
    const o = initOut(r!.body);
    expect(o.major).toBe(7);
    expect(o.minor).toBe(Math.min(38, FUSE_KERNEL_MINOR_VERSION));
    expect(o.max_write).toBe(MAX_WRITE);
    expect(o.max_pages).toBe(MAX_WRITE / 4096);
    expect(o.time_gran).toBe(1);
    expect(o.max_readahead).toBeLessThanOrEqual(0x20000);
    const conn = await s.ready;
    expect(conn).toMatchObject({ major: 7, minor: Math.min(38, FUSE_KERNEL_MINOR_VERSION), maxWrite: MAX_WRITE, maxPages: 32, passthrough: false });
    expect(s.connection).toEqual(conn);
    expect(fs.init).toHaveBeenCalledTimes(1);
    expect(fs.init).toHaveBeenCalledWith(conn);
  });

  it('FUSE_PASSTHROUGH: asked for when offered in flags2 with INIT_EXT, with max_stack_depth 1 in the 7.40 reply', async () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 45, FUSE_BIG_WRITES | FUSE_INIT_EXT, { flags2: FUSE_PASSTHROUGH_FLAGS2 | 0x40 })));
    const b = ch.replies[0]!.body;
    expect(b.length).toBe(64);
    expect(b.readUInt32LE(4)).toBe(40); // our minor: the first with passthrough
    expect(b.readUInt32LE(12) & FUSE_INIT_EXT).toBe(FUSE_INIT_EXT);
    expect(b.readUInt32LE(32)).toBe(FUSE_PASSTHROUGH_FLAGS2); // flags2: only what we want of what was offered
    expect(b.readUInt32LE(36)).toBe(1); // max_stack_depth
    expect(await s.ready).toMatchObject({ minor: 40, passthrough: true });
  });

  it('FUSE_PASSTHROUGH: not asked for when not offered or disabled, and the connection says why', async () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 45, FUSE_BIG_WRITES | FUSE_INIT_EXT)));
    const b = ch.replies[0]!.body;
    expect(b.readUInt32LE(12) & FUSE_INIT_EXT).toBe(0);
    expect(b.readUInt32LE(32)).toBe(0);
    expect(b.readUInt32LE(36)).toBe(0);
    expect(await s.ready).toMatchObject({ passthrough: false, noPassthrough: expect.stringMatching(/does not offer FUSE_PASSTHROUGH/) });

    const off = new FuseSession(ch as unknown as FuseChannel, fs as unknown as FuseFilesystem, {
      maxWrite: MAX_WRITE,
      logger: pino({ level: 'silent' }),
      passthrough: false,
    });
    ch.clear();
    off.handle(req(Opcode.INIT, 3n, initBody(7, 45, FUSE_BIG_WRITES | FUSE_INIT_EXT, { flags2: FUSE_PASSTHROUGH_FLAGS2 })));
    expect(ch.replies[0]!.body.readUInt32LE(32)).toBe(0);
    expect(await off.ready).toMatchObject({ passthrough: false, noPassthrough: 'FUSE passthrough disabled by option' });
  });

  it('FUSE_DIRECT_IO_ALLOW_MMAP instead of passthrough when FUSE_DEV_IOC_BACKING_OPEN would be refused, and no ASYNC_READ', async () => {
    const user = new FuseSession(ch as unknown as FuseChannel, fs as unknown as FuseFilesystem, {
      maxWrite: MAX_WRITE,
      logger: pino({ level: 'silent' }),
      mayOpenBackingFiles: false,
    });
    user.handle(req(Opcode.INIT, 2n, initBody(7, 45, FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_INIT_EXT, { flags2: FUSE_PASSTHROUGH_FLAGS2 | FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2 })));
    const b = ch.replies[0]!.body;
    expect(b.readUInt32LE(12) & (FUSE_INIT_EXT | FUSE_ASYNC_READ)).toBe(FUSE_INIT_EXT);
    expect(b.readUInt32LE(32)).toBe(FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2);
    expect(b.readUInt32LE(36)).toBe(0); // max_stack_depth: no backing files
    expect(await user.ready).toMatchObject({ passthrough: false, pageCacheMmap: true, noPassthrough: expect.stringMatching(/CAP_SYS_ADMIN in the initial user namespace/) });
  });

  it('FUSE_DIRECT_IO_ALLOW_MMAP: not asked for with passthrough, nor from a kernel that does not offer it', async () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 45, FUSE_BIG_WRITES | FUSE_INIT_EXT, { flags2: FUSE_PASSTHROUGH_FLAGS2 | FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2 })));
    expect(ch.replies[0]!.body.readUInt32LE(32)).toBe(FUSE_PASSTHROUGH_FLAGS2);
    expect(await s.ready).toMatchObject({ passthrough: true, pageCacheMmap: false });
    const old = new FuseSession(ch as unknown as FuseChannel, fs as unknown as FuseFilesystem, {
      maxWrite: MAX_WRITE,
      logger: pino({ level: 'silent' }),
      passthrough: false,
    });
    ch.clear();
    old.handle(req(Opcode.INIT, 3n, initBody(7, 38, FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_INIT_EXT)));
    expect(ch.replies[0]!.body.readUInt32LE(12) & FUSE_ASYNC_READ).toBe(FUSE_ASYNC_READ);
    expect(ch.replies[0]!.body.readUInt32LE(32)).toBe(0);
    expect(await old.ready).toMatchObject({ passthrough: false, pageCacheMmap: false });
  });

  it('a kernel older than us gets its own minor back', () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 28, FUSE_BIG_WRITES, { short: true })));
    expect(initOut(ch.replies[0]!.body).minor).toBe(28);
    expect(s.connection?.minor).toBe(28);
  });

  it('flags: only what the kernel offered, never WRITEBACK_CACHE or NO_OPEN(DIR)_SUPPORT', () => {
    const offered =
      FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS | FUSE_WRITEBACK_CACHE |
      FUSE_NO_OPEN_SUPPORT | FUSE_PARALLEL_DIROPS | FUSE_ABORT_ERROR | FUSE_MAX_PAGES | FUSE_NO_OPENDIR_SUPPORT |
      FUSE_INIT_EXT;
    s.handle(req(Opcode.INIT, 2n, initBody(7, 38, offered)));
    const { flags } = initOut(ch.replies[0]!.body);
    expect(flags & ~offered).toBe(0);
    expect(flags & FUSE_WRITEBACK_CACHE).toBe(0);
    expect(flags & FUSE_NO_OPEN_SUPPORT).toBe(0);
    expect(flags & FUSE_NO_OPENDIR_SUPPORT).toBe(0);
    // docs/fuse-protocol.md#init: the flags this project wants when offered.
    for (const f of [FUSE_BIG_WRITES, FUSE_MAX_PAGES, FUSE_ATOMIC_O_TRUNC, FUSE_PARALLEL_DIROPS]) {
      expect(flags & f, `flag 0x${f.toString(16)}`).toBe(f);
    }
  });

  it('flags: every bit offered still yields no WRITEBACK_CACHE', () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 38, 0xffffffff)));
    const { flags } = initOut(ch.replies[0]!.body);
    expect(flags & FUSE_WRITEBACK_CACHE).toBe(0);
    expect(flags & FUSE_NO_OPEN_SUPPORT).toBe(0);
    expect(flags & FUSE_BIG_WRITES).toBe(FUSE_BIG_WRITES);
  });

  it('flags: nothing the kernel did not offer', () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 38, FUSE_BIG_WRITES | FUSE_WRITEBACK_CACHE)));
    expect(initOut(ch.replies[0]!.body).flags).toBe(FUSE_BIG_WRITES);
    ch.clear();
    const s2 = new FuseSession(ch as unknown as FuseChannel, fs as unknown as FuseFilesystem, {
      maxWrite: MAX_WRITE,
      logger: pino({ level: 'silent' }),
    });
    s2.handle(req(Opcode.INIT, 2n, initBody(7, 38, 0)));
    expect(initOut(ch.replies[0]!.body).flags).toBe(0);
  });

  it('kernel minor 22: the reply is the 24-byte fuse_init_out', () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 22, FUSE_BIG_WRITES, { short: true })));
    const r = ch.replies[0]!;
    expect(r.error).toBe(0);
    expect(r.total).toBe(16 + 24);
    expect(r.len).toBe(40);
    expect(initOut(r.body).minor).toBe(22);
    expect(initOut(r.body).max_write).toBe(MAX_WRITE);
  });

  it('kernel minor 23: the full 64-byte reply', () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 23, FUSE_BIG_WRITES, { short: true })));
    expect(ch.replies[0]!.total).toBe(16 + 64);
  });

  it('major > 7: a reply carrying major 7 only, not ready; the second INIT completes', async () => {
    let readyState = 'pending';
    s.ready.then(
      () => (readyState = 'resolved'),
      () => (readyState = 'rejected'),
    );
    s.handle(req(Opcode.INIT, 2n, initBody(8, 0, 0xffffffff)));
    const r = ch.replies[0]!;
    expect(ch.replies).toHaveLength(1);
    expect(r.error).toBe(0);
    expect(initOut(r.body).major).toBe(7);
    expect(initOut(r.body).flags).toBe(0);
    await settle();
    expect(readyState).toBe('pending');
    expect(s.connection).toBeNull();
    expect(fs.init).not.toHaveBeenCalled();

    ch.clear();
    s.handle(req(Opcode.INIT, 4n, initBody(7, 38, FUSE_BIG_WRITES)));
    expect(ch.replies[0]!.error).toBe(0);
    await settle();
    expect(readyState).toBe('resolved');
  });

  it('major 7 minor 11 (below 7.12): EPROTO, ready rejects', async () => {
    s.handle(req(Opcode.INIT, 2n, initBody(7, 11, FUSE_BIG_WRITES, { short: true })));
    expect(ch.replies).toHaveLength(1);
    expect(ch.replies[0]!.error).toBe(-E.EPROTO);
    expect(ch.replies[0]!.unique).toBe(2n);
    await expect(s.ready).rejects.toThrow();
    expect(s.connection).toBeNull();
  });

  it('major 6: EPROTO', () => {
    s.handle(req(Opcode.INIT, 2n, initBody(6, 99, 0, { short: true })));
    expect(ch.replies[0]!.error).toBe(-E.EPROTO);
  });
});

/* ---------------- framing and dispatch ---------------- */

describe('dispatch', () => {
  it('a request before INIT is answered EIO, the filesystem is not called', () => {
    s.handle(req(Opcode.GETATTR, 6n, Buffer.alloc(16)));
    expect(ch.replies).toHaveLength(1);
    expect(ch.replies[0]).toMatchObject({ error: -E.EIO, unique: 6n, total: 16 });
    expect(fs.getattr).not.toHaveBeenCalled();
  });

  it('a synchronous answer: one reply with the encoded body', () => {
    doInit();
    s.handle(req(Opcode.GETATTR, 8n, Buffer.alloc(16), { nodeid: 1n }));
    expect(ch.replies).toHaveLength(1);
    const r = ch.replies[0]!;
    expect(r).toMatchObject({ error: 0, unique: 8n, len: 16 + 104 });
    expect(r.body.readUInt32LE(16 + 60)).toBe(0o040755); // fuse_attr_out.attr.mode
    expect(fs.getattr).toHaveBeenCalledTimes(1);
    const ctx = fs.getattr.mock.calls[0]![0];
    expect(ctx).toMatchObject({ unique: 8n, nodeid: 1n, uid: 1000, gid: 1000, pid: 4242 });
    expect(fs.getattr.mock.calls[0]![1]).toBeNull(); // getattr_flags 0: no fh
  });

  it('GETATTR with FUSE_GETATTR_FH passes the fh', () => {
    doInit();
    s.handle(req(Opcode.GETATTR, 9n * 2n, le([32, 1] /* FUSE_GETATTR_FH */, [32, 0], [64, 0x8000000000000042n])));
    expect(ch.replies[0]!.error).toBe(0);
    expect(fs.getattr.mock.calls[0]![1]).toBe(0x8000000000000042n);
  });

  it('a reply the kernel refuses with ENOENT (request interrupted meanwhile) is not an error', () => {
    doInit();
    ch.writeResult = new Errno('ENOENT');
    expect(() => s.handle(req(Opcode.GETATTR, 0x100n, Buffer.alloc(16)))).not.toThrow();
    expect(ch.replies).toHaveLength(1);
    ch.writeResult = null;
    s.handle(req(Opcode.GETATTR, 0x102n, Buffer.alloc(16)));
    expect(ch.replies.map((r) => r.unique)).toEqual([0x100n, 0x102n]);
  });

  it.each([
    ['STATX (52)', 52],
    ['9999', 9999],
    ['MKNOD (8), not implemented', Opcode.MKNOD],
  ])('unknown opcode %s: header-only ENOSYS', (_name, opcode) => {
    doInit();
    s.handle(req(opcode, 10n, Buffer.alloc(24)));
    expect(ch.replies).toHaveLength(1);
    expect(ch.replies[0]).toMatchObject({ len: 16, total: 16, error: -E.ENOSYS, unique: 10n });
  });

  it('a request shorter than fuse_in_header: nothing written, no throw', () => {
    doInit();
    expect(() => s.handle(Buffer.alloc(0))).not.toThrow();
    expect(() => s.handle(req(Opcode.GETATTR, 12n, Buffer.alloc(16)).subarray(0, 39))).not.toThrow();
    expect(ch.replies).toHaveLength(0);
    // and the session still works
    s.handle(req(Opcode.GETATTR, 14n, Buffer.alloc(16)));
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([[14n, 0]]);
  });

  it('a header len that disagrees with the bytes read: EIO, handler not called', () => {
    doInit();
    s.handle(req(Opcode.GETATTR, 16n, Buffer.alloc(16), { len: 40 + 32 }));
    s.handle(req(Opcode.GETATTR, 18n, Buffer.alloc(16), { len: 40 }));
    expect(ch.replies.map((r) => [r.unique, r.error, r.total])).toEqual([
      [16n, -E.EIO, 16],
      [18n, -E.EIO, 16],
    ]);
    expect(fs.getattr).not.toHaveBeenCalled();
  });

  it('a malformed body (READ with 10 bytes): EIO, and the next request is served', () => {
    doInit();
    s.handle(req(Opcode.READ, 20n, Buffer.alloc(10)));
    expect(ch.replies).toEqual([expect.objectContaining({ unique: 20n, error: -E.EIO, total: 16 })]);
    expect(fs.read).not.toHaveBeenCalled();
    ch.clear();
    s.handle(req(Opcode.READ, 22n, readBody(3n, 0n, 4096)));
    expect(ch.replies).toHaveLength(1);
    expect(ch.replies[0]).toMatchObject({ unique: 22n, error: 0, len: 20 });
    expect(ch.replies[0]!.body.toString()).toBe('data');
    const arg = fs.read.mock.calls[0]![1];
    expect(arg).toMatchObject({ fh: 3n, offset: 0n, size: 4096 });
  });

  it('a handler that throws a non-Errno: EIO', () => {
    doInit();
    fs.getattr.mockImplementation(() => {
      throw new TypeError('bug in model');
    });
    s.handle(req(Opcode.GETATTR, 24n, Buffer.alloc(16)));
    expect(ch.replies).toEqual([expect.objectContaining({ unique: 24n, error: -E.EIO, total: 16 })]);
  });

  it("a handler that throws Errno('ENOENT'): -2", () => {
    doInit();
    fs.getattr.mockImplementation(() => {
      throw new Errno('ENOENT');
    });
    s.handle(req(Opcode.GETATTR, 26n, Buffer.alloc(16)));
    expect(ch.replies).toEqual([expect.objectContaining({ unique: 26n, error: -2, total: 16 })]);
  });

  it('a promise rejected with an Errno: that errno', async () => {
    doInit();
    fs.read.mockImplementation(() => Promise.reject(new Errno('EAGAIN')));
    s.handle(req(Opcode.READ, 28n, readBody(3n, 0n, 16)));
    await settle();
    expect(ch.replies).toEqual([expect.objectContaining({ unique: 28n, error: -E.EAGAIN, total: 16 })]);
  });

  it('a thrown Errno outside the range the kernel accepts is still answered with a valid error', () => {
    // fuse_dev_do_write rejects error <= -512 (<= -1000 before Linux 4.20ish)
    // with EINVAL *before* looking the request up, so the request would never
    // be completed and its caller would hang. Whatever the handler threw, the
    // reply must be in (-512, 0).
    doInit();
    fs.getattr.mockImplementation(() => {
      throw new Errno(1000);
    });
    s.handle(req(Opcode.GETATTR, 30n, Buffer.alloc(16)));
    expect(ch.replies).toHaveLength(1);
    const { error } = ch.replies[0]!;
    expect(error).toBeLessThan(0);
    expect(error).toBeGreaterThan(-512);
  });

  it('a promise that resolves later: exactly one reply, with the right unique', async () => {
    doInit();
    let resolve!: (b: Buffer) => void;
    fs.read.mockImplementation(() => new Promise<Buffer>((r) => (resolve = r)));
    s.handle(req(Opcode.READ, 32n, readBody(3n, 0n, 4096)));
    // another request is answered meanwhile
    s.handle(req(Opcode.GETATTR, 34n, Buffer.alloc(16)));
    await settle();
    expect(ch.replies.map((r) => r.unique)).toEqual([34n]);
    expect(s.inFlight).toBe(1);
    resolve(Buffer.from('late!'));
    await settle();
    expect(ch.replies.map((r) => r.unique)).toEqual([34n, 32n]);
    const r = ch.replies[1]!;
    expect(r.error).toBe(0);
    expect(r.body.toString()).toBe('late!');
    expect(r.len).toBe(16 + 5);
    expect(s.inFlight).toBe(0);
  });

  it('READDIRPLUS: direntplusSent gets exactly the entries that fit', () => {
    doInit();
    const entries = ['a', 'b', 'c'].map((name, i) => ({ ino: BigInt(10 + i), off: i + 1, type: 8, name }));
    fs.readdir.mockImplementation(() => entries as never);
    // Each direntplus record is 128 + align8(24 + 1) = 160 bytes: 400 holds two.
    s.handle(req(Opcode.READDIRPLUS, 36n, readBody(1n, 0n, 400)));
    expect(ch.replies[0]).toMatchObject({ error: 0, len: 16 + 320 });
    expect(fs.direntplusSent).toHaveBeenCalledTimes(1);
    expect(fs.direntplusSent.mock.calls[0]![0]).toEqual(entries.slice(0, 2));
  });
});

/* ---------------- FORGET ---------------- */

describe('FORGET and BATCH_FORGET', () => {
  it('FORGET: no reply, forget(nodeid, nlookup)', () => {
    doInit();
    s.handle(req(Opcode.FORGET, 40n, le([64, 3n]), { nodeid: 0x1234n }));
    expect(ch.raw).toHaveLength(0);
    expect(fs.forget).toHaveBeenCalledTimes(1);
    expect(fs.forget).toHaveBeenCalledWith(0x1234n, 3n);
  });

  it('BATCH_FORGET: no reply, one forget() per entry', () => {
    doInit();
    const body = le(
      [32, 3], // count
      [32, 0], // dummy
      [64, 5n], [64, 1n], // forget_one[0]
      [64, 6n], [64, 2n], // forget_one[1]
      [64, 0x8000000000000007n], [64, 0x100000000n], // forget_one[2]
    );
    s.handle(req(Opcode.BATCH_FORGET, 42n, body, { nodeid: 0n }));
    expect(ch.raw).toHaveLength(0);
    expect(fs.forget.mock.calls).toEqual([
      [5n, 1n],
      [6n, 2n],
      [0x8000000000000007n, 0x100000000n],
    ]);
  });

  it('FORGET before INIT is still not answered', () => {
    s.handle(req(Opcode.FORGET, 44n, le([64, 1n]), { nodeid: 9n }));
    expect(ch.raw).toHaveLength(0);
    expect(fs.forget).toHaveBeenCalledWith(9n, 1n);
  });

  it('BATCH_FORGET whose count exceeds the payload: logged, never answered', () => {
    // docs/fuse-protocol.md#forget: FORGET/BATCH_FORGET are never answered; validate count
    // against the payload and log rather than reply (go-fuse doBatchForget).
    doInit();
    const body = le([32, 5], [32, 0], [64, 5n], [64, 1n]); // count 5, one entry
    expect(() => s.handle(req(Opcode.BATCH_FORGET, 46n, body, { nodeid: 0n }))).not.toThrow();
    expect(ch.raw).toHaveLength(0);
  });

  it('FORGET with a truncated body: never answered', () => {
    doInit();
    expect(() => s.handle(req(Opcode.FORGET, 48n, le([32, 1]), { nodeid: 9n }))).not.toThrow();
    expect(ch.raw).toHaveLength(0);
  });
});

/* ---------------- INTERRUPT ---------------- */

describe('INTERRUPT', () => {
  function interrupt(original: bigint): Buffer {
    return req(Opcode.INTERRUPT, original | FUSE_INT_REQ_BIT, le([64, original]), { nodeid: 0n });
  }

  it('aborts ctx.signal and answers EINTR once, for the original unique; a late result writes nothing', async () => {
    doInit();
    let ctx!: RequestContext;
    let resolve!: (b: Buffer) => void;
    fs.read.mockImplementation((c: RequestContext) => {
      ctx = c;
      return new Promise<Buffer>((r) => (resolve = r));
    });
    s.handle(req(Opcode.READ, 0x50n, readBody(3n, 0n, 4096)));
    await settle();
    expect(ch.raw).toHaveLength(0);

    s.handle(interrupt(0x50n));
    expect(ctx.signal.aborted).toBe(true);
    await settle();
    expect(ch.replies).toHaveLength(1);
    expect(ch.replies[0]).toMatchObject({ unique: 0x50n, error: -E.EINTR, len: 16, total: 16 });
    expect(s.inFlight).toBe(0);

    resolve(Buffer.from('too late'));
    await settle();
    expect(ch.replies).toHaveLength(1);
  });

  it('a handler already listening on ctx.signal sees the abort event', async () => {
    doInit();
    const onAbort = vi.fn();
    fs.read.mockImplementation((c: RequestContext) => {
      c.signal.addEventListener('abort', onAbort);
      return new Promise<Buffer>(() => {});
    });
    s.handle(req(Opcode.READ, 0x60n, readBody(3n, 0n, 4096)));
    s.handle(interrupt(0x60n));
    expect(onAbort).toHaveBeenCalledTimes(1);
    await settle();
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([[0x60n, -E.EINTR]]);
  });

  it('a handler that rejects on abort: exactly one EINTR reply', async () => {
    doInit();
    fs.read.mockImplementation(
      (c: RequestContext) =>
        new Promise<Buffer>((_res, rej) => c.signal.addEventListener('abort', () => rej(c.signal.reason))),
    );
    s.handle(req(Opcode.READ, 0x70n, readBody(3n, 0n, 4096)));
    s.handle(interrupt(0x70n));
    await settle(5);
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([[0x70n, -E.EINTR]]);
  });

  it('a signal is reused only after a synchronous answer left it unaborted and unheard; one still listened to is never reused', async () => {
    doInit();
    const seen: AbortSignal[] = [];
    const stale = vi.fn();
    // First request: answered synchronously, nothing left on its signal.
    fs.read.mockImplementationOnce((c: RequestContext) => (seen.push(c.signal), Buffer.from('a')));
    s.handle(req(Opcode.READ, 0x90n, readBody(3n, 0n, 4096)));
    // Second: reuses it; answered synchronously but leaves a listener, so it is not reused again.
    fs.read.mockImplementationOnce((c: RequestContext) => (seen.push(c.signal), c.signal.addEventListener('abort', stale), Buffer.from('b')));
    s.handle(req(Opcode.READ, 0x91n, readBody(3n, 0n, 4096)));
    // Third: blocks, then is interrupted: its abort must not reach the second handler's listener.
    fs.read.mockImplementationOnce((c: RequestContext) => (seen.push(c.signal), new Promise<Buffer>(() => {})));
    s.handle(req(Opcode.READ, 0x92n, readBody(3n, 0n, 4096)));
    s.handle(interrupt(0x92n));
    expect(seen[1]).toBe(seen[0]);
    expect(seen[2]).not.toBe(seen[1]);
    expect(seen[2]!.aborted).toBe(true);
    expect(stale).not.toHaveBeenCalled();
    await settle();
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([
      [0x90n, 0],
      [0x91n, 0],
      [0x92n, -E.EINTR],
    ]);
  });

  it('INTERRUPT for an unknown unique: no reply', async () => {
    doInit();
    s.handle(interrupt(0x80n));
    await settle();
    expect(ch.raw).toHaveLength(0);
  });

  it('INTERRUPT for a request already answered: no second reply', async () => {
    doInit();
    s.handle(req(Opcode.GETATTR, 0x90n, Buffer.alloc(16)));
    s.handle(interrupt(0x90n));
    await settle();
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([[0x90n, 0]]);
  });

  it('only the interrupted request is cancelled', async () => {
    doInit();
    const pending = new Map<bigint, { ctx: RequestContext; resolve: (b: Buffer) => void }>();
    fs.read.mockImplementation((c: RequestContext) => new Promise<Buffer>((r) => pending.set(c.unique, { ctx: c, resolve: r })));
    s.handle(req(Opcode.READ, 0xa0n, readBody(3n, 0n, 4096)));
    s.handle(req(Opcode.READ, 0xa2n, readBody(3n, 0n, 4096)));
    s.handle(interrupt(0xa0n));
    await settle();
    expect(pending.get(0xa2n)!.ctx.signal.aborted).toBe(false);
    pending.get(0xa2n)!.resolve(Buffer.from('ok'));
    await settle();
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([
      [0xa0n, -E.EINTR],
      [0xa2n, 0],
    ]);
  });
});

/* ---------------- undelivered answers ---------------- */

describe('an OPEN answer the kernel never receives', () => {
  const openBody = (): Buffer => le([32, 2 /* O_RDWR */], [32, 0]);
  const openOut = { fh: 77n, open_flags: 0 };

  it('is released when the OPEN was interrupted and answered EINTR first', async () => {
    doInit();
    let resolve!: (o: typeof openOut) => void;
    fs.open.mockImplementation(() => new Promise((r) => (resolve = r)));
    fs.release.mockImplementation(() => undefined);
    s.handle(req(Opcode.OPEN, 0xb0n, openBody(), { nodeid: 5n }));
    s.handle(req(Opcode.INTERRUPT, 0xb0n | FUSE_INT_REQ_BIT, le([64, 0xb0n]), { nodeid: 0n }));
    await settle();
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([[0xb0n, -E.EINTR]]);
    expect(fs.release).not.toHaveBeenCalled();
    resolve(openOut);
    await settle();
    expect(fs.release).toHaveBeenCalledTimes(1);
    expect(fs.release.mock.calls[0]![1]).toMatchObject({ fh: 77n });
    expect(ch.replies).toHaveLength(1);
  });

  it('is released when the kernel refuses the reply with ENOENT (request gone)', () => {
    doInit();
    fs.open.mockImplementation(() => openOut);
    fs.release.mockImplementation(() => undefined);
    ch.writeResult = new Errno('ENOENT');
    s.handle(req(Opcode.OPEN, 0xb2n, openBody(), { nodeid: 5n }));
    expect(fs.release).toHaveBeenCalledTimes(1);
    expect(fs.release.mock.calls[0]![1]).toMatchObject({ fh: 77n });
  });

  it('is kept when the kernel took it', () => {
    doInit();
    fs.open.mockImplementation(() => openOut);
    s.handle(req(Opcode.OPEN, 0xb4n, openBody(), { nodeid: 5n }));
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([[0xb4n, 0]]);
    expect(fs.release).not.toHaveBeenCalled();
  });
});

describe('answers no process waits for (RELEASE, RELEASEDIR)', () => {
  const releaseBody = (fh: bigint): Buffer => le([64, fh], [32, 0], [32, 0], [64, 0n]);

  it('are written when the channel is about to wait, after the answers to requests read meanwhile', () => {
    doInit();
    s.start();
    fs.release.mockImplementation(() => undefined);
    fs.releasedir.mockImplementation(() => undefined);
    s.handle(req(Opcode.RELEASE, 0xc0n, releaseBody(7n), { nodeid: 5n }));
    s.handle(req(Opcode.RELEASEDIR, 0xc2n, releaseBody(8n)));
    s.handle(req(Opcode.GETATTR, 0xc4n, Buffer.alloc(16)));
    // The filesystem's release ran at once; only the kernel's answer waits.
    expect(fs.release).toHaveBeenCalledTimes(1);
    expect(fs.releasedir).toHaveBeenCalledTimes(1);
    expect(ch.replies.map((r) => r.unique)).toEqual([0xc4n]);
    ch.events!.waiting();
    expect(ch.replies.map((r) => [r.unique, r.error, r.len])).toEqual([
      [0xc4n, 0, 16 + 104],
      [0xc0n, 0, 16],
      [0xc2n, 0, 16],
    ]);
    ch.events!.waiting();
    expect(ch.replies).toHaveLength(3);
  });

  it('a release that fails, or settles later, is answered at once', async () => {
    doInit();
    s.start();
    let resolve!: () => void;
    fs.release.mockImplementationOnce(() => {
      throw new Error('bug');
    });
    fs.release.mockImplementationOnce(() => new Promise<void>((r) => (resolve = r)));
    s.handle(req(Opcode.RELEASE, 0xc6n, releaseBody(9n), { nodeid: 5n }));
    s.handle(req(Opcode.RELEASE, 0xc8n, releaseBody(10n), { nodeid: 5n }));
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([[0xc6n, -E.EIO]]);
    resolve();
    await settle();
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([
      [0xc6n, -E.EIO],
      [0xc8n, 0],
    ]);
  });

  it('are dropped when the connection ends: there is nothing left to write to', () => {
    doInit();
    s.start();
    fs.release.mockImplementation(() => undefined);
    s.handle(req(Opcode.RELEASE, 0xcan, releaseBody(11n), { nodeid: 5n }));
    ch.events!.end('ENODEV');
    ch.events!.waiting();
    expect(ch.replies).toHaveLength(0);
  });
});

describe('a request its handler drops', () => {
  it('is answered EIO once its promise is garbage-collected unsettled', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc, 'run with node --expose-gc (vitest.config.ts sets it)').toBeTypeOf('function');
    doInit();
    // A plain function, not vi.fn: a mock would keep the promise alive in its recorded results.
    (fs as unknown as FuseFilesystem).read = () => new Promise<Buffer>(() => {});
    s.handle(req(Opcode.READ, 0xc0n, readBody(3n, 0n, 10)));
    await settle();
    expect(ch.raw).toHaveLength(0);
    expect(s.inFlight).toBe(1);
    for (let i = 0; i < 50 && ch.raw.length === 0; i++) {
      gc!();
      await settle();
    }
    expect(ch.replies.map((r) => [r.unique, r.error])).toEqual([[0xc0n, -E.EIO]]);
    expect(s.inFlight).toBe(0);
  });
});

describe('FUSE_NOTIFY_RETRIEVE and the FUSE_NOTIFY_REPLY request', () => {
  it('writes the notification, hands the reply to `take`, resolves with its size, and answers nothing', async () => {
    doInit();
    const got: Array<[number, string]> = [];
    const done = s.retrieve(5n, 4096, 3 * MAX_WRITE, (offset, data) => got.push([offset, data.toString('latin1')]));
    const [n] = ch.raw;
    expect(n!.readUInt32LE(0)).toBe(16 + 32);
    expect(n!.readInt32LE(4)).toBe(5); // FUSE_NOTIFY_RETRIEVE
    expect(n!.readBigUInt64LE(8)).toBe(0n);
    const unique = n!.readBigUInt64LE(16);
    expect(n!.readBigUInt64LE(24)).toBe(5n); // nodeid
    expect(n!.readBigUInt64LE(32)).toBe(4096n); // offset
    expect(n!.readUInt32LE(40)).toBe(MAX_WRITE); // at most max_write, as fuse_retrieve answers
    ch.clear();
    s.handle(req(Opcode.NOTIFY_REPLY, unique, notifyReplyBody(4096, Buffer.from('abc')), { nodeid: 5n }));
    expect(await done).toBe(3);
    expect(got).toEqual([[4096, 'abc']]);
    expect(ch.raw).toHaveLength(0);
  });

  it('a NOTIFY_REPLY nobody asked for is dropped unanswered; a refused retrieve of an inode the kernel forgot resolves 0', async () => {
    doInit();
    s.handle(req(Opcode.NOTIFY_REPLY, 77n, notifyReplyBody(0, Buffer.from('x'))));
    expect(ch.raw).toHaveLength(0);
    ch.writeResult = new Errno('ENOENT');
    expect(await s.retrieve(9n, 0, 10, () => expect.unreachable())).toBe(0);
    expect(ch.raw[0]!.readInt32LE(4)).toBe(5); // the notification, refused; not a reply
    ch.clear();
  });
});
