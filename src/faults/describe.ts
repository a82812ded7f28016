/**
 * A fault rule in words: what it matches, when it triggers, what it does
 * (`uio0 read nth=3 -> fail errno=EIO`). `cdevemu fault ls` and `fault
 * add` print it; the daemon logs each rule added or removed with it.
 */
import { FAULT_OPS, ruleOps, type FaultRule } from './rule.js';

const TRIGGERS = ['nth', 'every', 'first', 'probability', 'afterMs'] as const;
const ACTION_FIELDS = ['errno', 'delayMs', 'jitterMs', 'bytes', 'count'] as const;

/** The calls it matches: `uio0 read,write ioctl=0x5401 comm=cat`. */
export function faultMatch(r: FaultRule): string {
  // Without `op`, the ops its action applies to (short: read and write only).
  const ops = ruleOps(r);
  const parts = [r.device, ops.length === FAULT_OPS.length ? 'any op' : ops.join(',')];
  if (r.ioctl !== undefined) parts.push(`ioctl=0x${r.ioctl.toString(16)}`);
  if (r.pid !== undefined) parts.push(`pid=${r.pid}`);
  if (r.comm !== undefined) parts.push(`comm=${r.comm}`);
  return parts.join(' ');
}

/** Which of them it acts on: `nth=3`, `probability=0.1 seed=7`, `always`. */
export function faultTrigger(r: FaultRule): string {
  const parts = TRIGGERS.filter((k) => r[k] !== undefined).map((k) => `${k}=${r[k]}`);
  if (r.probability !== undefined && r.seed !== undefined) parts.push(`seed=${r.seed}`);
  return parts.join(' ') || 'always';
}

/** What it does: `fail errno=EIO`, `delay delayMs=50 jitterMs=10`. */
export function faultAction(r: FaultRule): string {
  return [r.action, ...ACTION_FIELDS.filter((k) => r[k] !== undefined).map((k) => `${k}=${r[k]}`)].join(' ');
}

/** The whole rule in one phrase: `uio0 read nth=3 -> fail errno=EIO`. */
export function describeFault(r: FaultRule): string {
  return `${faultMatch(r)} ${faultTrigger(r)} -> ${faultAction(r)}`;
}
