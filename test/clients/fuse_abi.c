/*
 * fuse_abi: what the kernel's <linux/fuse.h> (linux-libc-dev) says about
 * the part of the FUSE ABI cdevemu encodes, one fact a line:
 *
 *   minor N                      FUSE_KERNEL_MINOR_VERSION of this header
 *   struct NAME SIZE             sizeof(struct NAME)
 *   field NAME MEMBER OFF SIZE   offsetof and sizeof of a member (SIZE 0: flexible array)
 *   const NAME VALUE             a constant, as an unsigned decimal
 *   missing NAME MINOR           not in this header: added in protocol 7.MINOR
 *
 * test/fuse/abi.test.ts checks src/fuse/abi.ts and the codecs of
 * src/fuse/wire.ts against it. What headers from 7.31 on may lack is
 * printed as "missing"; any other member named here that the header lacks
 * fails the build.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fuse.h>

#define STRUCT(s) printf("struct %s %zu\n", #s, sizeof(struct s))
#define FIELD(s, m) printf("field %s %s %zu %zu\n", #s, #m, offsetof(struct s, m), sizeof(((struct s *)0)->m))
#define FLEX(s, m) printf("field %s %s %zu 0\n", #s, #m, offsetof(struct s, m))
#define CONST(c) printf("const %s %llu\n", #c, (unsigned long long)(c))
#define MISSING(name, minor) printf("missing %s %d\n", name, minor)

#if FUSE_KERNEL_MINOR_VERSION < 31
#error "<linux/fuse.h> older than 7.31 (Linux 5.4): install a newer linux-libc-dev"
#endif

int main(void) {
	printf("minor %d\n", FUSE_KERNEL_MINOR_VERSION);

	STRUCT(fuse_in_header);
	FIELD(fuse_in_header, len);
	FIELD(fuse_in_header, opcode);
	FIELD(fuse_in_header, unique);
	FIELD(fuse_in_header, nodeid);
	FIELD(fuse_in_header, uid);
	FIELD(fuse_in_header, gid);
	FIELD(fuse_in_header, pid);
#if FUSE_KERNEL_MINOR_VERSION >= 38
	FIELD(fuse_in_header, total_extlen);
#else
	MISSING("fuse_in_header.total_extlen", 38);
#endif

	STRUCT(fuse_out_header);
	FIELD(fuse_out_header, len);
	FIELD(fuse_out_header, error);
	FIELD(fuse_out_header, unique);

	STRUCT(fuse_attr);
	FIELD(fuse_attr, ino);
	FIELD(fuse_attr, size);
	FIELD(fuse_attr, blocks);
	FIELD(fuse_attr, atime);
	FIELD(fuse_attr, mtime);
	FIELD(fuse_attr, ctime);
	FIELD(fuse_attr, atimensec);
	FIELD(fuse_attr, mtimensec);
	FIELD(fuse_attr, ctimensec);
	FIELD(fuse_attr, mode);
	FIELD(fuse_attr, nlink);
	FIELD(fuse_attr, uid);
	FIELD(fuse_attr, gid);
	FIELD(fuse_attr, rdev);
	FIELD(fuse_attr, blksize);
	FIELD(fuse_attr, flags);

	STRUCT(fuse_entry_out);
	FIELD(fuse_entry_out, nodeid);
	FIELD(fuse_entry_out, generation);
	FIELD(fuse_entry_out, entry_valid);
	FIELD(fuse_entry_out, attr_valid);
	FIELD(fuse_entry_out, entry_valid_nsec);
	FIELD(fuse_entry_out, attr_valid_nsec);
	FIELD(fuse_entry_out, attr);

	STRUCT(fuse_attr_out);
	FIELD(fuse_attr_out, attr_valid);
	FIELD(fuse_attr_out, attr_valid_nsec);
	FIELD(fuse_attr_out, attr);

	STRUCT(fuse_forget_in);
	FIELD(fuse_forget_in, nlookup);

	STRUCT(fuse_forget_one);
	FIELD(fuse_forget_one, nodeid);
	FIELD(fuse_forget_one, nlookup);

	STRUCT(fuse_batch_forget_in);
	FIELD(fuse_batch_forget_in, count);

	STRUCT(fuse_getattr_in);
	FIELD(fuse_getattr_in, getattr_flags);
	FIELD(fuse_getattr_in, fh);

	STRUCT(fuse_setattr_in);
	FIELD(fuse_setattr_in, valid);
	FIELD(fuse_setattr_in, fh);
	FIELD(fuse_setattr_in, size);
	FIELD(fuse_setattr_in, lock_owner);
	FIELD(fuse_setattr_in, atime);
	FIELD(fuse_setattr_in, mtime);
	FIELD(fuse_setattr_in, ctime);
	FIELD(fuse_setattr_in, atimensec);
	FIELD(fuse_setattr_in, mtimensec);
	FIELD(fuse_setattr_in, ctimensec);
	FIELD(fuse_setattr_in, mode);
	FIELD(fuse_setattr_in, uid);
	FIELD(fuse_setattr_in, gid);

	STRUCT(fuse_open_in);
	FIELD(fuse_open_in, flags);
#if FUSE_KERNEL_MINOR_VERSION >= 33
	FIELD(fuse_open_in, open_flags);
#else
	MISSING("fuse_open_in.open_flags", 33);
#endif

	STRUCT(fuse_open_out);
	FIELD(fuse_open_out, fh);
	FIELD(fuse_open_out, open_flags);

	STRUCT(fuse_release_in);
	FIELD(fuse_release_in, fh);
	FIELD(fuse_release_in, flags);
	FIELD(fuse_release_in, release_flags);
	FIELD(fuse_release_in, lock_owner);

	STRUCT(fuse_flush_in);
	FIELD(fuse_flush_in, fh);
	FIELD(fuse_flush_in, lock_owner);

	STRUCT(fuse_read_in);
	FIELD(fuse_read_in, fh);
	FIELD(fuse_read_in, offset);
	FIELD(fuse_read_in, size);
	FIELD(fuse_read_in, read_flags);
	FIELD(fuse_read_in, lock_owner);
	FIELD(fuse_read_in, flags);

	STRUCT(fuse_write_in);
	FIELD(fuse_write_in, fh);
	FIELD(fuse_write_in, offset);
	FIELD(fuse_write_in, size);
	FIELD(fuse_write_in, write_flags);
	FIELD(fuse_write_in, lock_owner);
	FIELD(fuse_write_in, flags);

	STRUCT(fuse_write_out);
	FIELD(fuse_write_out, size);

	STRUCT(fuse_kstatfs);
	FIELD(fuse_kstatfs, blocks);
	FIELD(fuse_kstatfs, bfree);
	FIELD(fuse_kstatfs, bavail);
	FIELD(fuse_kstatfs, files);
	FIELD(fuse_kstatfs, ffree);
	FIELD(fuse_kstatfs, bsize);
	FIELD(fuse_kstatfs, namelen);
	FIELD(fuse_kstatfs, frsize);

	STRUCT(fuse_fsync_in);
	FIELD(fuse_fsync_in, fh);
	FIELD(fuse_fsync_in, fsync_flags);

	STRUCT(fuse_access_in);
	FIELD(fuse_access_in, mask);

	STRUCT(fuse_init_in);
	FIELD(fuse_init_in, major);
	FIELD(fuse_init_in, minor);
	FIELD(fuse_init_in, max_readahead);
	FIELD(fuse_init_in, flags);
#if FUSE_KERNEL_MINOR_VERSION >= 36
	FIELD(fuse_init_in, flags2);
#else
	MISSING("fuse_init_in.flags2", 36);
#endif

	STRUCT(fuse_init_out);
	FIELD(fuse_init_out, major);
	FIELD(fuse_init_out, minor);
	FIELD(fuse_init_out, max_readahead);
	FIELD(fuse_init_out, flags);
	FIELD(fuse_init_out, max_background);
	FIELD(fuse_init_out, congestion_threshold);
	FIELD(fuse_init_out, max_write);
	FIELD(fuse_init_out, time_gran);
	FIELD(fuse_init_out, max_pages);
	FIELD(fuse_init_out, map_alignment);
#if FUSE_KERNEL_MINOR_VERSION >= 36
	FIELD(fuse_init_out, flags2);
#else
	MISSING("fuse_init_out.flags2", 36);
#endif

	STRUCT(fuse_interrupt_in);
	FIELD(fuse_interrupt_in, unique);

	STRUCT(fuse_ioctl_in);
	FIELD(fuse_ioctl_in, fh);
	FIELD(fuse_ioctl_in, flags);
	FIELD(fuse_ioctl_in, cmd);
	FIELD(fuse_ioctl_in, arg);
	FIELD(fuse_ioctl_in, in_size);
	FIELD(fuse_ioctl_in, out_size);

	STRUCT(fuse_ioctl_out);
	FIELD(fuse_ioctl_out, result);
	FIELD(fuse_ioctl_out, flags);
	FIELD(fuse_ioctl_out, in_iovs);
	FIELD(fuse_ioctl_out, out_iovs);

	STRUCT(fuse_poll_in);
	FIELD(fuse_poll_in, fh);
	FIELD(fuse_poll_in, kh);
	FIELD(fuse_poll_in, flags);
	FIELD(fuse_poll_in, events);

	STRUCT(fuse_poll_out);
	FIELD(fuse_poll_out, revents);

	STRUCT(fuse_notify_poll_wakeup_out);
	FIELD(fuse_notify_poll_wakeup_out, kh);

	STRUCT(fuse_notify_inval_inode_out);
	FIELD(fuse_notify_inval_inode_out, ino);
	FIELD(fuse_notify_inval_inode_out, off);
	FIELD(fuse_notify_inval_inode_out, len);

	STRUCT(fuse_notify_inval_entry_out);
	FIELD(fuse_notify_inval_entry_out, parent);
	FIELD(fuse_notify_inval_entry_out, namelen);
#if FUSE_KERNEL_MINOR_VERSION >= 38
	FIELD(fuse_notify_inval_entry_out, flags);
#else
	MISSING("fuse_notify_inval_entry_out.flags", 38);
#endif

	STRUCT(fuse_notify_delete_out);
	FIELD(fuse_notify_delete_out, parent);
	FIELD(fuse_notify_delete_out, child);
	FIELD(fuse_notify_delete_out, namelen);

	STRUCT(fuse_notify_store_out);
	FIELD(fuse_notify_store_out, nodeid);
	FIELD(fuse_notify_store_out, offset);
	FIELD(fuse_notify_store_out, size);

	STRUCT(fuse_notify_retrieve_out);
	FIELD(fuse_notify_retrieve_out, notify_unique);
	FIELD(fuse_notify_retrieve_out, nodeid);
	FIELD(fuse_notify_retrieve_out, offset);
	FIELD(fuse_notify_retrieve_out, size);

	STRUCT(fuse_notify_retrieve_in);
	FIELD(fuse_notify_retrieve_in, offset);
	FIELD(fuse_notify_retrieve_in, size);

	STRUCT(fuse_dirent);
	FIELD(fuse_dirent, ino);
	FIELD(fuse_dirent, off);
	FIELD(fuse_dirent, namelen);
	FIELD(fuse_dirent, type);
	FLEX(fuse_dirent, name);

	STRUCT(fuse_direntplus);
	FIELD(fuse_direntplus, entry_out);
	FIELD(fuse_direntplus, dirent);

	/* 7.40: FUSE_PASSTHROUGH */
#if FUSE_KERNEL_MINOR_VERSION >= 40
	STRUCT(fuse_backing_map);
	FIELD(fuse_backing_map, fd);
	FIELD(fuse_backing_map, flags);
	FIELD(fuse_backing_map, padding);
	FIELD(fuse_open_out, backing_id);
	FIELD(fuse_init_out, max_stack_depth);
	CONST(FUSE_PASSTHROUGH);
	CONST(FOPEN_PASSTHROUGH);
	CONST(FUSE_DEV_IOC_BACKING_OPEN);
	CONST(FUSE_DEV_IOC_BACKING_CLOSE);
#else
	MISSING("fuse_backing_map", 40);
	MISSING("fuse_open_out.backing_id", 40);
	MISSING("fuse_init_out.max_stack_depth", 40);
	MISSING("FUSE_PASSTHROUGH", 40);
	MISSING("FOPEN_PASSTHROUGH", 40);
	MISSING("FUSE_DEV_IOC_BACKING_OPEN", 40);
	MISSING("FUSE_DEV_IOC_BACKING_CLOSE", 40);
#endif

	CONST(FUSE_KERNEL_VERSION);
	CONST(FUSE_ROOT_ID);
	CONST(FUSE_MIN_READ_BUFFER);
	CONST(FUSE_COMPAT_22_INIT_OUT_SIZE);
	CONST(FUSE_DEV_IOC_CLONE);

	CONST(FUSE_LOOKUP);
	CONST(FUSE_FORGET);
	CONST(FUSE_GETATTR);
	CONST(FUSE_SETATTR);
	CONST(FUSE_READLINK);
	CONST(FUSE_SYMLINK);
	CONST(FUSE_MKNOD);
	CONST(FUSE_MKDIR);
	CONST(FUSE_UNLINK);
	CONST(FUSE_RMDIR);
	CONST(FUSE_RENAME);
	CONST(FUSE_LINK);
	CONST(FUSE_OPEN);
	CONST(FUSE_READ);
	CONST(FUSE_WRITE);
	CONST(FUSE_STATFS);
	CONST(FUSE_RELEASE);
	CONST(FUSE_FSYNC);
	CONST(FUSE_SETXATTR);
	CONST(FUSE_GETXATTR);
	CONST(FUSE_LISTXATTR);
	CONST(FUSE_REMOVEXATTR);
	CONST(FUSE_FLUSH);
	CONST(FUSE_INIT);
	CONST(FUSE_OPENDIR);
	CONST(FUSE_READDIR);
	CONST(FUSE_RELEASEDIR);
	CONST(FUSE_FSYNCDIR);
	CONST(FUSE_GETLK);
	CONST(FUSE_SETLK);
	CONST(FUSE_SETLKW);
	CONST(FUSE_ACCESS);
	CONST(FUSE_CREATE);
	CONST(FUSE_INTERRUPT);
	CONST(FUSE_BMAP);
	CONST(FUSE_DESTROY);
	CONST(FUSE_IOCTL);
	CONST(FUSE_POLL);
	CONST(FUSE_NOTIFY_REPLY);
	CONST(FUSE_BATCH_FORGET);
	CONST(FUSE_FALLOCATE);
	CONST(FUSE_READDIRPLUS);
	CONST(FUSE_RENAME2);
	CONST(FUSE_LSEEK);
	CONST(FUSE_COPY_FILE_RANGE);
	CONST(FUSE_SETUPMAPPING);
	CONST(FUSE_REMOVEMAPPING);
#if FUSE_KERNEL_MINOR_VERSION >= 34
	CONST(FUSE_SYNCFS);
#else
	MISSING("FUSE_SYNCFS", 34);
#endif
#if FUSE_KERNEL_MINOR_VERSION >= 37
	CONST(FUSE_TMPFILE);
#else
	MISSING("FUSE_TMPFILE", 37);
#endif
#if FUSE_KERNEL_MINOR_VERSION >= 39
	CONST(FUSE_STATX);
#else
	MISSING("FUSE_STATX", 39);
#endif

	CONST(FUSE_NOTIFY_POLL);
	CONST(FUSE_NOTIFY_INVAL_INODE);
	CONST(FUSE_NOTIFY_INVAL_ENTRY);
	CONST(FUSE_NOTIFY_STORE);
	CONST(FUSE_NOTIFY_RETRIEVE);
	CONST(FUSE_NOTIFY_DELETE);

	CONST(FUSE_ASYNC_READ);
	CONST(FUSE_ATOMIC_O_TRUNC);
	CONST(FUSE_BIG_WRITES);
	CONST(FUSE_DO_READDIRPLUS);
	CONST(FUSE_WRITEBACK_CACHE);
	CONST(FUSE_NO_OPEN_SUPPORT);
	CONST(FUSE_PARALLEL_DIROPS);
	CONST(FUSE_ABORT_ERROR);
	CONST(FUSE_MAX_PAGES);
	CONST(FUSE_NO_OPENDIR_SUPPORT);
#if FUSE_KERNEL_MINOR_VERSION >= 36
	CONST(FUSE_INIT_EXT);
#else
	MISSING("FUSE_INIT_EXT", 36);
#endif

	CONST(FOPEN_DIRECT_IO);
	CONST(FOPEN_KEEP_CACHE);
	CONST(FOPEN_NONSEEKABLE);
	CONST(FOPEN_CACHE_DIR);
	CONST(FOPEN_STREAM);

	CONST(FUSE_GETATTR_FH);

	CONST(FATTR_MODE);
	CONST(FATTR_UID);
	CONST(FATTR_GID);
	CONST(FATTR_SIZE);
	CONST(FATTR_ATIME);
	CONST(FATTR_MTIME);
	CONST(FATTR_FH);
	CONST(FATTR_ATIME_NOW);
	CONST(FATTR_MTIME_NOW);
	CONST(FATTR_LOCKOWNER);
	CONST(FATTR_CTIME);

	CONST(FUSE_IOCTL_COMPAT);
	CONST(FUSE_IOCTL_UNRESTRICTED);
	CONST(FUSE_IOCTL_RETRY);
	CONST(FUSE_IOCTL_32BIT);
	CONST(FUSE_IOCTL_DIR);

	CONST(FUSE_POLL_SCHEDULE_NOTIFY);

	CONST(FUSE_READ_LOCKOWNER);
	CONST(FUSE_WRITE_CACHE);
	CONST(FUSE_WRITE_LOCKOWNER);
#if FUSE_KERNEL_MINOR_VERSION >= 39
	CONST(FUSE_DIRECT_IO_ALLOW_MMAP);
#else
	MISSING("FUSE_DIRECT_IO_ALLOW_MMAP", 39);
#endif

	/* <sys/stat.h> and <dirent.h>: the file types in fuse_attr.mode and fuse_dirent.type */
	CONST(S_IFDIR);
	CONST(S_IFREG);
	CONST(DT_DIR);
	CONST(DT_REG);
	return 0;
}
