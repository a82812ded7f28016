/**
 * node dist/bench/peer/floor.js MOUNTPOINT
 *
 * The transport floor: cdevemu's FUSE transport (src/fuse: channel,
 * session, mount) serving MOUNTPOINT/dev/{zero,null,echo} straight from a
 * dozen lines of filesystem, with none of the device layers (src/fs,
 * src/core, models, fault rules, events, the control API). What it costs
 * over the C server is what Node and the transport's threads cost; what
 * cdevemu costs over it is the layers above. Run by `bench --floor`.
 *
 * echo here is a plain queue: a read waits for the next write if empty,
 * nothing more (enough for the ping-pong workload).
 */
import { pino } from 'pino';
import { Errno } from '../../src/errno.js';
import { FOPEN_DIRECT_IO, FOPEN_NONSEEKABLE, S_IFDIR, S_IFREG } from '../../src/fuse/abi.js';
import type { FuseFilesystem } from '../../src/fuse/filesystem.js';
import { FuseServer } from '../../src/fuse/server.js';
import type { fuse_attr } from '../../src/fuse/wire.js';

const ROOT = 1n;
const DEV = 2n;
const FILES = new Map([['zero', 3n], ['null', 4n], ['echo', 5n]]);
const zeros = Buffer.alloc(1 << 20);
const echo: Buffer[] = [];
const readers: Array<() => void> = [];

const attr = (ino: bigint): fuse_attr => ({
  ino, size: 0, blocks: 0, atime: 0, mtime: 0, ctime: 0, atimensec: 0, mtimensec: 0, ctimensec: 0,
  mode: ino <= DEV ? S_IFDIR | 0o755 : S_IFREG | 0o666, nlink: ino <= DEV ? 2 : 1, uid: 0, gid: 0, rdev: 0, blksize: 4096,
});
const nosys = (): never => {
  throw new Errno('ENOSYS');
};

const fs: FuseFilesystem = {
  lookup(_ctx, parent, name) {
    const ino = parent === ROOT && name === 'dev' ? DEV : parent === DEV ? FILES.get(name) : undefined;
    if (!ino) throw new Errno('ENOENT');
    return { nodeid: ino, generation: 0n, entry_valid_ms: 1000, attr_valid_ms: 1000, attr: attr(ino) };
  },
  forget() {},
  getattr: (ctx) => ({ attr_valid_ms: 1000, attr: attr(ctx.nodeid) }),
  open: (ctx) => ({ fh: ctx.nodeid, open_flags: FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE }),
  read(_ctx, a) {
    if (a.fh === 3n) return zeros.subarray(0, a.size);
    if (a.fh === 4n) return zeros.subarray(0, 0);
    const take = (): Buffer => {
      const b = echo.shift()!;
      if (b.length > a.size) echo.unshift(b.subarray(a.size));
      return b.subarray(0, a.size);
    };
    return echo.length ? take() : new Promise<void>((r) => readers.push(r)).then(take);
  },
  write(_ctx, a) {
    if (a.fh === 5n) {
      echo.push(Buffer.from(a.data));
      readers.shift()?.();
    }
    return a.data.length;
  },
  flush: nosys,
  release() {},
  fsync: nosys,
  opendir: nosys,
  readdir: nosys,
  direntplusSent() {},
  releasedir() {},
  setattr: nosys,
  statfs: nosys,
  access: nosys,
  ioctl: nosys,
  poll: nosys,
};

const mountpoint = process.argv[2];
if (!mountpoint) {
  console.error('usage: floor MOUNTPOINT');
  process.exit(2);
}
const server = await FuseServer.mount(fs, { mountpoint, logger: pino({ level: 'warn' }, pino.destination(2)) });
console.log('ready');
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void server.close().then(() => process.exit(0)));
