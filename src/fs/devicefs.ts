/**
 * The FUSE operations of a cdevemu mount, over a NodeTree: directories and
 * attribute files are answered here; device nodes hand each open file to
 * the node's DeviceEndpoint and route READ, WRITE, IOCTL, POLL, FSYNC and
 * RELEASE on its fh to the DeviceFile it returned.
 */
import type { Logger } from 'pino';
import {
  DEFAULT_POLLMASK,
  O_ACCMODE,
  O_RDONLY,
  O_WRONLY,
  type DeviceFile,
  type DevicePages,
  type IoContext,
  type IoctlReply,
} from '../devio.js';
import { E, Errno } from '../errno.js';
import {
  DT_DIR,
  DT_REG,
  FOPEN_DIRECT_IO,
  FOPEN_KEEP_CACHE,
  FOPEN_NONSEEKABLE,
  FOPEN_PASSTHROUGH,
  FOPEN_STREAM,
  FUSE_IOCTL_COMPAT,
  FUSE_IOCTL_DIR,
  FUSE_POLL_SCHEDULE_NOTIFY,
  FUSE_READ_LOCKOWNER,
  FUSE_WRITE_CACHE,
  S_IFDIR,
  S_IFREG,
  FATTR_GID,
  FATTR_MODE,
  FATTR_UID,
  FATTR_ATIME,
  FATTR_MTIME,
  FATTR_ATIME_NOW,
  FATTR_MTIME_NOW,
} from '../fuse/abi.js';
import { after, type Awaitable } from '../awaitable.js';
import { passthroughRefusal } from '../fuse/backing.js';
import type { ConnectionInfo, FuseFilesystem, IoctlResult, RequestContext } from '../fuse/filesystem.js';
import type { KernelNotifier } from '../fuse/server.js';
import type {
  DirEntry,
  fuse_attr,
  fuse_attr_out,
  fuse_entry_out,
  fuse_ioctl_in,
  fuse_kstatfs,
  fuse_open_in,
  fuse_open_out,
  fuse_poll_in,
  fuse_read_in,
  fuse_release_in,
  fuse_setattr_in,
  fuse_write_in,
} from '../fuse/wire.js';
import { CallerMemory } from '../usermem.js';
import { PageMirror } from './page-mirror.js';
import { assertDir, NodeTree, type AttributeNode, type TreeNode } from './tree.js';

/**
 * How long the kernel may cache entries and attributes. Removal does not
 * rely on expiry (it sends NOTIFY_DELETE), and missing names are answered
 * with a plain ENOENT, which the kernel does not cache, so a new device is
 * visible at once.
 */
const ENTRY_TTL_MS = 1000;

type OpenHandle =
  /**
   * `backingFd`: this open was answered with the backing file registered
   * for that fd. `mirror`: its regions are mapped through the page cache.
   */
  | { kind: 'device'; file: DeviceFile; backingFd?: number; mirror?: PageMirror }
  | { kind: 'attribute'; node: AttributeNode; content: Buffer };


export class DeviceFs implements FuseFilesystem {
  readonly tree: NodeTree;
  private readonly handles = new Map<bigint, OpenHandle>();
  private readonly dirSnapshots = new Map<bigint, DirEntry[]>();
  private nextFh = 1n;
  private notifier: KernelNotifier | null = null;
  /** Set once BACKING_OPEN was refused with EPERM (logged once): mappable nodes then open without passthrough. */
  private backingRefused = false;
  /**
   * One backing id per backing file, shared by its opens. The kernel binds
   * an inode to one struct fuse_backing while any passthrough file of it
   * is open and fails a second open naming another one (EIO, from
   * fuse_inode_uncached_io_start's EBUSY), even for the same file.
   */
  private readonly backings = new Map<number, { id: number; opens: number }>();
  /** One mirror of programs' page caches per device mapped through them, while a file of it is open. */
  private readonly mirrors = new Map<DevicePages, PageMirror>();

  /** What INIT agreed, once the kernel answered. */
  private conn: ConnectionInfo | null = null;

  constructor(
    private readonly log: Logger,
    /** Whether passthrough is to be asked for (ServeOptions.passthrough); default true. */
    private readonly wantPassthrough = true,
  ) {
    this.tree = new NodeTree(() => this.notifier);
  }

  init(conn: ConnectionInfo): void {
    this.conn = conn;
  }

  /**
   * true when programs map the regions' very pages (FUSE passthrough),
   * else why not. Before INIT (devices are plugged before the mount) it is
   * foreseen as the session will decide it (FuseSession.passthrough).
   */
  pagesShared(): true | string {
    if (this.conn) return this.conn.passthrough || (this.conn.noPassthrough ?? 'no FUSE passthrough');
    return passthroughRefusal(this.wantPassthrough) ?? true;
  }

  /** Connects the tree to the kernel once mounted, so removals invalidate its caches. */
  attachNotifier(n: KernelNotifier | null): void {
    this.notifier = n;
  }


  private node(nodeid: bigint): TreeNode {
    const n = this.tree.get(nodeid);
    if (!n) throw new Errno(E.ENOENT);
    return n;
  }

  private attr(n: TreeNode): fuse_attr {
    const type = n.kind === 'dir' ? S_IFDIR : S_IFREG;
    const sec = (ms: number): number => Math.floor(ms / 1000);
    const nsec = (ms: number): number => Math.round((ms % 1000) * 1e6);
    return {
      ino: n.nodeid,
      size: n.kind === 'device' ? n.size : 0,
      blocks: 0,
      atime: sec(n.atimeMs),
      mtime: sec(n.mtimeMs),
      ctime: sec(n.ctimeMs),
      atimensec: nsec(n.atimeMs),
      mtimensec: nsec(n.mtimeMs),
      ctimensec: nsec(n.ctimeMs),
      mode: type | (n.mode & 0o7777),
      nlink: n.kind === 'dir' ? 2 : 1,
      uid: n.uid,
      gid: n.gid,
      rdev: 0,
      blksize: 4096,
    };
  }

  private entry(n: TreeNode): fuse_entry_out {
    this.tree.looked(n);
    return { nodeid: n.nodeid, generation: 0n, entry_valid_ms: ENTRY_TTL_MS, attr_valid_ms: ENTRY_TTL_MS, attr: this.attr(n) };
  }

  lookup(_ctx: RequestContext, parent: bigint, name: string): fuse_entry_out {
    const child = assertDir(this.tree.get(parent)).children.get(name);
    if (!child) throw new Errno(E.ENOENT);
    return this.entry(child);
  }

  forget(nodeid: bigint, nlookup: bigint): void {
    this.tree.forget(nodeid, nlookup);
  }

  getattr(ctx: RequestContext): fuse_attr_out {
    return { attr_valid_ms: ENTRY_TTL_MS, attr: this.attr(this.node(ctx.nodeid)) };
  }

  /**
   * chmod, chown and utimes change the node as on a real /dev entry. A size
   * change (truncate, or `>` without ATOMIC_O_TRUNC) means nothing to a
   * character device and is accepted as the kernel's char devices accept
   * O_TRUNC.
   */
  setattr(ctx: RequestContext, a: fuse_setattr_in): fuse_attr_out {
    const n = this.node(ctx.nodeid);
    const now = Date.now();
    if (a.valid & FATTR_MODE) n.mode = a.mode & 0o7777;
    if (a.valid & FATTR_UID) n.uid = a.uid;
    if (a.valid & FATTR_GID) n.gid = a.gid;
    if (a.valid & FATTR_ATIME_NOW) n.atimeMs = now;
    else if (a.valid & FATTR_ATIME) n.atimeMs = Number(a.atime) * 1000 + a.atimensec / 1e6;
    if (a.valid & FATTR_MTIME_NOW) n.mtimeMs = now;
    else if (a.valid & FATTR_MTIME) n.mtimeMs = Number(a.mtime) * 1000 + a.mtimensec / 1e6;
    n.ctimeMs = now;
    return { attr_valid_ms: ENTRY_TTL_MS, attr: this.attr(n) };
  }

  open(ctx: RequestContext, a: fuse_open_in): Awaitable<fuse_open_out> {
    const n = this.node(ctx.nodeid);
    if (n.kind === 'dir') throw new Errno(E.EISDIR);
    if (n.kind === 'attribute') {
      // Like kernfs_fop_open: an attribute without show() refuses read
      // opens and one without store() write opens, even to root.
      const acc = a.flags & O_ACCMODE;
      if ((acc !== O_WRONLY && !n.show) || (acc !== O_RDONLY && !n.store)) throw new Errno(E.EACCES);
      const shown = acc !== O_WRONLY && n.show ? n.show() : '';
      return this.register({ kind: 'attribute', node: n, content: Buffer.isBuffer(shown) ? shown : Buffer.from(shown) }, FOPEN_DIRECT_IO);
    }
    // A node removed by unplug can still be opened through a dentry the
    // kernel resolved just before; the endpoint answers ENODEV then.
    const opened = n.endpoint.open(this.io(ctx, a.flags));
    const flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | (n.stream ? FOPEN_STREAM : 0);
    return after(opened, (file) => {
      const backingFd = file.backingFd;
      const backingId = backingFd === undefined ? null : this.holdBacking(backingFd);
      if (backingId !== null) {
        // DIRECT_IO keeps read/write/poll/ioctl on the model; PASSTHROUGH
        // sends mmap to the backing file. The kernel refuses STREAM and
        // NONSEEKABLE with PASSTHROUGH (the open fails EIO), so offsets advance here.
        return this.register({ kind: 'device', file, backingFd }, FOPEN_DIRECT_IO | FOPEN_PASSTHROUGH, backingId);
      }
      const mirror = file.pages && this.holdMirror(ctx.nodeid, file.pages);
      if (!mirror) return this.register({ kind: 'device', file }, flags);
      // Mapped through the page cache (DIRECT_IO_ALLOW_MMAP). KEEP_CACHE: an
      // open must not drop the pages other programs map (fs/fuse/file.c
      // fuse_open invalidates them otherwise).
      return this.register({ kind: 'device', file, mirror }, flags | FOPEN_KEEP_CACHE);
    });
  }

  /** The device's page-cache mirror, when mappings go through the page cache; counted per open. */
  private holdMirror(nodeid: bigint, pages: DevicePages): PageMirror | undefined {
    const kernel = this.notifier?.pageCache;
    if (!kernel) return undefined;
    let mirror = this.mirrors.get(pages);
    if (!mirror) {
      mirror = new PageMirror(nodeid, pages, kernel, this.log);
      this.mirrors.set(pages, mirror);
      pages.attach(mirror);
    }
    mirror.opens++;
    return mirror;
  }

  private dropMirror(mirror: PageMirror): void {
    if (--mirror.opens > 0) return;
    this.mirrors.delete(mirror.pages);
    mirror.pages.attach(null);
  }

  /**
   * The backing id for an open of `fd`'s pages, or null (mmap then fails
   * ENODEV, as without passthrough). It is dropped when the last file
   * opened with it is released, not right after the OPEN reply: the opener
   * looks the id up only once it wakes up (fuse_finish_open ->
   * fuse_file_io_open), which may be after our reply write returned.
   */
  private holdBacking(fd: number): number | null {
    const held = this.backings.get(fd);
    if (held) {
      held.opens++;
      return held.id;
    }
    const backing = this.notifier?.backing;
    if (!backing || this.backingRefused) return null;
    try {
      const id = backing.open(fd);
      this.backings.set(fd, { id, opens: 1 });
      return id;
    } catch (err) {
      // EPERM is for good (no CAP_SYS_ADMIN in the initial user namespace):
      // said once. Anything else fails this open's mapping only.
      if (err instanceof Errno && err.code === 'EPERM') {
        this.backingRefused = true;
        this.log.warn({ err }, 'FUSE_DEV_IOC_BACKING_OPEN refused (it needs CAP_SYS_ADMIN); mmap of device regions fails ENODEV from now on');
      } else {
        this.log.warn({ err }, 'FUSE_DEV_IOC_BACKING_OPEN failed; this open cannot be mapped (mmap fails ENODEV)');
      }
      return null;
    }
  }

  private dropBacking(fd: number): void {
    const held = this.backings.get(fd);
    if (!held || --held.opens > 0) return;
    this.backings.delete(fd);
    try {
      this.notifier?.backing?.close(held.id);
    } catch (err) {
      this.log.warn({ err, id: held.id }, 'FUSE_DEV_IOC_BACKING_CLOSE failed');
    }
  }

  private register(h: OpenHandle, open_flags: number, backing_id?: number): fuse_open_out {
    const fh = this.nextFh++;
    this.handles.set(fh, h);
    return backing_id === undefined ? { fh, open_flags } : { fh, open_flags, backing_id };
  }

  private device(fh: bigint): Extract<OpenHandle, { kind: 'device' }> {
    const h = this.handles.get(fh);
    if (!h) throw new Errno(E.EBADF);
    if (h.kind !== 'device') throw new Errno(E.EINVAL);
    return h;
  }

  /**
   * The request as the device sees it: the context itself, with the file's
   * flags where the request carries them; its signal is made only if the
   * device asks for it.
   */
  private io<F extends number | undefined>(ctx: RequestContext, flags: F): IoContext & { flags: F } {
    ctx.flags = flags;
    return ctx as RequestContext & { flags: F };
  }

  read(ctx: RequestContext, a: fuse_read_in): Awaitable<Buffer> {
    const h = this.handles.get(a.fh);
    if (!h) throw new Errno(E.EBADF);
    if (h.kind === 'attribute') {
      const off = Number(a.offset);
      return h.content.subarray(Math.min(off, h.content.length), Math.min(off + a.size, h.content.length));
    }
    // A READ without FUSE_READ_LOCKOWNER fills the page cache (a mapping's
    // fault, readahead, splice): fs/fuse/file.c sets the flag on every
    // read() (fuse_send_read) and never on a page read (fuse_do_readfolio,
    // fuse_send_readpages). A mapped node's pages are its regions, never
    // what its read() gives; a node without regions has its pages read
    // with read(), as a MAP_PRIVATE mapping or a splice always had them.
    if (h.mirror && !(a.read_flags & FUSE_READ_LOCKOWNER)) return h.mirror.read(Number(a.offset), a.size);
    if (!h.file.read) throw new Errno(E.EINVAL);
    // The reply fits the request: core checked it (src/core/fops.ts READ.check).
    const data = h.file.read(a.size, this.io(ctx, a.flags));
    if (!h.mirror) return data;
    // Asked once the read has its answer: core pushes the model's stores
    // then (thenAnswer), and a read that blocked (uio's wait for the
    // interrupt) has pushed nothing yet when it returns its promise.
    const answer = (d: Buffer): Awaitable<Buffer> => this.afterStores(ctx, h.mirror, d);
    return after(data, answer);
  }

  /**
   * `value` as the answer of a request on a node mapped through the page
   * cache, written after every store pushed so far (the interrupt after
   * the ring entries it announces): through the notifier thread while
   * stores are on their way, once those a pull holds back are handed to
   * it (PageMirror.handedOver).
   */
  private afterStores<T>(ctx: RequestContext, mirror: PageMirror | undefined, value: T): Awaitable<T> {
    const answer = (): T => {
      if (mirror?.storing) ctx.answerAfterNotifications();
      return value;
    };
    const handed = mirror?.handedOver();
    return handed ? handed.then(answer) : answer();
  }

  write(ctx: RequestContext, a: fuse_write_in): Awaitable<number> {
    const h = this.handles.get(a.fh);
    if (!h) throw new Errno(E.EBADF);
    // Dirty pages of a mapping (fuse_writepage_args_setup), not a write().
    if (a.write_flags & FUSE_WRITE_CACHE) {
      if (h.kind !== 'device' || !h.mirror) throw new Errno(E.EIO);
      return h.mirror.writeback(Number(a.offset), a.data);
    }
    if (h.kind === 'attribute') {
      // sysfs_kf_write(): each write() is one store() of its whole buffer;
      // the offset means nothing. store() failing fails the write with its errno.
      const store = h.node.store;
      if (!store) throw new Errno(E.EACCES);
      return after(store(a.data.toString('utf8')), () => a.data.length);
    }
    if (!h.file.write) throw new Errno(E.EINVAL);
    // The data is a view of the request buffer, valid until the device's
    // write returns or settles (ChannelEvents.request); no copy on the way.
    // A count within the data: core checked it (src/core/fops.ts WRITE.check).
    return h.file.write(a.data, this.io(ctx, a.flags));
  }

  /**
   * FLUSH runs on every close(), dup'd fds included. Character devices have
   * no flush to do, and ENOSYS tells the kernel never to send it again for
   * this connection (fuse_lowlevel.h: "treated as success"), which saves a
   * round trip per close.
   */
  flush(): void {
    throw new Errno(E.ENOSYS);
  }

  /** RELEASE is never refused: the file is gone for the caller whatever we answer. */
  release(_ctx: RequestContext, a: fuse_release_in): Awaitable<void> {
    const h = this.handles.get(a.fh);
    if (!h) return;
    this.handles.delete(a.fh);
    if (h.kind !== 'device') return;
    if (h.backingFd !== undefined) this.dropBacking(h.backingFd);
    if (h.mirror) this.dropMirror(h.mirror);
    try {
      const r = h.file.release();
      if (r instanceof Promise) return r.catch((err) => this.log.error({ err }, 'device release failed'));
    } catch (err) {
      this.log.error({ err }, 'device release failed');
    }
  }

  /** vfs_fsync_range gives EINVAL for a file without fsync; ENOSYS would be sticky and hide later errors. */
  fsync(ctx: RequestContext, a: { fh: bigint }): Awaitable<void> {
    const h = this.handles.get(a.fh);
    if (!h) throw new Errno(E.EBADF);
    if (h.kind !== 'device' || !h.file.fsync) throw new Errno(E.EINVAL);
    return h.file.fsync(this.io(ctx, undefined));
  }

  opendir(ctx: RequestContext): fuse_open_out {
    const dir = assertDir(this.tree.get(ctx.nodeid));
    const entries: DirEntry[] = [
      { ino: dir.nodeid, off: 1, type: DT_DIR, name: '.' },
      { ino: dir.parent?.nodeid ?? dir.nodeid, off: 2, type: DT_DIR, name: '..' },
    ];
    for (const child of dir.children.values()) {
      entries.push({ ino: child.nodeid, off: entries.length + 1, type: child.kind === 'dir' ? DT_DIR : DT_REG, name: child.name });
    }
    // A snapshot per opendir keeps offsets stable while devices come and go.
    const fh = this.nextFh++;
    this.dirSnapshots.set(fh, entries);
    return { fh, open_flags: 0 };
  }

  readdir(_ctx: RequestContext, a: fuse_read_in, plus: boolean): DirEntry[] {
    const entries = this.dirSnapshots.get(a.fh);
    if (!entries) throw new Errno(E.EBADF);
    const rest = entries.slice(Number(a.offset));
    if (!plus) return rest;
    return rest.map((e) => {
      const n = e.name === '.' || e.name === '..' ? undefined : this.tree.get(e.ino);
      // nodeid 0 tells the kernel not to instantiate the entry (fuse_direntplus_link).
      return n ? { ...e, entry: { ...this.entryNoCount(n) } } : e;
    });
  }

  private entryNoCount(n: TreeNode): fuse_entry_out {
    return { nodeid: n.nodeid, generation: 0n, entry_valid_ms: ENTRY_TTL_MS, attr_valid_ms: ENTRY_TTL_MS, attr: this.attr(n) };
  }

  direntplusSent(entries: DirEntry[]): void {
    for (const e of entries) {
      const n = e.entry && e.entry.nodeid !== 0n ? this.tree.get(e.entry.nodeid) : undefined;
      if (n) this.tree.looked(n);
    }
  }

  releasedir(_ctx: RequestContext, a: fuse_release_in): void {
    this.dirSnapshots.delete(a.fh);
  }

  statfs(): fuse_kstatfs {
    return { blocks: 0, bfree: 0, bavail: 0, files: this.tree.size, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  access(ctx: RequestContext): void {
    this.node(ctx.nodeid);
  }

  ioctl(ctx: RequestContext, a: fuse_ioctl_in): Awaitable<IoctlResult> {
    if (a.flags & FUSE_IOCTL_DIR) throw new Errno(E.ENOTTY);
    const h = this.device(a.fh);
    const file = h.file;
    // An unimplemented ioctl is ENOTTY, as fs/ioctl.c vfs_ioctl answers for a driver without unlocked_ioctl.
    if (!file.ioctl) throw new Errno(E.ENOTTY);
    const user = new CallerMemory(ctx.pid);
    const req = { cmd: a.cmd, arg: a.arg, in: a.in_data, outSize: a.out_size, compat: (a.flags & FUSE_IOCTL_COMPAT) !== 0, pid: ctx.pid, user };
    let answer: Awaitable<IoctlReply>;
    try {
      answer = file.ioctl(req, this.io(ctx, undefined));
    } catch (err) {
      user.revoke();
      throw err;
    }
    // Answered (or failed): the caller returns from ioctl(2) and reuses its memory.
    if (answer instanceof Promise) void answer.then(() => user.revoke(), () => user.revoke());
    else user.revoke();
    // The output fits _IOC_SIZE: core checked it (src/core/fops.ts IOCTL.check).
    const reply = (r: IoctlReply): Awaitable<IoctlResult> => this.afterStores(ctx, h.mirror, { result: r.result ?? 0, out: r.out });
    return after(answer, reply);
  }

  poll(ctx: RequestContext, a: fuse_poll_in): Awaitable<number> {
    const file = this.device(a.fh).file;
    if (!file.poll) return DEFAULT_POLLMASK;
    const n = this.notifier;
    // The kernel asks to be notified only when a poller will sleep
    // (fuse_file_poll); kh then names this file's wait queue in the kernel.
    const wake = a.flags & FUSE_POLL_SCHEDULE_NOTIFY && n ? () => n.pollWakeup(a.kh) : null;
    return file.poll(a.events, wake, this.io(ctx, undefined));
  }

  /**
   * The connection ended (unmount or abort) with files still open: the
   * kernel will send no RELEASE for them, so release them here, or their
   * devices would wait forever for a last close.
   */
  destroy(): void {
    this.notifier = null;
    for (const [fh, h] of this.handles) {
      if (h.kind === 'device') void this.release({} as RequestContext, { fh, flags: 0, release_flags: 0, lock_owner: 0n });
    }
    this.handles.clear();
    this.backings.clear();
    for (const m of this.mirrors.values()) m.pages.attach(null);
    this.mirrors.clear();
    this.dirSnapshots.clear();
  }
}

