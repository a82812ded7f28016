/**
 * The notifier thread: writes to /dev/fuse what may block in the kernel on
 * something only the main thread can release. Invalidations take VFS locks
 * a request waiting for our answer may hold (fs/fuse/dev.c
 * fuse_notify_inval_entry: docs/fuse-protocol.md#invalidation); page-cache
 * STOREs and INVAL_INODE lock pages that a page fault holds while its READ
 * waits for us (docs/fuse-protocol.md#page-cache-mappings). The main thread
 * keeps serving while the notifier waits.
 *
 * Jobs are written in the order posted, each message as one writev. The
 * thread sleeps in Atomics.wait on a shared counter rather than in an
 * event loop: an interrupt read of a mapped device waits for its STOREs,
 * and a wake-up through the worker's event loop cost ~80 µs a round trip
 * here, a futex ~20 µs. Results come back as messages, for those who wait
 * for them; whether everything posted is written is read from the shared
 * counter at once (drained), and so is how far the thread has got, by
 * message (begun).
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';

const NOTIFIER_SOURCE = `
const { workerData, receiveMessageOnPort, parentPort } = require('node:worker_threads');
const { writevSync } = require('node:fs');
const { fd, control, jobs } = workerData;
const c = new Int32Array(control); // [0] last job posted, [1] last job written, [2] stop, [3] messages begun
let begun = 0;
for (;;) {
  Atomics.wait(c, 0, Atomics.load(c, 1));
  if (Atomics.load(c, 2)) break;
  for (let m; (m = receiveMessageOnPort(jobs)); ) {
    const errors = m.message.messages.map((parts) => {
      Atomics.store(c, 3, ++begun);
      try { writevSync(fd, parts); return null; } catch (e) { return e.code || String(e); }
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

export class Notifier {
  private readonly worker: Worker;
  private readonly jobs: MessagePort;
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * 4));
  private readonly waiting = new Map<number, (errors: (string | null)[]) => void>();
  private lastId = 0;
  private messages = 0;

  /** Called when nothing is left to write (the channel's idle timer). */
  constructor(fd: number, onIdle: () => void) {
    const { port1, port2 } = new MessageChannel();
    this.jobs = port1;
    this.worker = new Worker(NOTIFIER_SOURCE, { eval: true, workerData: { fd, control: this.control.buffer, jobs: port2 }, transferList: [port2] });
    this.worker.on('message', ({ id, errors }: { id: number; errors: (string | null)[] }) => {
      const done = this.waiting.get(id);
      this.waiting.delete(id);
      done?.(errors);
      if (this.waiting.size === 0) onIdle();
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

  /** Jobs whose results have not come back yet. */
  get busy(): boolean {
    return this.waiting.size > 0;
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
