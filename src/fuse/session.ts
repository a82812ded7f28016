/**
 * One FUSE connection: decodes requests, negotiates INIT, dispatches through
 * the opcode table, and answers every request exactly once.
 *
 * "Exactly once" is structural: a filesystem method returns its answer and
 * the session encodes it, so a method cannot reply twice. A request whose
 * method never settles stays in flight until INTERRUPT or unplug; one whose
 * promise is garbage-collected unsettled (nobody can ever resolve it) is
 * answered EIO and logged, as fuser does when a Reply is dropped.
 */
import type { Logger } from 'pino';
import { E, Errno, errnoName, toErrno } from '../errno.js';
import {
  FUSE_ASYNC_READ,
  FUSE_ATOMIC_O_TRUNC,
  FUSE_BIG_WRITES,
  FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2,
  FUSE_DIRECT_IO_ALLOW_MMAP_MINOR,
  FUSE_INIT_EXT,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_MAX_PAGES,
  FUSE_MIN_MINOR_VERSION,
  FUSE_PARALLEL_DIROPS,
  FUSE_PASSTHROUGH_FLAGS2,
  FUSE_PASSTHROUGH_MINOR,
  Opcode,
  SIZEOF,
} from './abi.js';
import { getEventListeners } from 'node:events';
import { passthroughRefusal } from './backing.js';
import { rejected, type FuseChannel } from './channel.js';
import type { ConnectionInfo, FuseFilesystem, RequestContext } from './filesystem.js';
import { OPS, opName, type OpSpec, type ReplyBody } from './ops.js';
import {
  decodeBatchForgetIn,
  decodeForgetIn,
  decodeInitIn,
  decodeInterruptIn,
  decodeNotifyRetrieveIn,
  encodeInitOut,
  encodeNotifyRetrieve,
} from './wire.js';

const PAGE_SIZE = 4096;

/**
 * Flags cdevemu asks for (docs/fuse-protocol.md#init). Left off on purpose:
 * WRITEBACK_CACHE (would buffer device writes), NO_OPEN_SUPPORT (devices
 * need OPEN), DO_READDIRPLUS (lookups come one at a time, so every entry
 * is reference-counted where it is created).
 */
const WANTED_FLAGS =
  FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES;

export interface SessionOptions {
  /** Largest WRITE payload; also the read buffer's sizing basis. */
  maxWrite: number;
  logger: Logger;
  /** See ChannelOptions.busyPollMicros; default 0. */
  busyPollMicros?: number;
  /** See ChannelOptions.pollMicros; default 0. */
  pollMicros?: number;
  /** Ask for FUSE_PASSTHROUGH when the kernel offers it (mmap of device regions); default true. */
  passthrough?: boolean;
  /**
   * Whether FUSE_DEV_IOC_BACKING_OPEN will be allowed (backing.ts
   * mayOpenBackingFiles, the default): without it, passthrough is not
   * asked for and region mappings go through the page cache.
   */
  mayOpenBackingFiles?: boolean;
}

/** Where a FUSE_NOTIFY_REPLY's bytes go: `take` gets them while they are a view of the request buffer. */
interface PendingRetrieve {
  take(offset: number, data: Buffer): void;
  done(size: number): void;
  fail(err: Error): void;
}

/**
 * AbortControllers for the requests whose handlers ask for a signal (echo
 * and uio reads and writes, which block only when they must). Making one
 * costs more than the rest of a small request's dispatch (~4 µs on Node
 * 20), and its AbortSignal is an EventTarget that V8 promotes to the old
 * generation (measured: a loop making them promotes a third of what it
 * allocates), so a signal per request filled the old generation with
 * garbage between full collections: 25 MiB of RSS peak in a ping-pong.
 * So a controller whose request was answered synchronously, not aborted
 * and with no listener left goes back here for the next request (the
 * handler has returned: its signal is no longer its to use, see
 * docs/writing-a-model.md), and new ones are made while the channel waits
 * for a request (fillSpareControllers), off any request's path.
 */
const spareControllers: AbortController[] = [];
const SPARE_CONTROLLERS = 4;

function newController(): AbortController {
  const ac = new AbortController();
  void ac.signal; // made on first use since Node 20: make it now
  return ac;
}

const takeController = (): AbortController => spareControllers.pop() ?? newController();

/** ChannelEvents.waiting: the pool refilled while nothing else is to be done. */
function fillSpareControllers(): void {
  while (spareControllers.length < SPARE_CONTROLLERS) spareControllers.push(newController());
}

/** A u64 of the wire from its two 32-bit halves: one BigInt below 2^32. */
const join64 = (lo: number, hi: number): bigint => (hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo));

/**
 * One request as read from /dev/fuse: its fuse_in_header, read in place
 * (include/uapi/linux/fuse.h; test/fuse/abi.test.ts checks the offsets
 * against the C layout), the context its handler gets, and the header of
 * its answer, as go-fuse's request carries both headers. `unique` and
 * `nodeid` are kept as their 32-bit halves, made BigInts only when asked
 * for: a request answered at once (a READ of data waiting) makes none, its
 * answer's unique being written back from the halves. The AbortController
 * is taken only if a handler asks for the signal: most requests complete
 * synchronously and never need it.
 */
export class Context implements RequestContext {
  readonly len: number;
  readonly opcode: number;
  private readonly uniqueLo: number;
  private readonly uniqueHi: number;
  private readonly nodeidLo: number;
  private readonly nodeidHi: number;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Extension headers after the body, in 8-byte units. */
  readonly total_extlen: number;
  private ac: AbortController | null = null;
  /** answerAfterNotifications() was called. */
  queued = false;
  flags: number | undefined = undefined;
  /** `b` holds at least SIZEOF.fuse_in_header bytes; nothing of it is kept. */
  constructor(b: Buffer) {
    this.len = b.readUInt32LE(0);
    this.opcode = b.readUInt32LE(4);
    this.uniqueLo = b.readUInt32LE(8);
    this.uniqueHi = b.readUInt32LE(12);
    this.nodeidLo = b.readUInt32LE(16);
    this.nodeidHi = b.readUInt32LE(20);
    this.uid = b.readUInt32LE(24);
    this.gid = b.readUInt32LE(28);
    this.pid = b.readUInt32LE(32);
    this.total_extlen = b.readUInt16LE(36);
  }
  get unique(): bigint {
    return join64(this.uniqueLo, this.uniqueHi);
  }
  get nodeid(): bigint {
    return join64(this.nodeidLo, this.nodeidHi);
  }
  /** The answer's fuse_out_header, written into `b`'s first SIZEOF.fuse_out_header bytes. */
  writeReplyHeader(b: Buffer, len: number, error: number): void {
    b.writeUInt32LE(len, 0);
    b.writeInt32LE(error, 4);
    b.writeUInt32LE(this.uniqueLo, 8);
    b.writeUInt32LE(this.uniqueHi, 12);
  }
  get signal(): AbortSignal {
    return (this.ac ??= takeController()).signal;
  }
  abort(reason: Error): void {
    (this.ac ??= takeController()).abort(reason);
  }
  answerAfterNotifications(): void {
    this.queued = true;
  }
  /** The request was answered synchronously: its controller may serve another. */
  recycle(): void {
    const ac = this.ac;
    if (!ac || ac.signal.aborted || spareControllers.length >= SPARE_CONTROLLERS) return;
    if (getEventListeners(ac.signal, 'abort').length === 0) spareControllers.push(ac);
  }
}

export class FuseSession {
  readonly maxWrite: number;
  /** How the channel waits for a request (ChannelOptions, less the buffer size). */
  private readonly waitFor: { busyPollMicros: number; pollMicros: number };
  private readonly wantPassthrough: boolean;
  private readonly backingAllowed: boolean | undefined;
  private readonly retrieves = new Map<bigint, PendingRetrieve>();
  private nextRetrieve = 1n;
  private readonly log: Logger;
  private readonly trace: boolean;
  private readonly inflight = new Map<bigint, Context>();
  /** Requests answered synchronously whose answer no process waits for (OpSpec.unwaited), until sendHeld(). */
  private readonly held: Context[] = [];
  private readonly outHeader = Buffer.allocUnsafeSlow(SIZEOF.fuse_out_header);
  /** Held: the request itself (its op is its opcode's name), nothing allocated for it. */
  private readonly dropped = new FinalizationRegistry<Context>((req) => this.onDropped(req));
  private conn: ConnectionInfo | null = null;
  private readyResolve!: (c: ConnectionInfo) => void;
  private readyReject!: (e: Error) => void;
  /** Resolves when INIT has been answered; rejects if the connection ends before. */
  readonly ready: Promise<ConnectionInfo>;
  private endResolve!: (reason: string) => void;
  /** Resolves with the reason (ENODEV on unmount) when the connection ends. */
  readonly ended: Promise<string>;

  constructor(
    private readonly channel: FuseChannel,
    private readonly fs: FuseFilesystem,
    opts: SessionOptions,
  ) {
    this.maxWrite = opts.maxWrite;
    this.waitFor = { busyPollMicros: opts.busyPollMicros ?? 0, pollMicros: opts.pollMicros ?? 0 };
    this.wantPassthrough = opts.passthrough ?? true;
    this.backingAllowed = opts.mayOpenBackingFiles;
    this.log = opts.logger;
    this.trace = this.log.isLevelEnabled('trace');
    this.ready = new Promise((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
    this.ready.catch(() => {});
    this.ended = new Promise((res) => (this.endResolve = res));
  }

  /** The buffer a read of /dev/fuse needs: fuse_dev_do_read refuses smaller ones with EINVAL. */
  get readBufferSize(): number {
    return this.maxWrite + PAGE_SIZE;
  }

  start(): void {
    this.channel.start({ bufferSize: this.readBufferSize, ...this.waitFor }, {
      request: (buf) => this.handle(buf),
      busy: () => this.inflight.size > 0,
      waiting: () => {
        if (this.held.length > 0) this.sendHeld();
        fillSpareControllers();
      },
      end: (reason) => this.onEnd(reason),
    });
  }

  get connection(): ConnectionInfo | null {
    return this.conn;
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  /**
   * Handles one request as read from /dev/fuse. Never throws. `buf` may be
   * reused for another request once this returns, unless it returns true:
   * the request's handler is still running and holds its data (a WRITE
   * payload), so the buffer must be left to it.
   */
  handle(buf: Buffer): boolean {
    if (buf.length < SIZEOF.fuse_in_header) {
      this.log.error({ len: buf.length }, 'request shorter than fuse_in_header; dropped');
      return false;
    }
    const req = new Context(buf);
    if (req.len !== buf.length) {
      this.log.error({ unique: req.unique, len: req.len, read: buf.length }, 'request length mismatch');
      this.send(req, -E.EIO, null);
      return false;
    }
    const body = buf.subarray(SIZEOF.fuse_in_header, req.len - req.total_extlen * 8);
    if (this.trace) this.log.trace(`rx ${req.unique}: ${opName(req.opcode)} n${req.nodeid} pid=${req.pid} ${body.length}b`);
    try {
      return this.dispatch(req, body);
    } catch (err) {
      // A decoder rejected the body (MalformedRequest) or a synchronous bug.
      // FORGETs are never answered, malformed or not (go-fuse doBatchForget logs).
      if (OPS.get(req.opcode)?.noReply) this.log.error({ err, op: opName(req.opcode) }, 'malformed request; not answered');
      else this.failed(req, err);
      return false;
    }
  }

  /** Returns true when the request's handler went asynchronous holding its body (see handle()). */
  private dispatch(req: Context, body: Buffer): boolean {
    switch (req.opcode) {
      case Opcode.INIT:
        this.init(req, body);
        return false;
      case Opcode.INTERRUPT:
        this.interrupt(body);
        return false;
      case Opcode.FORGET:
        this.fs.forget(req.nodeid, decodeForgetIn(body).nlookup);
        return false;
      case Opcode.BATCH_FORGET:
        for (const f of decodeBatchForgetIn(body).forgets) this.fs.forget(f.nodeid, f.nlookup);
        return false;
      case Opcode.DESTROY:
        // Only sent for fuseblk and virtiofs; answered for completeness.
        this.send(req, 0, null);
        return false;
      case Opcode.NOTIFY_REPLY:
        this.retrieved(req.unique, body);
        return false;
    }
    const spec = OPS.get(req.opcode);
    if (!spec?.run) {
      this.send(req, -E.ENOSYS, null);
      return false;
    }
    if (!this.conn) {
      this.log.error({ op: spec.name }, 'request before INIT');
      this.send(req, -E.EIO, null);
      return false;
    }
    const result = spec.run(this.fs, req, body);
    if (!(result instanceof Promise)) {
      if (spec.unwaited && !req.queued) this.held.push(req);
      else this.deliver(spec, req, result);
      req.recycle();
      return false;
    }
    const unique = req.unique;
    const keepsBody = spec.keepsBody === true;
    this.inflight.set(unique, req);
    this.dropped.register(result, req, req);
    result.then(
      (r) => {
        this.dropped.unregister(req);
        if (this.inflight.delete(unique)) this.deliver(spec, req, r);
        else this.orphaned(spec, req, r);
        // The handler is done with the request's data (docs/writing-a-model.md),
        // and the answer, which may be a view of it (an ioctl's), is written or copied.
        if (keepsBody) this.channel.reuse(body);
      },
      (err) => {
        this.dropped.unregister(req);
        if (this.inflight.delete(unique)) this.failed(req, err);
        if (keepsBody) this.channel.reuse(body);
      },
    );
    return keepsBody;
  }

  /**
   * The held answers (OpSpec.unwaited), header only, written when the
   * channel is about to wait for a request, which it does within one turn
   * of the event loop of any request (ChannelEvents.waiting): off the path
   * of the requests read meanwhile, and never left while the channel sleeps.
   */
  private sendHeld(): void {
    for (const req of this.held) this.send(req, 0, null);
    this.held.length = 0;
  }

  /** Sends a successful answer; one the kernel no longer waits for is undone. */
  private deliver(spec: OpSpec, ctx: Context, body: ReplyBody): void {
    if (ctx.queued) return this.sendAfterNotifications(ctx, body);
    if (this.send(ctx, 0, body)?.errno === E.ENOENT) this.orphaned(spec, ctx, body);
  }

  /**
   * A reply handed to the notifier thread, written after the notifications
   * queued before it (RequestContext.answerAfterNotifications). Only READ
   * and IOCTL answers go this way, which have nothing to undo.
   */
  private sendAfterNotifications(req: Context, body: ReplyBody): void {
    const parts = body === null ? [] : Buffer.isBuffer(body) ? [body] : body;
    const head = Buffer.alloc(SIZEOF.fuse_out_header);
    const len = parts.reduce((n, p) => n + p.length, head.length);
    req.writeReplyHeader(head, len, 0);
    if (this.trace) this.log.trace(`tx ${req.unique}: OK ${len - SIZEOF.fuse_out_header}b after notifications`);
    void this.channel.notifyAsync([head, ...parts]).then((werr) => {
      if (rejected(werr)) this.log.error({ unique: req.unique, code: werr.code }, 'kernel rejected reply');
    });
  }

  private orphaned(spec: OpSpec, ctx: Context, body: ReplyBody): void {
    if (!spec.orphan) return;
    this.log.debug({ op: spec.name, unique: ctx.unique }, 'answer not delivered; undoing it');
    try {
      spec.orphan(this.fs, ctx, body);
    } catch (err) {
      this.log.error({ err, op: spec.name }, 'undoing an undelivered answer failed');
    }
  }

  private failed(h: Context, err: unknown): void {
    let errno = toErrno(err, (e) =>
      this.log.error({ err: e, op: opName(h.opcode), unique: h.unique }, 'handler failed; answering EIO'),
    );
    // fuse_dev_do_write rejects an error outside (-512, 0) with EINVAL before
    // it finds the request, which would leave the caller waiting for ever.
    if (!(errno > 0 && errno < 512)) {
      this.log.error({ errno, op: opName(h.opcode), unique: h.unique }, 'handler threw an errno the kernel refuses; answering EIO');
      errno = E.EIO;
    } else if (errno === E.ENOSYS && OPS.get(h.opcode)?.enosysForGood) {
      this.log.error({ op: opName(h.opcode), unique: h.unique }, 'handler failed ENOSYS, which the kernel would take as "no such operation" for the whole mount; answering EIO');
      errno = E.EIO;
    }
    this.send(h, -errno, null);
  }

  private onDropped(req: Context): void {
    const unique = req.unique;
    if (!this.inflight.delete(unique)) return;
    this.log.error({ unique, op: opName(req.opcode) }, 'request dropped unanswered by its handler; answering EIO');
    this.send(req, -E.EIO, null);
  }

  /**
   * INIT (docs/fuse-protocol.md#init): answer major 7 only; take min(kernel minor, ours);
   * ask only for flags the kernel offered; the reply is 24 bytes for
   * kernels below 7.23.
   */
  private init(h: Context, body: Buffer): void {
    const a = decodeInitIn(body);
    if (a.major > FUSE_KERNEL_VERSION) {
      // The kernel will send a second INIT with our major.
      const out = encodeInitOut(
        { major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION, max_readahead: 0, flags: 0,
          max_background: 0, congestion_threshold: 0, max_write: 0, time_gran: 0, max_pages: 0, flags2: 0 },
        a.minor,
      );
      this.send(h, 0, out);
      return;
    }
    if (a.major < FUSE_KERNEL_VERSION || a.minor < FUSE_MIN_MINOR_VERSION) {
      this.log.error({ major: a.major, minor: a.minor }, 'kernel FUSE protocol too old');
      this.send(h, -E.EPROTO, null);
      this.readyReject(new Error(`unsupported FUSE protocol ${a.major}.${a.minor}`));
      return;
    }
    const minor = Math.min(a.minor, FUSE_KERNEL_MINOR_VERSION);
    const pt = this.passthrough(a, minor);
    const pageCache = !pt.on && this.pageCacheMmap(a, minor);
    // Page reads through the background queue may reach us after a
    // NOTIFY_REPLY that copied their pages unfilled (fuse_send_readpages);
    // synchronous ones are queued in order (docs/fuse-protocol.md#page-cache-mappings).
    const wanted = pageCache ? WANTED_FLAGS & ~FUSE_ASYNC_READ : WANTED_FLAGS;
    const flags = (a.flags & wanted) | (pt.on || pageCache ? FUSE_INIT_EXT : 0);
    const maxPages = Math.ceil(this.maxWrite / PAGE_SIZE);
    const out = encodeInitOut(
      {
        major: FUSE_KERNEL_VERSION,
        minor,
        max_readahead: a.max_readahead,
        flags,
        max_background: 12,
        congestion_threshold: 9,
        max_write: this.maxWrite,
        time_gran: 1,
        max_pages: maxPages,
        flags2: (pt.on ? FUSE_PASSTHROUGH_FLAGS2 : 0) | (pageCache ? FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2 : 0),
        // Backing files (memfds) sit on a non-stacked filesystem.
        max_stack_depth: pt.on ? 1 : 0,
      },
      a.minor,
    );
    this.conn = {
      major: FUSE_KERNEL_VERSION,
      minor,
      maxWrite: this.maxWrite,
      maxPages,
      passthrough: pt.on,
      ...(pt.why ? { noPassthrough: pt.why } : {}),
      pageCacheMmap: pageCache,
    };
    this.log.debug({ kernel: `${a.major}.${a.minor}`, minor, flags: flags.toString(16) }, 'INIT');
    this.fs.init?.(this.conn);
    this.send(h, 0, out);
    this.readyResolve(this.conn);
  }

  /**
   * FUSE_PASSTHROUGH (7.40) is asked for only if the kernel offered it in
   * flags2 (which needs FUSE_INIT_EXT); fuse_init_out then carries
   * max_stack_depth, and fc->passthrough is set by process_init_reply().
   */
  private passthrough(a: { minor: number; flags: number; flags2: number }, minor: number): { on: boolean; why?: string } {
    const refused = passthroughRefusal(this.wantPassthrough, this.backingAllowed);
    if (refused) return { on: false, why: refused };
    if (minor < FUSE_PASSTHROUGH_MINOR || !(a.flags & FUSE_INIT_EXT) || !(a.flags2 & FUSE_PASSTHROUGH_FLAGS2)) {
      return { on: false, why: `kernel FUSE ${FUSE_KERNEL_VERSION}.${a.minor} does not offer FUSE_PASSTHROUGH (Linux 6.9+ with CONFIG_FUSE_PASSTHROUGH)` };
    }
    return { on: true };
  }

  /**
   * FUSE_DIRECT_IO_ALLOW_MMAP (7.39), asked for when passthrough is not
   * had: a FOPEN_DIRECT_IO file may then be mapped MAP_SHARED through the
   * page cache (fs/fuse/file.c fuse_file_mmap), which the filesystem keeps
   * in step with FUSE_NOTIFY_STORE and FUSE_NOTIFY_RETRIEVE.
   */
  private pageCacheMmap(a: { flags: number; flags2: number }, minor: number): boolean {
    return minor >= FUSE_DIRECT_IO_ALLOW_MMAP_MINOR && (a.flags & FUSE_INIT_EXT) !== 0 && (a.flags2 & FUSE_DIRECT_IO_ALLOW_MMAP_FLAGS2) !== 0;
  }

  /**
   * FUSE_NOTIFY_RETRIEVE: asks the kernel for `size` bytes of the inode's
   * page cache at `offset` (at most max_write, fs/fuse/dev.c fuse_retrieve).
   * The write does not block; the answer is a FUSE_NOTIFY_REPLY request,
   * read from /dev/fuse like any other (retrieved()), so the channel keeps
   * serving while it is on its way. `take` gets the cached bytes from
   * `offset` up to the first page that is not cached (or not up to date)
   * while they are a view of the request buffer; resolves with their count.
   */
  retrieve(nodeid: bigint, offset: number, size: number, take: (offset: number, data: Buffer) => void): Promise<number> {
    if (this.channel.isEnded) return Promise.reject(new Errno('ENODEV'));
    const unique = this.nextRetrieve++;
    return new Promise((done, fail) => {
      this.retrieves.set(unique, { take, done, fail });
      const err = this.channel.write(encodeNotifyRetrieve(unique, nodeid, offset, Math.min(size, this.maxWrite)));
      if (err === null) return;
      this.retrieves.delete(unique);
      // ENOENT: the kernel has no inode of that nodeid, so no page cache.
      if (err.errno === E.ENOENT) done(0);
      else fail(new Errno(err.errno === E.ENODEV ? 'ENODEV' : 'EIO', `FUSE_NOTIFY_RETRIEVE refused: ${err.code}`));
    });
  }

  /** FUSE_NOTIFY_REPLY: the answer to retrieve(); it is never answered itself (fuse_simple_notify_reply sets noreply). */
  private retrieved(unique: bigint, body: Buffer): void {
    const pending = this.retrieves.get(unique);
    if (!pending) {
      this.log.warn({ unique }, 'NOTIFY_REPLY for no retrieve of ours; dropped');
      return;
    }
    this.retrieves.delete(unique);
    try {
      const r = decodeNotifyRetrieveIn(body);
      if (r.size > 0) pending.take(r.offset, r.data);
      pending.done(r.size);
    } catch (err) {
      pending.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * INTERRUPT: abort the request's signal and give its handler one turn of
   * the event loop to settle (a partial read is a better answer than EINTR);
   * then answer EINTR for it. A unique that is no longer in flight was
   * answered already; the kernel needs no reply for the INTERRUPT itself.
   * Requests are read from one descriptor, in order, so an INTERRUPT
   * always arrives after its request.
   */
  private interrupt(body: Buffer): void {
    const { unique } = decodeInterruptIn(body);
    const ctx = this.inflight.get(unique);
    if (!ctx) return;
    ctx.abort(new Errno('EINTR'));
    setImmediate(() => {
      if (this.inflight.delete(unique)) this.send(ctx, -E.EINTR, null);
    });
  }

  /** Writes one reply; returns the write's errno code, if any. */
  private send(req: Context, error: number, body: ReplyBody): Errno | null {
    let len = SIZEOF.fuse_out_header;
    if (Buffer.isBuffer(body)) len += body.length;
    else if (body) for (const b of body) len += b.length;
    // One header buffer for every reply: the channel's write is done with it when it returns.
    req.writeReplyHeader(this.outHeader, len, error);
    if (this.trace) this.log.trace(`tx ${req.unique}: ${error ? errnoName(-error) : 'OK'} ${len - SIZEOF.fuse_out_header}b`);
    const werr = this.channel.write(this.outHeader, body);
    // ENOENT: the request was interrupted or aborted meanwhile (go-fuse ignores
    // it too). ENODEV: the connection is gone. A write that succeeded needs no judging.
    if (werr !== null && rejected(werr)) {
      this.log.error({ unique: req.unique, error, len, code: werr.code }, 'kernel rejected reply');
    }
    return werr;
  }

  private onEnd(reason: string): void {
    this.log.debug({ reason }, 'FUSE connection ended');
    for (const ctx of this.inflight.values()) ctx.abort(new Errno('ENODEV'));
    this.inflight.clear();
    // Nothing waited for them, and there is nobody left to write to.
    this.held.length = 0;
    for (const r of this.retrieves.values()) r.fail(new Errno('ENODEV'));
    this.retrieves.clear();
    this.readyReject(new Error(`FUSE connection ended before INIT (${reason})`));
    this.fs.destroy?.();
    this.endResolve(reason);
  }
}
