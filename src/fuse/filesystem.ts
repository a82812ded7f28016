/**
 * What the session asks of a filesystem: one method per FUSE operation,
 * addressed by nodeid and fh as the kernel addresses them. A method returns
 * its answer (or a Promise of it) or throws an `Errno`; the session encodes
 * the reply, so a method cannot answer twice or forget to answer.
 */
import type { Awaitable } from '../awaitable.js';
import type {
  fuse_access_in,
  fuse_attr_out,
  fuse_entry_out,
  fuse_flush_in,
  fuse_fsync_in,
  fuse_ioctl_in,
  fuse_kstatfs,
  fuse_open_in,
  fuse_open_out,
  fuse_poll_in,
  fuse_read_in,
  fuse_release_in,
  fuse_setattr_in,
  fuse_write_in,
  DirEntry,
} from './wire.js';

export type { Awaitable };

export interface RequestContext {
  unique: bigint;
  nodeid: bigint;
  uid: number;
  gid: number;
  pid: number;
  /**
   * The file's f_flags, for the filesystem to set from a request that
   * carries them (OPEN, READ, WRITE); undefined otherwise. With it the
   * context is the request as a device sees it (devio IoContext), passed on
   * as it is: no second object per request.
   */
  flags: number | undefined;
  /** Aborted when the kernel sends INTERRUPT for this request, when the session ends, or through abort(). */
  readonly signal: AbortSignal;
  /** Aborts `signal`; the request is still answered by its handler. */
  abort(reason: Error): void;
  /**
   * The answer is to reach the kernel after the notifications queued so
   * far (page-cache STOREs, written by the notifier thread): it is written
   * by that thread, after them, instead of at once.
   */
  answerAfterNotifications(): void;
}

export interface IoctlResult {
  result: number;
  out?: Buffer | undefined;
}

/** Protocol facts agreed at INIT that a filesystem may need. */
export interface ConnectionInfo {
  major: number;
  minor: number;
  maxWrite: number;
  maxPages: number;
  /** FUSE_PASSTHROUGH was negotiated: OPEN may name a backing file (mmap of device regions). */
  passthrough: boolean;
  /** Why not, when it was not. */
  noPassthrough?: string;
  /**
   * FUSE_DIRECT_IO_ALLOW_MMAP was negotiated instead: device regions are
   * mapped through the page cache (docs/fuse-protocol.md#page-cache-mappings).
   */
  pageCacheMmap: boolean;
}

export interface FuseFilesystem {
  init?(conn: ConnectionInfo): void;
  lookup(ctx: RequestContext, parent: bigint, name: string): Awaitable<fuse_entry_out>;
  /** FORGET and BATCH_FORGET: never answered (fuse_reply_none). */
  forget(nodeid: bigint, nlookup: bigint): void;
  getattr(ctx: RequestContext, fh: bigint | null): Awaitable<fuse_attr_out>;
  setattr(ctx: RequestContext, arg: fuse_setattr_in): Awaitable<fuse_attr_out>;
  open(ctx: RequestContext, arg: fuse_open_in): Awaitable<fuse_open_out>;
  read(ctx: RequestContext, arg: fuse_read_in): Awaitable<Buffer>;
  write(ctx: RequestContext, arg: fuse_write_in): Awaitable<number>;
  flush(ctx: RequestContext, arg: fuse_flush_in): Awaitable<void>;
  release(ctx: RequestContext, arg: fuse_release_in): Awaitable<void>;
  fsync(ctx: RequestContext, arg: fuse_fsync_in): Awaitable<void>;
  opendir(ctx: RequestContext, arg: fuse_open_in): Awaitable<fuse_open_out>;
  /** Entries from `arg.offset` on; the session packs as many as fit in `arg.size`. */
  readdir(ctx: RequestContext, arg: fuse_read_in, plus: boolean): Awaitable<DirEntry[]>;
  /** READDIRPLUS: the entries the kernel received, each of which counts as a lookup. */
  direntplusSent(entries: DirEntry[]): void;
  releasedir(ctx: RequestContext, arg: fuse_release_in): Awaitable<void>;
  statfs(ctx: RequestContext): Awaitable<fuse_kstatfs>;
  access(ctx: RequestContext, arg: fuse_access_in): Awaitable<void>;
  ioctl(ctx: RequestContext, arg: fuse_ioctl_in): Awaitable<IoctlResult>;
  poll(ctx: RequestContext, arg: fuse_poll_in): Awaitable<number>;
  /** The connection ended (unmount, abort, DESTROY). */
  destroy?(): void;
}
