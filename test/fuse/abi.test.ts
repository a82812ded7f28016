/**
 * The FUSE ABI constants against the kernel header (include/uapi/linux/fuse.h,
 * protocol 7.38 as installed in /usr/include/linux/fuse.h). Every expected
 * value below was worked out by hand from the header's field list; the
 * comment next to it shows the sum. No mount, no /dev/fuse.
 */
import { describe, expect, it } from 'vitest';
import * as abi from '../../src/fuse/abi.js';
import { SIZEOF } from '../../src/fuse/abi.js';
import { IOW } from '../../src/devio.js';
import { decodeInitIn, encodeInitOut, type fuse_init_out } from '../../src/fuse/wire.js';
import { hex } from './bytes.js';


/*
 * Expected sizeof() for each struct, from fuse.h. All structs are padded to
 * 8-byte multiples by explicit padding fields in the header itself, so each
 * size is simply the sum of its fields.
 */
const EXPECTED_SIZEOF: Record<keyof typeof SIZEOF, number> = {
  // struct fuse_in_header { u32 len, opcode; u64 unique, nodeid; u32 uid, gid, pid; u16 total_extlen, padding }
  //   4+4 + 8+8 + 4+4+4 + 2+2 = 40
  fuse_in_header: 40,
  // struct fuse_out_header { u32 len; i32 error; u64 unique } = 4+4+8 = 16
  fuse_out_header: 16,
  // struct fuse_attr { u64 ino, size, blocks, atime, mtime, ctime;
  //   u32 atimensec, mtimensec, ctimensec, mode, nlink, uid, gid, rdev, blksize, flags }
  //   6*8 + 10*4 = 48 + 40 = 88
  fuse_attr: 88,
  // struct fuse_entry_out { u64 nodeid, generation, entry_valid, attr_valid;
  //   u32 entry_valid_nsec, attr_valid_nsec; struct fuse_attr attr }
  //   4*8 + 2*4 + 88 = 128
  fuse_entry_out: 128,
  // struct fuse_attr_out { u64 attr_valid; u32 attr_valid_nsec, dummy; struct fuse_attr attr } = 8+4+4+88 = 104
  fuse_attr_out: 104,
  // struct fuse_forget_in { u64 nlookup } = 8
  fuse_forget_in: 8,
  // struct fuse_forget_one { u64 nodeid, nlookup } = 16
  fuse_forget_one: 16,
  // struct fuse_batch_forget_in { u32 count, dummy } = 8
  fuse_batch_forget_in: 8,
  // struct fuse_getattr_in { u32 getattr_flags, dummy; u64 fh } = 4+4+8 = 16
  fuse_getattr_in: 16,
  // struct fuse_setattr_in { u32 valid, padding; u64 fh, size, lock_owner, atime, mtime, ctime;
  //   u32 atimensec, mtimensec, ctimensec, mode, unused4, uid, gid, unused5 }
  //   2*4 + 6*8 + 8*4 = 8 + 48 + 32 = 88
  fuse_setattr_in: 88,
  // struct fuse_open_in { u32 flags, open_flags } = 8
  fuse_open_in: 8,
  // struct fuse_open_out { u64 fh; u32 open_flags, padding } = 16
  fuse_open_out: 16,
  // struct fuse_release_in { u64 fh; u32 flags, release_flags; u64 lock_owner } = 8+4+4+8 = 24
  fuse_release_in: 24,
  // struct fuse_flush_in { u64 fh; u32 unused, padding; u64 lock_owner } = 8+4+4+8 = 24
  fuse_flush_in: 24,
  // struct fuse_read_in { u64 fh, offset; u32 size, read_flags; u64 lock_owner; u32 flags, padding }
  //   8+8 + 4+4 + 8 + 4+4 = 40
  fuse_read_in: 40,
  // struct fuse_write_in { u64 fh, offset; u32 size, write_flags; u64 lock_owner; u32 flags, padding } = 40
  fuse_write_in: 40,
  // struct fuse_write_out { u32 size, padding } = 8
  fuse_write_out: 8,
  // struct fuse_kstatfs { u64 blocks, bfree, bavail, files, ffree; u32 bsize, namelen, frsize, padding; u32 spare[6] }
  //   5*8 + 4*4 + 6*4 = 40 + 16 + 24 = 80
  fuse_kstatfs: 80,
  // struct fuse_fsync_in { u64 fh; u32 fsync_flags, padding } = 16
  fuse_fsync_in: 16,
  // struct fuse_access_in { u32 mask, padding } = 8
  fuse_access_in: 8,
  // struct fuse_init_in { u32 major, minor, max_readahead, flags, flags2; u32 unused[11] } = 5*4 + 11*4 = 64
  fuse_init_in: 64,
  // fuse_init_in before 7.36: { u32 major, minor, max_readahead, flags } = 16
  fuse_init_in_compat: 16,
  // struct fuse_init_out { u32 major, minor, max_readahead, flags; u16 max_background, congestion_threshold;
  //   u32 max_write, time_gran; u16 max_pages, map_alignment; u32 flags2; u32 unused[7] }
  //   4*4 + 2*2 + 2*4 + 2*2 + 4 + 7*4 = 16 + 4 + 8 + 4 + 4 + 28 = 64
  fuse_init_out: 64,
  // struct fuse_interrupt_in { u64 unique } = 8
  fuse_interrupt_in: 8,
  // struct fuse_ioctl_in { u64 fh; u32 flags, cmd; u64 arg; u32 in_size, out_size } = 8+4+4+8+4+4 = 32
  fuse_ioctl_in: 32,
  // struct fuse_ioctl_out { i32 result; u32 flags, in_iovs, out_iovs } = 16
  fuse_ioctl_out: 16,
  // struct fuse_poll_in { u64 fh, kh; u32 flags, events } = 8+8+4+4 = 24
  fuse_poll_in: 24,
  // struct fuse_poll_out { u32 revents, padding } = 8
  fuse_poll_out: 8,
  // struct fuse_notify_poll_wakeup_out { u64 kh } = 8
  fuse_notify_poll_wakeup_out: 8,
  // struct fuse_notify_inval_inode_out { u64 ino; i64 off, len } = 24
  fuse_notify_inval_inode_out: 24,
  // struct fuse_notify_inval_entry_out { u64 parent; u32 namelen, flags } = 16
  fuse_notify_inval_entry_out: 16,
  // struct fuse_notify_delete_out { u64 parent, child; u32 namelen, padding } = 24
  fuse_notify_delete_out: 24,
  // struct fuse_dirent { u64 ino, off; u32 namelen, type; char name[] } = 24 (FUSE_NAME_OFFSET)
  fuse_dirent: 24,
  // struct fuse_backing_map { s32 fd; u32 flags; u64 padding } = 16 (7.40)
  fuse_backing_map: 16,
};

describe('SIZEOF matches the struct layouts in fuse.h', () => {
  for (const [name, size] of Object.entries(EXPECTED_SIZEOF)) {
    it(`sizeof(${name}) = ${size}`, () => {
      expect(SIZEOF[name as keyof typeof SIZEOF]).toBe(size);
    });
  }

  it('every SIZEOF entry is covered by this test (a new entry needs a hand-checked size here)', () => {
    expect(Object.keys(SIZEOF).sort()).toEqual(Object.keys(EXPECTED_SIZEOF).sort());
  });

  it('fuse_entry_out embeds fuse_attr after 40 bytes of header fields', () => {
    // offsetof(fuse_entry_out, attr) = 4*8 + 2*4 = 40; offsetof(fuse_attr_out, attr) = 16
    expect(SIZEOF.fuse_entry_out - SIZEOF.fuse_attr).toBe(40);
    expect(SIZEOF.fuse_attr_out - SIZEOF.fuse_attr).toBe(16);
  });
});

describe('constants match fuse.h', () => {
  it('protocol version, root id, read buffer, compat init size', () => {
    expect(abi.FUSE_KERNEL_VERSION).toBe(7); // #define FUSE_KERNEL_VERSION 7
    expect(abi.FUSE_ROOT_ID).toBe(1n); // #define FUSE_ROOT_ID 1
    expect(abi.FUSE_MIN_READ_BUFFER).toBe(8192); // #define FUSE_MIN_READ_BUFFER 8192
    expect(abi.FUSE_COMPAT_22_INIT_OUT_SIZE).toBe(24); // #define FUSE_COMPAT_22_INIT_OUT_SIZE 24
    expect(abi.FUSE_INT_REQ_BIT).toBe(1n); // fs/fuse/fuse_i.h: #define FUSE_INT_REQ_BIT (1ULL << 0)
    expect(abi.FUSE_KERNEL_MINOR_VERSION).toBeGreaterThanOrEqual(abi.FUSE_MIN_MINOR_VERSION);
  });

  it('opcodes (enum fuse_opcode)', () => {
    expect(abi.Opcode.LOOKUP).toBe(1);
    expect(abi.Opcode.FORGET).toBe(2);
    expect(abi.Opcode.GETATTR).toBe(3);
    expect(abi.Opcode.SETATTR).toBe(4);
    expect(abi.Opcode.OPEN).toBe(14);
    expect(abi.Opcode.READ).toBe(15);
    expect(abi.Opcode.WRITE).toBe(16);
    expect(abi.Opcode.STATFS).toBe(17);
    expect(abi.Opcode.RELEASE).toBe(18);
    expect(abi.Opcode.FSYNC).toBe(20);
    expect(abi.Opcode.FLUSH).toBe(25);
    expect(abi.Opcode.INIT).toBe(26);
    expect(abi.Opcode.OPENDIR).toBe(27);
    expect(abi.Opcode.READDIR).toBe(28);
    expect(abi.Opcode.RELEASEDIR).toBe(29);
    expect(abi.Opcode.ACCESS).toBe(34);
    expect(abi.Opcode.INTERRUPT).toBe(36);
    expect(abi.Opcode.DESTROY).toBe(38);
    expect(abi.Opcode.IOCTL).toBe(39);
    expect(abi.Opcode.POLL).toBe(40);
    expect(abi.Opcode.BATCH_FORGET).toBe(42);
    expect(abi.Opcode.READDIRPLUS).toBe(44);
    expect(abi.Opcode.SYNCFS).toBe(50);
    expect(abi.Opcode.TMPFILE).toBe(51);
    expect(abi.Opcode.STATX).toBe(52); // 7.39, newer than this header
  });

  it('notify codes (enum fuse_notify_code)', () => {
    expect(abi.NotifyCode.POLL).toBe(1);
    expect(abi.NotifyCode.INVAL_INODE).toBe(2);
    expect(abi.NotifyCode.INVAL_ENTRY).toBe(3);
    expect(abi.NotifyCode.STORE).toBe(4);
    expect(abi.NotifyCode.RETRIEVE).toBe(5);
    expect(abi.NotifyCode.DELETE).toBe(6);
  });

  it('INIT flags', () => {
    expect(abi.FUSE_ASYNC_READ).toBe(0x1); // 1 << 0
    expect(abi.FUSE_ATOMIC_O_TRUNC).toBe(0x8); // 1 << 3
    expect(abi.FUSE_BIG_WRITES).toBe(0x20); // 1 << 5
    expect(abi.FUSE_DO_READDIRPLUS).toBe(0x2000); // 1 << 13
    expect(abi.FUSE_WRITEBACK_CACHE).toBe(0x10000); // 1 << 16
    expect(abi.FUSE_NO_OPEN_SUPPORT).toBe(0x20000); // 1 << 17
    expect(abi.FUSE_PARALLEL_DIROPS).toBe(0x40000); // 1 << 18
    expect(abi.FUSE_ABORT_ERROR).toBe(0x200000); // 1 << 21
    expect(abi.FUSE_MAX_PAGES).toBe(0x400000); // 1 << 22
    expect(abi.FUSE_NO_OPENDIR_SUPPORT).toBe(0x1000000); // 1 << 24
    expect(abi.FUSE_INIT_EXT).toBe(0x40000000); // 1 << 30
    expect(abi.FUSE_PASSTHROUGH_FLAGS2).toBe(0x20); // FUSE_PASSTHROUGH (1ULL << 37), bit 5 of flags2
  });

  it('FOPEN, GETATTR, IOCTL, POLL flags', () => {
    expect(abi.FOPEN_DIRECT_IO).toBe(1);
    expect(abi.FOPEN_KEEP_CACHE).toBe(2);
    expect(abi.FOPEN_NONSEEKABLE).toBe(4);
    expect(abi.FOPEN_CACHE_DIR).toBe(8);
    expect(abi.FOPEN_STREAM).toBe(16);
    expect(abi.FOPEN_PASSTHROUGH).toBe(128); // 1 << 7
    // _IOW(229, 1, struct fuse_backing_map) and _IOW(229, 2, uint32_t)
    expect(abi.FUSE_DEV_IOC_BACKING_OPEN).toBe(IOW(229, 1, 16));
    expect(abi.FUSE_DEV_IOC_BACKING_CLOSE).toBe(IOW(229, 2, 4));
    expect(abi.FUSE_GETATTR_FH).toBe(1);
    expect(abi.FUSE_IOCTL_COMPAT).toBe(1);
    expect(abi.FUSE_IOCTL_UNRESTRICTED).toBe(2);
    expect(abi.FUSE_IOCTL_RETRY).toBe(4);
    expect(abi.FUSE_IOCTL_32BIT).toBe(8);
    expect(abi.FUSE_IOCTL_DIR).toBe(16);
    expect(abi.FUSE_POLL_SCHEDULE_NOTIFY).toBe(1);
  });

  it('FATTR bits (fuse_setattr_in.valid)', () => {
    expect(abi.FATTR_MODE).toBe(1 << 0);
    expect(abi.FATTR_UID).toBe(1 << 1);
    expect(abi.FATTR_GID).toBe(1 << 2);
    expect(abi.FATTR_SIZE).toBe(1 << 3);
    expect(abi.FATTR_ATIME).toBe(1 << 4);
    expect(abi.FATTR_MTIME).toBe(1 << 5);
    expect(abi.FATTR_FH).toBe(1 << 6);
    expect(abi.FATTR_ATIME_NOW).toBe(1 << 7);
    expect(abi.FATTR_MTIME_NOW).toBe(1 << 8);
    expect(abi.FATTR_LOCKOWNER).toBe(1 << 9);
    expect(abi.FATTR_CTIME).toBe(1 << 10);
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

  it('is FUSE_COMPAT_22_INIT_OUT_SIZE (24) bytes for kernel minor < 23', () => {
    for (const minor of [12, 13, 21, 22]) {
      expect(encodeInitOut({ ...out, minor }, minor).length, `kernel minor ${minor}`).toBe(24);
    }
  });

  it('is sizeof(fuse_init_out) (64) bytes for kernel minor >= 23', () => {
    for (const minor of [23, 28, 31, 36, 38, 40]) {
      expect(encodeInitOut({ ...out, minor: Math.min(minor, 31) }, minor).length, `kernel minor ${minor}`).toBe(64);
    }
  });

  it('the 24-byte form is the prefix of the full struct (up to and including max_write)', () => {
    const short = encodeInitOut(out, 22);
    const long = encodeInitOut(out, 23);
    expect(short.equals(long.subarray(0, 24))).toBe(true);
    // max_write is the last field in the compat form: offset 20.
    expect(short.readUInt32LE(20)).toBe(0x20000);
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
    expect(b.length).toBe(16);
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

  it('64-byte form (7.36+): flags2 at offset 16', () => {
    const b = hex(`
      07000000  // major = 7
      26000000  // minor = 38
      00000200  // max_readahead = 0x20000
      29004440  // flags = 0x40440029 (the above | INIT_EXT, 1 << 30)
      13000000  // flags2 = 0x13 (bits 32, 33, 36: SECURITY_CTX, HAS_INODE_DAX, DIRECT_IO_ALLOW_MMAP)
      ${'00000000'.repeat(11)} // unused[11]
    `);
    expect(b.length).toBe(64);
    expect(decodeInitIn(b)).toEqual({
      major: 7,
      minor: 38,
      max_readahead: 0x20000,
      flags: 0x40440029,
      flags2: 0x13,
    });
  });
});
