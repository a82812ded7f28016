/**
 * A netlink socket served from the main thread: sends never block (see
 * sendtoNetlink), and datagrams are read, non-blocking, when the kernel
 * signals the socket readable (SIGIO, src/sys/sigio.ts): one datagram per
 * recvmsg(), with who sent it: the port, and the pid, uid and gid the
 * kernel recorded at send time (SO_PASSCRED), which a receiver that must
 * know its peer checks (src/tcmu/netlink.ts).
 *
 * Anyone may flood the socket, so a flood must cost neither a signal per
 * datagram nor the event loop: the kernel raises SIGIO for each datagram
 * it queues (sk_data_ready -> sk_wake_async), and libuv queues each signal
 * for the loop in a pipe of its own; under a flood that pipe fills, and a
 * SIGCHLD or SIGTERM that meets it full is lost (a program's exit never
 * seen). So the signal is off from the first SIGIO until the queue is
 * found empty, and datagrams are read BATCH per turn of the loop, leaving
 * the turns between to the mount, the timers and the control socket.
 */
import { closeSync } from 'node:fs';
import { E, Errno, errnoName } from '../errno.js';
import { bindNetlink, netlinkPort, passCredentials, recvmsgNetlink, sendtoNetlink, setReceiveBuffer, socket, AF_NETLINK, SOCK_CLOEXEC, SOCK_RAW } from '../sys/ffi.js';
import type { NetlinkSender } from '../sys/ffi.js';
import { SigioWatch } from '../sys/sigio.js';

export type { NetlinkSender } from '../sys/ffi.js';

export interface NetlinkSocketOptions {
  /** NETLINK_USERSOCK, NETLINK_GENERIC... */
  protocol: number;
  /** The multicast groups to join at bind (a bit mask, sockaddr_nl's nl_groups); none by default. Throws EPERM where the protocol lets only CAP_NET_ADMIN listen. */
  groups?: number;
  /** A receive queue this large (setReceiveBuffer()), for a socket whose datagrams come unasked (a group's). */
  receiveBufferBytes?: number;
  /** Each datagram received, in order, with its sender; the buffer is the callee's. Must not throw. */
  onDatagram: (data: Buffer, sender: NetlinkSender) => void;
  /** A read failed other than by interruption (ENOBUFS: datagrams were dropped); reading goes on. */
  onError: (code: string) => void;
}

/** Datagrams read per turn of the event loop. */
const BATCH = 64;

export class NetlinkSocket {
  /** The port the kernel bound the socket to: where peers send. */
  readonly port: number;
  private readonly fd: number;
  private readonly watch: SigioWatch;
  private closed = false;
  /** Between a SIGIO and the queue found empty: reading turn by turn, the signal off. */
  private reading = false;

  constructor(private readonly o: NetlinkSocketOptions) {
    SigioWatch.assertMainThread();
    this.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, o.protocol);
    try {
      if (o.receiveBufferBytes !== undefined) setReceiveBuffer(this.fd, o.receiveBufferBytes);
      bindNetlink(this.fd, 0, o.groups ?? 0);
      passCredentials(this.fd);
      this.port = netlinkPort(this.fd);
      this.watch = new SigioWatch(this.fd, this.wake);
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
    this.watch.arm();
    // A group's datagrams may have been queued since the bind, and raised
    // no signal: read them in the next turn, once the caller holds the socket.
    if (o.groups) setImmediate(this.wake);
  }

  /** SIGIO: datagrams are queued. The signals that follow it find the socket read already. */
  private readonly wake = (): void => {
    if (this.reading || this.closed) return;
    this.reading = true;
    this.watch.disarm();
    this.pump();
  };

  /**
   * Reads up to BATCH datagrams, and goes on in the next turn; once the
   * queue is empty, asks for the signal again, and reads once more after:
   * a datagram queued before that raised none.
   */
  private readonly pump = (): void => {
    for (let i = 0; i < BATCH; i++) {
      if (this.closed) return;
      const r = this.readOne();
      if (r === 'more') continue;
      // Empty, or a read error: the next signal brings the reader back.
      this.watch.arm();
      if (r === 'failed' || this.readOne() !== 'more') {
        this.reading = false;
        return;
      }
      this.watch.disarm();
    }
    if (!this.closed) setImmediate(this.pump);
  };

  /** One recvmsg(): a datagram handed on ('more'), none queued ('empty'), or a read error reported ('failed'). */
  private readOne(): 'more' | 'empty' | 'failed' {
    const { n, data, sender } = recvmsgNetlink(this.fd);
    if (data) {
      this.o.onDatagram(data, sender);
      return 'more';
    }
    if (n === -E.EAGAIN) return 'empty';
    if (n === -E.EINTR) return 'more';
    this.o.onError(errnoName(-n));
    // ENOBUFS is reported once (the receive queue overflowed) and the queue reads on.
    return n === -E.ENOBUFS ? 'more' : 'failed';
  }

  /**
   * Reads every datagram queued now, in this turn: for a reader that must
   * have seen all the kernel sent before some moment (a verdict), where
   * the signal-driven reads could still be a turn behind.
   */
  drain(): void {
    while (!this.closed && this.readOne() === 'more');
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
