/**
 * The FUSE ABI of src/fuse/abi.ts, and the struct layouts the codecs of
 * src/fuse/wire.ts read and write, against the kernel's own header:
 * test/clients/fuse_abi.c, compiled against /usr/include/linux/fuse.h,
 * prints every size, member offset and constant compared here, so nothing
 * below is copied from the header by hand. No mount, no /dev/fuse.
 *
 * cdevemu speaks 7.40; what an older installed header lacks is skipped by
 * name, the skipped test's title saying what and since when.
 */
import { describe, expect, it } from 'vitest';
import * as abi from '../../src/fuse/abi.js';
import { NotifyCode, Opcode, SIZEOF } from '../../src/fuse/abi.js';
import { IOW } from '../../src/devio.js';
import {
  decodeAccessIn,
  decodeBatchForgetIn,
  decodeFlushIn,
  decodeForgetIn,
  decodeFsyncIn,
  decodeGetattrIn,
  decodeInitIn,
  decodeInterruptIn,
  decodeIoctlIn,
  decodeOpenIn,
  decodePollIn,
  decodeReadIn,
  decodeReleaseIn,
  decodeSetattrIn,
  decodeWriteIn,
  encodeAttrOut,
  encodeBackingMap,
  encodeDirents,
  encodeEntryOut,
  encodeInitOut,
  encodeIoctlOut,
  decodeNotifyRetrieveIn,
  encodeNotifyInvalEntry,
  encodeNotifyInvalInode,
  encodeNotifyPoll,
  encodeNotifyRetrieve,
  encodeNotifyStoreHead,
  encodeOpenOut,
  encodeOutHeader,
  encodePollOut,
  encodeStatfsOut,
  encodeWriteOut,
  type fuse_attr,
  type fuse_init_out,
} from '../../src/fuse/wire.js';
import { hex, inHeader } from './bytes.js';
import { Context } from '../../src/fuse/session.js';
import { absent, readFuseHeader, type Member } from './header.js';

const header = await readFuseHeader();
const HEADER = `<linux/fuse.h> 7.${header.minor}`;

function struct(s: string): { size: number; members: Map<string, Member> } {
  const st = header.structs.get(s);
  if (!st) throw new Error(`test/clients/fuse_abi.c prints no struct ${s}`);
  return st;
}
const sizeOf = (s: string): number => struct(s).size;
function member(s: string, m: string): Member {
  const f = struct(s).members.get(m);
  if (!f) throw new Error(`struct ${s} has no member ${m} in ${HEADER} (or test/clients/fuse_abi.c does not print it)`);
  return f;
}
const constant = (name: string): bigint => {
  const v = header.consts.get(name);
  if (v === undefined) throw new Error(`${name} is not defined by ${HEADER} (or test/clients/fuse_abi.c does not print it)`);
  return v;
};

/** A test that needs `needs` from the header; skipped, with the reason as its title, when the header is too old for one of them. */
function check(title: string, needs: string[], fn: () => void): void {
  const why = needs.map((n) => absent(header, n)).find((w) => w !== null);
  if (why) it.skip(`${title}: ${why}`, fn);
  else it(title, fn);
}

/**
 * The test of struct `s`'s layout, which leaves out the members the header
 * is too old to have: each of those is a skipped test of its own, the
 * reason its title.
 */
function structTest(title: string, s: string, fn: () => void): void {
  check(title, [s], fn);
  for (const name of header.missing.keys()) if (name.startsWith(`${s}.`)) it.skip(`${name}: ${absent(header, name)}`, () => {});
}
const present = (s: string, m: string): boolean => absent(header, `${s}.${m}`) === null;

/** Member `m` of struct `s` at byte `base` of `b`, as the header lays it out: little-endian, unsigned, of the member's own width. */
function read(b: Buffer, s: string, m: string, base = 0): bigint {
  const { offset, size } = member(s, m);
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[base + offset + i]!);
  return v;
}
function write(b: Buffer, s: string, m: string, v: bigint, base = 0): void {
  const { offset, size } = member(s, m);
  for (let i = 0; i < size; i++) b[base + offset + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/** Expects each member named in `want` to hold its value in `b` (struct `s` at `base`), bar those the header lacks (see structTest). */
function expectMembers(b: Buffer, s: string, want: Record<string, number | bigint>, base = 0): void {
  for (const [m, v] of Object.entries(want)) if (present(s, m)) expect(read(b, s, m, base), `${s}.${m}`).toBe(BigInt(v));
}

/**
 * A request body: struct `s` and then `extra` bytes, no two bytes alike
 * (up to 255), so a member read at a wrong offset or of a wrong width
 * reads another value.
 */
function patterned(s: string, extra = 0): Buffer {
  const b = Buffer.alloc(sizeOf(s) + extra);
  for (let i = 0; i < b.length; i++) b[i] = (i % 255) + 1;
  return b;
}

/** Every field a decoder returned is the header's member of that name (bar `own`, which it derives, and those the header lacks). */
function expectDecoded(s: string, b: Buffer, decoded: object, own: string[] = []): void {
  const fields = Object.entries(decoded).filter(([k]) => !own.includes(k));
  expect(fields.length).toBeGreaterThan(0);
  for (const [k, v] of fields) if (present(s, k)) expect(read(b, s, k), `${s}.${k}`).toBe(BigInt(v as number | bigint));
}

describe(`SIZEOF against ${HEADER}`, () => {
  // Two entries are not structs of their own: the 16-byte fuse_init_in of
  // kernels before 7.36 ends where flags2 begins, and a dirent's fixed part
  // ends at its flexible name[] (FUSE_NAME_OFFSET).
  const expected = (name: keyof typeof SIZEOF): number =>
    name === 'fuse_init_in_compat'
      ? member('fuse_init_in', 'flags2').offset
      : name === 'fuse_dirent'
        ? member('fuse_dirent', 'name').offset
        : sizeOf(name);
  // fuse_init_in grew from 16 to 64 bytes with flags2 (7.36).
  const needs = (name: string): string[] => (name.startsWith('fuse_init_in') ? ['fuse_init_in', 'fuse_init_in.flags2'] : [name]);
  for (const name of Object.keys(SIZEOF) as (keyof typeof SIZEOF)[]) {
    check(`sizeof(${name})`, needs(name), () => expect(SIZEOF[name]).toBe(expected(name)));
  }
});

describe(`decoders read each member where ${HEADER} puts it`, () => {
  const simple: [string, (b: Buffer) => object][] = [
    ['fuse_in_header', inHeader],
    ['fuse_init_in', decodeInitIn],
    ['fuse_forget_in', decodeForgetIn],
    ['fuse_getattr_in', decodeGetattrIn],
    ['fuse_setattr_in', decodeSetattrIn],
    ['fuse_open_in', decodeOpenIn],
    ['fuse_release_in', decodeReleaseIn],
    ['fuse_flush_in', decodeFlushIn],
    ['fuse_read_in', decodeReadIn],
    ['fuse_fsync_in', decodeFsyncIn],
    ['fuse_access_in', decodeAccessIn],
    ['fuse_interrupt_in', decodeInterruptIn],
    ['fuse_poll_in', decodePollIn],
  ];
  for (const [s, decode] of simple) {
    structTest(s, s, () => {
      const b = patterned(s);
      expectDecoded(s, b, decode(b));
    });
  }

  structTest('fuse_write_in, then the data', 'fuse_write_in', () => {
    const b = patterned('fuse_write_in', 3);
    write(b, 'fuse_write_in', 'size', 3n);
    const w = decodeWriteIn(b);
    expectDecoded('fuse_write_in', b, w, ['data']);
    expect(w.data.equals(b.subarray(sizeOf('fuse_write_in')))).toBe(true);
  });

  structTest('fuse_ioctl_in, then the input', 'fuse_ioctl_in', () => {
    const b = patterned('fuse_ioctl_in', 5);
    write(b, 'fuse_ioctl_in', 'in_size', 5n);
    const io = decodeIoctlIn(b);
    expectDecoded('fuse_ioctl_in', b, io, ['in_data']);
    expect(io.in_data.equals(b.subarray(sizeOf('fuse_ioctl_in')))).toBe(true);
  });

  structTest('fuse_batch_forget_in, then its fuse_forget_one entries', 'fuse_batch_forget_in', () => {
    const one = sizeOf('fuse_forget_one');
    const b = patterned('fuse_batch_forget_in', 2 * one);
    write(b, 'fuse_batch_forget_in', 'count', 2n);
    const { forgets } = decodeBatchForgetIn(b);
    expect(forgets).toHaveLength(2);
    forgets.forEach((f, i) => {
      const base = sizeOf('fuse_batch_forget_in') + i * one;
      expect(f).toEqual({ nodeid: read(b, 'fuse_forget_one', 'nodeid', base), nlookup: read(b, 'fuse_forget_one', 'nlookup', base) });
    });
  });
});

describe(`encoders write each member where ${HEADER} puts it`, () => {
  // Values no two alike, 64-bit ones above 2^32.
  const attr: fuse_attr = {
    ino: 0x0102030405060708n,
    size: 0x1_1112_1314,
    blocks: 0x2_2122_2324,
    atime: 0x3_3132_3334,
    mtime: 0x4_4142_4344,
    ctime: 0x5_5152_5354,
    atimensec: 0x61626364,
    mtimensec: 0x71727374,
    ctimensec: 0x01828384,
    mode: 0o100644,
    nlink: 0x0a0b,
    uid: 0x0c0d0e,
    gid: 0x0f1011,
    rdev: 0x121314,
    blksize: 0x151617,
  };
  const expectAttr = (b: Buffer, base: number): void => expectMembers(b, 'fuse_attr', { ...attr, flags: 0 }, base);

  structTest('fuse_out_header', 'fuse_out_header', () => {
    const b = encodeOutHeader(0x01020304, 0x05060708, 0x1112131415161718n);
    expect(b.length).toBe(sizeOf('fuse_out_header'));
    expectMembers(b, 'fuse_out_header', { len: 0x01020304, error: 0x05060708, unique: 0x1112131415161718n });
  });

  structTest("fuse_out_header of a request's answer (session Context)", 'fuse_out_header', () => {
    const req = patterned('fuse_in_header');
    const b = Buffer.alloc(sizeOf('fuse_out_header'));
    new Context(req).writeReplyHeader(b, 0x01020304, 0x05060708);
    expectMembers(b, 'fuse_out_header', { len: 0x01020304, error: 0x05060708, unique: read(req, 'fuse_in_header', 'unique') });
  });

  structTest('fuse_entry_out, with its fuse_attr', 'fuse_entry_out', () => {
    const b = encodeEntryOut({
      nodeid: 0x2122232425262728n,
      generation: 0x3132333435363738n,
      entry_valid_ms: 5_123,
      attr_valid_ms: 7_456,
      attr,
    });
    expect(b.length).toBe(sizeOf('fuse_entry_out'));
    expectMembers(b, 'fuse_entry_out', {
      nodeid: 0x2122232425262728n,
      generation: 0x3132333435363738n,
      entry_valid: 5,
      entry_valid_nsec: 123_000_000,
      attr_valid: 7,
      attr_valid_nsec: 456_000_000,
    });
    expectAttr(b, member('fuse_entry_out', 'attr').offset);
  });

  structTest('fuse_attr_out, with its fuse_attr', 'fuse_attr_out', () => {
    const b = encodeAttrOut({ attr_valid_ms: 9_250, attr });
    expect(b.length).toBe(sizeOf('fuse_attr_out'));
    expectMembers(b, 'fuse_attr_out', { attr_valid: 9, attr_valid_nsec: 250_000_000 });
    expectAttr(b, member('fuse_attr_out', 'attr').offset);
  });

  structTest('fuse_open_out', 'fuse_open_out', () => {
    const open = { fh: 0x4142434445464748n, open_flags: 0x51525354, backing_id: 0x61626364 };
    const b = encodeOpenOut(open);
    expect(b.length).toBe(sizeOf('fuse_open_out'));
    expectMembers(b, 'fuse_open_out', open);
  });

  structTest('fuse_backing_map', 'fuse_backing_map', () => {
    const b = encodeBackingMap(0x71727374);
    expect(b.length).toBe(sizeOf('fuse_backing_map'));
    expectMembers(b, 'fuse_backing_map', { fd: 0x71727374, flags: 0, padding: 0 });
  });

  structTest('fuse_write_out', 'fuse_write_out', () => {
    expectMembers(encodeWriteOut(0x01020304), 'fuse_write_out', { size: 0x01020304 });
  });

  structTest('fuse_poll_out', 'fuse_poll_out', () => {
    expectMembers(encodePollOut(0x05060708), 'fuse_poll_out', { revents: 0x05060708 });
  });

  structTest('fuse_kstatfs', 'fuse_kstatfs', () => {
    const st = {
      blocks: 0x1_0000_0001,
      bfree: 0x2_0000_0002,
      bavail: 0x3_0000_0003,
      files: 0x4_0000_0004,
      ffree: 0x5_0000_0005,
      bsize: 0x66,
      namelen: 0x77,
      frsize: 0x88,
    };
    const b = encodeStatfsOut(st);
    expect(b.length).toBe(sizeOf('fuse_kstatfs'));
    expectMembers(b, 'fuse_kstatfs', st);
  });

  structTest('fuse_ioctl_out, then the output', 'fuse_ioctl_out', () => {
    const b = encodeIoctlOut(0x01020304, Buffer.from('out'));
    expectMembers(b, 'fuse_ioctl_out', { result: 0x01020304, flags: 0, in_iovs: 0, out_iovs: 0 });
    expect(b.subarray(sizeOf('fuse_ioctl_out')).toString()).toBe('out');
  });

  const init: fuse_init_out = {
    major: 7,
    minor: 40,
    max_readahead: 0x01020304,
    flags: 0x05060708,
    max_background: 0x0a0b,
    congestion_threshold: 0x0c0d,
    max_write: 0x11121314,
    time_gran: 0x15161718,
    max_pages: 0x191a,
    flags2: 0x21222324,
    max_stack_depth: 0x25262728,
  };

  structTest('fuse_init_out', 'fuse_init_out', () => {
    const b = encodeInitOut(init, 40);
    expect(b.length).toBe(sizeOf('fuse_init_out'));
    expectMembers(b, 'fuse_init_out', { ...init, map_alignment: 0 });
  });

  structTest('fuse_dirent, its name at FUSE_NAME_OFFSET, the record padded to 8 bytes', 'fuse_dirent', () => {
    const { buf, count } = encodeDirents([{ ino: 0x0102030405060708n, off: 0x1_1112_1314, type: 0x0a, name: 'abc' }], 4096, false);
    expect(count).toBe(1);
    const nameAt = member('fuse_dirent', 'name').offset;
    expect(buf.length).toBe(Math.ceil((nameAt + 3) / 8) * 8);
    expectMembers(buf, 'fuse_dirent', { ino: 0x0102030405060708n, off: 0x1_1112_1314, namelen: 3, type: 0x0a });
    expect(buf.toString('latin1', nameAt, nameAt + 3)).toBe('abc');
  });

  structTest('fuse_direntplus: the fuse_entry_out, then the fuse_dirent', 'fuse_direntplus', () => {
    const entry = { nodeid: 0x2122232425262728n, generation: 3n, entry_valid_ms: 1_000, attr_valid_ms: 2_000, attr };
    const { buf } = encodeDirents([{ ino: 0x0102030405060708n, off: 9, type: 0x0a, name: 'abc', entry }], 4096, true);
    const e = member('fuse_direntplus', 'entry_out').offset;
    const d = member('fuse_direntplus', 'dirent').offset;
    expectMembers(buf, 'fuse_entry_out', { nodeid: entry.nodeid, generation: 3, entry_valid: 1, attr_valid: 2 }, e);
    expectAttr(buf, e + member('fuse_entry_out', 'attr').offset);
    expectMembers(buf, 'fuse_dirent', { ino: 0x0102030405060708n, off: 9, namelen: 3, type: 0x0a }, d);
    const nameAt = d + member('fuse_dirent', 'name').offset; // FUSE_NAME_OFFSET_DIRENTPLUS
    expect(buf.toString('latin1', nameAt, nameAt + 3)).toBe('abc');
  });

  structTest('FUSE_NOTIFY_POLL: fuse_out_header, then fuse_notify_poll_wakeup_out', 'fuse_notify_poll_wakeup_out', () => {
    const b = encodeNotifyPoll(0x0102030405060708n);
    const h = sizeOf('fuse_out_header');
    expect(b.length).toBe(h + sizeOf('fuse_notify_poll_wakeup_out'));
    expectMembers(b, 'fuse_out_header', { len: b.length, error: constant('FUSE_NOTIFY_POLL'), unique: 0 });
    expectMembers(b, 'fuse_notify_poll_wakeup_out', { kh: 0x0102030405060708n }, h);
  });

  structTest(
    'FUSE_NOTIFY_INVAL_ENTRY: fuse_out_header, fuse_notify_inval_entry_out, then the name and a NUL',
    'fuse_notify_inval_entry_out',
    () => {
      const b = encodeNotifyInvalEntry(0x1112131415161718n, 'tty0');
      const h = sizeOf('fuse_out_header');
      const nameAt = h + sizeOf('fuse_notify_inval_entry_out');
      expect(b.length).toBe(nameAt + 5);
      expectMembers(b, 'fuse_out_header', { len: b.length, error: constant('FUSE_NOTIFY_INVAL_ENTRY'), unique: 0 });
      expectMembers(b, 'fuse_notify_inval_entry_out', { parent: 0x1112131415161718n, namelen: 4, flags: 0 }, h);
      expect(b.toString('latin1', nameAt)).toBe('tty0\0');
    },
  );
});

describe(`page-cache notifications against ${HEADER}`, () => {
  structTest('FUSE_NOTIFY_STORE: fuse_out_header, fuse_notify_store_out, then the bytes', 'fuse_notify_store_out', () => {
    const head = encodeNotifyStoreHead(0x0102030405060708n, 0x1_1112_1314, 3);
    const h = sizeOf('fuse_out_header');
    expect(head.length).toBe(h + sizeOf('fuse_notify_store_out'));
    // The header's len counts the bytes that follow in the same write.
    expectMembers(head, 'fuse_out_header', { len: head.length + 3, error: constant('FUSE_NOTIFY_STORE'), unique: 0 });
    expectMembers(head, 'fuse_notify_store_out', { nodeid: 0x0102030405060708n, offset: 0x1_1112_1314, size: 3 }, h);
  });

  structTest('FUSE_NOTIFY_RETRIEVE: fuse_out_header, then fuse_notify_retrieve_out', 'fuse_notify_retrieve_out', () => {
    const b = encodeNotifyRetrieve(0x2122232425262728n, 0x0102030405060708n, 0x1_1112_1314, 0x3132);
    const h = sizeOf('fuse_out_header');
    expect(b.length).toBe(h + sizeOf('fuse_notify_retrieve_out'));
    expectMembers(b, 'fuse_out_header', { len: b.length, error: constant('FUSE_NOTIFY_RETRIEVE'), unique: 0 });
    expectMembers(b, 'fuse_notify_retrieve_out', { notify_unique: 0x2122232425262728n, nodeid: 0x0102030405060708n, offset: 0x1_1112_1314, size: 0x3132 }, h);
  });

  structTest('FUSE_NOTIFY_INVAL_INODE: fuse_out_header, then fuse_notify_inval_inode_out (len 0: to the end)', 'fuse_notify_inval_inode_out', () => {
    const b = encodeNotifyInvalInode(0x0102030405060708n, 8192, 0);
    const h = sizeOf('fuse_out_header');
    expect(b.length).toBe(h + sizeOf('fuse_notify_inval_inode_out'));
    expectMembers(b, 'fuse_out_header', { len: b.length, error: constant('FUSE_NOTIFY_INVAL_INODE'), unique: 0 });
    expectMembers(b, 'fuse_notify_inval_inode_out', { ino: 0x0102030405060708n, off: 8192, len: 0 }, h);
  });

  structTest('FUSE_NOTIFY_REPLY: fuse_notify_retrieve_in, then the bytes retrieved', 'fuse_notify_retrieve_in', () => {
    const body = Buffer.alloc(sizeOf('fuse_notify_retrieve_in') + 3);
    body.writeBigUInt64LE(0x1_1112_1314n, member('fuse_notify_retrieve_in', 'offset').offset);
    body.writeUInt32LE(3, member('fuse_notify_retrieve_in', 'size').offset);
    body.write('abc', sizeOf('fuse_notify_retrieve_in'), 'latin1');
    const r = decodeNotifyRetrieveIn(body);
    expect({ offset: r.offset, size: r.size, data: r.data.toString('latin1') }).toEqual({ offset: 0x1_1112_1314, size: 3, data: 'abc' });
  });
});

describe(`constants against ${HEADER}`, () => {
  /** abi.ts exports that the uapi header does not define, and why. */
  const notInHeader: Record<string, string> = {
    FUSE_KERNEL_MINOR_VERSION: 'the minor cdevemu speaks, not the header',
    FUSE_PASSTHROUGH_MINOR: "cdevemu's",
    FUSE_MIN_MINOR_VERSION: "cdevemu's",
    FUSE_INT_REQ_BIT: 'fs/fuse/fuse_i.h, inside the kernel',
    FUSE_PASSTHROUGH_FLAGS2: 'FUSE_PASSTHROUGH shifted into flags2',
    FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2: 'FUSE_DIRECT_IO_ALLOW_MMAP shifted into flags2',
    FUSE_DIRECT_IO_ALLOW_MMAP_MINOR: "cdevemu's",
  };

  for (const [name, value] of Object.entries(abi)) {
    if ((typeof value !== 'number' && typeof value !== 'bigint') || name in notInHeader) continue;
    check(name, [name], () => expect(BigInt(value)).toBe(constant(name)));
  }
  for (const [name, value] of Object.entries(Opcode)) {
    if (typeof value === 'number') check(`Opcode.${name}`, [`FUSE_${name}`], () => expect(BigInt(value)).toBe(constant(`FUSE_${name}`)));
  }
  for (const [name, value] of Object.entries(NotifyCode)) {
    if (typeof value === 'number')
      check(`NotifyCode.${name}`, [`FUSE_NOTIFY_${name}`], () => expect(BigInt(value)).toBe(constant(`FUSE_NOTIFY_${name}`)));
  }

  check('FUSE_PASSTHROUGH_FLAGS2 is FUSE_PASSTHROUGH (a flags bit above 31) in flags2', ['FUSE_PASSTHROUGH'], () => {
    expect(BigInt(abi.FUSE_PASSTHROUGH_FLAGS2) << 32n).toBe(constant('FUSE_PASSTHROUGH'));
  });

  check('FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2 is FUSE_DIRECT_IO_ALLOW_MMAP (a flags bit above 31) in flags2', ['FUSE_DIRECT_IO_ALLOW_MMAP'], () => {
    expect(BigInt(abi.FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2) << 32n).toBe(constant('FUSE_DIRECT_IO_ALLOW_MMAP'));
  });

  it("FUSE_DEV_IOC_BACKING_OPEN and _CLOSE are _IOW on the type of the header's FUSE_DEV_IOC_CLONE", () => {
    // The ioctl numbers themselves are compared above once the header has them (7.40).
    const magic = Number((constant('FUSE_DEV_IOC_CLONE') >> 8n) & 0xffn); // _IOC_TYPE
    expect(abi.FUSE_DEV_IOC_BACKING_OPEN).toBe(IOW(magic, 1, SIZEOF.fuse_backing_map));
    expect(abi.FUSE_DEV_IOC_BACKING_CLOSE).toBe(IOW(magic, 2, 4)); // uint32_t
  });

  it("cdevemu's own: the interrupt bit of unique, the minors it accepts", () => {
    expect(abi.FUSE_INT_REQ_BIT).toBe(1n); // fs/fuse/fuse_i.h: #define FUSE_INT_REQ_BIT (1ULL << 0)
    expect(abi.FUSE_KERNEL_MINOR_VERSION).toBeGreaterThanOrEqual(abi.FUSE_PASSTHROUGH_MINOR);
    expect(abi.FUSE_PASSTHROUGH_MINOR).toBeGreaterThan(abi.FUSE_MIN_MINOR_VERSION);
  });
});

describe('fuse_init_out size depends on the kernel minor', () => {
  const out: fuse_init_out = {
    major: 7,
    minor: 22,
    max_readahead: 0x20000,
    flags: abi.FUSE_BIG_WRITES,
    max_background: 12,
    congestion_threshold: 9,
    max_write: 0x20000,
    time_gran: 1,
    max_pages: 32,
    flags2: 0,
  };
  const compat = Number(constant('FUSE_COMPAT_22_INIT_OUT_SIZE'));

  it('is FUSE_COMPAT_22_INIT_OUT_SIZE bytes for kernel minor < 23', () => {
    for (const minor of [12, 13, 21, 22]) {
      expect(encodeInitOut({ ...out, minor }, minor).length, `kernel minor ${minor}`).toBe(compat);
    }
  });

  it('is sizeof(fuse_init_out) bytes for kernel minor >= 23', () => {
    for (const minor of [23, 28, 31, 36, 38, 40]) {
      expect(encodeInitOut({ ...out, minor: Math.min(minor, 31) }, minor).length, `kernel minor ${minor}`).toBe(sizeOf('fuse_init_out'));
    }
  });

  it('the short form is the prefix of the full struct, up to and including max_write', () => {
    const short = encodeInitOut(out, 22);
    const long = encodeInitOut(out, 23);
    expect(short.equals(long.subarray(0, compat))).toBe(true);
    const maxWrite = member('fuse_init_out', 'max_write');
    expect(maxWrite.offset + maxWrite.size).toBe(compat);
  });
});

describe('fuse_init_in decodes both forms', () => {
  it('16-byte form (kernels before 7.36): no flags2', () => {
    const b = hex(`
      07000000  // major = 7
      23000000  // minor = 35
      00000200  // max_readahead = 0x20000
      29004400  // flags = ASYNC_READ|ATOMIC_O_TRUNC|BIG_WRITES|PARALLEL_DIROPS|MAX_PAGES = 0x00440029
    `);
    expect(b.length).toBe(SIZEOF.fuse_init_in_compat);
    expect(decodeInitIn(b)).toEqual({ major: 7, minor: 35, max_readahead: 0x20000, flags: 0x00440029, flags2: 0 });
  });

  it('16-byte form at the start of a longer allocation is still read as 16 bytes', () => {
    // A view onto a larger buffer whose next bytes are non-zero: a decoder
    // that looked past the body would pick up 0xffffffff as flags2.
    const backing = hex(`
      07000000 23000000 00000200 29004400  // the 16-byte struct as above
      ffffffff                             // NOT part of the body
    `);
    const a = decodeInitIn(backing.subarray(0, 16));
    expect(a.flags2).toBe(0);
    expect(a.flags).toBe(0x00440029);
  });

  check('full form (7.36+): flags2 read', ['fuse_init_in.flags2'], () => {
    const b = hex(`
      07000000  // major = 7
      26000000  // minor = 38
      00000200  // max_readahead = 0x20000
      29004440  // flags = 0x40440029 (the above | INIT_EXT, 1 << 30)
      13000000  // flags2 = 0x13 (bits 32, 33, 36: SECURITY_CTX, HAS_INODE_DAX, DIRECT_IO_ALLOW_MMAP)
      ${'00000000'.repeat(11)} // unused[11]
    `);
    expect(b.length).toBe(sizeOf('fuse_init_in'));
    expect(decodeInitIn(b)).toEqual({ major: 7, minor: 38, max_readahead: 0x20000, flags: 0x40440029, flags2: 0x13 });
  });
});
