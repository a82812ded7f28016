/**
 * Backing files for FUSE passthrough (7.40): FUSE_DEV_IOC_BACKING_OPEN on
 * the /dev/fuse descriptor registers an open file and returns an id that an
 * OPEN reply names with FOPEN_PASSTHROUGH; mmap of that FUSE file then maps
 * the backing file itself (fs/fuse/passthrough.c fuse_passthrough_mmap).
 * The ioctl needs CAP_SYS_ADMIN (fs/fuse/backing.c fuse_backing_open).
 */
import { readFileSync } from 'node:fs';
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

const CAP_SYS_ADMIN = 21n;

/**
 * Whether FUSE_DEV_IOC_BACKING_OPEN can succeed for this process:
 * fs/fuse/backing.c fuse_backing_open refuses unless capable(CAP_SYS_ADMIN),
 * the capability in the initial user namespace, which no namespace of our
 * own can grant. So: CAP_SYS_ADMIN effective (/proc/self/status CapEff)
 * and the initial user namespace (its /proc/self/uid_map maps all 2^32
 * ids onto themselves). Decided before INIT, so that a daemon that will
 * be refused negotiates page-cache mappings instead of passthrough.
 */
export function mayOpenBackingFiles(): boolean {
  try {
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (!capEff || !((BigInt(`0x${capEff}`) >> CAP_SYS_ADMIN) & 1n)) return false;
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295';
  } catch {
    return false;
  }
}

/**
 * Why passthrough will not be had, as far as this process can tell before
 * INIT (the kernel's offer is the rest: FuseSession.passthrough); null
 * when nothing here stands in its way.
 */
export function passthroughRefusal(wanted: boolean, allowed: boolean = mayOpenBackingFiles()): string | null {
  if (!wanted) return 'FUSE passthrough disabled by option';
  if (!allowed) return 'FUSE passthrough needs CAP_SYS_ADMIN in the initial user namespace (FUSE_DEV_IOC_BACKING_OPEN)';
  return null;
}
