/**
 * A mounted FUSE connection: channel + session + mount, and the
 * notifications a filesystem sends back to the kernel.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { DevFuseBacking, type BackingFiles } from './backing.js';
import { within } from '../awaitable.js';
import { MAX_CALL_BYTES } from '../limits.js';
import { FuseChannel, rejected, type ChannelStats } from './channel.js';
import type { FuseFilesystem } from './filesystem.js';
import { abortConnection, findMount, mountFuse, prepareMountpoint, unmountFuse } from './mount.js';
import { FuseSession } from './session.js';
import { encodeNotifyInvalEntry, encodeNotifyInvalInode, encodeNotifyPoll, encodeNotifyStoreHead } from './wire.js';

export interface ServeOptions {
  mountpoint: string;
  logger: Logger;
  allowOther?: boolean;
  /** Largest single WRITE; default 1 MiB, capped by /proc/sys/fs/fuse/max_pages_limit. */
  maxWrite?: number;
  /** See ChannelOptions.busyPollMicros; default 20. */
  busyPollMicros?: number;
  /** See ChannelOptions.pollMicros; default 50. */
  pollMicros?: number;
  /** Negotiate FUSE_PASSTHROUGH when offered, so device regions can be mapped; default true. */
  passthrough?: boolean;
}

/** The notifications a filesystem may send. fs/ depends on this, not on the server. */
export interface KernelNotifier {
  /** FUSE_NOTIFY_POLL: the file registered under `kh` may have changed readiness. */
  pollWakeup(kh: bigint): void;
  /** FUSE_NOTIFY_INVAL_ENTRY for a removed entry, written off the main thread (notifier.ts). */
  entryInvalidated(parent: bigint, name: string): Promise<void>;
  /** Backing-file registration for OPEN replies, when FUSE_PASSTHROUGH was negotiated; else null. */
  readonly backing: BackingFiles | null;
  /** The page cache of mapped files, when FUSE_DIRECT_IO_ALLOW_MMAP was negotiated; else null. */
  readonly pageCache: PageCacheNotifier | null;
}

/**
 * What a filesystem may do to the page cache of an inode that programs map
 * through it (docs/fuse-protocol.md#page-cache-mappings). STORE and
 * INVAL_INODE lock pages, which a program's page fault holds while its READ
 * waits for us, so they are written from the notifier thread, in the order
 * queued; RETRIEVE does not block and is written at once.
 */
export interface PageCacheNotifier {
  /** FUSE_NOTIFY_STORE of each `data` into the cached pages at its `offset` (pages not cached are made), in order. */
  store(nodeid: bigint, stores: readonly { offset: number; data: Buffer }[]): Promise<void>;
  /** Every STORE (every notification) queued so far is written: known at once, with no message from the notifier thread. */
  readonly drained: boolean;
  /**
   * Notifications queued so far, counted: the STOREs of a store() call are
   * the last ones queued when it returns, numbered up to `queued`.
   */
  readonly queued: number;
  /** How many of them the notifier thread has begun to write, in order: one numbered above is not in the page cache yet. */
  readonly begun: number;
  /**
   * How many of them the notifier thread had written when the read of the
   * request being served began (FuseChannel.notificationsDoneBeforeRead):
   * each of those is in a page that request brings whole, or (a page
   * copied before, under its lock) not at all; a later one may be in it
   * in part.
   */
  readonly doneBeforeRead: number;
  /** The most one retrieve answers (max_write, fs/fuse/dev.c fuse_retrieve). */
  readonly maxRetrieve: number;
  /** FUSE_NOTIFY_RETRIEVE: see FuseSession.retrieve. */
  retrieve(nodeid: bigint, offset: number, size: number, take: (offset: number, data: Buffer) => void): Promise<number>;
  /** FUSE_NOTIFY_INVAL_INODE: drops cached pages from `offset` for `len` bytes (0: to the end), dirty ones written back first. */
  invalidate(nodeid: bigint, offset: number, len: number): Promise<void>;
}

const DEFAULT_BUSY_POLL_MICROS = 20;
const DEFAULT_POLL_MICROS = 50;

async function maxPagesLimit(): Promise<number> {
  try {
    return parseInt(await readFile('/proc/sys/fs/fuse/max_pages_limit', 'utf8'), 10) || 256;
  } catch {
    return 256; // kernels before 6.13 have no sysctl; FUSE_MAX_MAX_PAGES is 256 there
  }
}

export class FuseServer implements KernelNotifier {
  private closing: Promise<void> | null = null;
  private dev = '';
  backing: BackingFiles | null = null;
  pageCache: PageCacheNotifier | null = null;

  private constructor(
    readonly mountpoint: string,
    private readonly channel: FuseChannel,
    readonly session: FuseSession,
    private readonly log: Logger,
  ) {}

  /**
   * Opens /dev/fuse, mounts, starts serving and waits for INIT. A stale
   * mount at the mountpoint (daemon killed) is cleared first.
   *
   * Reading starts only once mount(8) (or fusermount3) has returned: a read of /dev/fuse
   * before mount(2) has attached the descriptor fails EPERM (fuse_dev_read
   * finds no fuse_dev), which would end the session. Nothing is lost by
   * waiting: mount(2) queues INIT itself (fuse_fill_super ->
   * fuse_send_init) and it waits for a reader, and mount(8) does not touch
   * the new mount after mount(2) (so it cannot block on that INIT). libfuse
   * and go-fuse also mount first and read after.
   */
  static async mount(fs: FuseFilesystem, o: ServeOptions): Promise<FuseServer> {
    FuseChannel.assertCanServe();
    await prepareMountpoint(o.mountpoint);
    const limit = (await maxPagesLimit()) * 4096;
    const maxWrite = Math.max(4096, Math.min(o.maxWrite ?? MAX_CALL_BYTES, limit));
    const channel = FuseChannel.open(await mountFuse({ mountpoint: o.mountpoint, maxRead: maxWrite, allowOther: o.allowOther ?? false }));
    const session = new FuseSession(channel, fs, {
      maxWrite,
      logger: o.logger,
      busyPollMicros: o.busyPollMicros ?? DEFAULT_BUSY_POLL_MICROS,
      pollMicros: o.pollMicros ?? DEFAULT_POLL_MICROS,
      passthrough: o.passthrough ?? true,
    });
    const server = new FuseServer(o.mountpoint, channel, session, o.logger);
    try {
      session.start();
      const conn = await session.ready;
      if (conn.passthrough) server.backing = new DevFuseBacking(channel.fd);
      else if (conn.pageCacheMmap) {
        server.pageCache = server;
        // Every interrupt read of a mapped device waits for its STOREs: the
        // notifier thread stays up from now on, so none waits for it to start.
        channel.holdNotifier();
        o.logger.info({ reason: conn.noPassthrough }, `mmap of device regions through the page cache, kept in step at each read and write (${conn.noPassthrough})`);
      } else o.logger.warn({ reason: conn.noPassthrough }, `mmap of device regions unavailable (mmap fails ENODEV): ${conn.noPassthrough}; the kernel offers no FUSE_DIRECT_IO_ALLOW_MMAP either (Linux 6.6+)`);
    } catch (err) {
      // Leave no mount behind for a start that failed after the mount.
      await unmountFuse(o.mountpoint, true).catch(() => {});
      await channel.close();
      throw err;
    }
    server.dev = (await findMount(o.mountpoint))?.dev ?? '';
    o.logger.info({ mountpoint: o.mountpoint, maxWrite }, 'mounted');
    return server;
  }

  /** The mount's device number as mountinfo shows it ("0:53"); '' if it could not be found. */
  get deviceNumber(): string {
    return this.dev;
  }

  pollWakeup(kh: bigint): void {
    const err = this.channel.write(encodeNotifyPoll(kh));
    // EINVAL before INIT or on kernels without notify; ENOENT: kh no longer registered.
    if (rejected(err)) this.log.warn({ kh, code: err.code }, 'poll notify rejected');
  }

  async entryInvalidated(parent: bigint, name: string): Promise<void> {
    const err = await this.channel.notifyAsync(encodeNotifyInvalEntry(parent, name));
    if (rejected(err)) this.log.warn({ parent, name, code: err.code }, 'NOTIFY_INVAL_ENTRY rejected');
  }

  /** What the channel's waits have done (ChannelStats). */
  get channelStats(): ChannelStats {
    return this.channel.stats;
  }

  get drained(): boolean {
    return this.channel.notificationsWritten;
  }

  get queued(): number {
    return this.channel.notificationsQueued;
  }

  get begun(): number {
    return this.channel.notificationsBegun;
  }

  get doneBeforeRead(): number {
    return this.channel.notificationsDoneBeforeRead;
  }

  get maxRetrieve(): number {
    return this.session.maxWrite;
  }

  async store(nodeid: bigint, stores: readonly { offset: number; data: Buffer }[]): Promise<void> {
    const errors = await this.channel.notifyAllAsync(stores.map((s) => [encodeNotifyStoreHead(nodeid, s.offset, s.data.length), s.data]));
    errors.forEach((err, i) => {
      // ENOENT: the kernel forgot the inode, and its pages with it.
      if (rejected(err)) this.log.warn({ nodeid, offset: stores[i]!.offset, size: stores[i]!.data.length, code: err.code }, 'NOTIFY_STORE rejected');
    });
  }

  retrieve(nodeid: bigint, offset: number, size: number, take: (offset: number, data: Buffer) => void): Promise<number> {
    return this.session.retrieve(nodeid, offset, size, take);
  }


  async invalidate(nodeid: bigint, offset: number, len: number): Promise<void> {
    const err = await this.channel.notifyAsync(encodeNotifyInvalInode(nodeid, offset, len));
    if (rejected(err)) this.log.warn({ nodeid, offset, len, code: err.code }, 'NOTIFY_INVAL_INODE rejected');
  }

  /**
   * Unmounts lazily and ends the connection. If clients still hold files
   * open the superblock lingers and the channel never reads ENODEV, so after
   * a grace period the connection is aborted: through fusectl, or, where
   * this user may not write there, by closing the descriptor (abandon()).
   */
  close(graceMs = 1000): Promise<void> {
    this.closing ??= (async () => {
      if (!this.channel.isEnded) {
        await unmountFuse(this.mountpoint, true).catch((err) => this.log.warn({ err }, 'umount failed'));
        const ended = await within(this.session.ended.then(() => true), graceMs, () => false);
        if (!ended) {
          if (this.dev && (await abortConnection(this.dev))) await this.session.ended;
          else this.channel.abandon();
        }
      }
      await this.channel.close();
      this.log.info({ mountpoint: this.mountpoint }, 'unmounted');
    })();
    return this.closing;
  }
}
