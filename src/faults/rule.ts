/**
 * Fault rules: what a rule matches, when it triggers, and what it does, as
 * written in the control API, config files and scenarios, and their
 * validation. Rules are flat objects so they read well in YAML:
 *
 *   - device: uio*          # name or glob (default: every device)
 *     op: read              # open|read|write|ioctl|poll|release, or a list
 *     nth: 3                # trigger: the 3rd matching call
 *     action: fail
 *     errno: EIO
 */
import { isErrnoName } from '../errno.js';
import { COMM_MAX, MAX_DURATION_MS, MAX_DURATION_TEXT, NAME_MAX, PID_MAX } from '../limits.js';
import type { FaultableOp } from '../core/index.js';

export const FAULT_OPS: readonly FaultableOp[] = ['open', 'read', 'write', 'ioctl', 'poll', 'release'];
export const FAULT_ACTIONS = ['fail', 'delay', 'short', 'corrupt', 'hang', 'unplug', 'replug'] as const;
export type FaultAction = (typeof FAULT_ACTIONS)[number];

/** A validated rule, as stored by the engine and listed by the API. */
export interface FaultRule {
  id: string;
  /** Device name or glob (* and ?); '*' for every device. */
  device: string;
  /** Ops matched; empty for every op the action applies to (ACTION_OPS). */
  op: FaultableOp[];
  /** ioctl command matched (op ioctl). */
  ioctl?: number;
  pid?: number;
  comm?: string;
  /* Trigger: every condition given must hold (none given: every matching call). */
  /** Only the nth matching call (1-based). */
  nth?: number;
  /** Every nth matching call. */
  every?: number;
  /** The first N matching calls. */
  first?: number;
  /** Each matching call with this probability, from a PRNG seeded with `seed`. */
  probability?: number;
  seed?: number;
  /** Only calls at least this many ms after the rule was added. */
  afterMs?: number;
  /* Action. */
  action: FaultAction;
  /** fail: the errno name. */
  errno?: string;
  /** delay: ms, plus up to jitterMs more (seeded). */
  delayMs?: number;
  jitterMs?: number;
  /** short: read or write at most this many bytes. */
  bytes?: number;
  /** corrupt: how many bytes to flip per call (default 1). */
  count?: number;
}

/** A rule refused at validation; `field` names the offending key. */
export class FaultRuleError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'FaultRuleError';
  }
}

const INT_FIELDS = ['pid', 'nth', 'every', 'first', 'seed', 'afterMs', 'delayMs', 'jitterMs', 'bytes', 'count'] as const;
type IntField = (typeof INT_FIELDS)[number];
/** Durations become timers; a pid can be no larger than PID_MAX; counts must stay exact. */
const INT_MAX: Record<IntField, [number, string]> = {
  pid: [PID_MAX, `at most ${PID_MAX}`],
  afterMs: [MAX_DURATION_MS, MAX_DURATION_TEXT],
  delayMs: [MAX_DURATION_MS, MAX_DURATION_TEXT],
  jitterMs: [MAX_DURATION_MS, MAX_DURATION_TEXT],
  nth: [Number.MAX_SAFE_INTEGER, `at most ${Number.MAX_SAFE_INTEGER}`],
  every: [Number.MAX_SAFE_INTEGER, `at most ${Number.MAX_SAFE_INTEGER}`],
  first: [Number.MAX_SAFE_INTEGER, `at most ${Number.MAX_SAFE_INTEGER}`],
  seed: [Number.MAX_SAFE_INTEGER, `at most ${Number.MAX_SAFE_INTEGER}`],
  bytes: [Number.MAX_SAFE_INTEGER, `at most ${Number.MAX_SAFE_INTEGER}`],
  count: [Number.MAX_SAFE_INTEGER, `at most ${Number.MAX_SAFE_INTEGER}`],
};
/** Device names are path components of these characters (core/names.ts); a glob adds * and ?. */
const DEVICE_GLOB = /^[A-Za-z0-9_.:+\-*?]+$/;
const KNOWN = new Set<string>(['id', 'device', 'op', 'ioctl', 'comm', 'probability', 'action', 'errno', ...INT_FIELDS]);

/** Which ops each action makes sense on (a close cannot fail or be shortened). */
export const ACTION_OPS: Record<FaultAction, readonly FaultableOp[]> = {
  fail: ['open', 'read', 'write', 'ioctl', 'poll'],
  delay: FAULT_OPS,
  short: ['read', 'write'],
  corrupt: ['read', 'write'],
  hang: FAULT_OPS,
  unplug: FAULT_OPS,
  replug: FAULT_OPS,
};

function parseIoctl(v: unknown): number {
  const n = typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new FaultRuleError('ioctl', 'expected an ioctl command number (e.g. 0x80045500)');
  }
  return n;
}

/** Rule ids name rules in API paths and CLI arguments: short, and of path-safe characters. */
function parseId(v: unknown): string {
  if ((typeof v !== 'string' && typeof v !== 'number') || !/^[A-Za-z0-9_.:+-]{1,64}$/.test(String(v))) {
    throw new FaultRuleError('id', 'expected up to 64 letters, digits or _.:+-');
  }
  return String(v);
}

/** Validates a rule from JSON/YAML. `id` is assigned by the caller when absent. */
export function parseRule(input: unknown, id: string): FaultRule {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new FaultRuleError('rule', 'expected an object');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new FaultRuleError(k, 'unknown field');

  if (!FAULT_ACTIONS.includes(o.action as FaultAction)) {
    throw new FaultRuleError('action', `expected one of ${FAULT_ACTIONS.join(', ')}`);
  }
  const action = o.action as FaultAction;
  const rule: FaultRule = { id: o.id === undefined ? id : parseId(o.id), device: '*', op: [], action };

  if (o.device !== undefined) {
    if (typeof o.device !== 'string' || !DEVICE_GLOB.test(o.device)) {
      throw new FaultRuleError('device', 'expected a device name or glob (letters, digits, _.:+- and the wildcards * and ?)');
    }
    if (o.device.length > NAME_MAX) throw new FaultRuleError('device', `at most ${NAME_MAX} characters, like a device name`);
    rule.device = o.device;
  }
  if (o.op !== undefined) {
    const ops = Array.isArray(o.op) ? o.op : [o.op];
    // Leaving op out means every op; an empty list would read as none.
    if (ops.length === 0) throw new FaultRuleError('op', `expected one of ${FAULT_OPS.join(', ')}, or a non-empty list of them`);
    for (const op of ops) {
      if (!FAULT_OPS.includes(op as FaultableOp)) throw new FaultRuleError('op', `expected one of ${FAULT_OPS.join(', ')}`);
    }
    rule.op = ops as FaultableOp[];
  }
  const allowed = ACTION_OPS[action];
  const bad = rule.op.filter((op) => !allowed.includes(op));
  if (bad.length) throw new FaultRuleError('op', `action ${action} applies to ${allowed.join(', ')}, not ${bad.join(', ')}`);
  if (o.ioctl !== undefined) rule.ioctl = parseIoctl(o.ioctl);
  if (o.comm !== undefined) {
    if (typeof o.comm !== 'string') throw new FaultRuleError('comm', 'expected a process name');
    if (Buffer.byteLength(o.comm) > COMM_MAX) throw new FaultRuleError('comm', `a process name is at most ${COMM_MAX} bytes (TASK_COMM_LEN)`);
    rule.comm = o.comm;
  }
  for (const f of INT_FIELDS) {
    const v = o[f];
    if (v === undefined) continue;
    const min = f === 'nth' || f === 'every' || f === 'first' || f === 'count' ? 1 : 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new FaultRuleError(f, `expected an integer >= ${min}`);
    }
    const [max, text] = INT_MAX[f];
    if (v > max) throw new FaultRuleError(f, `${text}, got ${v}`);
    rule[f] = v;
  }
  if (o.probability !== undefined) {
    if (typeof o.probability !== 'number' || !(o.probability >= 0 && o.probability <= 1)) {
      throw new FaultRuleError('probability', 'expected a number from 0 to 1');
    }
    rule.probability = o.probability;
  }
  if (action === 'fail') {
    if (typeof o.errno !== 'string' || !isErrnoName(o.errno)) throw new FaultRuleError('errno', 'expected an errno name such as EIO');
    rule.errno = o.errno;
  } else if (o.errno !== undefined) {
    throw new FaultRuleError('errno', `only action fail takes an errno`);
  }
  if (action === 'delay' && rule.delayMs === undefined) throw new FaultRuleError('delayMs', 'action delay needs delayMs');
  if (action === 'short' && rule.bytes === undefined) throw new FaultRuleError('bytes', 'action short needs bytes');
  return rule;
}
