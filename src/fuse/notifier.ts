/**
 * The notifiers: what writes to /dev/fuse the notifications that may block
 * in the kernel on something only the main thread can release.
 * Invalidations take VFS locks a request waiting for our answer may hold
 * (fs/fuse/dev.c fuse_notify_inval_entry:
 * docs/fuse-protocol.md#invalidation); page-cache STOREs and INVAL_INODE
 * lock pages that a page fault holds while its READ waits for us
 * (docs/fuse-protocol.md#page-cache-mappings). The main thread keeps
 * serving while a notifier waits. Both write the jobs posted in order,
 * each message as one write, and count what they have begun.
 *
 * Notifier, the notifier thread, serves a connection whose regions are
 * mapped through the page cache, for its whole life: an interrupt read of
 * a mapped device waits for its STOREs, so the wake-up must be quick. The
 * thread sleeps in Atomics.wait on a shared counter rather than in an
 * event loop: a wake-up through the worker's event loop cost ~80 µs a
 * round trip here, a futex ~20 µs. Results come back as messages, for
 * those who wait for them; whether everything posted is written is read
 * from the shared counter at once (drained), and so is how far the thread
 * has got, by message (begun, done).
 *
 * PoolNotifier serves every other connection, whose only notifications
 * are the entry invalidations of unplug: each is written on libuv's
 * thread pool. A notifier thread would cost ~10 MiB of RSS for its
 * isolate while it lived and tens of milliseconds to start, on the path
 * of the unplug that needed it; a pool thread costs neither, and one
 * invalidation at a time holds at most one of them, until the main thread
 * answers the directory request that holds the lock (every directory
 * operation is answered synchronously: src/fs/tree.ts remove()).
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { errnoName } from '../errno.js';
import { writeAsyncOrErrno } from '../sys/ffi.js';

const NOTIFIER_SOURCE = `
const { workerData, receiveMessageOnPort, parentPort } = require('node:worker_threads');
const { writevSync } = require('node:fs');
const { fd, control, jobs } = workerData;
const c = new Int32Array(control); // [0] last job posted, [1] last job written, [2] stop, [3] messages begun, [4] messages done
let begun = 0;
for (;;) {
  Atomics.wait(c, 0, Atomics.load(c, 1));
  if (Atomics.load(c, 2)) break;
  for (let m; (m = receiveMessageOnPort(jobs)); ) {
    const errors = m.message.messages.map((parts) => {
      Atomics.store(c, 3, ++begun);
      try { writevSync(fd, parts); return null; } catch (e) { return e.code || String(e); } finally { Atomics.store(c, 4, begun); }
    });
    Atomics.store(c, 1, m.message.id);
    parentPort.postMessage({ id: m.message.id, errors });
  }
}
`;

const POSTED = 0;
const WRITTEN = 1;
const STOP = 2;
const BEGUN = 3;
const DONE = 4;

/** What the channel asks of a notifier (Notifier, PoolNotifier). */
export interface NotificationWriter {
  /** Posts one job: its messages are written in order, after every job posted before. Resolves with each one's errno code or null ([] once stopped). */
  post(messages: readonly (readonly Buffer[])[]): Promise<(string | null)[]>;
  /** Every job posted so far is written. */
  readonly drained: boolean;
  /** Messages posted so far: the last one posted is number `posted`, counting from 1. */
  readonly posted: number;
  /** Messages begun, in order: one numbered above it is not in the kernel yet, and gets there only after every message numbered below it. */
  readonly begun: number;
  /** Ends it; jobs not written are answered ENODEV. */
  stop(): Promise<void>;
}

export class Notifier implements NotificationWriter {
  private readonly worker: Worker;
  private readonly jobs: MessagePort;
  private readonly control = new Int32Array(new SharedArrayBuffer(5 * 4));
  private readonly waiting = new Map<number, (errors: (string | null)[]) => void>();
  private lastId = 0;
  private messages = 0;

  constructor(fd: number) {
    const { port1, port2 } = new MessageChannel();
    this.jobs = port1;
    this.worker = new Worker(NOTIFIER_SOURCE, { eval: true, workerData: { fd, control: this.control.buffer, jobs: port2 }, transferList: [port2] });
    this.worker.on('message', ({ id, errors }: { id: number; errors: (string | null)[] }) => {
      const done = this.waiting.get(id);
      this.waiting.delete(id);
      done?.(errors);
    });
    this.worker.unref();
    this.jobs.unref();
  }

  /** Posts one job: its messages are written in order, after every job posted before. Resolves with each one's errno code or null. */
  post(messages: readonly (readonly Buffer[])[]): Promise<(string | null)[]> {
    const id = ++this.lastId;
    this.messages += messages.length;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.jobs.postMessage({ id, messages });
      Atomics.store(this.control, POSTED, id);
      Atomics.notify(this.control, POSTED);
    });
  }

  /** Every job posted so far is written (read from the shared counter, no message needed). */
  get drained(): boolean {
    return Atomics.load(this.control, WRITTEN) === this.lastId;
  }

  /** Messages posted so far: the last one posted is number `posted`, counting from 1. */
  get posted(): number {
    return this.messages;
  }

  /**
   * Messages the thread has begun to write (read from the shared counter):
   * one numbered above it is not in the kernel yet, and gets there only
   * after every message numbered below it.
   */
  get begun(): number {
    return Atomics.load(this.control, BEGUN);
  }

  /** Messages done, in order: the write(2) of each one numbered up to it has returned (read from the shared counter). */
  get done(): number {
    return Atomics.load(this.control, DONE);
  }

  /** Ends the thread; jobs not written are answered ENODEV. */
  async stop(): Promise<void> {
    Atomics.store(this.control, STOP, 1);
    Atomics.notify(this.control, POSTED);
    for (const [id, done] of this.waiting) {
      this.waiting.delete(id);
      done([]);
    }
    this.jobs.close();
    await this.worker.terminate();
  }
}

/** Notifications written one at a time on libuv's thread pool (see the top of this file). */
export class PoolNotifier implements NotificationWriter {
  private readonly jobs: { messages: readonly (readonly Buffer[])[]; errors: (string | null)[]; done: (errors: (string | null)[]) => void }[] = [];
  private messages = 0;
  private started = 0;
  private writing = false;
  private stopped = false;

  constructor(private readonly fd: number) {}

  post(messages: readonly (readonly Buffer[])[]): Promise<(string | null)[]> {
    if (this.stopped) return Promise.resolve([]);
    this.messages += messages.length;
    return new Promise((done) => {
      this.jobs.push({ messages, errors: [], done });
      if (!this.writing) this.next();
    });
  }

  /** Writes the next message of the oldest job, or answers the job once its messages are all written. */
  private next(): void {
    this.writing = false;
    const job = this.jobs[0];
    if (!job || this.stopped) return;
    const i = job.errors.length;
    if (i === job.messages.length) {
      this.jobs.shift();
      job.done(job.errors);
      return this.next();
    }
    this.writing = true;
    this.started++;
    const parts = job.messages[i]!;
    writeAsyncOrErrno(this.fd, parts.length === 1 ? parts[0]! : Buffer.concat(parts)).then(
      (r) => {
        job.errors.push(r < 0 ? errnoName(-r) : null);
        this.next();
      },
      (err: unknown) => {
        job.errors.push(String(err));
        this.next();
      },
    );
  }

  get drained(): boolean {
    return this.jobs.length === 0;
  }

  get posted(): number {
    return this.messages;
  }

  get begun(): number {
    return this.started;
  }

  stop(): Promise<void> {
    this.stopped = true;
    for (const job of this.jobs.splice(0)) job.done([]);
    return Promise.resolve();
  }
}
