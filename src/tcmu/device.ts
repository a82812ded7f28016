/**
 * The tcmu model (src/models/tcmu) as the TCM-USER family sees it: how an
 * instance is named in events, and how its I/O is stopped before it is
 * destroyed in the kernel's order.
 */
import type { Instance } from '../core/index.js';
import type { TcmuConsumers } from '../models/tcmu/config.js';
import type { TcmuState } from '../models/tcmu/model.js';
import type { TcmuDeviceRef } from './family.js';
import { within } from '../awaitable.js';

function tcmuMinor(inst: Instance<unknown>): number | null {
  const m = /^uio(\d+)$/.exec(inst.nodePath);
  return inst.model === 'tcmu' && m ? Number(m[1]) : null;
}

/** A tcmu instance's uio name and minor (uioN); null for other devices. */
export function describeTcmu(inst: Instance<unknown>): Omit<TcmuDeviceRef, 'deviceId'> | null {
  const minor = tcmuMinor(inst);
  return minor === null ? null : { uioName: (inst.state as TcmuState).name, minor };
}

/** TcmuNetlinkOptions.deviceReplies: attrib/nl_reply_supported, unless written, does not stop the wait. */
export function tcmuDeviceReplies(inst: Instance<unknown>): boolean {
  const v = (inst.state as TcmuState).nlReplySupported;
  return v === null || v > 0;
}

/** TcmuNetlinkOptions.attach: where a tcmu instance's configfs writes find the consumers. */
export function attachTcmu(inst: Instance<unknown>, consumers: TcmuConsumers | null): void {
  if (tcmuMinor(inst) !== null) (inst.state as TcmuState).consumers = consumers;
}

/**
 * What unlinking a backstore's LUNs does before it can be destroyed
 * (transport_clear_lun_ref(): every command the LUN holds ends first): the
 * initiator's I/O stops, then the wait lasts until every command has ended,
 * whether the consumer completed it or its cmd_time_out (or
 * qfull_time_out) ended it. Like the kernel's, the wait has no bound of its
 * own (with cmd_time_out 0 a stalled consumer holds it for ever) unless the
 * unplug gives one (`noticeTimeoutMs`). Records `tcmu_draining` with what
 * is out, then `tcmu_quiesced` with what was still out when it ended
 * (`outstanding` is 0 unless the bound ran out).
 */
export async function quiesceTcmu(inst: Instance<unknown>, timeoutMs?: number): Promise<void> {
  const s = inst.state as TcmuState;
  s.workload?.stop();
  const started = performance.now();
  const at = s.ring.stats;
  inst.emit('tcmu_draining', { inflight: at.inflight, qfull: at.qfull, expired: at.expired, cmdTimeOutMs: s.config.cmdTimeOutMs, boundMs: timeoutMs ?? null });
  await (timeoutMs === undefined ? s.ring.drained() : within(s.ring.drained(), timeoutMs, () => {}));
  const end = s.ring.stats;
  inst.emit('tcmu_quiesced', { waitedMs: Math.round(performance.now() - started), outstanding: end.inflight + end.qfull, expired: end.expired });
}
