/**
 * Constants of the FUSE kernel ABI, named as in include/uapi/linux/fuse.h so
 * that they can be grepped against the header. Values not listed here are
 * not used by cdevemu.
 */

export const FUSE_KERNEL_VERSION = 7;
/**
 * The protocol minor cdevemu speaks: 7.40, the first with FUSE_PASSTHROUGH
 * (fuse_init_out.max_stack_depth, fuse_open_out.backing_id), which maps
 * device regions. Everything else a character device needs is older (poll
 * events 7.21, max_pages 7.28, NOTIFY_DELETE 7.18); newer kernels are
 * answered with min(theirs, ours).
 */
export const FUSE_KERNEL_MINOR_VERSION = 40;
/** The first minor whose INIT reply carries max_stack_depth and whose OPEN reply carries backing_id. */
export const FUSE_PASSTHROUGH_MINOR = 40;
/** Oldest minor accepted (go-fuse requires 7.12 as well). */
export const FUSE_MIN_MINOR_VERSION = 12;

export const FUSE_ROOT_ID = 1n;
export const FUSE_MIN_READ_BUFFER = 8192;
export const FUSE_COMPAT_22_INIT_OUT_SIZE = 24;
/** Bit 0 of fuse_in_header.unique marks an INTERRUPT request. */
export const FUSE_INT_REQ_BIT = 1n;

export enum Opcode {
  LOOKUP = 1,
  FORGET = 2,
  GETATTR = 3,
  SETATTR = 4,
  READLINK = 5,
  SYMLINK = 6,
  MKNOD = 8,
  MKDIR = 9,
  UNLINK = 10,
  RMDIR = 11,
  RENAME = 12,
  LINK = 13,
  OPEN = 14,
  READ = 15,
  WRITE = 16,
  STATFS = 17,
  RELEASE = 18,
  FSYNC = 20,
  SETXATTR = 21,
  GETXATTR = 22,
  LISTXATTR = 23,
  REMOVEXATTR = 24,
  FLUSH = 25,
  INIT = 26,
  OPENDIR = 27,
  READDIR = 28,
  RELEASEDIR = 29,
  FSYNCDIR = 30,
  GETLK = 31,
  SETLK = 32,
  SETLKW = 33,
  ACCESS = 34,
  CREATE = 35,
  INTERRUPT = 36,
  BMAP = 37,
  DESTROY = 38,
  IOCTL = 39,
  POLL = 40,
  NOTIFY_REPLY = 41,
  BATCH_FORGET = 42,
  FALLOCATE = 43,
  READDIRPLUS = 44,
  RENAME2 = 45,
  LSEEK = 46,
  COPY_FILE_RANGE = 47,
  SETUPMAPPING = 48,
  REMOVEMAPPING = 49,
  SYNCFS = 50,
  TMPFILE = 51,
  STATX = 52,
}

export enum NotifyCode {
  POLL = 1,
  INVAL_INODE = 2,
  INVAL_ENTRY = 3,
  STORE = 4,
  RETRIEVE = 5,
  DELETE = 6,
}

/* fuse_init_in.flags / fuse_init_out.flags */
export const FUSE_ASYNC_READ = 1 << 0;
export const FUSE_ATOMIC_O_TRUNC = 1 << 3;
export const FUSE_BIG_WRITES = 1 << 5;
export const FUSE_DO_READDIRPLUS = 1 << 13;
export const FUSE_WRITEBACK_CACHE = 1 << 16;
export const FUSE_NO_OPEN_SUPPORT = 1 << 17;
export const FUSE_PARALLEL_DIROPS = 1 << 18;
export const FUSE_ABORT_ERROR = 1 << 21;
export const FUSE_MAX_PAGES = 1 << 22;
export const FUSE_NO_OPENDIR_SUPPORT = 1 << 24;
export const FUSE_INIT_EXT = 1 << 30;
/* fuse_init_in.flags2 / fuse_init_out.flags2: bits 32..63 of the flags, shifted down. */
/** FUSE_PASSTHROUGH, 1 << 37 (7.40). */
export const FUSE_PASSTHROUGH_FLAGS2 = 1 << (37 - 32);
/**
 * FUSE_DIRECT_IO_ALLOW_MMAP, 1 << 36 (7.39): a FOPEN_DIRECT_IO file may be
 * mapped MAP_SHARED, through the page cache (fs/fuse/file.c fuse_file_mmap).
 */
export const FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2 = 1 << (36 - 32);
/** The first minor whose kernels know FUSE_DIRECT_IO_ALLOW_MMAP. */
export const FUSE_DIRECT_IO_ALLOW_MMAP_MINOR = 39;

/* fuse_open_out.open_flags */
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_NONSEEKABLE = 1 << 2;
export const FOPEN_CACHE_DIR = 1 << 3;
export const FOPEN_STREAM = 1 << 4;
/** I/O and mmap go to the backing file named by fuse_open_out.backing_id (7.40). */
export const FOPEN_PASSTHROUGH = 1 << 7;

/* ioctls on /dev/fuse (FUSE_DEV_IOC_MAGIC 229) */
/** _IOW(229, 1, struct fuse_backing_map): registers a backing file, returns its id. */
export const FUSE_DEV_IOC_BACKING_OPEN = 0x4010e501;
/** _IOW(229, 2, uint32_t): drops a backing id (open files keep their backing file). */
export const FUSE_DEV_IOC_BACKING_CLOSE = 0x4004e502;

/* fuse_read_in.read_flags: lock_owner is valid. Set on every read() (fs/fuse/file.c fuse_send_read), never on a page-cache fill. */
export const FUSE_READ_LOCKOWNER = 1 << 1;

/* fuse_write_in.write_flags */
/** A writeback of page-cache pages (fuse_writepage_args_setup), not a write(). */
export const FUSE_WRITE_CACHE = 1 << 0;
export const FUSE_WRITE_LOCKOWNER = 1 << 1;

/* fuse_getattr_in.getattr_flags */
export const FUSE_GETATTR_FH = 1 << 0;

/* fuse_setattr_in.valid */
export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;
export const FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5;
export const FATTR_FH = 1 << 6;
export const FATTR_ATIME_NOW = 1 << 7;
export const FATTR_MTIME_NOW = 1 << 8;
export const FATTR_LOCKOWNER = 1 << 9;
export const FATTR_CTIME = 1 << 10;

/* fuse_ioctl_in.flags */
export const FUSE_IOCTL_COMPAT = 1 << 0;
export const FUSE_IOCTL_UNRESTRICTED = 1 << 1;
export const FUSE_IOCTL_RETRY = 1 << 2;
export const FUSE_IOCTL_32BIT = 1 << 3;
export const FUSE_IOCTL_DIR = 1 << 4;

/* fuse_poll_in.flags */
export const FUSE_POLL_SCHEDULE_NOTIFY = 1 << 0;

/* Struct sizes, checked by test/fuse/abi.test.ts. */
export const SIZEOF = {
  fuse_in_header: 40,
  fuse_out_header: 16,
  fuse_attr: 88,
  fuse_entry_out: 128,
  fuse_attr_out: 104,
  fuse_forget_in: 8,
  fuse_forget_one: 16,
  fuse_batch_forget_in: 8,
  fuse_getattr_in: 16,
  fuse_setattr_in: 88,
  fuse_open_in: 8,
  fuse_open_out: 16,
  fuse_release_in: 24,
  fuse_flush_in: 24,
  fuse_read_in: 40,
  fuse_write_in: 40,
  fuse_write_out: 8,
  fuse_kstatfs: 80,
  fuse_fsync_in: 16,
  fuse_access_in: 8,
  fuse_init_in: 64,
  fuse_init_in_compat: 16,
  fuse_init_out: 64,
  fuse_interrupt_in: 8,
  fuse_ioctl_in: 32,
  fuse_ioctl_out: 16,
  fuse_poll_in: 24,
  fuse_poll_out: 8,
  fuse_notify_poll_wakeup_out: 8,
  fuse_notify_inval_inode_out: 24,
  fuse_notify_inval_entry_out: 16,
  fuse_notify_delete_out: 24,
  fuse_notify_store_out: 24,
  fuse_notify_retrieve_out: 32,
  fuse_notify_retrieve_in: 40,
  fuse_dirent: 24,
  fuse_backing_map: 16,
} as const;

/* File type bits for st_mode / d_type. */
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const DT_DIR = 4;
export const DT_REG = 8;
