/**
 * tcmu: the kernel side of one target_core_user backstore, as a consumer
 * such as tcmu-runner finds it.
 *
 * - A uio device (uio.c semantics, the uio model's read and poll): read(4)
 *   consumes the interrupt count; write(4) is tcmu_irqcontrol(), which
 *   reaps completions and retries commands waiting for ring space.
 * - map0: mailbox, command ring and data area in one region that is kept
 *   at unplug (target_core_user's pages outlive the uio device; a consumer
 *   that still maps them reads stale data, never SIGBUS).
 * - sysfs (sys/class/uio/uioN/) and configfs (sys/kernel/config/target/
 *   core/user_<hba>/<dev>/) files: see configfs.ts.
 * - Commands come from the initiator (actions) and the workload; unplug
 *   ends every one of them (TcmuRing.remove) and reports how.
 *
 * open: tcmu_open() refuses a second open with EBUSY (TCMU_DEV_BIT_OPEN).
 */
import { Errno } from '../../errno.js';
import type { DeviceModel, Instance } from '../../core/index.js';
import { raise, UIO_UNPLUGGED, uioModel, type UioState } from '../uio.js';
import { TCMU_MAILBOX_VERSION, TCMU_UFLAG_UNKNOWN_OP } from './abi.js';
import { tmrName } from './tmr.js';
import { tcmuActions } from './actions.js';
import { backstoreKey, TCMU_OPTIONS, tcmuConfig, uioName, type TcmuConfig, type TcmuConsumers } from './config.js';
import { tcmuAttributes } from './configfs.js';
import { TcmuRing } from './ring.js';
import { ackedKey, WORKLOAD_REPORT_FIELDS, type Workload } from './workload.js';

export interface TcmuState extends UioState {
  config: TcmuConfig;
  ring: TcmuRing;
  workload: Workload | null;
  /** TCMU_DEV_BIT_OPEN. */
  opened: boolean;
  /**
   * Set by the netlink family serving this device. Without one, the
   * kernel's multicast finds no listener: a reconfiguration fails ESRCH.
   */
  consumers: TcmuConsumers | null;
  /** attrib/nl_reply_supported as written (kstrtos8); null until then: it follows the consumers' SET_FEATURES. */
  nlReplySupported: number | null;
}

export type TcmuInstance = Instance<TcmuState>;

const uioRead = uioModel.read! as NonNullable<DeviceModel<TcmuState>['read']>;
const uioPoll = uioModel.poll! as NonNullable<DeviceModel<TcmuState>['poll']>;
const uioOpen = uioModel.open! as NonNullable<DeviceModel<TcmuState>['open']>;

export const tcmuModel: DeviceModel<TcmuState> = {
  name: 'tcmu',
  description: 'a TCMU (target_core_user) backstore: its uio node, command ring and configfs, with a SCSI initiator and workload as actions',
  options: TCMU_OPTIONS,
  stream: true, // as uio; opens with passthrough (map0) drop FOPEN_STREAM, which the kernel refuses with it
  // Without passthrough the ring pulls and pushes what its entries reference (TcmuRing.pullCompletions), not the whole map.
  regionSync: 'manual',
  unplugged: UIO_UNPLUGGED,
  regions(inst) {
    return [{ name: 'map0', size: tcmuConfig(inst.options).layout.mapSize, onUnplug: 'keep' }];
  },
  create(inst, options) {
    const config = tcmuConfig(options);
    const map0 = inst.regions[0]!;
    const ring = new TcmuRing(map0.bytes, config.layout, {
      cmdTimeOutMs: config.cmdTimeOutMs,
      qfullTimeOutMs: config.qfullTimeOutMs,
      sync: { pull: (ranges) => map0.pull(ranges), push: (ranges) => map0.push(ranges) },
      notify: () => raise(inst), // uio_event_notify()
      onExpired: (e) => inst.emit('tcmu_cmd_timeout', e),
      onExpiredReaped: (e) => inst.emit('tcmu_expired_reaped', { cmdIds: e.cmdIds, count: e.cmdIds.length, left: e.left }),
      onBroken: (reason) => inst.emit('tcmu_ring_broken', { reason }),
      tmrNotification: config.tmrNotification,
      onTmrReaped: (e) => inst.emit('tcmu_tmr_reaped', { function: tmrName(e.type), cmdIds: e.cmdIds, uflags: e.uflags, unknownOp: (e.uflags & TCMU_UFLAG_UNKNOWN_OP) !== 0 }),
    });
    return {
      count: 0,
      enabled: true,
      pending: false,
      oneShot: false,
      name: uioName(config),
      version: String(TCMU_MAILBOX_VERSION),
      config,
      ring,
      workload: null,
      opened: false,
      consumers: null,
      nlReplySupported: null,
    };
  },
  attributes: (inst) => tcmuAttributes(inst),
  open(file) {
    const s = file.instance.state;
    if (s.opened) throw new Errno('EBUSY');
    s.opened = true;
    uioOpen(file);
  },
  read: (file, size, signal) => uioRead(file, size, signal),
  /** uio_write() -> tcmu_irqcontrol(): the value is ignored; reap, then retry the qfull queue. */
  write(file, data) {
    if (data.length !== 4) throw new Errno('EINVAL');
    const ring = file.instance.state.ring;
    const kick = (): number => {
      ring.kick();
      return 4;
    };
    const pulled = ring.pullCompletions();
    return pulled ? pulled.then(kick) : kick();
  },
  poll: (file) => uioPoll(file),
  release(file) {
    file.instance.state.opened = false;
  },
  lateRelease(file) {
    file.instance.state.opened = false;
  },
  async remove(inst) {
    const s = inst.state;
    s.workload?.markRemoval();
    await s.ring.pullCompletions();
    const ended = s.ring.remove();
    const report = await s.workload?.finish();
    if (s.workload) inst.modelData.set(ackedKey(backstoreKey(s.config)), s.workload.acked());
    // The verdicts at top level, so a scenario's `wait: {event: {type: tcmu_removed, lost: 0}}` can check them.
    inst.emit('tcmu_removed', {
      endedByRemoval: ended.ended.length,
      doubleEnds: s.ring.doubleEnds,
      ...(report ? { lost: report.lost, verifyErrors: report.verifyErrors } : {}),
      commands: ended,
      ...(s.workload ? { workload: report, workloadAtRemoval: s.workload.atRemoval } : {}),
    });
  },
  actions: tcmuActions,
  events: {
    tcmu_cmd_timeout: ['cmdId', 'opcode', 'where'],
    tcmu_expired_reaped: ['cmdIds', 'count', 'left'],
    tcmu_ring_broken: ['reason'],
    tcmu_block_dev: ['blocked'],
    tcmu_reset_ring: ['level', 'failed'],
    tcmu_tmr: ['function', 'inRing', 'fromQfull', 'notified'],
    tcmu_tmr_done: ['function', 'waitedMs'],
    tcmu_tmr_reaped: ['function', 'cmdIds', 'uflags', 'unknownOp'],
    tcmu_workload_done: WORKLOAD_REPORT_FIELDS,
    tcmu_removed: ['endedByRemoval', 'doubleEnds', 'lost', 'verifyErrors', 'commands', 'workload', 'workloadAtRemoval'],
    // Recorded on the device by --preset tcmu (src/tcmu/device.ts, src/tcmu/netlink.ts).
    tcmu_draining: ['inflight', 'qfull', 'expired', 'cmdTimeOutMs', 'boundMs'],
    tcmu_quiesced: ['waitedMs', 'outstanding', 'expired'],
    netlink_sent: ['cmd', 'deviceId', 'ports'],
    netlink_timeout: ['cmd', 'deviceId', 'waitedMs'],
    netlink_done: ['cmd', 'deviceId', 'status', 'port'],
    netlink_refused: ['cmd', 'deviceId', 'errno', 'executing'],
    netlink_fault: ['message', 'deviceId', 'mode'],
    netlink_registered: ['port', 'pid', 'replies'],
    netlink_blocked: ['blocked'],
  },
};
