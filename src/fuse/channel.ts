/**
 * The /dev/fuse channel: one descriptor, one reader thread, a notifier
 * thread while there is something to notify, replies written from the main
 * thread.
 *
 * Reading blocks, so it happens in a dedicated worker thread, never on
 * libuv's thread pool: a client of the mount inside this process (a test,
 * or anything using fs.promises) would otherwise starve the pool while the
 * pool's threads wait in read() for requests that client is waiting to send
 * (docs/fuse-protocol.md#deadlocks).
 *
 * Requests travel through a ring of slots in shared memory, one
 * SharedArrayBuffer per slot. The reader reads straight into a free slot
 * and publishes it by advancing `head`; the main thread hands the request
 * to the session as a view of the slot, without a copy, and frees the slot
 * (advancing `tail`) when the session is done with it: at once when the
 * request was answered synchronously or its handler keeps nothing of it. A
 * handler that goes asynchronous holding the request's data (a WRITE that
 * blocks) keeps the slot's memory, and the slot gets a fresh buffer, sent
 * to the reader through a port it checks before reusing the slot; the kept
 * memory is garbage-collected with the request. So the ring's memory is
 * bounded (SLOTS slots) and reused, and no request is allocated or copied
 * on the way to the model.
 *
 * A wake-up message crosses threads only when the main thread has gone idle
 * (flag `sleeping`), so a burst of requests costs one event-loop wake-up.
 * While requests keep coming the main thread reads them itself, from a
 * non-blocking clone of the connection, with the reader parked out of
 * read() (enableDirect, serveDirect): between two requests it waits up to
 * spinMicros asleep in ppoll(), so a request costs one thread wake-up, as
 * in a C server's read loop, and a quiet connection costs no CPU. A reply
 * goes back to the descriptor its request was read from.
 *
 * Invalidation notifications take VFS inode locks in the kernel and can
 * block behind a LOOKUP that is itself waiting for our reply (libfuse
 * fuse_lowlevel.h, "related operations"); they are written from a second
 * worker so the main thread stays free to answer. Poll wakeups take no such
 * locks and are written directly.
 */
import { constants, openSync, closeSync, writevSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { E, errnoName } from '../errno.js';
import { ioctl, pollOne, POLLIN, readOrErrno, writeOrErrno } from '../sys/ffi.js';

/** Why the reader stopped: ENODEV (unmounted), ECONNABORTED (aborted), or another errno code. */
export type EndReason = string;

export interface ChannelEvents {
  /**
   * One request, as a view of the ring slot it was read into. The view is
   * valid until this returns, unless this returns true: then the memory is
   * the caller's for as long as it holds the view.
   */
  request(buf: Buffer, origin: Origin): boolean;
  /**
   * True while some request's handler is still running: its answer may come
   * from a reaction already queued, which a wait for the next request on
   * the main thread would hold back.
   */
  busy(): boolean;
  end(reason: EndReason): void;
}

/* Control words of the ring (Int32Array indices). */
const HEAD = 0; // slots published by the reader (wrapping int32)
const TAIL = 1; // slots consumed by the main thread
const SLEEPING = 2; // 1 while the main thread waits for a wake-up message
const WAITING = 3; // 1 while the main thread waits on HEAD (Atomics.wait), to be notified
const OWNER = 4; // 1 while the main thread reads requests itself: the reader must not read
const PARKED = 5; // 1 while the reader is parked (out of read()) because of OWNER
const LEN0 = 6; // LEN0 + slot: byte length of the request in that slot
const SLOTS = 4; // power of two; each is max_write + a page of memory
const NOTIFIER_IDLE_MS = 30_000;
const BATCH = 16; // requests one event-loop turn serves at most from the direct descriptor
/** Replies up to this size are copied into one buffer and written with write(2), which costs less than a writev of parts. */
const INLINE_REPLY = 8192;
const resolved = Promise.resolve();

/** Where a request was read, so that its reply goes back there (the kernel finds it only in that device's queue). */
export type Origin = 0 | 1;
const READER: Origin = 0;
const DIRECT: Origin = 1;

/* include/uapi/linux/fuse.h: _IOR(229, 0, uint32_t) */
const FUSE_DEV_IOC_CLONE = 0x8004e500;
const GEN0 = LEN0 + SLOTS; // GEN0 + slot: how many times that slot's memory was replaced

// The reader's loop. ENOENT (request vanished between wakeup and copy),
// EINTR and EAGAIN are retried as fuser's receive_retrying does; ENODEV and
// ECONNABORTED end the session (fuse_dev_do_read).
const READER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { fd, slotSize, slots, mems, ctl, swaps } = workerData;
const c = new Int32Array(ctl);
const mem = mems.map((m) => Buffer.from(m));
const gen = mem.map(() => 0);
let head = 0;
for (;;) {
  // The main thread is reading requests itself: stay out of read().
  while (Atomics.load(c, ${OWNER}) === 1) {
    Atomics.store(c, ${PARKED}, 1);
    Atomics.wait(c, ${OWNER}, 1);
  }
  Atomics.store(c, ${PARKED}, 0);
  let tail = Atomics.load(c, ${TAIL});
  while (((head - tail) | 0) >= slots) {
    Atomics.wait(c, ${TAIL}, tail);
    tail = Atomics.load(c, ${TAIL});
  }
  const slot = head & (slots - 1);
  // The main thread kept this slot's memory for a request still using it;
  // its replacement was posted before the slot was freed.
  while (gen[slot] !== Atomics.load(c, ${GEN0} + slot)) {
    const { message } = receiveMessageOnPort(swaps);
    mem[message.slot] = Buffer.from(message.sab);
    gen[message.slot]++;
  }
  let n;
  try {
    n = readSync(fd, mem[slot], 0, slotSize, null);
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'EINTR' || e.code === 'EAGAIN') continue;
    parentPort.postMessage({ end: e.code || String(e) });
    break;
  }
  Atomics.store(c, ${LEN0} + slot, n);
  head = (head + 1) | 0;
  Atomics.store(c, ${HEAD}, head);
  if (Atomics.load(c, ${WAITING}) === 1) Atomics.notify(c, ${HEAD});
  else if (Atomics.exchange(c, ${SLEEPING}, 0) === 1) parentPort.postMessage(0);
}
`;

// The notifier: writes each message and reports the errno code, if any.
const NOTIFIER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
parentPort.on('message', ({ id, buf }) => {
  let error = null;
  try { writeSync(workerData.fd, buf); } catch (e) { error = e.code || String(e); }
  parentPort.postMessage({ id, error });
});
`;

export interface ChannelOptions {
  /** Size of one slot: the read buffer fuse_dev_do_read requires (max_write + headers). */
  slotSize: number;
  /**
   * How long the main thread waits (asleep, Atomics.wait) for the next
   * request before returning to the event loop. 0 disables it. Timers and
   * other I/O wait at most this long behind it.
   */
  spinMicros: number;
}

export class FuseChannel {
  readonly fd: number;
  private reader: Worker | null = null;
  private notifier: Worker | null = null;
  private notifierIdle: NodeJS.Timeout | undefined = undefined;
  private pendingNotifies = new Map<number, (error: string | null) => void>();
  private nextNotifyId = 1;
  private ended = false;
  private ctl: Int32Array<ArrayBufferLike> = new Int32Array(0);
  private mem: Buffer<ArrayBufferLike>[] = [];
  private swaps: MessagePort | null = null;
  /** A clone of the connection, non-blocking, that the main thread reads while requests keep coming; -1 until enableDirect(). */
  private directFd = -1;
  private directBuf: Buffer = Buffer.alloc(0);
  private readonly replyBuf = Buffer.allocUnsafeSlow(INLINE_REPLY);
  private tail = 0;
  /** Requests served in the current event-loop turn (serveOne). */
  private batched = 0;
  private slotSize = 0;
  private spinMs = 0;
  private events: ChannelEvents | null = null;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Opens /dev/fuse. The descriptor is later passed to mount(8) as fd 3. */
  static open(): FuseChannel {
    return new FuseChannel(openSync('/dev/fuse', 'r+'));
  }

  /**
   * Starts the reader. Call it once the descriptor is mounted: before
   * mount(2) a read fails EPERM. INIT is already queued by then, and every
   * access to the mount blocks until it is answered.
   */
  start(o: ChannelOptions, events: ChannelEvents): void {
    this.events = events;
    this.slotSize = o.slotSize;
    this.spinMs = o.spinMicros / 1000;
    const mems = Array.from({ length: SLOTS }, () => new SharedArrayBuffer(o.slotSize));
    const ctl = new SharedArrayBuffer(4 * (GEN0 + SLOTS));
    this.mem = mems.map((m) => Buffer.from(m));
    this.ctl = new Int32Array(ctl);
    this.ctl[SLEEPING] = 1;
    const { port1, port2 } = new MessageChannel();
    this.swaps = port1;
    this.reader = new Worker(READER_SOURCE, {
      eval: true,
      workerData: { fd: this.fd, slotSize: o.slotSize, slots: SLOTS, mems, ctl, swaps: port2 },
      transferList: [port2],
    });
    this.reader.on('message', (m: number | { end: string }) => {
      if (typeof m === 'number') this.drain();
      else this.finish(m.end);
    });
    this.reader.on('error', (err) => this.finish(String(err)));
    this.reader.on('exit', () => this.finish('ENODEV'));
    // The reader stays referenced: a mounted connection keeps the process
    // alive until it ends (unmount or abort make the read fail with ENODEV).
  }

  /**
   * The notifier thread, started with the first notification that needs it
   * and stopped once it has been idle for NOTIFIER_IDLE_MS: a worker costs
   * ~10 MiB of RSS, and most of a daemon's life has nothing to notify.
   */
  private startNotifier(): Worker {
    const w = new Worker(NOTIFIER_SOURCE, { eval: true, workerData: { fd: this.fd } });
    w.on('message', ({ id, error }: { id: number; error: string | null }) => {
      const done = this.pendingNotifies.get(id);
      this.pendingNotifies.delete(id);
      done?.(error);
      if (this.pendingNotifies.size === 0) this.notifierIdle = setTimeout(() => this.stopNotifier(), NOTIFIER_IDLE_MS).unref();
    });
    w.unref();
    return w;
  }

  private stopNotifier(): void {
    if (this.pendingNotifies.size) return;
    void this.notifier?.terminate();
    this.notifier = null;
  }

  /** Handles every published request; then, once their replies are out, looks for more. */
  private drain(): void {
    const c = this.ctl;
    while (this.tail !== Atomics.load(c, HEAD)) {
      if (this.ended) return;
      const slot = this.tail & (SLOTS - 1);
      const kept = this.events!.request(this.mem[slot]!.subarray(0, Atomics.load(c, LEN0 + slot)), READER);
      if (kept) this.replaceSlot(slot);
      this.tail = (this.tail + 1) | 0;
      Atomics.store(c, TAIL, this.tail);
      Atomics.notify(c, TAIL);
    }
    // setImmediate runs after the microtask queue is empty, i.e. after the
    // async handlers that could answer at once have written their replies;
    // waiting here instead would hold those replies back.
    setImmediate(this.idle);
  }

  /** Leaves the slot's memory to the request that keeps it; the reader gets a fresh buffer for the slot. */
  private replaceSlot(slot: number): void {
    const sab = new SharedArrayBuffer(this.slotSize);
    this.mem[slot] = Buffer.from(sab);
    // Posted before the generation changes and the slot is freed, so the
    // reader finds it as soon as it sees either.
    this.swaps!.postMessage({ slot, sab });
    Atomics.add(this.ctl, GEN0 + slot, 1);
  }

  /**
   * Lets the main thread read requests itself, from a clone of the
   * connection (FUSE_DEV_IOC_CLONE, fs/fuse/dev.c fuse_dev_ioctl_clone),
   * while they keep coming: a request then costs one thread wake-up, as in
   * a C server's read loop, instead of two. Needs a mounted connection.
   * Returns the errno code if the kernel refused (the reader alone serves).
   */
  enableDirect(): string | null {
    if (this.directFd >= 0 || this.spinMs <= 0) return null;
    let fd = -1;
    try {
      fd = openSync('/dev/fuse', constants.O_RDWR | constants.O_NONBLOCK);
      const arg = Buffer.alloc(4);
      arg.writeInt32LE(this.fd, 0);
      ioctl(fd, FUSE_DEV_IOC_CLONE, arg);
    } catch (e) {
      if (fd >= 0) closeSync(fd);
      return (e as NodeJS.ErrnoException).code ?? String(e);
    }
    this.directFd = fd;
    this.directBuf = Buffer.allocUnsafeSlow(this.slotSize);
    return null;
  }

  /** A fresh event-loop turn: waits for the next request. */
  private readonly idle = (): void => {
    this.batched = 0;
    this.wait();
  };

  /** Waits up to spinMicros for the next request, else sleeps until the reader's wake-up message. */
  private wait(): void {
    const c = this.ctl;
    if (this.ended) return;
    if (this.spinMs > 0 && this.tail === Atomics.load(c, HEAD)) {
      if (this.directFd >= 0) {
        if (this.serveDirect()) return;
      } else {
        Atomics.store(c, WAITING, 1);
        // Returns at once if the reader published meanwhile (HEAD no longer tail).
        Atomics.wait(c, HEAD, this.tail, this.spinMs);
        Atomics.store(c, WAITING, 0);
      }
    }
    if (this.tail !== Atomics.load(c, HEAD)) return this.drain();
    Atomics.store(c, SLEEPING, 1);
    // A request published between the check above and the store would
    // otherwise wait for the next request's wake-up message.
    if (this.tail !== Atomics.load(c, HEAD) && Atomics.exchange(c, SLEEPING, 0) === 1) this.drain();
  }

  /**
   * Reads the next request on the main thread, waiting for it up to
   * spinMicros in ppoll() (asleep, woken by the kernel), the reader parked
   * out of read(). Handles one request and returns true, the next turn
   * scheduled (the reader stays parked); or hands reading back to the
   * reader and returns false. Until the reader has parked it may be inside
   * read() and take the next request itself: then the wait is on the ring
   * (Atomics.wait, which the reader's publication ends), not in ppoll(),
   * which that request would never wake.
   */
  private serveDirect(): boolean {
    const c = this.ctl;
    Atomics.store(c, OWNER, 1);
    const deadline = performance.now() + this.spinMs;
    for (;;) {
      if (this.tail !== Atomics.load(c, HEAD)) {
        this.drain();
        return true;
      }
      const left = deadline - performance.now();
      if (left <= 0) break;
      if (Atomics.load(c, PARKED) !== 1) {
        Atomics.store(c, WAITING, 1);
        Atomics.wait(c, HEAD, this.tail, left);
        Atomics.store(c, WAITING, 0);
        continue;
      }
      // Poll first, read once readable: a read that finds nothing throws
      // EAGAIN, and an exception costs more than the request.
      if ((pollOne(this.directFd, POLLIN, left * 1e6) & POLLIN) === 0) continue;
      const n = readOrErrno(this.directFd, this.directBuf, this.slotSize);
      if (n > 0) {
        this.serveOne(n);
        return true;
      }
      // ENOENT: the request vanished (fuse_dev_do_read); anything but
      // EAGAIN or EINTR (ENODEV: unmounted) is the reader's to report.
      if (n !== -E.EAGAIN && n !== -E.EINTR && n !== -E.ENOENT) break;
    }
    Atomics.store(c, OWNER, 0);
    Atomics.notify(c, OWNER);
    return false;
  }

  /**
   * Handles the request just read into directBuf, then looks for the next
   * one in a microtask, queued after the reactions the handler left (a
   * reply resolved at once goes out first), instead of a turn of the event
   * loop each; at most BATCH of them, so timers and the control socket
   * wait no longer than that many requests.
   */
  private serveOne(n: number): void {
    if (this.events!.request(this.directBuf.subarray(0, n), DIRECT)) this.directBuf = Buffer.allocUnsafeSlow(this.slotSize);
    if (++this.batched < BATCH) void resolved.then(this.next);
    else setImmediate(this.idle);
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
    // EAGAIN: nothing queued. ENOENT, ENODEV: the wait sorts it out.
    const n = readOrErrno(this.directFd, this.directBuf, this.slotSize);
    if (n > 0) return this.serveOne(n);
    if (this.events!.busy()) setImmediate(this.idle);
    else this.wait();
  };

  private finish(reason: EndReason): void {
    if (this.ended) return;
    this.ended = true;
    for (const done of this.pendingNotifies.values()) done('ENODEV');
    this.pendingNotifies.clear();
    this.events?.end(reason);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Writes one reply, to the descriptor its request was read from
   * (`origin`; notifications may go to either). The kernel requires the whole reply in one write
   * (fuse_dev_do_write checks oh.len against the bytes written). Returns the
   * errno code on failure: ENOENT means the request is gone (interrupted or
   * aborted), which callers ignore as go-fuse does.
   */
  write(parts: Buffer | Buffer[], origin: Origin = READER): string | null {
    const fd = origin === DIRECT ? this.directFd : this.fd;
    let r: number;
    if (Buffer.isBuffer(parts)) r = writeOrErrno(fd, parts, parts.length);
    else {
      let len = 0;
      for (const p of parts) len += p.length;
      if (len > INLINE_REPLY) return this.writev(fd, parts);
      let at = 0;
      for (const p of parts) at += p.copy(this.replyBuf, at);
      r = writeOrErrno(fd, this.replyBuf, len);
    }
    return r < 0 ? errnoName(-r) : null;
  }

  private writev(fd: number, parts: Buffer[]): string | null {
    try {
      writevSync(fd, parts);
      return null;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code ?? String(e);
    }
  }

  /**
   * Queues a notification that may block in the kernel (INVAL_ENTRY,
   * DELETE, INVAL_INODE) on the notifier thread. Resolves with the errno
   * code, or null when the kernel took it.
   */
  notifyAsync(buf: Buffer): Promise<string | null> {
    if (this.ended || !this.reader) return Promise.resolve('ENODEV');
    clearTimeout(this.notifierIdle);
    this.notifier ??= this.startNotifier();
    const id = this.nextNotifyId++;
    return new Promise((resolve) => {
      this.pendingNotifies.set(id, resolve);
      this.notifier!.postMessage({ id, buf });
    });
  }

  /** Stops the workers and closes the descriptor. Call after the connection has ended. */
  async close(): Promise<void> {
    this.ended = true;
    clearTimeout(this.notifierIdle);
    const workers = [this.reader, this.notifier].filter((w): w is Worker => w !== null);
    this.reader = this.notifier = null;
    this.swaps?.close();
    this.swaps = null;
    // terminate() cannot interrupt a read() in progress; the reader has
    // returned ENODEV already because the connection was torn down.
    await Promise.all(workers.map((w) => w.terminate()));
    for (const fd of [this.fd, this.directFd]) {
      try {
        if (fd >= 0) closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.directFd = -1;
  }
}
