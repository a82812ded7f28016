/**
 * The tcmu model (src/models/tcmu) as the TCM-USER family sees it: how an
 * instance is named in events, and how its I/O is stopped before it is
 * destroyed in the kernel's order.
 */
import type { Instance } from '../core/index.js';
import type { TcmuConsumers } from '../models/tcmu/config.js';
import type { TcmuState } from '../models/tcmu/model.js';
import type { TcmuDeviceRef } from './family.js';

const POLL_MS = 10;

function tcmuMinor(inst: Instance<unknown>): number | null {
  const m = /^uio(\d+)$/.exec(inst.nodePath);
  return inst.model === 'tcmu' && m ? Number(m[1]) : null;
}

/** A tcmu instance's uio name and minor (uioN); null for other devices. */
export function describeTcmu(inst: Instance<unknown>): Omit<TcmuDeviceRef, 'deviceId'> | null {
  const minor = tcmuMinor(inst);
  return minor === null ? null : { uioName: (inst.state as TcmuState).name, minor };
}

/** TcmuNetlinkOptions.attach: where a tcmu instance's configfs writes find the consumers. */
export function attachTcmu(inst: Instance<unknown>, consumers: TcmuConsumers | null): void {
  if (tcmuMinor(inst) !== null) (inst.state as TcmuState).consumers = consumers;
}

/**
 * Stops the initiator's I/O and waits (bounded) until the consumer has
 * ended every command in the ring or waiting for room: what unlinking the
 * LUNs does before a backstore can be removed (transport_clear_lun_ref()).
 * Records `tcmu_quiesced` with what was still out when it gave up, if anything.
 */
export async function quiesceTcmu(inst: Instance<unknown>, timeoutMs: number): Promise<void> {
  const s = inst.state as TcmuState;
  s.workload?.stop();
  const started = performance.now();
  const out = (): number => s.ring.stats.inflight + s.ring.stats.qfull;
  while (out() > 0 && performance.now() - started < timeoutMs) await new Promise((r) => setTimeout(r, POLL_MS));
  inst.emit('tcmu_quiesced', { waitedMs: Math.round(performance.now() - started), outstanding: out() });
}
