/**
 * A netlink socket served from Node: sends from the main thread (never
 * blocking, see sendtoNetlink), receives in a worker thread.
 *
 * Node cannot watch an arbitrary fd for readiness, so a worker does the
 * blocking read(2)s (a netlink socket answers read() like recv() with no
 * flags: one datagram per call) and posts each datagram to the main thread.
 * A blocked read is not interrupted by closing the fd, and netlink sockets
 * have no shutdown() (sock_no_shutdown), so close() sets a stop flag and
 * sends the socket a datagram of its own to wake the reader.
 */
import { closeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { bindNetlink, netlinkPort, sendtoNetlink, socket, AF_NETLINK, SOCK_CLOEXEC, SOCK_RAW } from '../sys/ffi.js';

export interface NetlinkSocketOptions {
  /** NETLINK_USERSOCK, NETLINK_GENERIC... */
  protocol: number;
  /** Each datagram received, in order. */
  onDatagram: (data: Buffer) => void;
  /** A read failed other than by interruption; reading goes on. */
  onError: (code: string) => void;
}

// CommonJS, run with eval: the worker needs no TypeScript loader. Buffers
// are copied by postMessage, so each datagram is its own slice.
const READER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { fd, stop } = workerData;
const flag = new Int32Array(stop);
const buf = Buffer.alloc(65536);
for (;;) {
  let n;
  try {
    n = readSync(fd, buf, 0, buf.length, null);
  } catch (e) {
    if (Atomics.load(flag, 0)) break;
    if (e.code !== 'EINTR' && e.code !== 'EAGAIN') parentPort.postMessage({ error: e.code || String(e) });
    continue;
  }
  if (Atomics.load(flag, 0)) break;
  parentPort.postMessage(buf.subarray(0, n));
}
`;

const STOP_WAIT_MS = 2000;

export class NetlinkSocket {
  /** The port the kernel bound the socket to: where peers send. */
  readonly port: number;
  private readonly fd: number;
  private readonly reader: Worker;
  private readonly stop = new SharedArrayBuffer(4);
  private closing: Promise<void> | null = null;

  constructor(o: NetlinkSocketOptions) {
    this.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, o.protocol);
    try {
      bindNetlink(this.fd, 0, 0);
      this.port = netlinkPort(this.fd);
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
    this.reader = new Worker(READER_SOURCE, { eval: true, workerData: { fd: this.fd, stop: this.stop } });
    this.reader.on('message', (m: Uint8Array | { error: string }) => {
      if (m instanceof Uint8Array) o.onDatagram(Buffer.from(m.buffer, m.byteOffset, m.byteLength));
      else o.onError(m.error);
    });
    // The reader runs until close(); it must not keep the process alive on its own.
    this.reader.unref();
  }

  /** One datagram to `port`; throws an Errno (ECONNREFUSED: nobody holds the port; EAGAIN: its queue is full). */
  send(port: number, data: Buffer): void {
    sendtoNetlink(this.fd, data, port);
  }

  /** Stops the reader and closes the socket. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      Atomics.store(new Int32Array(this.stop), 0, 1);
      const exited = new Promise<void>((resolve) => this.reader.once('exit', () => resolve()));
      try {
        // An NLMSG_NOOP header: any datagram wakes the reader.
        const noop = Buffer.alloc(16);
        noop.writeUInt32LE(16, 0);
        noop.writeUInt16LE(1, 4);
        this.send(this.port, noop);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, STOP_WAIT_MS)))]);
        clearTimeout(timer);
      } finally {
        closeSync(this.fd);
      }
    })();
    return this.closing;
  }
}
