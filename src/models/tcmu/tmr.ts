/**
 * Task management functions as the initiator names them (the tmr action,
 * a submit's abortAfterMs) and as the ring reports them: the kernel's
 * TCMU_TMR_* numbers (tcmu_tmr_type()), lower-case.
 */
import { Errno } from '../../errno.js';
import { TcmuTmr } from './abi.js';

const BY_NAME: Record<string, number> = Object.fromEntries(Object.entries(TcmuTmr).map(([k, v]) => [k.toLowerCase(), v]));

/** The functions' names, as the tmr action's `function` takes them. */
export const TMR_FUNCTIONS: readonly string[] = Object.keys(BY_NAME).filter((n) => n !== 'unknown');

/** A function's name (abort_task, lun_reset...) as its TCMU_TMR_* number; EINVAL for another. */
export function tmrType(name: unknown): number {
  const t = typeof name === 'string' && name !== 'unknown' ? BY_NAME[name] : undefined;
  if (t === undefined) throw new Errno('EINVAL', `tcmu: action tmr: function must be one of ${TMR_FUNCTIONS.join(', ')}, got ${JSON.stringify(name)}`);
  return t;
}

/** A TCMU_TMR_* number as its name. */
export function tmrName(type: number): string {
  return Object.entries(BY_NAME).find(([, v]) => v === type)?.[0] ?? `tmr ${type}`;
}
