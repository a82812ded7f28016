/**
 * The /dev/fuse channel: one descriptor, one reader thread, one notifier
 * thread, replies written from the caller's thread.
 *
 * Reading blocks, so it happens in a dedicated worker thread, never on
 * libuv's thread pool: a client of the mount inside this process (a test,
 * or anything using fs.promises) would otherwise starve the pool while the
 * pool's threads wait in read() for requests that client is waiting to send
 * (FUSE-NOTES §10.5). The reader copies each request out of its big read
 * buffer into an exactly-sized ArrayBuffer and transfers it, so the main
 * thread never shares memory with the reader.
 *
 * Invalidation notifications take VFS inode locks in the kernel and can
 * block behind a LOOKUP that is itself waiting for our reply (libfuse
 * fuse_lowlevel.h, "related operations"); they are therefore written from a
 * second worker so the main thread stays free to answer. Poll wakeups take
 * no such locks and are written directly.
 */
import { openSync, closeSync, writeSync, writevSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** Why the reader stopped: ENODEV (unmounted), ECONNABORTED (aborted), or another errno code. */
export type EndReason = string;

export interface ChannelEvents {
  request(buf: Buffer): void;
  end(reason: EndReason): void;
}

// The reader's loop. ENOENT (request vanished between wakeup and copy),
// EINTR and EAGAIN are retried as fuser's receive_retrying does; ENODEV and
// ECONNABORTED end the session (fuse_dev_do_read).
const READER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { fd, bufferSize } = workerData;
const buf = Buffer.allocUnsafeSlow(bufferSize);
for (;;) {
  let n;
  try {
    n = readSync(fd, buf, 0, bufferSize, null);
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'EINTR' || e.code === 'EAGAIN') continue;
    parentPort.postMessage({ end: e.code || String(e) });
    break;
  }
  const ab = new ArrayBuffer(n);
  new Uint8Array(ab).set(buf.subarray(0, n));
  parentPort.postMessage(ab, [ab]);
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

export class FuseChannel {
  readonly fd: number;
  private reader: Worker | null = null;
  private notifier: Worker | null = null;
  private pendingNotifies = new Map<number, (error: string | null) => void>();
  private nextNotifyId = 1;
  private ended = false;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Opens /dev/fuse. The descriptor is later passed to mount(8) as fd 3. */
  static open(): FuseChannel {
    return new FuseChannel(openSync('/dev/fuse', 'r+'));
  }

  /**
   * Starts the reader. It must run before the mount: the kernel queues INIT
   * as soon as mount(2) returns, and every access to the mount blocks until
   * INIT is answered.
   */
  start(bufferSize: number, events: ChannelEvents): void {
    this.reader = new Worker(READER_SOURCE, { eval: true, workerData: { fd: this.fd, bufferSize } });
    this.reader.on('message', (m: ArrayBuffer | { end: string }) => {
      if (m instanceof ArrayBuffer) events.request(Buffer.from(m));
      else this.finish(events, m.end);
    });
    this.reader.on('error', (err) => this.finish(events, String(err)));
    this.reader.on('exit', () => this.finish(events, 'ENODEV'));
    // The reader stays referenced: a mounted connection keeps the process
    // alive until it ends (unmount or abort make the read fail with ENODEV).

    this.notifier = new Worker(NOTIFIER_SOURCE, { eval: true, workerData: { fd: this.fd } });
    this.notifier.on('message', ({ id, error }: { id: number; error: string | null }) => {
      const done = this.pendingNotifies.get(id);
      this.pendingNotifies.delete(id);
      done?.(error);
    });
    this.notifier.unref();
  }

  private finish(events: ChannelEvents, reason: EndReason): void {
    if (this.ended) return;
    this.ended = true;
    for (const done of this.pendingNotifies.values()) done('ENODEV');
    this.pendingNotifies.clear();
    events.end(reason);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Writes one reply. The kernel requires the whole reply in one write
   * (fuse_dev_do_write checks oh.len against the bytes written). Returns the
   * errno code on failure: ENOENT means the request is gone (interrupted or
   * aborted), which callers ignore as go-fuse does.
   */
  write(parts: Buffer | Buffer[]): string | null {
    try {
      if (Buffer.isBuffer(parts)) writeSync(this.fd, parts);
      else writevSync(this.fd, parts);
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
    if (this.ended || !this.notifier) return Promise.resolve('ENODEV');
    const id = this.nextNotifyId++;
    return new Promise((resolve) => {
      this.pendingNotifies.set(id, resolve);
      this.notifier!.postMessage({ id, buf });
    });
  }

  /** Stops the workers and closes the descriptor. Call after the mount is gone. */
  async close(): Promise<void> {
    this.ended = true;
    const workers = [this.reader, this.notifier].filter((w): w is Worker => w !== null);
    this.reader = this.notifier = null;
    // terminate() cannot interrupt a read() in progress; the reader has
    // normally returned ENODEV already because the connection was torn down.
    await Promise.all(workers.map((w) => w.terminate()));
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
