/**
 * The kernel side of the TCM-USER generic netlink family, emulated on a
 * NETLINK_USERSOCK socket (a userspace process cannot register a genl
 * family). libtcmu finds it through the LD_PRELOAD shim (./shim/), which
 * points its socket at this one's port; everything it sends and receives
 * is the ordinary genl format, so the real libnl parses it.
 *
 * What target_core_user.c does, and what this does:
 * - SET_FEATURES (tcmu_genl_set_features()): acked. The sender becomes a
 *   consumer: a member of the "config" multicast group.
 * - Plugging a tcmu device sends ADDED_DEVICE (tcmu_send_dev_add_event())
 *   and waits for ADDED_DEVICE_DONE; an orderly unplug sends
 *   REMOVED_DEVICE and waits for its DONE before the uio device goes
 *   (tcmu_destroy_device() before uio_unregister_device()). A surprise
 *   unplug sends nothing.
 * - *_DONE replies (tcmu_genl_cmd_done()) complete the pending event of
 *   the device whose DEVICE_ID they carry: ENODEV if none is pending,
 *   EINVAL if it is for another command or lacks CMD_STATUS/DEVICE_ID.
 * - A request with NLM_F_ACK gets an NLMSG_ERROR with the handler's result
 *   (netlink_rcv_skb()); an unknown command gets EOPNOTSUPP.
 *
 * Departures: an event goes to each consumer's port rather than to a
 * multicast group, because NETLINK_USERSOCK's groups are shared by every
 * process in the network namespace and two emulators (parallel test runs)
 * would hear each other's devices; to the receiver the two are the same
 * datagram. The wait for a reply has no bound, as the kernel's
 * wait_for_completion() in tcmu_wait_genl_cmd_reply() has none, unless the
 * unplug gives one (`noticeTimeoutMs`): then a consumer that never answers
 * is reported (`netlink_timeout`) and the unplug goes on.
 *
 * Who may speak: the kernel's commands need CAP_NET_ADMIN
 * (GENL_ADMIN_PERM in tcmu_genl_ops); NETLINK_USERSOCK lets any process of
 * the network namespace send here, and the port is in /proc/net/netlink.
 * So every datagram's sender, by the pid the kernel recorded when it was
 * sent (SCM_CREDENTIALS), must be one `accepts` takes (the program under
 * test and its descendants, ./program-tree.ts); any other is dropped
 * unanswered, counted, and logged within a bound (../netlink/log-limit.ts).
 * A consumer is known by its socket, not its port number: before each
 * event, a port whose socket closed (another may have bound the number
 * since) stops being a consumer.
 */
import type { DeviceManager, Instance, LifecycleHooks, Logger } from '../core/index.js';
import { Errno, errnoNumber } from '../errno.js';
import { attr, decodeGenl, encodeAck, GENL_MIN_ID, NLM_F_ACK, NLMSG_ERROR, splitMessages, type GenlMessage, type RawMessage } from '../netlink/genl.js';
import type { TcmuConsumers, TcmuReconfig } from '../models/tcmu/config.js';
import { LogLimit } from '../netlink/log-limit.js';
import { boundPorts, holdsSocket } from '../netlink/ports.js';
import { NetlinkSocket, type NetlinkSender } from '../netlink/socket.js';
import { NETLINK_USERSOCK } from '../sys/ffi.js';
import { cmdName, DONE_OF, encodeEvent, TcmuAttr, TcmuCmd, type EventCmd, type TcmuDeviceRef } from './family.js';
import { eventCmd, NetlinkFaults, readNetlinkFault } from './netlink-faults.js';
import { within } from '../awaitable.js';

/** The CMD_STATUS an event that ended unanswered reports: tcmu_fail_netlink_cmd() sets -EINTR, a value of the netlink wire. */
const INTERRUPTED_STATUS = -errnoNumber('EINTR');

/** The variable that makes the shim point libtcmu at an emulator: "PORT:FAMILY:GROUP". */
export const SHIM_ENV = 'CDEVEMU_TCMU_NETLINK';

/** A family id above the kernel's fixed ones (GENL_MIN_ID); any will do, the shim passes it on. */
const DEFAULT_FAMILY_ID = GENL_MIN_ID + 0x0c;
/** How long a reply may overtake the RELEASE of the file it closed. */
const RELEASE_SETTLE_MS = 1000;

export interface TcmuNetlinkOptions {
  devices: DeviceManager;
  logger: Logger & { debug?(obj: object, msg: string): void };
  /** Which instances are tcmu devices, and how the kernel names them in an event; null for others. */
  describe: (inst: Instance<unknown>) => Omit<TcmuDeviceRef, 'deviceId'> | null;
  /**
   * Runs before REMOVED_DEVICE: what the target core does before a
   * backstore can be destroyed (its LUNs are unlinked and their commands
   * drained, so the kernel never sends REMOVED_DEVICE with I/O in flight).
   * No bound unless `timeoutMs` is given.
   */
  quiesce?: (inst: Instance<unknown>, timeoutMs?: number) => Promise<void>;
  /**
   * Gives a tcmu instance the means to ask the consumers about a
   * reconfiguration (its configfs attribute writes), or takes it back (null).
   */
  attach?: (inst: Instance<unknown>, consumers: TcmuConsumers | null) => void;
  /** Whether the device's own nl_reply_supported lets its events wait for replies (> 0, or not set); default yes. */
  deviceReplies?: (inst: Instance<unknown>) => boolean;
  /**
   * Whether the process that sent a datagram (its pid as the kernel
   * recorded it at send time) may act as a consumer. Datagrams from any
   * other are dropped, unanswered.
   */
  accepts: (pid: number) => boolean;
}

/** How an event ended. */
export type EventOutcome =
  | { result: 'done'; status: number; port: number }
  | { result: 'timeout'; waitedMs: number }
  | { result: 'no consumer' }
  /** tcmu_init_genl_cmd_reply() refused it: EBUSY (another event of the device waits for its reply), EAGAIN (block_netlink). */
  | { result: 'refused'; errno: 'EBUSY' | 'EAGAIN' };

interface Pending {
  cmd: EventCmd;
  resolve: (r: { status: number; port: number }) => void;
}

export class TcmuNetlink {
  readonly familyId = DEFAULT_FAMILY_ID;
  /** The "config" group's number, which genl_ctrl_resolve_grp() answers. */
  readonly group = 1;
  private readonly sock: NetlinkSocket;
  /**
   * Ports that sent SET_FEATURES, the inode of the socket that held the
   * port then, and whether they promised *_DONE replies (SUPP_KERN_CMD_REPLY).
   */
  private readonly consumers = new Map<number, { inode: number; replies: boolean }>();
  /** Datagrams dropped: from a process `accepts` refused, or malformed (the datagram or a message in it). */
  readonly dropped = { foreign: 0, malformed: 0 };
  /** Warnings about what senders did, bounded. */
  private readonly limit: LogLimit;
  /** The event each device waits on, by DEVICE_ID: one at a time, like udev->curr_nl_cmd. */
  private readonly pending = new Map<number, Pending>();
  private readonly removeHooks: () => void;
  /** se_dev.dev_index: a number per device, from a counter, never reused. */
  private readonly deviceIds = new WeakMap<Instance<unknown>, number>();
  private nextDeviceId = 1;
  /** Set by close(): events still queued behind others find no socket to send on. */
  private closed = false;
  /** The module's block_netlink parameter (tcmu_netlink_blocked). */
  private netlinkBlocked = false;

  get blocked(): boolean {
    return this.netlinkBlocked;
  }

  /**
   * block_netlink written. A daemon sets it while it starts (tcmu-runner:
   * block, reset, open its devices, unblock), so its clearing is when
   * devices can be added: recorded as `netlink_blocked` on the live tcmu
   * devices, for a scenario to wait on.
   */
  set blocked(on: boolean) {
    if (on === this.netlinkBlocked) return;
    this.netlinkBlocked = on;
    for (const inst of this.o.devices.list()) {
      if (inst.lifecycle === 'live' && this.o.describe(inst)) inst.emit('netlink_blocked', { blocked: on });
    }
  }
  /** Each device's netlink faults, by DEVICE_ID. */
  private readonly faults = new Map<number, NetlinkFaults>();

  constructor(private readonly o: TcmuNetlinkOptions) {
    this.limit = new LogLimit((obj, msg) => o.logger.warn(obj, msg));
    this.sock = new NetlinkSocket({
      protocol: NETLINK_USERSOCK,
      onDatagram: (d, sender) => this.receive(d, sender),
      onError: (code) => this.limit.report('tcmu netlink: receive failed', { code }),
    });
    for (const inst of o.devices.list()) this.attach(inst);
    const hooks: LifecycleHooks = {
      // tcmu_configure_device(): a negative ADDED_DEVICE_DONE fails the
      // configuration (err_netlink: the uio device is unregistered), so the
      // plug fails with that status and nothing stays plugged.
      plugged: async (inst) => {
        this.attach(inst);
        if (this.consumers.size === 0 || !o.describe(inst)) return;
        const r = await this.event(inst, TcmuCmd.ADDED_DEVICE);
        if (r.result === 'done' && r.status < 0) throw statusErrno(r.status, `${inst.name}: the consumer answered ADDED_DEVICE_DONE with status ${r.status}`);
        if (r.result === 'refused') throw new Errno(r.errno, `${inst.name}: ADDED_DEVICE refused (${r.errno === 'EAGAIN' ? 'block_netlink is set' : 'another event is executing'})`);
      },
      // tcmu_destroy_device() runs once the LUNs are gone (their commands
      // drained, by the consumer or by cmd_time_out, consumer or none); it
      // sends REMOVED_DEVICE and waits for the reply before
      // uio_unregister_device().
      unplugging: async (inst, { noticeTimeoutMs }) => {
        if (!o.describe(inst)) return;
        await o.quiesce?.(inst, noticeTimeoutMs);
        const r = await this.event(inst, TcmuCmd.REMOVED_DEVICE, undefined, noticeTimeoutMs);
        if (r.result === 'done') await this.releasesSettled(inst);
      },
    };
    this.removeHooks = o.devices.addHooks(hooks);
  }

  private attach(inst: Instance<unknown>): void {
    if (!this.o.describe(inst)) return;
    this.o.attach?.(inst, {
      reconfigure: (r) => this.reconfigure(inst, r),
      replySupported: () => this.replySupported(),
      action: (name, arg) => this.action(inst, name, arg),
    });
  }

  /** tcmu_kern_cmd_reply_supported: a registered consumer promised *_DONE replies. */
  private replySupported(): boolean {
    for (const c of this.consumers.values()) if (c.replies) return true;
    return false;
  }

  /**
   * The tcmu model's netlink actions on a device:
   * - netlink_send {cmd, wait? true}: sends the event now, outside a plug
   *   or unplug (REMOVED_DEVICE for a device that stays, say), waiting for
   *   its reply unless `wait` is false (then a reply finds nothing waiting);
   * - netlink_fault {on, cmd, mode, delayMs?, times?}: ./netlink-faults.ts;
   * - netlink_release: delivers what the faults hold;
   * - netlink_faults_clear: removes the device's rules;
   * - block_netlink {block}, reset_netlink: the module's parameters
   *   (./module-params.ts), for the whole family, as a scenario step.
   */
  private async action(inst: Instance<unknown>, name: string, arg: Record<string, unknown>): Promise<unknown> {
    const dev = this.ref(inst)!;
    const faults = this.faultsOf(dev.deviceId);
    switch (name) {
      case 'netlink_send': {
        // The argument is checked against the action's schema (src/models/tcmu/actions.ts).
        const cmd = eventCmd(arg.cmd, 'action netlink_send: cmd');
        const out = await this.event(inst, cmd, undefined, undefined, arg.wait !== false);
        return { cmd: cmdName(cmd), deviceId: dev.deviceId, ...out };
      }
      case 'netlink_fault':
        faults.add(readNetlinkFault(arg));
        return { deviceId: dev.deviceId };
      case 'netlink_release':
        return { released: faults.release() };
      case 'netlink_faults_clear':
        return { cleared: faults.clear() };
      case 'block_netlink':
        this.blocked = arg.block === true;
        return { blocked: this.blocked };
      case 'reset_netlink': {
        const waiting = this.pending.size;
        this.resetNetlink();
        return { failed: waiting };
      }
      default:
        throw new Errno('EINVAL', `tcmu: no netlink action ${name}`);
    }
  }

  private faultsOf(deviceId: number): NetlinkFaults {
    let f = this.faults.get(deviceId);
    if (!f) this.faults.set(deviceId, (f = new NetlinkFaults()));
    return f;
  }

  /**
   * tcmu_netlink_event_send(RECONFIG_DEVICE): the attribute write succeeds
   * only if a consumer answered RECONFIG_DEVICE_DONE with status 0. No
   * listener fails it ESRCH (genlmsg_multicast_allns), a negative status
   * with that errno. The write waits for the reply as long as it takes.
   */
  private async reconfigure(inst: Instance<unknown>, r: TcmuReconfig): Promise<void> {
    const out = await this.event(inst, TcmuCmd.RECONFIG_DEVICE, r);
    if (out.result === 'no consumer') throw new Errno('ESRCH');
    if (out.result === 'timeout') throw new Errno('ETIMEDOUT');
    if (out.result === 'refused') throw new Errno(out.errno);
    if (out.status < 0) throw statusErrno(out.status);
  }

  get port(): number {
    return this.sock.port;
  }

  /** The value of SHIM_ENV for a program that should find this emulator. */
  get shimEnv(): string {
    return `${this.port}:${this.familyId}:${this.group}`;
  }

  /** Ports of the registered consumers. */
  get consumerPorts(): number[] {
    return [...this.consumers.keys()];
  }

  /**
   * Sends `cmd` about a tcmu instance to every consumer and waits for the
   * first *_DONE (for ever, unless `timeoutMs`). Events are recorded on the
   * instance: `netlink_sent`, then `netlink_done` or `netlink_timeout`.
   *
   * tcmu_init_genl_cmd_reply(): a reply is waited for only when a consumer
   * promised replies and the device's nl_reply_supported allows it (and,
   * here, `wait` is not false). Such an event is refused at once, nothing
   * sent, while block_netlink is set (EAGAIN: "Interface is blocked") or
   * while another event of the device waits for its reply (EBUSY: "netlink
   * cmd %d already executing"); no queue. Recorded as `netlink_refused`. A
   * configfs write then fails with that errno, a plug fails, and an unplug
   * goes on without REMOVED_DEVICE (tcmu_destroy_device() ignores it).
   */
  async event(inst: Instance<unknown>, cmd: EventCmd, reconfig?: TcmuReconfig, timeoutMs?: number, wait = true): Promise<EventOutcome> {
    const dev = this.ref(inst);
    if (!dev) throw new Errno('EINVAL', `${inst.name} is not a tcmu device`);
    if (this.closed) return { result: 'no consumer' };
    this.forgetClosedConsumers();
    const tracked = wait && this.replySupported() && (this.o.deviceReplies?.(inst) ?? true);
    let reply: Promise<{ status: number; port: number }> | null = null;
    if (tracked) {
      const executing = this.pending.get(dev.deviceId);
      if (this.blocked || executing) {
        const errno = this.blocked ? 'EAGAIN' : 'EBUSY';
        inst.emit('netlink_refused', { cmd: cmdName(cmd), deviceId: dev.deviceId, errno, ...(executing ? { executing: cmdName(executing.cmd) } : {}) });
        this.o.logger.warn(
          { device: inst.name, errno },
          this.blocked
            ? `tcmu netlink: failing ${cmdName(cmd)} on ${inst.name}: the interface is blocked (block_netlink)`
            : `tcmu netlink: ${cmdName(executing!.cmd)} already executing on ${inst.name}; ${cmdName(cmd)} refused`,
        );
        return { result: 'refused', errno };
      }
      reply = new Promise((resolve) => this.pending.set(dev.deviceId, { cmd, resolve }));
    }
    const reached = this.multicast(inst, dev, cmd, encodeEvent(this.familyId, cmd, dev, reconfig));
    if (reached.length === 0) {
      this.pending.delete(dev.deviceId);
      return { result: 'no consumer' };
    }
    inst.emit('netlink_sent', { cmd: cmdName(cmd), deviceId: dev.deviceId, ports: reached });
    if (!reply) return { result: 'done', status: 0, port: 0 };
    const started = performance.now();
    const r = timeoutMs === undefined ? await reply : await within(reply, timeoutMs, () => null);
    this.pending.delete(dev.deviceId);
    if (!r) {
      const waitedMs = Math.round(performance.now() - started);
      inst.emit('netlink_timeout', { cmd: cmdName(cmd), deviceId: dev.deviceId, waitedMs });
      this.o.logger.warn({ device: inst.name, waitedMs }, `tcmu netlink: no ${cmdName(DONE_OF[cmd])} within ${waitedMs} ms`);
      return { result: 'timeout', waitedMs };
    }
    inst.emit('netlink_done', { cmd: cmdName(DONE_OF[cmd]), deviceId: dev.deviceId, status: r.status, port: r.port });
    return { result: 'done', ...r };
  }

  /**
   * genlmsg_multicast_allns() to every consumer: the ports it went to (or,
   * under a fault that drops, delays or holds it, would go to).
   */
  private multicast(inst: Instance<unknown>, dev: TcmuDeviceRef, cmd: EventCmd, msg: Buffer): number[] {
    const ports = [...this.consumers.keys()];
    if (ports.length === 0) return [];
    const delivered: number[] = [];
    const deliver = (): void => {
      for (const port of ports) {
        try {
          this.sock.send(port, msg);
          delivered.push(port);
        } catch (err) {
          // ECONNREFUSED: the consumer exited; it leaves the group, as its socket
          // would. Anything else (EAGAIN: its queue is full) loses this message
          // only, as a multicast to a full socket does.
          const code = (err as NodeJS.ErrnoException).code;
          const gone = code === 'ECONNREFUSED';
          this.o.logger.warn({ code, port, device: inst.name }, `tcmu netlink: ${cmdName(cmd)} not delivered to port ${port}${gone ? '; dropping it' : ''}`);
          if (gone) this.consumers.delete(port);
        }
      }
    };
    const fault = this.faultsOf(dev.deviceId).apply('event', cmd, () => {
      if (!this.closed) deliver();
    });
    if (!fault) return delivered;
    inst.emit('netlink_fault', { message: NetlinkFaults.label('event', cmd), deviceId: dev.deviceId, mode: fault });
    return ports;
  }

  /**
   * The consumer closed and unmapped the device before it answered
   * (libtcmu's device_close_shm() runs before send_netlink_reply()). In the
   * kernel that release has run by then (the last fput()); over FUSE the
   * RELEASE request travels on its own and may arrive after the reply, so
   * wait for it, briefly, before the device goes.
   */
  private async releasesSettled(inst: Instance<unknown>): Promise<void> {
    await within(inst.whenReleased(), RELEASE_SETTLE_MS, () => {});
  }

  private ref(inst: Instance<unknown>): TcmuDeviceRef | null {
    const d = this.o.describe(inst);
    if (!d) return null;
    let deviceId = this.deviceIds.get(inst);
    if (deviceId === undefined) this.deviceIds.set(inst, (deviceId = this.nextDeviceId++));
    return { ...d, deviceId };
  }

  /**
   * Forgets the consumers whose socket has closed: the port number is free
   * for any process to bind, and an event sent there would reach it. A
   * closed socket leaves its multicast groups in the kernel too.
   */
  private forgetClosedConsumers(): void {
    if (this.consumers.size === 0) return;
    const bound = boundPorts(NETLINK_USERSOCK);
    for (const [port, c] of this.consumers) if (bound.get(port) !== c.inode) this.consumers.delete(port);
  }

  /**
   * `sender.port` is the sender's real port (NETLINK_CB(skb).portid in the
   * kernel): consumers are known, and answered, by it, not by the
   * nlmsg_pid they wrote. Malformed input is expected from other
   * processes: it gets a bounded warning with the reason, never a stack.
   */
  private receive(datagram: Buffer, sender: NetlinkSender): void {
    const from = sender.port;
    if (!this.o.accepts(sender.pid)) {
      this.dropped.foreign++;
      this.limit.report('tcmu netlink: datagram dropped: its sender is not the program under test or one of its descendants', { sender });
      return;
    }
    let messages: RawMessage[];
    try {
      messages = splitMessages(datagram);
    } catch (err) {
      this.dropped.malformed++;
      this.limit.report('tcmu netlink: malformed datagram dropped', { sender, reason: (err as Error).message });
      return;
    }
    for (const m of messages) {
      if (m.type === NLMSG_ERROR) continue; // an ack of something we sent; we never ask for one
      if (m.type !== this.familyId) {
        this.answer(m, from, new Errno('ENOENT')); // no such family, as genl_rcv_msg() answers
        continue;
      }
      let g: GenlMessage;
      try {
        g = decodeGenl(m);
      } catch (err) {
        this.dropped.malformed++;
        this.limit.report('tcmu netlink: malformed message dropped', { sender, reason: (err as Error).message });
        this.answer(m, from, new Errno('EINVAL'));
        continue;
      }
      if (eventOfDone(g.cmd) !== undefined) this.receiveDone(m, g, sender);
      else this.answer(m, from, this.handle(g, sender));
    }
  }

  /** A *_DONE, through the device's reply faults: handled and acked now, later, or never. */
  private receiveDone(m: RawMessage, g: GenlMessage, sender: NetlinkSender): void {
    const handle = (): void => this.answer(m, sender.port, this.done(g, sender));
    const deviceId = attr.u32(g.attrs.get(TcmuAttr.DEVICE_ID));
    const event = eventOfDone(g.cmd)!;
    if (deviceId === undefined || !this.faults.has(deviceId)) return handle();
    const fault = this.faultsOf(deviceId).apply('reply', event, () => {
      if (!this.closed) handle();
    });
    if (!fault) return;
    const inst = this.o.devices.list().find((i) => this.deviceIds.get(i) === deviceId);
    inst?.emit('netlink_fault', { message: NetlinkFaults.label('reply', event), deviceId, mode: fault });
  }

  /** A request's result: null (done) or the Errno a genl doit() would return negated. */
  private handle(g: GenlMessage, sender: NetlinkSender): Errno | null {
    const from = sender.port;
    switch (g.cmd) {
      case TcmuCmd.SET_FEATURES: {
        // The socket on the port must be the sender's own: had it closed
        // since, the number could be a stranger's by now.
        const inode = boundPorts(NETLINK_USERSOCK).get(from);
        if (inode === undefined || !holdsSocket(sender.pid, inode)) return new Errno('ECONNREFUSED');
        const announced = attr.u8(g.attrs.get(TcmuAttr.SUPP_KERN_CMD_REPLY));
        const known = this.consumers.get(from);
        // Without the attribute, what this socket said before stands (tcmu_genl_set_features() sets only what it is given).
        const replies = announced !== undefined ? announced !== 0 : known?.inode === inode && known.replies;
        this.consumers.set(from, { inode, replies });
        // Readiness: a scenario can wait for the daemon instead of sleeping.
        if (known?.inode !== inode || known.replies !== replies) {
          for (const inst of this.o.devices.list()) {
            if (inst.lifecycle === 'live' && this.o.describe(inst)) inst.emit('netlink_registered', { port: from, pid: sender.pid, replies });
          }
        }
        return null;
      }
      default:
        return new Errno('EOPNOTSUPP');
    }
  }

  private done(g: GenlMessage, sender: NetlinkSender): Errno | null {
    const status = attr.s32(g.attrs.get(TcmuAttr.CMD_STATUS));
    const deviceId = attr.u32(g.attrs.get(TcmuAttr.DEVICE_ID));
    if (status === undefined || deviceId === undefined) {
      this.limit.report('tcmu netlink: a *_DONE without CMD_STATUS or DEVICE_ID, doing nothing', { sender, cmd: cmdName(g.cmd) });
      return new Errno('EINVAL');
    }
    const p = this.pending.get(deviceId);
    if (!p) {
      this.limit.report('tcmu netlink: a *_DONE for a device that waits for nothing', { sender, cmd: cmdName(g.cmd), deviceId });
      return new Errno('ENODEV');
    }
    if (DONE_OF[p.cmd] !== g.cmd) {
      this.limit.report('tcmu netlink: a *_DONE for another event than the one the device waits for', {
        sender,
        cmd: cmdName(g.cmd),
        expected: cmdName(DONE_OF[p.cmd]),
        deviceId,
      });
      return new Errno('EINVAL');
    }
    this.pending.delete(deviceId);
    p.resolve({ status, port: sender.port });
    return null;
  }

  /** netlink_ack(): to the port the message came from, whatever its nlmsg_pid says; the wire carries the errno negated. */
  private answer(m: RawMessage, to: number, error: Errno | null): void {
    if (!(m.flags & NLM_F_ACK) && error === null) return;
    try {
      this.sock.send(to, encodeAck(m, error ? -error.errno : 0));
    } catch (err) {
      // EAGAIN: the sender asks for acks it does not read.
      this.limit.report('tcmu netlink: ack not delivered', { port: to, code: (err as NodeJS.ErrnoException).code });
    }
  }

  /**
   * tcmu_set_reset_netlink(): every event waiting for its reply ends with
   * -EINTR (tcmu_fail_netlink_cmd); refused EBUSY ("Netlink is not
   * blocked") unless block_netlink is set, as soon as one is waiting.
   */
  resetNetlink(): void {
    for (const [deviceId, p] of this.pending) {
      if (!this.blocked) throw new Errno('EBUSY', 'tcmu netlink: could not reset the netlink interface: it is not blocked');
      this.pending.delete(deviceId);
      p.resolve({ status: INTERRUPTED_STATUS, port: 0 });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.removeHooks();
    for (const inst of this.o.devices.list()) if (this.o.describe(inst)) this.o.attach?.(inst, null);
    // As reset_netlink fails what waits (tcmu_fail_netlink_cmd: -EINTR).
    for (const p of this.pending.values()) p.resolve({ status: INTERRUPTED_STATUS, port: 0 });
    this.pending.clear();
    await this.sock.close();
    this.limit.flush();
  }
}

/** A *_DONE's negative status as the errno the kernel passes on (EIO for a number that is none). */
function statusErrno(status: number, message?: string): Errno {
  return -status < 4096 ? new Errno(-status, message) : new Errno('EIO', message);
}

/** The event a *_DONE answers; undefined for any other command. */
function eventOfDone(cmd: number): EventCmd | undefined {
  for (const [event, done] of Object.entries(DONE_OF)) if (done === cmd) return Number(event) as EventCmd;
  return undefined;
}
