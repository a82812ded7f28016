/**
 * The kernel's process events (./cn-proc.ts) on a socket of this process:
 * every fork, exec, rename and exit on the machine, as it happens, read
 * from the main thread like any netlink socket here (./socket.ts).
 *
 * Not every process may listen. Joining the CN_IDX_PROC group needs
 * CAP_NET_ADMIN over the socket's network namespace (the connector sets
 * no NL_CFG_F_NONROOT_RECV: net/netlink/af_netlink.c netlink_bind()), the
 * kernel's connector socket lives in the initial network namespace only
 * (drivers/connector/connector.c cn_init(); from another, the request is
 * refused ECONNREFUSED), and cn_proc_mcast_ctl() drops, unanswered, a
 * request from outside the initial user and pid namespaces (the events'
 * ids are the initial namespace's), and refuses one without CAP_NET_ADMIN
 * there (EPERM). So a listener counts as listening only once the kernel
 * has acknowledged its own request; otherwise `open()` says why not.
 * Measured on Linux 6.18: root listens; an ordinary user's bind fails
 * EPERM, in the host's namespaces and in a user namespace of its own.
 */
import { randomInt } from 'node:crypto';
import { within } from '../awaitable.js';
import { Errno, errnoName } from '../errno.js';
import { NETLINK_CONNECTOR } from '../sys/ffi.js';
import { CN_IDX_PROC, decodeProcEvents, encodeMcastOp, PROC_CN_MCAST_IGNORE, PROC_CN_MCAST_LISTEN, type ProcEvent } from './cn-proc.js';
import { NetlinkSocket } from './socket.js';

export type { ProcEvent } from './cn-proc.js';

/** How long the kernel's answer to the request may take (it comes from the sender's own send, at once, when it comes at all). */
const ACK_MS = 2000;
/**
 * The receive queue asked for: the events of the whole machine come
 * unasked, and a queue that fills drops them (ENOBUFS). 4 MiB holds some
 * five thousand events (each skb costs about 800 bytes of it).
 */
const RECEIVE_BUFFER_BYTES = 4 << 20;

export interface ProcEventHandlers {
  /** Each event, in the order the kernel queued them; must not throw. */
  onEvent: (e: ProcEvent) => void;
  /** The kernel dropped events (its queue was full: ENOBUFS), or a read failed: some events are unknown. */
  onLost: (why: string) => void;
}

export class ProcEventListener {
  private closed = false;

  private constructor(private readonly socket: NetlinkSocket) {}

  /**
   * A listener receiving the events, once the kernel has acknowledged it;
   * or, where this process may not listen, why not (for a note).
   */
  static async open(h: ProcEventHandlers): Promise<ProcEventListener | { unavailable: string }> {
    const token = randomInt(1, 0x7fffffff);
    let listening = false;
    let answered!: (err: number) => void;
    const ack = new Promise<number>((r) => (answered = r));
    let socket: NetlinkSocket;
    try {
      socket = new NetlinkSocket({
        protocol: NETLINK_CONNECTOR,
        groups: CN_IDX_PROC,
        receiveBufferBytes: RECEIVE_BUFFER_BYTES,
        onDatagram: (data, sender) => {
          // The kernel's, from port 0: any local process may send to this socket's port too.
          if (sender.port !== 0) return;
          let events: ProcEvent[];
          try {
            events = decodeProcEvents(data);
          } catch (err) {
            h.onLost(`a malformed datagram: ${err instanceof Error ? err.message : String(err)}`);
            return;
          }
          for (const e of events) {
            if (e.kind === 'ack') {
              if (e.token === token) answered(e.err);
            } else if (listening) h.onEvent(e);
          }
        },
        onError: (code) => h.onLost(code === 'ENOBUFS' ? 'the kernel dropped events (ENOBUFS: the receive queue was full)' : `a read failed: ${code}`),
      });
    } catch (err) {
      return { unavailable: why(err, 'joining the process events group') };
    }
    try {
      socket.send(0, encodeMcastOp(PROC_CN_MCAST_LISTEN, token, socket.port));
    } catch (err) {
      await socket.close();
      return { unavailable: why(err, 'asking the kernel for process events') };
    }
    const err = await within<number | null>(ack, ACK_MS, () => null);
    if (err !== 0) {
      await socket.close();
      if (err === null) return { unavailable: `the kernel did not answer the request for process events within ${ACK_MS} ms (it answers only the initial user and pid namespaces)` };
      return { unavailable: `the kernel refused process events: ${errnoName(err)}${err === 1 ? ' (CAP_NET_ADMIN needed)' : ''}` };
    }
    listening = true;
    return new ProcEventListener(socket);
  }

  /** The socket's netlink port: where the kernel's events come, and where anyone else's datagrams would. */
  get port(): number {
    return this.socket.port;
  }

  /** Reads every event the kernel has queued by now (see NetlinkSocket.drain()). */
  drain(): void {
    if (!this.closed) this.socket.drain();
  }

  /** Tells the kernel this socket no longer listens (its count of listeners, proc_event_num_listeners), and closes it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.send(0, encodeMcastOp(PROC_CN_MCAST_IGNORE, 0, this.socket.port));
    } catch {
      // the close forgets the socket all the same
    }
    await this.socket.close();
  }
}

function why(err: unknown, doing: string): string {
  if (err instanceof Errno) return `${doing} failed: ${err.code}${err.code === 'EPERM' ? ' (it needs CAP_NET_ADMIN in the initial user namespace: root)' : ''}`;
  return `${doing} failed: ${err instanceof Error ? err.message : String(err)}`;
}
