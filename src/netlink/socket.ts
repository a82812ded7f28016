/**
 * A netlink socket served from the main thread: sends never block (see
 * sendtoNetlink), and datagrams are read, non-blocking, when the kernel
 * signals the socket readable (SIGIO, src/sys/sigio.ts): one datagram per
 * recvfrom(), with the port that sent it.
 */
import { closeSync } from 'node:fs';
import { E, Errno, errnoName } from '../errno.js';
import { bindNetlink, netlinkPort, recvfromNetlink, sendtoNetlink, socket, AF_NETLINK, SOCK_CLOEXEC, SOCK_RAW } from '../sys/ffi.js';
import { SigioWatch } from '../sys/sigio.js';

export interface NetlinkSocketOptions {
  /** NETLINK_USERSOCK, NETLINK_GENERIC... */
  protocol: number;
  /** Each datagram received, in order, with the port it came from; the buffer is the callee's. Must not throw. */
  onDatagram: (data: Buffer, port: number) => void;
  /** A read failed other than by interruption (ENOBUFS: datagrams were dropped); reading goes on. */
  onError: (code: string) => void;
}

/** Larger than any datagram a peer sends here (netlink's default is a page; NLMSG_GOODSIZE). */
const DATAGRAM_MAX = 65536;

export class NetlinkSocket {
  /** The port the kernel bound the socket to: where peers send. */
  readonly port: number;
  private readonly fd: number;
  private readonly watch: SigioWatch;
  private readonly buf = Buffer.allocUnsafeSlow(DATAGRAM_MAX);
  private closed = false;

  constructor(private readonly o: NetlinkSocketOptions) {
    SigioWatch.assertMainThread();
    this.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, o.protocol);
    try {
      bindNetlink(this.fd, 0, 0);
      this.port = netlinkPort(this.fd);
      this.watch = new SigioWatch(this.fd, () => this.drain());
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
    // Armed for the socket's life: the traffic is a few messages per device.
    this.watch.arm();
  }

  /** Reads every queued datagram; SIGIO brings the next ones. */
  private drain(): void {
    while (!this.closed) {
      const { n, port } = recvfromNetlink(this.fd, this.buf, DATAGRAM_MAX);
      if (n >= 0) this.o.onDatagram(Buffer.from(this.buf.subarray(0, n)), port);
      else if (n === -E.EAGAIN) return;
      else if (n !== -E.EINTR) {
        this.o.onError(errnoName(-n));
        // ENOBUFS is reported once (the receive queue overflowed) and the
        // queue reads on; any other error waits for the next signal.
        if (n !== -E.ENOBUFS) return;
      }
    }
  }

  /** One datagram to `port`; throws an Errno (ECONNREFUSED: nobody holds the port; EAGAIN: its queue is full). */
  send(port: number, data: Buffer): void {
    // The descriptor number may belong to another file once closed.
    if (this.closed) throw new Errno('EBADF');
    sendtoNetlink(this.fd, data, port);
  }

  /** Stops reading and closes the socket. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.watch.forget();
      closeSync(this.fd);
    }
    return Promise.resolve();
  }
}
