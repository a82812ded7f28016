/**
 * The /dev/fuse channel: one non-blocking descriptor, read and written on
 * the main thread, and a notifier for what may block (notifier.ts).
 *
 * Nothing blocks in read(). While requests keep coming the main thread
 * reads them itself. Between two requests it first polls the descriptor
 * awake for up to busyPollMicros, then waits up to pollMicros asleep in
 * ppoll(), so a request costs at most one thread wake-up, as in a C
 * server's read loop. When that wait runs out it returns to the event loop with the
 * descriptor in signal-driven mode (O_ASYNC, fcntl(2)): the kernel sends
 * SIGIO as it queues the next request (fs/fuse/dev.c
 * fuse_dev_wake_and_unlock, queue_interrupt) and when the connection ends
 * (fuse_abort_conn), and libuv turns the signal into a callback. The mode is
 * off while serving, so a burst of requests costs no signal each. A quiet
 * connection costs no CPU and no thread: a worker blocked in read() would
 * hold ~12 MiB of RSS for its isolate, and a read on libuv's thread pool
 * would starve a client of the mount in this process of the pool
 * (docs/fuse-protocol.md#deadlocks).
 *
 * The request is handed to the session as a view of the read buffer,
 * without a copy. A handler that goes asynchronous holding the request's
 * data (a WRITE that blocks) keeps that memory until it settles, and the
 * channel reads the next request into another buffer: a spare one that
 * such a handler gave back (reuse()), else a new one. So one buffer serves
 * every request answered at once, and a request that blocks costs no
 * allocation either once the spares are there: a new buffer is max_write
 * large (1 MiB by default), and one per blocking write (a mapped ring's
 * kick through the page cache) kept V8 collecting for the external memory.
 *
 * Notifications that may block in the kernel (invalidations take VFS inode
 * locks and can block behind a LOOKUP that is itself waiting for our reply:
 * libfuse fuse_lowlevel.h, "related operations") are written by a notifier
 * (notifier.ts), so the main thread stays free to answer: on libuv's
 * thread pool, or, once page-cache mappings are negotiated, on a thread of
 * their own. Poll wakeups take no such locks and are written directly.
 */
import { closeSync, writevSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { E, Errno, errnoName, isErrnoName, toErrno } from '../errno.js';
import { pollOne, POLLIN, readOrErrno, writeOrErrno } from '../sys/ffi.js';
import { SigioWatch } from '../sys/sigio.js';
import { Notifier, PoolNotifier, type NotificationWriter } from './notifier.js';

/** Why the connection ended: ENODEV (unmounted), ECONNABORTED (aborted), or another errno code. */
export type EndReason = string;

export interface ChannelEvents {
  /**
   * One request, as a view of the buffer it was read into. The view is
   * valid until this returns, unless this returns true: then the memory is
   * the caller's until it hands it back with FuseChannel.reuse(), or for
   * good if it never does.
   */
  request(buf: Buffer): boolean;
  /**
   * True while some request's handler is still running: its answer may come
   * from a reaction already queued, which a wait for the next request on
   * the main thread would hold back.
   */
  busy(): boolean;
  /**
   * The channel is about to wait for the next request (wait()): when the
   * last read found none, after a batch, and before it sleeps, so within
   * one turn of the event loop of any request. Time for work that would
   * otherwise delay one (the client is usually still on its way to the
   * next request), such as the answers nobody waits for (FuseSession's held
   * RELEASEs). Keep it to microseconds.
   */
  waiting(): void;
  end(reason: EndReason): void;
}

/**
 * What the channel's waits have done since start, for tests and the bench:
 * where its CPU goes between requests.
 */
export interface ChannelStats {
  /** Requests read and handed to the session. */
  requests: number;
  /** read(2) calls on the descriptor, those that found nothing included. */
  reads: number;
  /** Waits that began with a busy poll (at most busyPollMicros each). */
  spins: number;
  /** SIGIO callbacks taken while asleep in signal-driven mode. */
  wakes: number;
  /** Of those, the wakes that found no request (another descriptor's signal, or one already served). */
  bareWakes: number;
  /** Read buffers allocated: the first, and one for each request read while handlers held every other (reuse()). */
  readBuffers: number;
  /** Asleep now: in signal-driven mode, back in the event loop. */
  asleep: boolean;
}

const BATCH = 16; // requests one event-loop turn serves at most
/** Replies up to this size are copied into one buffer and written with write(2), which costs less than a writev of parts. */
const INLINE_REPLY = 8192;
/** Read buffers kept for reuse: enough for a handler or two blocked at a time, each max_write large. */
const SPARE_BUFFERS = 2;
const resolved = Promise.resolve();
/**
 * A write the kernel refused for a reason worth logging: ENOENT is a request
 * gone meanwhile (interrupted, or the inode forgotten), ENODEV the
 * connection gone; callers ignore both, as go-fuse does.
 */
export function rejected(err: Errno | null): err is Errno {
  return err !== null && err.errno !== E.ENOENT && err.errno !== E.ENODEV;
}

/** A system call's result as the transport's callers see it: null, or the Errno it failed with. */
const failure = (r: number): Errno | null => (r < 0 ? new Errno(-r) : null);
/** A notifier's answer for one message (an errno code, or null), as an Errno. */
const notified = (code: string | null): Errno | null => (code === null ? null : new Errno(isErrnoName(code) ? code : 'EIO', code));

export interface ChannelOptions {
  /** Size of the read buffer fuse_dev_do_read requires (max_write + headers). */
  bufferSize: number;
  /**
   * How long the main thread looks for the next request awake, with
   * non-blocking reads, before it sleeps. Waking a sleeping thread costs
   * more than a request on a VM (an idle vCPU halts, and its wake-up is an
   * IPI and a VM entry: ~35 µs each way measured here), and a client in a
   * request loop often sends its next request within a few µs; the
   * kernel's guest halt-polling (drivers/cpuidle/cpuidle-haltpoll.c) makes
   * the same trade one level down. It costs CPU only while requests flow:
   * at most this long per request. 0 disables it.
   */
  busyPollMicros: number;
  /**
   * How long the main thread then waits asleep, in ppoll, before returning
   * to the event loop. 0 disables it. Timers and other I/O wait at most
   * busyPollMicros + pollMicros behind it.
   */
  pollMicros: number;
}

export class FuseChannel {
  readonly fd: number;
  /** A PoolNotifier, made on the first notification, until holdNotifier() puts the notifier thread in its place. */
  private notifier: NotificationWriter | null = null;
  /** The notifier thread, once holdNotifier() was called: notifications go through it. */
  private thread: Notifier | null = null;
  /** Notifications posted to the pool notifier that the thread replaced (notificationsQueued). */
  private retiredNotifications = 0;
  private ended = false;
  /** Set once serving starts: SIGIO while idle (src/sys/sigio.ts). */
  private sigio: SigioWatch | null = null;
  /** Holds the event loop open while mounted: a signal listener does not. */
  private keepAlive: NodeJS.Timeout | undefined = undefined;
  private buf: Buffer = Buffer.alloc(0);
  /** Read buffers handlers gave back (reuse()), for the next request read while one is held. */
  private readonly spareBuffers: Buffer[] = [];
  private readonly replyBuf = Buffer.allocUnsafeSlow(INLINE_REPLY);
  /** Requests served in the current event-loop turn (serveOne). */
  private batched = 0;
  private bufferSize = 0;
  private busyMs = 0;
  private pollMs = 0;
  private events: ChannelEvents | null = null;
  /** The notifier thread's `done` when the last request read began to be read (notificationsDoneBeforeRead). */
  private doneBeforeRead = 0;
  private readonly counts = { requests: 0, reads: 0, spins: 0, wakes: 0, bareWakes: 0, readBuffers: 0 };

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Throws unless this thread can serve a channel (the main thread: it waits with SIGIO). Call before mounting. */
  static assertCanServe(): void {
    SigioWatch.assertMainThread();
  }

  /** Serves `fd`, a /dev/fuse descriptor that has been mounted (src/fuse/mount.ts mountFuse); closed by close(). */
  static open(fd: number): FuseChannel {
    FuseChannel.assertCanServe();
    return new FuseChannel(fd);
  }

  /**
   * Starts serving. Call it once the descriptor is mounted: before mount(2)
   * a read fails EPERM. INIT is already queued by then, and every access to
   * the mount blocks until it is answered.
   */
  start(o: ChannelOptions, events: ChannelEvents): void {
    this.events = events;
    this.bufferSize = o.bufferSize;
    this.busyMs = o.busyPollMicros / 1000;
    this.pollMs = o.pollMicros / 1000;
    this.buf = this.newReadBuffer();
    this.sigio = new SigioWatch(this.fd, this.wake);
    this.keepAlive = setInterval(() => {}, 2 ** 31 - 1);
    setImmediate(this.idle);
  }

  /**
   * Puts the notifier thread in the pool's place from now on: page-cache
   * mappings write STOREs before the interrupt reads they answer, and a
   * hop through the pool, or a thread started on demand (tens of
   * milliseconds, hundreds on a loaded machine), would hold every one of
   * them back. Called at INIT (src/fuse/server.ts), before anything can be
   * notified: the only notifications before it are entry invalidations,
   * which the page cache's STOREs need not follow, so one the pool may
   * still be writing is left to it.
   */
  holdNotifier(): void {
    if (this.ended || !this.sigio || this.thread) return;
    if (this.notifier) this.retiredNotifications += this.notifier.posted;
    this.notifier = this.thread = new Notifier(this.fd);
  }

  /** Every notification queued so far is written (FuseChannel.notifyAllAsync). */
  get notificationsWritten(): boolean {
    return this.notifier?.drained ?? true;
  }

  /** Notifications queued so far (notifyAllAsync), counted over both notifiers this channel had: the last one queued is number `notificationsQueued`. */
  get notificationsQueued(): number {
    return this.retiredNotifications + (this.notifier?.posted ?? 0);
  }

  /** Of those, how many the notifier has begun to write, in order (NotificationWriter.begun). */
  get notificationsBegun(): number {
    return this.retiredNotifications + (this.notifier?.begun ?? 0);
  }

  /**
   * Of those, how many the notifier thread had written (their write(2)
   * returned) when the read(2) of the request being served began; 0
   * without the thread. A page the kernel copies into a request as we
   * read it (fs/fuse/dev.c fuse_dev_do_read: a writeback's folio, where
   * no temporary page holds a copy) has each of them whole; a later one,
   * written as it was copied, may be in it in part.
   */
  get notificationsDoneBeforeRead(): number {
    return this.thread ? this.retiredNotifications + this.doneBeforeRead : 0;
  }

  /**
   * SIGIO: a request may be queued, or the connection ended, or neither.
   * The signal does not say which descriptor it is for (src/sys/sigio.ts
   * calls every armed watch), and it is not a count: signals of one kind
   * coalesce while pending (kernel/signal.c legacy_queue), and libuv folds
   * those it has not delivered yet. Coalescing loses nothing because every
   * reader it wakes drains its descriptor to EAGAIN before it sleeps again:
   * this channel reads until read(2) finds nothing (next(), then wait()
   * reads once more after arming), and netlink reads every queued datagram
   * (src/netlink/socket.ts). A wake that finds no request (a netlink
   * datagram under --preset tcmu, or a signal for a request already served)
   * reads once and stays asleep: the mode is still on, so a request queued
   * after this read raises a signal of its own. Only a wake that found a
   * request goes on to the busy poll, where the next one is likely near.
   */
  private readonly wake = (): void => {
    this.counts.wakes++;
    const n = this.read();
    if (n > 0) {
      this.sigio!.disarm();
      this.batched = 0;
      this.serveOne(n);
    } else if (!this.ended) this.counts.bareWakes++;
  };

  /** A fresh event-loop turn: waits for the next request. */
  private readonly idle = (): void => {
    this.batched = 0;
    this.wait();
  };

  /**
   * Reads one request into `buf`: its length, or 0 when there is none now.
   * ENOENT (the request vanished between wakeup and copy), EINTR and EAGAIN
   * are "none", as in fuser's receive_retrying; anything else (ENODEV:
   * unmounted, ECONNABORTED: aborted; fuse_dev_do_read) ends the session.
   */
  private read(): number {
    this.counts.reads++;
    // Taken before the read: what the kernel copies during it is in the request.
    const done = this.thread ? this.thread.done : 0;
    const n = readOrErrno(this.fd, this.buf, this.bufferSize);
    if (n > 0) {
      this.doneBeforeRead = done;
      return n;
    }
    if (n !== -E.EAGAIN && n !== -E.EINTR && n !== -E.ENOENT) this.finish(n < 0 ? errnoName(-n) : 'ENODEV');
    return 0;
  }

  /**
   * Looks for the next request awake for up to busyPollMicros, then waits
   * up to pollMicros in ppoll() (asleep, woken by the kernel), and serves
   * it; else goes back to the event loop, to be woken by SIGIO. A request
   * queued before the signal was asked for raised none, so the descriptor
   * is read once more after.
   */
  private wait(): void {
    if (this.ended) return;
    this.events!.waiting();
    if (this.busyMs > 0) {
      this.counts.spins++;
      const until = performance.now() + this.busyMs;
      do {
        const n = this.read();
        if (n > 0) return this.serveOne(n);
        if (this.ended) return;
      } while (performance.now() < until);
    }
    const deadline = performance.now() + this.pollMs;
    for (let left = this.pollMs; left > 0; left = deadline - performance.now()) {
      // Poll first, read once ready: a read that finds nothing is a wasted system call.
      if (pollOne(this.fd, POLLIN, left * 1e6) === 0) continue;
      const n = this.read();
      if (n > 0) return this.serveOne(n);
      if (this.ended) return;
    }
    this.sigio!.arm();
    const n = this.read();
    if (n > 0) {
      this.sigio!.disarm();
      this.serveOne(n);
    }
  }

  /**
   * Handles the request just read into `buf`, then looks for the next one
   * in a microtask, queued after the reactions the handler left (a reply
   * resolved at once goes out first), instead of a turn of the event loop
   * each; at most BATCH of them, so timers and the control socket wait no
   * longer than that many requests.
   */
  private serveOne(n: number): void {
    this.counts.requests++;
    if (this.events!.request(this.buf.subarray(0, n))) this.buf = this.spareBuffers.pop() ?? this.newReadBuffer();
    if (++this.batched < BATCH) void resolved.then(this.next);
    else setImmediate(this.idle);
  }
  private newReadBuffer(): Buffer {
    this.counts.readBuffers++;
    return Buffer.allocUnsafeSlow(this.bufferSize);
  }

  /**
   * A request's view that request() kept (it returned true), given back
   * once its handler is done with it: its buffer takes the next request
   * read while another is held. SPARE_BUFFERS are kept; the rest are left
   * to the collector.
   */
  reuse(view: Buffer): void {
    if (view.buffer.byteLength !== this.bufferSize || this.spareBuffers.length >= SPARE_BUFFERS) return;
    this.spareBuffers.push(Buffer.from(view.buffer, 0, this.bufferSize));
  }

  /**
   * The next request in the same turn: one already queued (several
   * clients), or, when every request so far has been answered, the wait
   * for the next (one client's request-reply loop). A handler still
   * running may answer from a reaction queued behind this one, so then the
   * wait is left to a fresh turn, which starts once the microtask queue is
   * empty.
   */
  private readonly next = (): void => {
    if (this.ended) return;
    const n = this.read();
    if (n > 0) return this.serveOne(n);
    if (this.ended) return;
    if (this.events!.busy()) setImmediate(this.idle);
    else this.wait();
  };

  private finish(reason: EndReason): void {
    if (this.ended) return;
    this.stopWatching();
    const notifier = this.notifier;
    this.notifier = null;
    void notifier?.stop();
    this.events?.end(reason);
  }

  /** No more reading: no SIGIO, and nothing holds the event loop open. */
  private stopWatching(): void {
    this.ended = true;
    this.sigio?.forget();
    clearInterval(this.keepAlive);
  }

  /**
   * Ends the session from this side, for a connection that close() is to
   * abort: the release of its last /dev/fuse descriptor aborts it
   * (fs/fuse/dev.c fuse_dev_release -> fuse_abort_conn), which is how a
   * user who may not write fusectl's abort ends a connection whose files
   * are still open.
   */
  abandon(): void {
    this.finish('ECONNABORTED');
  }

  get isEnded(): boolean {
    return this.ended;
  }

  get stats(): ChannelStats {
    return { ...this.counts, asleep: this.sigio?.isArmed ?? false };
  }

  /**
   * Writes one message, `head` (a fuse_out_header, then maybe more) then
   * `body`. Its length is the header's `len`, which the caller has summed:
   * the kernel requires the whole message in one write, of exactly that
   * length (fuse_dev_do_write checks oh.len against the bytes written).
   * Returns the Errno on failure: ENOENT means the request is gone
   * (interrupted or aborted), which callers ignore as go-fuse does.
   */
  write(head: Buffer, body: Buffer | readonly Buffer[] | null = null): Errno | null {
    if (body === null) return failure(writeOrErrno(this.fd, head, head.length));
    const len = head.readUInt32LE(0);
    if (len > INLINE_REPLY) return this.writev(Buffer.isBuffer(body) ? [head, body] : [head, ...body]);
    let at = head.copy(this.replyBuf, 0);
    if (Buffer.isBuffer(body)) body.copy(this.replyBuf, at);
    else for (const p of body) at += p.copy(this.replyBuf, at);
    return failure(writeOrErrno(this.fd, this.replyBuf, len));
  }

  private writev(parts: Buffer[]): Errno | null {
    try {
      writevSync(this.fd, parts);
      return null;
    } catch (e) {
      return new Errno(toErrno(e));
    }
  }

  /**
   * Queues a notification that may block in the kernel (INVAL_ENTRY,
   * DELETE, INVAL_INODE, STORE) on the notifier, which writes them in the
   * order queued, each as one write of its parts. Resolves with
   * the Errno, or null when the kernel took it.
   */
  notifyAsync(parts: Buffer | readonly Buffer[]): Promise<Errno | null> {
    return this.notifyAllAsync([Buffer.isBuffer(parts) ? [parts] : parts]).then((errors) => errors[0]!);
  }

  /**
   * notifyAsync for several messages at once, written one after the other
   * by the notifier (a hand-off to it costs more than a write).
   * Resolves with each one's Errno or null.
   */
  notifyAllAsync(messages: readonly (readonly Buffer[])[]): Promise<(Errno | null)[]> {
    const gone = (): (Errno | null)[] => messages.map(() => new Errno('ENODEV'));
    if (this.ended || !this.sigio) return Promise.resolve(gone());
    this.notifier ??= new PoolNotifier(this.fd);
    return this.notifier.post(messages).then((errors) => (errors.length ? errors.map(notified) : gone()));
  }

  /** Stops the notifier and closes the descriptor. Call after the connection has ended. */
  async close(): Promise<void> {
    this.stopWatching();
    const notifier = this.notifier;
    this.notifier = null;
    await notifier?.stop();
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
