/**
 * Backing files for FUSE passthrough (7.40): FUSE_DEV_IOC_BACKING_OPEN on
 * the /dev/fuse descriptor registers an open file and returns an id that an
 * OPEN reply names with FOPEN_PASSTHROUGH; mmap of that FUSE file then maps
 * the backing file itself (fs/fuse/passthrough.c fuse_passthrough_mmap).
 * The ioctl needs CAP_SYS_ADMIN (fs/fuse/backing.c fuse_backing_open).
 */
import { Errno } from '../errno.js';
import { ioctl } from '../sys/ffi.js';
import { FUSE_DEV_IOC_BACKING_CLOSE, FUSE_DEV_IOC_BACKING_OPEN } from './abi.js';
import { encodeBackingMap } from './wire.js';

/** What a filesystem asks of the connection to answer an OPEN with a backing file. */
export interface BackingFiles {
  /** Registers `fd`; the id is valid for OPEN replies until close(). Throws Errno (EPERM without CAP_SYS_ADMIN). */
  open(fd: number): number;
  /** Drops the id; files opened with it keep their backing file. */
  close(id: number): void;
}

export class DevFuseBacking implements BackingFiles {
  constructor(private readonly devFuseFd: number) {}

  open(fd: number): number {
    return ioctl(this.devFuseFd, FUSE_DEV_IOC_BACKING_OPEN, encodeBackingMap(fd));
  }

  close(id: number): void {
    const arg = Buffer.alloc(4);
    arg.writeUInt32LE(id, 0);
    try {
      ioctl(this.devFuseFd, FUSE_DEV_IOC_BACKING_CLOSE, arg);
    } catch (err) {
      // The connection ended: its backing ids went with it.
      if (!(err instanceof Errno && (err.code === 'ENOTCONN' || err.code === 'ENODEV' || err.code === 'EBADF'))) throw err;
    }
  }
}
