/**
 * Golden-byte tests for the FUSE struct codecs (src/fuse/wire.ts). Every
 * buffer is a hex literal written field by field, little-endian, with the
 * field name and value beside it; layouts are those of
 * /usr/include/linux/fuse.h (7.38). Decoders are checked field by field,
 * encoders byte for byte.
 */
import { describe, expect, it } from 'vitest';
import {
  DT_DIR,
  DT_REG,
  FOPEN_DIRECT_IO,
  FOPEN_NONSEEKABLE,
  FOPEN_PASSTHROUGH,
  FOPEN_STREAM,
  FUSE_INT_REQ_BIT,
  Opcode,
} from '../../src/fuse/abi.js';
import {
  MalformedRequest,
  decodeAccessIn,
  decodeBatchForgetIn,
  decodeFlushIn,
  decodeForgetIn,
  decodeFsyncIn,
  decodeGetattrIn,
  decodeInitIn,
  decodeInterruptIn,
  decodeIoctlIn,
  decodeName,
  decodeOpenIn,
  decodePollIn,
  decodeReadIn,
  decodeReleaseIn,
  decodeSetattrIn,
  decodeWriteIn,
  encodeAttrOut,
  encodeDirents,
  encodeEntryOut,
  encodeInitOut,
  encodeIoctlOut,
  encodeNotifyInvalEntry,
  encodeNotifyPoll,
  encodeOpenOut,
  encodeOutHeader,
  encodePollOut,
  encodeStatfsOut,
  encodeWriteOut,
  type DirEntry,
  type fuse_attr,
  type fuse_entry_out,
} from '../../src/fuse/wire.js';
import { hex, inHeader } from './bytes.js';
import { Context } from '../../src/fuse/session.js';


/** Compares as hex strings so a failure shows where the bytes differ. */
function expectBytes(actual: Buffer, expected: Buffer): void {
  expect(actual.toString('hex')).toBe(expected.toString('hex'));
}

/* ------------------------------------------------------------------ */
/* requests                                                            */
/* ------------------------------------------------------------------ */

describe('the request header (session Context)', () => {
  it('decodes every field of fuse_in_header, u64s as bigint', () => {
    const b = hex(`
      50000000          // len = 80
      0f000000          // opcode = 15 (READ)
      1032547698badcfe  // unique = 0xfedcba9876543210 (above 2^53: must not lose bits)
      8877665544332211  // nodeid = 0x1122334455667788
      e8030000          // uid = 1000
      e9030000          // gid = 1001
      92100000          // pid = 4242 (0x1092)
      0300              // total_extlen = 3 (8-byte units)
      0000              // padding
    `);
    expect(b.length).toBe(40);
    expect(inHeader(b)).toEqual({
      len: 80,
      opcode: Opcode.READ,
      unique: 0xfedcba9876543210n,
      nodeid: 0x1122334455667788n,
      uid: 1000,
      gid: 1001,
      pid: 4242,
      total_extlen: 3,
    });
  });

  it('ignores the padding after total_extlen', () => {
    const b = hex(`
      28000000 1a000000 0200000000000000 0000000000000000  // len 40, INIT, unique 2, nodeid 0
      00000000 00000000 00000000                           // uid, gid, pid
      0000                                                 // total_extlen = 0
      ffff                                                 // padding = 0xffff
    `);
    expect(inHeader(b).total_extlen).toBe(0);
  });
});

describe('decodeName', () => {
  it('reads up to the NUL', () => {
    expect(decodeName(hex(`74747930 00  // "tty0" NUL`))).toEqual({ name: 'tty0' });
  });
  it('stops at the first NUL even if bytes follow', () => {
    expect(decodeName(hex(`6162 00 6364 00  // "ab" NUL "cd" NUL`))).toEqual({ name: 'ab' });
  });
  it('decodes UTF-8', () => {
    expect(decodeName(hex(`c3a9 00  // "é" NUL`))).toEqual({ name: 'é' });
  });
  it('rejects a name without NUL', () => {
    expect(() => decodeName(hex(`74747930  // "tty0", no NUL`))).toThrow(MalformedRequest);
  });
});

describe('decodeInitIn', () => {
  it('16-byte form', () => {
    const b = hex(`
      07000000  // major = 7
      1f000000  // minor = 31
      00000100  // max_readahead = 0x10000
      21000000  // flags = ASYNC_READ | BIG_WRITES = 0x21
    `);
    expect(decodeInitIn(b)).toEqual({ major: 7, minor: 31, max_readahead: 0x10000, flags: 0x21, flags2: 0 });
  });
  it('64-byte form carries flags2', () => {
    const b = hex(`
      07000000  // major = 7
      26000000  // minor = 38
      00000200  // max_readahead = 0x20000
      01000040  // flags = INIT_EXT | ASYNC_READ = 0x40000001
      10000000  // flags2 = 0x10 (bit 36, DIRECT_IO_ALLOW_MMAP)
      ${'00000000'.repeat(11)}  // unused[11]
    `);
    expect(decodeInitIn(b)).toEqual({ major: 7, minor: 38, max_readahead: 0x20000, flags: 0x40000001, flags2: 0x10 });
  });
  it('rejects a body without major and minor', () => {
    expect(() => decodeInitIn(hex(`07000000  // major only`))).toThrow(MalformedRequest);
  });
});

describe('decodeForgetIn', () => {
  it('reads nlookup as u64', () => {
    expect(decodeForgetIn(hex(`0200000001000000  // nlookup = 0x100000002`))).toEqual({ nlookup: 0x100000002n });
  });
  it('rejects a short body', () => {
    expect(() => decodeForgetIn(hex(`02000000  // 4 bytes`))).toThrow(MalformedRequest);
  });
});

describe('decodeBatchForgetIn', () => {
  const two = `
    0500000000000000  // [0].nodeid = 5
    0100000000000000  // [0].nlookup = 1
    0100000000000080  // [1].nodeid = 0x8000000000000001
    0300000000000000  // [1].nlookup = 3
  `;
  it('reads count entries of fuse_forget_one', () => {
    const b = hex(`
      02000000  // count = 2
      00000000  // dummy
      ${two}
    `);
    expect(decodeBatchForgetIn(b)).toEqual({
      forgets: [
        { nodeid: 5n, nlookup: 1n },
        { nodeid: 0x8000000000000001n, nlookup: 3n },
      ],
    });
  });
  it('honours count when the payload holds more', () => {
    const b = hex(`
      01000000  // count = 1
      00000000  // dummy
      ${two}
    `);
    expect(decodeBatchForgetIn(b).forgets).toEqual([{ nodeid: 5n, nlookup: 1n }]);
  });
  it('count 0 gives no forgets', () => {
    expect(decodeBatchForgetIn(hex(`00000000 00000000  // count = 0, dummy`)).forgets).toEqual([]);
  });
  it('a count larger than the payload is MalformedRequest', () => {
    const b = hex(`
      03000000  // count = 3, but only 2 entries follow
      00000000  // dummy
      ${two}
    `);
    expect(() => decodeBatchForgetIn(b)).toThrow(MalformedRequest);
  });
  it('a partial trailing entry does not count as an entry', () => {
    const b = hex(`
      02000000  // count = 2
      00000000  // dummy
      0500000000000000 0100000000000000  // [0]
      0600000000000000                   // [1].nodeid only: 8 of 16 bytes
    `);
    expect(() => decodeBatchForgetIn(b)).toThrow(MalformedRequest);
  });
  it('a body shorter than fuse_batch_forget_in is MalformedRequest', () => {
    expect(() => decodeBatchForgetIn(hex(`01000000  // count only`))).toThrow(MalformedRequest);
  });
});

describe('decodeGetattrIn', () => {
  it('reads getattr_flags and fh, skipping dummy', () => {
    const b = hex(`
      01000000          // getattr_flags = FUSE_GETATTR_FH
      ffffffff          // dummy (ignored)
      0df0fecaefbeadde  // fh = 0xdeadbeefcafef00d
    `);
    expect(decodeGetattrIn(b)).toEqual({ getattr_flags: 1, fh: 0xdeadbeefcafef00dn });
  });
  it('an empty body (pre-7.9) means no fh', () => {
    expect(decodeGetattrIn(Buffer.alloc(0))).toEqual({ getattr_flags: 0, fh: 0n });
  });
});

describe('decodeSetattrIn', () => {
  it('reads every field at its offset, skipping padding, lock_owner and unused', () => {
    const b = hex(`
      68000000          // valid = FATTR_SIZE|FATTR_MTIME|FATTR_FH = 0x68
      aaaaaaaa          // padding
      0807060504030201  // fh = 0x0102030405060708
      0010000000000000  // size = 4096
      bbbbbbbbbbbbbbbb  // lock_owner (not decoded)
      00f1536500000000  // atime = 1700000000 (0x6553f100)
      01f1536500000000  // mtime = 1700000001
      02f1536500000000  // ctime = 1700000002
      6f000000          // atimensec = 111
      de000000          // mtimensec = 222
      4d010000          // ctimensec = 333
      a4810000          // mode = 0o100644 (0x81a4)
      cccccccc          // unused4
      e8030000          // uid = 1000
      64000000          // gid = 100
      dddddddd          // unused5
    `);
    expect(b.length).toBe(88);
    expect(decodeSetattrIn(b)).toEqual({
      valid: 0x68,
      fh: 0x0102030405060708n,
      size: 4096n,
      atime: 1700000000n,
      mtime: 1700000001n,
      ctime: 1700000002n,
      atimensec: 111,
      mtimensec: 222,
      ctimensec: 333,
      mode: 0o100644,
      uid: 1000,
      gid: 100,
    });
  });
  it('rejects a short body', () => {
    expect(() => decodeSetattrIn(Buffer.alloc(87))).toThrow(MalformedRequest);
  });
});

describe('decodeOpenIn', () => {
  it('reads flags and open_flags', () => {
    const b = hex(`
      020a0000  // flags = O_RDWR|O_TRUNC|O_NONBLOCK = 0xa02
      01000000  // open_flags = FUSE_OPEN_KILL_SUIDGID
    `);
    expect(decodeOpenIn(b)).toEqual({ flags: 0xa02, open_flags: 1 });
  });
  it('rejects a short body', () => {
    expect(() => decodeOpenIn(hex(`02000000`))).toThrow(MalformedRequest);
  });
});

describe('decodeReleaseIn', () => {
  it('reads fh, flags, release_flags, lock_owner', () => {
    const b = hex(`
      1100000000000000  // fh = 0x11
      02800000          // flags = O_RDWR|O_LARGEFILE = 0x8002
      01000000          // release_flags = FUSE_RELEASE_FLUSH
      efcdab8967452301  // lock_owner = 0x0123456789abcdef
    `);
    expect(decodeReleaseIn(b)).toEqual({ fh: 0x11n, flags: 0x8002, release_flags: 1, lock_owner: 0x0123456789abcdefn });
  });
  it('rejects a short body', () => {
    expect(() => decodeReleaseIn(Buffer.alloc(23))).toThrow(MalformedRequest);
  });
});

describe('decodeFlushIn', () => {
  it('reads fh and lock_owner, skipping unused and padding', () => {
    const b = hex(`
      2200000000000000  // fh = 0x22
      aaaaaaaa          // unused
      bbbbbbbb          // padding
      ffffffffffffffff  // lock_owner = 2^64 - 1
    `);
    expect(decodeFlushIn(b)).toEqual({ fh: 0x22n, lock_owner: 0xffffffffffffffffn });
  });
  it('rejects a short body', () => {
    expect(() => decodeFlushIn(Buffer.alloc(16))).toThrow(MalformedRequest);
  });
});

describe('decodeReadIn', () => {
  it('reads fh, offset, size, read_flags and the current f_flags', () => {
    const b = hex(`
      3300000000000000  // fh = 0x33
      0000000001000000  // offset = 0x100000000 (4 GiB)
      00100000          // size = 4096
      02000000          // read_flags = FUSE_READ_LOCKOWNER
      cccccccccccccccc  // lock_owner (not decoded)
      02080000          // flags = O_RDWR|O_NONBLOCK = 0x802
      dddddddd          // padding
    `);
    expect(decodeReadIn(b)).toEqual({ fh: 0x33n, offset: 0x100000000n, size: 4096, read_flags: 2, flags: 0x802 });
  });
  it('rejects a short body', () => {
    expect(() => decodeReadIn(Buffer.alloc(39))).toThrow(MalformedRequest);
  });
});

describe('decodeWriteIn', () => {
  const head = (size: string): string => `
      4400000000000000  // fh = 0x44
      0800000000000000  // offset = 8
      ${size}           // size
      04000000          // write_flags = FUSE_WRITE_KILL_SUIDGID (1 << 2)
      eeeeeeeeeeeeeeee  // lock_owner (not decoded)
      01080000          // flags = O_WRONLY|O_NONBLOCK = 0x801
      ffffffff          // padding
  `;
  it('reads the struct and exactly `size` payload bytes', () => {
    const b = hex(`
      ${head('05000000  // size = 5')}
      68656c6c6f        // "hello"
      2121              // "!!" beyond size: not data
    `);
    const w = decodeWriteIn(b);
    expect(w.fh).toBe(0x44n);
    expect(w.offset).toBe(8n);
    expect(w.size).toBe(5);
    expect(w.write_flags).toBe(4);
    expect(w.flags).toBe(0x801);
    expect(w.data.toString('latin1')).toBe('hello');
  });
  it('a zero-length write has empty data', () => {
    const w = decodeWriteIn(hex(head('00000000  // size = 0')));
    expect(w.size).toBe(0);
    expect(w.data.length).toBe(0);
  });
  it('a payload shorter than size is MalformedRequest', () => {
    const b = hex(`
      ${head('10000000  // size = 16')}
      68656c6c6f        // only 5 bytes
    `);
    expect(() => decodeWriteIn(b)).toThrow(MalformedRequest);
  });
  it('a body shorter than fuse_write_in is MalformedRequest', () => {
    expect(() => decodeWriteIn(Buffer.alloc(39))).toThrow(MalformedRequest);
  });
});

describe('decodeFsyncIn', () => {
  it('reads fh and fsync_flags', () => {
    const b = hex(`
      5500000000000000  // fh = 0x55
      01000000          // fsync_flags = FUSE_FSYNC_FDATASYNC
      eeeeeeee          // padding
    `);
    expect(decodeFsyncIn(b)).toEqual({ fh: 0x55n, fsync_flags: 1 });
  });
  it('rejects a short body', () => {
    expect(() => decodeFsyncIn(Buffer.alloc(12))).toThrow(MalformedRequest);
  });
});

describe('decodeAccessIn', () => {
  it('reads mask', () => {
    expect(decodeAccessIn(hex(`06000000 00000000  // mask = R_OK|W_OK, padding`))).toEqual({ mask: 6 });
  });
  it('rejects a short body', () => {
    expect(() => decodeAccessIn(hex(`06000000`))).toThrow(MalformedRequest);
  });
});

describe('decodeInterruptIn', () => {
  it('the header unique carries FUSE_INT_REQ_BIT; the body carries the original unique', () => {
    const req = hex(`
      30000000          // len = 48
      24000000          // opcode = 36 (INTERRUPT)
      2b00000000000000  // unique = 0x2b = 0x2a | FUSE_INT_REQ_BIT
      0000000000000000  // nodeid = 0
      00000000 00000000 00000000 0000 0000  // uid, gid, pid, total_extlen, padding
      2a00000000000000  // fuse_interrupt_in.unique = 0x2a (the original)
    `);
    const h = inHeader(req);
    expect(h.opcode).toBe(Opcode.INTERRUPT);
    expect(h.unique).toBe(0x2bn);
    expect(h.unique & FUSE_INT_REQ_BIT).toBe(1n);
    const a = decodeInterruptIn(req.subarray(40));
    expect(a).toEqual({ unique: 0x2an });
    expect(a.unique).toBe(h.unique & ~FUSE_INT_REQ_BIT);
  });
  it('reads a u64 unique above 2^53', () => {
    expect(decodeInterruptIn(hex(`1032547698badcfe  // 0xfedcba9876543210`)).unique).toBe(0xfedcba9876543210n);
  });
  it('rejects a short body', () => {
    expect(() => decodeInterruptIn(hex(`2a000000`))).toThrow(MalformedRequest);
  });
});

describe('decodeIoctlIn', () => {
  it('reads the struct and in_size bytes of input', () => {
    const b = hex(`
      6600000000000000  // fh = 0x66
      08000000          // flags = FUSE_IOCTL_32BIT
      015404c0          // cmd = 0xc0045401 = _IOWR('T', 1, u32) (top bit set: unsigned)
      78563412fc7f0000  // arg = 0x7ffc12345678 (caller's pointer)
      04000000          // in_size = 4
      08000000          // out_size = 8
      deadbeef          // in_data
    `);
    const a = decodeIoctlIn(b);
    expect(a.fh).toBe(0x66n);
    expect(a.flags).toBe(8);
    expect(a.cmd).toBe(0xc0045401);
    expect(a.arg).toBe(0x7ffc12345678n);
    expect(a.in_size).toBe(4);
    expect(a.out_size).toBe(8);
    expect(a.in_data.toString('hex')).toBe('deadbeef');
  });
  it('in_size 0: empty in_data', () => {
    const b = hex(`
      6600000000000000 00000000 01540000  // fh, flags = 0, cmd = 0x5401 (TCGETS, not encoded)
      0010000000000000                    // arg = 0x1000
      00000000 00000000                   // in_size = 0, out_size = 0
    `);
    const a = decodeIoctlIn(b);
    expect(a.cmd).toBe(0x5401);
    expect(a.in_data.length).toBe(0);
  });
  it('in_size beyond the body is MalformedRequest', () => {
    const b = hex(`
      6600000000000000 00000000 015408c0  // fh, flags, cmd
      0000000000000000                    // arg
      08000000 00000000                   // in_size = 8, out_size = 0
      deadbeef                            // only 4 bytes
    `);
    expect(() => decodeIoctlIn(b)).toThrow(MalformedRequest);
  });
});

describe('decodePollIn', () => {
  const fhKhFlags = `
      7700000000000000  // fh = 0x77
      5a5a5a5a00000080  // kh = 0x800000005a5a5a5a
      01000000          // flags = FUSE_POLL_SCHEDULE_NOTIFY
  `;
  it('with events (7.21+)', () => {
    const b = hex(`
      ${fhKhFlags}
      05000000          // events = POLLIN|POLLOUT
    `);
    expect(decodePollIn(b)).toEqual({ fh: 0x77n, kh: 0x800000005a5a5a5an, flags: 1, events: 5 });
  });
  it('without events: events = 0', () => {
    expect(decodePollIn(hex(fhKhFlags))).toEqual({ fh: 0x77n, kh: 0x800000005a5a5a5an, flags: 1, events: 0 });
  });
  it('rejects a body without flags', () => {
    expect(() => decodePollIn(Buffer.alloc(16))).toThrow(MalformedRequest);
  });
});

/* ------------------------------------------------------------------ */
/* replies                                                             */
/* ------------------------------------------------------------------ */

describe('64-bit fields around 2^32 (the codec takes a short path below it)', () => {
  const edges = [0n, 1n, 0xffffffffn, 0x100000000n, 0x1ffffffffn, 0xffffffffffffffffn];
  it.each(edges)('unique and nodeid %s decode as written', (v) => {
    const b = Buffer.alloc(40);
    b.writeUInt32LE(40, 0);
    b.writeBigUInt64LE(v, 8);
    b.writeBigUInt64LE(v, 16);
    const h = inHeader(b);
    expect([h.unique, h.nodeid]).toEqual([v, v]);
  });
  it.each(edges)('unique %s goes back in the reply header as it came', (v) => {
    const req = Buffer.alloc(40);
    req.writeUInt32LE(40, 0);
    req.writeBigUInt64LE(v, 8);
    const out = Buffer.alloc(16);
    new Context(req).writeReplyHeader(out, 16, -2);
    expect(out.readBigUInt64LE(8)).toBe(v);
    expect([out.readUInt32LE(0), out.readInt32LE(4)]).toEqual([16, -2]);
  });
  it.each(edges)('unique %s encodes as writeBigUInt64LE would', (v) => {
    const want = Buffer.alloc(8);
    want.writeBigUInt64LE(v);
    expect(encodeOutHeader(16, 0, v).subarray(8)).toEqual(want);
  });
  it('refuses what is not a u64, as writeBigUInt64LE does', () => {
    expect(() => encodeOutHeader(16, 0, -1n)).toThrow(RangeError);
    expect(() => encodeOutHeader(16, 0, 1n << 64n)).toThrow(RangeError);
  });
});

describe('encodeOutHeader', () => {
  it('success', () => {
    expectBytes(
      encodeOutHeader(24, 0, 0xfedcba9876543210n),
      hex(`
        18000000          // len = 24
        00000000          // error = 0
        1032547698badcfe  // unique = 0xfedcba9876543210
      `),
    );
  });
  it('a negative errno as i32', () => {
    expectBytes(
      encodeOutHeader(16, -2, 0x1234n),
      hex(`
        10000000          // len = 16
        feffffff          // error = -2 (-ENOENT)
        3412000000000000  // unique = 0x1234
      `),
    );
    expectBytes(
      encodeOutHeader(16, -511, 4n),
      hex(`
        10000000          // len = 16
        01feffff          // error = -511 (the most negative the kernel accepts)
        0400000000000000  // unique = 4
      `),
    );
  });
});

/** One fuse_attr and its 88 bytes, shared by entry, attr and direntplus tests. */
const ATTR: fuse_attr = {
  ino: 7n,
  size: 12345,
  blocks: 1,
  atime: 1700000000,
  mtime: 1700000001,
  ctime: 1700000002,
  atimensec: 1,
  mtimensec: 2,
  ctimensec: 3,
  mode: 0o100666,
  nlink: 1,
  uid: 1000,
  gid: 1001,
  rdev: 0,
  blksize: 4096,
};
const ATTR_HEX = `
  0700000000000000  // attr.ino = 7
  3930000000000000  // attr.size = 12345 (0x3039)
  0100000000000000  // attr.blocks = 1
  00f1536500000000  // attr.atime = 1700000000 (0x6553f100)
  01f1536500000000  // attr.mtime = 1700000001
  02f1536500000000  // attr.ctime = 1700000002
  01000000          // attr.atimensec = 1
  02000000          // attr.mtimensec = 2
  03000000          // attr.ctimensec = 3
  b6810000          // attr.mode = 0o100666 (0x81b6)
  01000000          // attr.nlink = 1
  e8030000          // attr.uid = 1000
  e9030000          // attr.gid = 1001
  00000000          // attr.rdev = 0
  00100000          // attr.blksize = 4096
  00000000          // attr.flags = 0
`;

describe('encodeEntryOut', () => {
  it('splits the cache lifetimes into seconds and nanoseconds', () => {
    const e: fuse_entry_out = { nodeid: 7n, generation: 0x100000001n, entry_valid_ms: 1500, attr_valid_ms: 250, attr: ATTR };
    const expected = hex(`
      0700000000000000  // nodeid = 7
      0100000001000000  // generation = 0x100000001
      0100000000000000  // entry_valid = 1 s
      0000000000000000  // attr_valid = 0 s
      0065cd1d          // entry_valid_nsec = 500000000 (0x1dcd6500)
      80b2e60e          // attr_valid_nsec = 250000000 (0x0ee6b280)
      ${ATTR_HEX}
    `);
    expect(expected.length).toBe(128);
    expectBytes(encodeEntryOut(e), expected);
  });
});

describe('encodeAttrOut', () => {
  it('attr_valid, attr_valid_nsec, dummy, attr', () => {
    const expected = hex(`
      0200000000000000  // attr_valid = 2 s
      40420f00          // attr_valid_nsec = 1000000 (0x0f4240)
      00000000          // dummy
      ${ATTR_HEX}
    `);
    expect(expected.length).toBe(104);
    expectBytes(encodeAttrOut({ attr_valid_ms: 2001, attr: ATTR }), expected);
  });
});

describe('encodeOpenOut', () => {
  it('fh, open_flags, padding', () => {
    expectBytes(
      encodeOpenOut({ fh: 0x100000003n, open_flags: FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | FOPEN_STREAM }),
      hex(`
        0300000001000000  // fh = 0x100000003
        15000000          // open_flags = DIRECT_IO|NONSEEKABLE|STREAM = 0x15
        00000000          // padding
      `),
    );
  });

  it('backing_id (7.40) in place of the padding, for FOPEN_PASSTHROUGH', () => {
    expectBytes(
      encodeOpenOut({ fh: 7n, open_flags: FOPEN_DIRECT_IO | FOPEN_PASSTHROUGH, backing_id: 3 }),
      hex(`
        0700000000000000  // fh = 7
        81000000          // open_flags = DIRECT_IO|PASSTHROUGH = 0x81
        03000000          // backing_id = 3
      `),
    );
  });
});

describe('encodeWriteOut', () => {
  it('size, padding', () => {
    expectBytes(encodeWriteOut(4096), hex(`00100000  // size = 4096\n 00000000  // padding`));
  });
});

describe('encodeStatfsOut', () => {
  it('fuse_kstatfs with padding and spare zeroed', () => {
    const expected = hex(`
      e803000000000000  // blocks = 1000
      f401000000000000  // bfree = 500
      9001000000000000  // bavail = 400
      4000000000000000  // files = 64
      2000000000000000  // ffree = 32
      00100000          // bsize = 4096
      ff000000          // namelen = 255
      00100000          // frsize = 4096
      00000000          // padding
      ${'00000000'.repeat(6)}  // spare[6]
    `);
    expect(expected.length).toBe(80);
    expectBytes(
      encodeStatfsOut({ blocks: 1000, bfree: 500, bavail: 400, files: 64, ffree: 32, bsize: 4096, namelen: 255, frsize: 4096 }),
      expected,
    );
  });
});

describe('encodePollOut', () => {
  it('revents, padding', () => {
    expectBytes(encodePollOut(0x41), hex(`41000000  // revents = POLLIN|POLLRDNORM\n 00000000  // padding`));
  });
  it('POLLERR|POLLHUP', () => {
    expectBytes(encodePollOut(0x18), hex(`18000000  // revents = POLLERR|POLLHUP\n 00000000  // padding`));
  });
});

describe('encodeIoctlOut', () => {
  it('without data: the 16-byte struct, result may be negative', () => {
    expectBytes(
      encodeIoctlOut(-25, undefined),
      hex(`
        e7ffffff  // result = -25 (-ENOTTY)
        00000000  // flags = 0 (no RETRY)
        00000000  // in_iovs = 0
        00000000  // out_iovs = 0
      `),
    );
  });
  it('with data: the struct followed by the output bytes', () => {
    expectBytes(
      encodeIoctlOut(3, hex('01020304 05')),
      hex(`
        03000000  // result = 3
        00000000  // flags
        00000000  // in_iovs
        00000000  // out_iovs
        0102030405  // out data, 5 bytes, unpadded
      `),
    );
  });
});

describe('encodeInitOut', () => {
  const out = {
    major: 7,
    minor: 31,
    max_readahead: 0x20000,
    flags: 0x00440029,
    max_background: 12,
    congestion_threshold: 9,
    max_write: 0x20000,
    time_gran: 1,
    max_pages: 32,
    flags2: 0x10,
  };
  const full = hex(`
    07000000  // major = 7
    1f000000  // minor = 31
    00000200  // max_readahead = 0x20000
    29004400  // flags = 0x00440029
    0c00      // max_background = 12
    0900      // congestion_threshold = 9
    00000200  // max_write = 0x20000
    01000000  // time_gran = 1
    2000      // max_pages = 32
    0000      // map_alignment = 0
    10000000  // flags2 = 0x10
    ${'00000000'.repeat(7)}  // unused[7]
  `);
  it('full 64-byte form for kernel minor >= 23', () => {
    expect(full.length).toBe(64);
    expectBytes(encodeInitOut(out, 38), full);
    expectBytes(encodeInitOut(out, 23), full);
  });
  it('24-byte form for kernel minor < 23', () => {
    expectBytes(
      encodeInitOut({ ...out, minor: 22 }, 22),
      hex(`
        07000000  // major = 7
        16000000  // minor = 22
        00000200  // max_readahead
        29004400  // flags
        0c00 0900 // max_background, congestion_threshold
        00000200  // max_write
      `),
    );
  });
  it('flags with bit 31 set are written unsigned', () => {
    const b = encodeInitOut({ ...out, flags: 1 << 31 }, 38);
    expect(b.subarray(12, 16).toString('hex')).toBe('00000080');
  });
});

describe('encodeDirents', () => {
  const entries: DirEntry[] = [
    { ino: 1n, off: 1, type: DT_DIR, name: '.' },
    { ino: 0x8000000000000010n, off: 2, type: DT_REG, name: 'watchdog0' },
    { ino: 0x11n, off: 3, type: DT_REG, name: 'abcdefgh' },
  ];
  const rec0 = `
    0100000000000000  // ino = 1
    0100000000000000  // off = 1
    01000000          // namelen = 1
    04000000          // type = DT_DIR
    2e 00000000000000 // "." + 7 bytes padding: 24 + 1 = 25 -> 32
  `;
  const rec1 = `
    1000000000000080  // ino = 0x8000000000000010
    0200000000000000  // off = 2
    09000000          // namelen = 9
    08000000          // type = DT_REG
    7761746368646f6730 00000000000000  // "watchdog0" + 7 padding: 24 + 9 = 33 -> 40
  `;
  const rec2 = `
    1100000000000000  // ino = 0x11
    0300000000000000  // off = 3
    08000000          // namelen = 8
    08000000          // type = DT_REG
    6162636465666768  // "abcdefgh": 24 + 8 = 32, no padding
  `;

  it('plain: records 8-byte aligned, all fit', () => {
    const expected = hex(rec0 + rec1 + rec2);
    expect(expected.length).toBe(104);
    const { buf, count } = encodeDirents(entries, 4096, false);
    expect(count).toBe(3);
    expectBytes(buf, expected);
  });

  it('plain: exactly enough room for all', () => {
    const { buf, count } = encodeDirents(entries, 104, false);
    expect(count).toBe(3);
    expect(buf.length).toBe(104);
  });

  it('plain: cut off when the next record does not fit whole', () => {
    const r = encodeDirents(entries, 103, false);
    expect(r.count).toBe(2);
    expectBytes(r.buf, hex(rec0 + rec1));
    const r1 = encodeDirents(entries, 71, false);
    expect(r1.count).toBe(1);
    expectBytes(r1.buf, hex(rec0));
    const r0 = encodeDirents(entries, 31, false);
    expect(r0.count).toBe(0);
    expect(r0.buf.length).toBe(0);
  });

  it('plain: a later entry that would fit is not packed after one that did not', () => {
    // "watchdog0" (40) does not fit in 32+39 = 71 bytes; "abcdefgh" (32) would,
    // but the kernel continues from the last entry's `off`, so skipping one would lose it.
    const r = encodeDirents(entries, 71, false);
    expect(r.count).toBe(1);
  });

  const plusEntries: DirEntry[] = [
    { ino: 1n, off: 1, type: DT_DIR, name: '.' }, // no entry: nodeid 0, not looked up
    {
      ino: 7n,
      off: 2,
      type: DT_REG,
      name: 'tty0',
      entry: { nodeid: 7n, generation: 2n, entry_valid_ms: 1000, attr_valid_ms: 3000, attr: ATTR },
    },
  ];
  const plus0 = `
    ${'00'.repeat(128)}  // entry_out all zero (nodeid 0: the kernel makes no dentry)
    0100000000000000  // ino = 1
    0100000000000000  // off = 1
    01000000          // namelen = 1
    04000000          // type = DT_DIR
    2e 00000000000000 // "." + padding: 128 + 24 + 1 = 153 -> 160
  `;
  const plus1 = `
    0700000000000000  // nodeid = 7
    0200000000000000  // generation = 2
    0100000000000000  // entry_valid = 1 s
    0300000000000000  // attr_valid = 3 s
    00000000          // entry_valid_nsec = 0
    00000000          // attr_valid_nsec = 0
    ${ATTR_HEX}
    0700000000000000  // dirent.ino = 7
    0200000000000000  // dirent.off = 2
    04000000          // namelen = 4
    08000000          // type = DT_REG
    74747930 00000000 // "tty0" + padding: 128 + 24 + 4 = 156 -> 160
  `;

  it('plus: fuse_entry_out then fuse_dirent, each record 8-byte aligned', () => {
    const expected = hex(plus0 + plus1);
    expect(expected.length).toBe(320);
    const { buf, count } = encodeDirents(plusEntries, 4096, true);
    expect(count).toBe(2);
    expectBytes(buf, expected);
  });

  it('plus: cut off by size, count says how many records the kernel gets', () => {
    const r = encodeDirents(plusEntries, 319, true);
    expect(r.count).toBe(1);
    expectBytes(r.buf, hex(plus0));
    const r0 = encodeDirents(plusEntries, 159, true);
    expect(r0.count).toBe(0);
    expect(r0.buf.length).toBe(0);
  });
});

/* ------------------------------------------------------------------ */
/* notifications: unique 0, error = notify code                        */
/* ------------------------------------------------------------------ */

describe('notifications', () => {
  it('encodeNotifyPoll', () => {
    expectBytes(
      encodeNotifyPoll(0x8000000000000abcn),
      hex(`
        18000000          // len = 24
        01000000          // error = FUSE_NOTIFY_POLL (1)
        0000000000000000  // unique = 0
        bc0a000000000080  // kh = 0x8000000000000abc
      `),
    );
  });

  it('encodeNotifyInvalEntry: name followed by NUL, len exact', () => {
    expectBytes(
      encodeNotifyInvalEntry(1n, 'tty0'),
      hex(`
        25000000          // len = 16 + 16 + 4 + 1 = 37
        03000000          // error = FUSE_NOTIFY_INVAL_ENTRY (3)
        0000000000000000  // unique = 0
        0100000000000000  // parent = 1
        04000000          // namelen = 4 (without the NUL)
        00000000          // flags = 0
        74747930 00       // "tty0" NUL
      `),
    );
  });

  it('encodeNotifyInvalEntry: namelen counts UTF-8 bytes', () => {
    expectBytes(
      encodeNotifyInvalEntry(0x20n, 'é'),
      hex(`
        23000000          // len = 16 + 16 + 2 + 1 = 35
        03000000          // FUSE_NOTIFY_INVAL_ENTRY
        0000000000000000  // unique = 0
        2000000000000000  // parent = 0x20
        02000000          // namelen = 2
        00000000          // flags
        c3a9 00           // "é" NUL
      `),
    );
  });

});
