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
import { isErrnoName, type ErrnoName } from '../errno.js';
import { COMM_MAX, MAX_CALL_BYTES, MAX_DURATION_MS, MAX_DURATION_TEXT, NAME_MAX, PID_MAX } from '../limits.js';
import type { FaultableOp } from '../core/index.js';

export const FAULT_OPS: readonly FaultableOp[] = ['open', 'read', 'write', 'ioctl', 'poll', 'release'];
export const FAULT_ACTIONS = ['fail', 'delay', 'short', 'corrupt', 'hang', 'unplug', 'replug'] as const;
export type FaultAction = (typeof FAULT_ACTIONS)[number];


/**
 * What a field's value must be. One table per field (RULE_FIELDS,
 * ACTION_FIELDS) says which kind each field is: parseRule() checks values
 * by it, and FaultRuleSpec, the type of a rule as callers write it, is
 * derived from it, so the validator and the type cannot drift apart.
 */
interface KindValue {
  /** A rule id: up to 64 letters, digits or _.:+- (a number is taken as its decimal text). */
  id: string | number;
  /** A device name or glob of * and ?. */
  glob: string;
  /** An op, or a non-empty list of them. */
  ops: FaultableOp | readonly FaultableOp[];
  /** An ioctl command: a number, or hex text such as '0x80045500'. */
  ioctl: number | `0x${string}`;
  /** A process id, up to PID_MAX. */
  pid: number;
  /** A process name, up to COMM_MAX bytes. */
  comm: string;
  /** An integer from 1. */
  count: number;
  /** An integer from 0. */
  natural: number;
  /** Milliseconds, up to MAX_DURATION_MS. */
  duration: number;
  /** A number from 0 to 1. */
  probability: number;
  /** An errno name such as 'EIO'. */
  errno: ErrnoName;
}
type Kind = keyof KindValue;

/** What a rule matches and when it triggers: fields every action takes. */
const RULE_FIELDS = {
  id: 'id',
  device: 'glob',
  op: 'ops',
  ioctl: 'ioctl',
  pid: 'pid',
  comm: 'comm',
  nth: 'count',
  every: 'count',
  first: 'count',
  probability: 'probability',
  seed: 'natural',
  afterMs: 'duration',
} as const satisfies Record<string, Kind>;

/** The fields of each action, and whether the action needs them; a field of another action is refused. */
const ACTION_FIELDS = {
  fail: { errno: ['errno', 'required'] },
  delay: { delayMs: ['duration', 'required'], jitterMs: ['duration', 'optional'] },
  short: { bytes: ['natural', 'required'] },
  corrupt: { count: ['count', 'optional'] },
  hang: {},
  unplug: {},
  replug: {},
} as const satisfies Record<FaultAction, Record<string, readonly [Kind, 'required' | 'optional']>>;

/** Which ops each action makes sense on (a close cannot fail or be shortened). */
export const ACTION_OPS = {
  fail: ['open', 'read', 'write', 'ioctl', 'poll'],
  delay: FAULT_OPS,
  short: ['read', 'write'],
  corrupt: ['read', 'write'],
  hang: FAULT_OPS,
  unplug: FAULT_OPS,
  replug: FAULT_OPS,
} as const satisfies Record<FaultAction, readonly FaultableOp[]>;

/** The ops a rule matches: its `op`, or without one every op its action applies to. */
export function ruleOps(r: Pick<FaultRule, 'op' | 'action'>): readonly FaultableOp[] {
  return r.op.length ? r.op : ACTION_OPS[r.action];
}

type ActionFields<A extends FaultAction> = (typeof ACTION_FIELDS)[A];
type ActionOp<A extends FaultAction> = (typeof ACTION_OPS)[A][number];
type ActionSpec<A extends FaultAction> = { action: A; op?: ActionOp<A> | readonly ActionOp<A>[] } & {
  -readonly [K in keyof ActionFields<A> as ActionFields<A>[K] extends readonly [Kind, 'required'] ? K : never]: ActionFields<A>[K] extends readonly [
    infer T extends Kind,
    string,
  ]
    ? KindValue[T]
    : never;
} & {
  -readonly [K in keyof ActionFields<A> as ActionFields<A>[K] extends readonly [Kind, 'optional'] ? K : never]?: ActionFields<A>[K] extends readonly [
    infer T extends Kind,
    string,
  ]
    ? KindValue[T]
    : never;
};

/**
 * A fault rule as written to emu.fault(), ControlClient.addFault(), the
 * control API, a config file or a scenario (README.md, "Fault
 * injection"): the match and trigger fields, `action`, and that action's
 * own fields (`errno` for fail, `delayMs` and `jitterMs` for delay, `bytes`
 * for short, `count` for corrupt). parseRule() accepts exactly these.
 */
export type FaultRuleSpec = { -readonly [K in Exclude<keyof typeof RULE_FIELDS, 'op'>]?: KindValue[(typeof RULE_FIELDS)[K]] } & {
  [A in FaultAction]: ActionSpec<A>;
}[FaultAction];

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
  errno?: ErrnoName;
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


/** Device names are path components of these characters (core/names.ts); a glob adds * and ?. */
const DEVICE_GLOB = /^[A-Za-z0-9_.:+\-*?]+$/;

function integer(field: string, v: unknown, min: number, max: number, maxText = `at most ${max}`): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new FaultRuleError(field, `expected an integer >= ${min}`);
  // Durations become timers; a pid can be no larger than PID_MAX; counts must stay exact.
  if (v > max) throw new FaultRuleError(field, `${maxText}, got ${v}`);
  return v;
}

/** Checks a value of each kind; returns it as the stored rule holds it (an op list, an ioctl number, an id string). */
const CHECK: { [K in Kind]: (field: string, v: unknown) => unknown } = {
  id(field, v) {
    // Rule ids name rules in API paths and CLI arguments: short, and of path-safe characters.
    if ((typeof v !== 'string' && typeof v !== 'number') || !/^[A-Za-z0-9_.:+-]{1,64}$/.test(String(v))) {
      throw new FaultRuleError(field, 'expected up to 64 letters, digits or _.:+-');
    }
    return String(v);
  },
  glob(field, v) {
    if (typeof v !== 'string' || !DEVICE_GLOB.test(v)) {
      throw new FaultRuleError(field, 'expected a device name or glob (letters, digits, _.:+- and the wildcards * and ?)');
    }
    if (v.length > NAME_MAX) throw new FaultRuleError(field, `at most ${NAME_MAX} characters, like a device name`);
    return v;
  },
  ops(field, v) {
    const ops: unknown[] = Array.isArray(v) ? v : [v];
    // Leaving op out means every op; an empty list would read as none.
    if (ops.length === 0) throw new FaultRuleError(field, `expected one of ${FAULT_OPS.join(', ')}, or a non-empty list of them`);
    for (const op of ops) {
      if (!FAULT_OPS.includes(op as FaultableOp)) throw new FaultRuleError(field, `expected one of ${FAULT_OPS.join(', ')}`);
    }
    return ops;
  },
  ioctl(field, v) {
    const n = typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw new FaultRuleError(field, 'expected an ioctl command number (e.g. 0x80045500)');
    }
    return n;
  },
  // No caller is pid 0: a rule naming it would never fire.
  pid: (field, v) => integer(field, v, 1, PID_MAX),
  comm(field, v) {
    if (typeof v !== 'string') throw new FaultRuleError(field, 'expected a process name');
    if (Buffer.byteLength(v) > COMM_MAX) throw new FaultRuleError(field, `a process name is at most ${COMM_MAX} bytes (TASK_COMM_LEN)`);
    return v;
  },
  count: (field, v) => integer(field, v, 1, Number.MAX_SAFE_INTEGER),
  natural: (field, v) => integer(field, v, 0, Number.MAX_SAFE_INTEGER),
  duration: (field, v) => integer(field, v, 0, MAX_DURATION_MS, MAX_DURATION_TEXT),
  probability(field, v) {
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new FaultRuleError(field, 'expected a number from 0 to 1');
    return v;
  },
  errno(field, v) {
    if (typeof v !== 'string' || !isErrnoName(v)) throw new FaultRuleError(field, 'expected an errno name such as EIO');
    return v;
  },
};

/** The fields whose value is a name (a device glob, a process name), whatever JSON it reads as: KEY=VALUE words take them as text. */
export const NAME_FIELDS: ReadonlySet<string> = new Set(['device', 'comm']);

/** The action that takes each action field. */
const FIELD_ACTION = new Map<string, FaultAction>(
  FAULT_ACTIONS.flatMap((a) => Object.keys(ACTION_FIELDS[a]).map((f): [string, FaultAction] => [f, a])),
);
const KNOWN = new Set<string>([...Object.keys(RULE_FIELDS), 'action', ...FIELD_ACTION.keys()]);

/** `input` if it is a rule parseRule() accepts, typed as such; throws FaultRuleError naming the bad field. */
export function checkRuleSpec(input: unknown): FaultRuleSpec {
  parseRule(input, 'check');
  return input as FaultRuleSpec;
}

/** Validates a rule from JSON/YAML (a FaultRuleSpec, checked field by field). `id` is assigned by the caller when absent. */
export function parseRule(input: unknown, id: string): FaultRule {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new FaultRuleError('rule', 'expected an object');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new FaultRuleError(k, 'unknown field');

  if (!FAULT_ACTIONS.includes(o.action as FaultAction)) {
    throw new FaultRuleError('action', `expected one of ${FAULT_ACTIONS.join(', ')}`);
  }
  const action = o.action as FaultAction;
  const rule: FaultRule = { id, device: '*', op: [], action };
  const stored = rule as unknown as Record<string, unknown>;
  for (const [field, kind] of Object.entries(RULE_FIELDS)) {
    if (o[field] !== undefined) stored[field] = CHECK[kind](field, o[field]);
  }
  const allowed: readonly FaultableOp[] = ACTION_OPS[action];
  const bad = rule.op.filter((op) => !allowed.includes(op));
  if (bad.length) throw new FaultRuleError('op', `action ${action} applies to ${allowed.join(', ')}, not ${bad.join(', ')}`);

  const own: Record<string, readonly [Kind, 'required' | 'optional']> = ACTION_FIELDS[action];
  for (const [field, owner] of FIELD_ACTION) {
    if (owner !== action && o[field] !== undefined) throw new FaultRuleError(field, `only action ${owner} takes ${field}`);
  }
  for (const [field, [kind, need]] of Object.entries(own)) {
    if (o[field] !== undefined) stored[field] = CHECK[kind](field, o[field]);
    else if (need === 'required') throw new FaultRuleError(field, `action ${action} needs ${field}`);
  }
  checkCanFire(rule);
  checkErrnoArrives(rule);
  return rule;
}

/**
 * The commands the VFS answers itself, before the driver (here: FUSE, the
 * model) sees them: fs/ioctl.c do_vfs_ioctl() (FS_IOC_GETFSUUID and
 * FS_IOC_GETFSSYSFSPATH since Linux 6.8), and, because the nodes stat as
 * regular files, FIONREAD and file_ioctl()'s FIBMAP and space reservations
 * (docs/fuse-protocol.md, "ioctl").
 */
export const VFS_IOCTLS: ReadonlyMap<number, string> = new Map([
  [0x5451, 'FIOCLEX'],
  [0x5450, 'FIONCLEX'],
  [0x5421, 'FIONBIO'],
  [0x5452, 'FIOASYNC'],
  [0x5460, 'FIOQSIZE'],
  [0x541b, 'FIONREAD'],
  [0x2, 'FIGETBSZ'],
  [0xc0045877, 'FIFREEZE'],
  [0xc0045878, 'FITHAW'],
  [0xc020660b, 'FS_IOC_FIEMAP'],
  [0x40049409, 'FICLONE'],
  [0x4020940d, 'FICLONERANGE'],
  [0xc0189436, 'FIDEDUPERANGE'],
  [0x80111500, 'FS_IOC_GETFSUUID'],
  [0x80811501, 'FS_IOC_GETFSSYSFSPATH'],
  [0x1, 'FIBMAP'],
  [0x40305828, 'FS_IOC_RESVSP'],
  [0x40305829, 'FS_IOC_UNRESVSP'],
  [0x4030582a, 'FS_IOC_RESVSP64'],
  [0x4030582b, 'FS_IOC_UNRESVSP64'],
  [0x40305839, 'FS_IOC_ZERO_RANGE'],
]);

/**
 * Refuses a rule no call can ever fire, or whose firing would leave the
 * call as it was: a test under it would pass without the fault; and a
 * seed the rule would ignore, as a field of another action is refused.
 */
function checkCanFire(r: FaultRule): void {
  if (r.ioctl !== undefined) {
    const ops = ruleOps(r);
    if (!ops.includes('ioctl')) throw new FaultRuleError('ioctl', `only ioctl calls carry a command, and this rule matches ${ops.join(', ')}`);
    const vfs = VFS_IOCTLS.get(r.ioctl);
    if (vfs) throw new FaultRuleError('ioctl', `${vfs} is answered by the kernel's VFS and never reaches a device (fs/ioctl.c do_vfs_ioctl)`);
  }
  if (r.nth !== undefined && r.first !== undefined && r.nth > r.first) {
    throw new FaultRuleError('nth', `the ${r.nth}th matching call is never among the first ${r.first}`);
  }
  if (r.nth !== undefined && r.every !== undefined && r.nth % r.every !== 0) {
    throw new FaultRuleError('nth', `the ${r.nth}th matching call is not one of every ${r.every}`);
  }
  // The first call every one fires on is the every-th; with nth given, the checks above imply this.
  if (r.every !== undefined && r.first !== undefined && r.every > r.first) {
    throw new FaultRuleError('every', `the first call every ${r.every} fires on is the ${r.every}th, never among the first ${r.first}`);
  }
  if (r.probability === 0) throw new FaultRuleError('probability', 'a probability of 0 never fires');
  // The seed picks what the rule draws: its dice, corrupt's bytes, delay's jitter. With none, it would be ignored.
  if (r.seed !== undefined && r.probability === undefined && r.action !== 'corrupt' && !r.jitterMs) {
    throw new FaultRuleError('seed', 'this rule draws nothing to seed: a seed goes with probability, a corrupt or a delay with jitterMs');
  }
  // A short fires only on a call longer than bytes, and no call is longer than MAX_CALL_BYTES.
  if (r.bytes !== undefined && r.bytes >= MAX_CALL_BYTES) {
    throw new FaultRuleError('bytes', `a call moves at most ${MAX_CALL_BYTES} bytes (max_read, max_write: a longer read or write comes as several), so no call is ever shortened to ${r.bytes}`);
  }
  // A timer longer than that fires after 1 ms (Node's TimeoutOverflowWarning): the call would not be delayed.
  if (r.delayMs !== undefined && r.delayMs + (r.jitterMs ?? 0) > MAX_DURATION_MS) {
    throw new FaultRuleError('jitterMs', `delayMs plus jitterMs is ${MAX_DURATION_TEXT}, got ${r.delayMs + (r.jitterMs ?? 0)}`);
  }
}

/**
 * Refuses an errno the program would never see as such: the kernel reads
 * these answers as something else.
 */
function checkErrnoArrives(r: FaultRule): void {
  if (r.errno === undefined) return;
  const ops = ruleOps(r);
  if (r.errno === 'ENOSYS' && ops.includes('open')) {
    // fs/fuse/file.c fuse_file_open(): ENOSYS means the filesystem needs no
    // OPEN, for good: every later open of every node succeeds unseen.
    throw new FaultRuleError('errno', 'ENOSYS to an open tells the kernel the mount needs no opens at all (the open succeeds, and no open reaches the daemon again); leave open out of op, or fail with another errno');
  }
  if (r.errno === 'ENOSYS' && ops.includes('ioctl')) {
    throw new FaultRuleError('errno', 'the kernel turns ENOSYS from an ioctl into ENOTTY (fs/fuse/ioctl.c); fail with ENOTTY to mean that');
  }
  if ((r.errno === 'ESTALE' || r.errno === 'ECHILD') && ops.includes('open')) {
    // fs/namei.c do_filp_open(): an open that fails ECHILD is tried again
    // out of RCU walk, one that fails ESTALE again with LOOKUP_REVAL.
    throw new FaultRuleError('errno', `the kernel tries an open that failed ${r.errno} again, and the program sees the second answer; leave open out of op, or fail with another errno`);
  }
}
