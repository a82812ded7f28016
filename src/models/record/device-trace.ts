/**
 * The device trace: what a real character device said to a program, as
 * the `record` model writes it and the `replay` model reads it
 * (docs/trace-format.md). JSON lines: a header, then one entry per file
 * operation in the order the daemon answered them. Not the scenario's
 * event trace (src/scenario/trace.ts), which is another thing.
 *
 * Bytes are lower-case hex, so a person can read a trace with grep and a
 * diff shows which byte changed.
 */
import { isErrnoName } from '../../errno.js';

export const TRACE_FORMAT = 'cdevemu-device-trace';
export const TRACE_VERSION = 1;

export interface TraceHeader {
  format: typeof TRACE_FORMAT;
  version: typeof TRACE_VERSION;
  /** The real node recorded, e.g. /dev/ttyUSB0. */
  device: string;
  /** Its device number, MAJOR:MINOR. */
  rdev: string;
  /** The emulated node's name. */
  name: string;
  /** When recording began (ISO 8601); entries' `t` count from there. */
  started: string;
  /** The device's sysfs attributes, by path from the mount root (sys/class/misc/hw_random/rng_current). */
  sysfs: Record<string, string>;
}

/** Fields every entry has: `t`, ms since `started`; `file`, the emulated open file it belongs to. */
interface Base {
  t: number;
}
interface OnFile extends Base {
  file: number;
  /** The errno name the real device failed the call with; no result then. */
  errno?: string;
}

export interface OpenEntry extends OnFile {
  op: 'open';
  /** The open's flags (O_ACCMODE, O_NONBLOCK...). */
  flags: number;
}
export interface ReleaseEntry extends Base {
  op: 'release';
  file: number;
}
export interface ReadEntry extends OnFile {
  op: 'read';
  size: number;
  /** Hex of the bytes read (absent on an error); `""` is end of file. */
  data?: string;
}
export interface WriteEntry extends OnFile {
  op: 'write';
  /** Hex of the bytes the program wrote. */
  data: string;
  /** How many of them the device took. */
  result?: number;
}
export interface PollEntry extends Base {
  op: 'poll';
  file: number;
  /** The revents the real node answered. */
  result: number;
}
export interface IoctlEntry extends OnFile {
  op: 'ioctl';
  cmd: number;
  /** The integer argument, for commands that take one (TCFLSH); decimal. */
  arg?: string;
  /** Hex of what the command reads from the caller (the _IOC_WRITE bytes, or the structure at arg). */
  in?: string;
  result?: number;
  /** Hex of what the command gave back to the caller. */
  out?: string;
}
export interface UnplugEntry extends Base {
  op: 'unplug';
  /** What the real device failed with: ENODEV, EIO. */
  errno: string;
}

export type TraceEntry = OpenEntry | ReleaseEntry | ReadEntry | WriteEntry | PollEntry | IoctlEntry | UnplugEntry;

export interface DeviceTrace {
  header: TraceHeader;
  entries: TraceEntry[];
}

/** A trace that cannot be replayed, with where and why. */
export class DeviceTraceError extends Error {
  constructor(
    readonly where: string,
    readonly line: number,
    message: string,
  ) {
    super(`${where}:${line}: ${message}`);
    this.name = 'DeviceTraceError';
  }
}

const HEX = /^(?:[0-9a-f]{2})*$/;

type Obj = Record<string, unknown>;
type Check = (v: unknown) => boolean;

const isInt = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const isHex = (v: unknown): boolean => typeof v === 'string' && HEX.test(v);
const isErrno = (v: unknown): boolean => typeof v === 'string' && isErrnoName(v);
const isDecimal = (v: unknown): boolean => typeof v === 'string' && /^-?\d+$/.test(v);
const isTime = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;

const ENTRY_FIELDS: Record<TraceEntry['op'], { required: Record<string, Check>; optional: Record<string, Check> }> = {
  open: { required: { file: isInt, flags: isInt }, optional: { errno: isErrno } },
  release: { required: { file: isInt }, optional: {} },
  read: { required: { file: isInt, size: isInt }, optional: { data: isHex, errno: isErrno } },
  write: { required: { file: isInt, data: isHex }, optional: { result: isInt, errno: isErrno } },
  poll: { required: { file: isInt, result: isInt }, optional: {} },
  ioctl: { required: { file: isInt, cmd: isInt }, optional: { arg: isDecimal, in: isHex, result: isInt, out: isHex, errno: isErrno } },
  unplug: { required: { errno: isErrno }, optional: {} },
};

/** What an entry of the op must have exactly one of: its result, or the errno it failed with. */
const OUTCOME: Partial<Record<TraceEntry['op'], readonly [string, string]>> = {
  read: ['data', 'errno'],
  write: ['result', 'errno'],
  ioctl: ['result', 'errno'],
};

const HEADER_FIELDS = new Set(['format', 'version', 'device', 'rdev', 'name', 'started', 'sysfs']);

const WHAT: Map<Check, string> = new Map<Check, string>([
  [isInt, 'a non-negative integer'],
  [isHex, 'lower-case hex with an even number of digits'],
  [isErrno, 'an errno name such as "EIO"'],
  [isDecimal, 'a decimal integer as a string'],
]);

function parseJson(text: string, where: string, line: number): Obj {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new DeviceTraceError(where, line, `not JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DeviceTraceError(where, line, 'each line must be a JSON object');
  return v as Obj;
}

function parseHeader(o: Obj, where: string): TraceHeader {
  const bad = (msg: string): never => {
    throw new DeviceTraceError(where, 1, `header: ${msg}`);
  };
  if (o.format !== TRACE_FORMAT) bad(`not a device trace: the first line must have "format":"${TRACE_FORMAT}"`);
  if (o.version !== TRACE_VERSION) bad(`version ${JSON.stringify(o.version)} is not one this cdevemu reads (${TRACE_VERSION})`);
  // A field this version does not know may say something the replay would ignore.
  for (const k of Object.keys(o)) if (!HEADER_FIELDS.has(k)) bad(`unknown field ${JSON.stringify(k)}`);
  for (const k of ['device', 'rdev', 'name', 'started'] as const) if (typeof o[k] !== 'string') bad(`${k} must be a string`);
  const sysfs = o.sysfs ?? {};
  if (typeof sysfs !== 'object' || Array.isArray(sysfs) || Object.values(sysfs).some((v) => typeof v !== 'string')) bad('sysfs must map paths to strings');
  for (const p of Object.keys(sysfs as Obj)) if (!/^sys\/[^\0]+$/.test(p) || p.split('/').includes('..')) bad(`sysfs path ${JSON.stringify(p)} must lie under sys/`);
  return { format: TRACE_FORMAT, version: TRACE_VERSION, device: o.device as string, rdev: o.rdev as string, name: o.name as string, started: o.started as string, sysfs: sysfs as Record<string, string> };
}

function parseEntry(o: Obj, where: string, line: number, lastT: number): TraceEntry {
  const op = o.op;
  if (typeof op !== 'string' || !(op in ENTRY_FIELDS)) {
    throw new DeviceTraceError(where, line, `op must be one of ${Object.keys(ENTRY_FIELDS).join(', ')}, got ${JSON.stringify(op)}`);
  }
  const spec = ENTRY_FIELDS[op as TraceEntry['op']];
  if (!isTime(o.t)) throw new DeviceTraceError(where, line, `${op}: t must be a non-negative number of ms, got ${JSON.stringify(o.t)}`);
  if ((o.t as number) < lastT) throw new DeviceTraceError(where, line, `${op}: t ${String(o.t)} goes back in time (the line before is at ${lastT})`);
  for (const [k, v] of Object.entries(o)) {
    if (k === 'op' || k === 't') continue;
    const check = spec.required[k] ?? spec.optional[k];
    if (!check) throw new DeviceTraceError(where, line, `${op}: unknown field ${JSON.stringify(k)}`);
    if (!check(v)) throw new DeviceTraceError(where, line, `${op}: ${k} must be ${WHAT.get(check) ?? 'valid'}, got ${JSON.stringify(v)}`);
  }
  for (const k of Object.keys(spec.required)) if (!(k in o)) throw new DeviceTraceError(where, line, `${op}: missing ${k}`);
  checkOutcome(o, op as TraceEntry['op'], where, line);
  return o as unknown as TraceEntry;
}

/** An entry says how its call ended, one way: the replay would otherwise drop it, or guess. */
function checkOutcome(o: Obj, op: TraceEntry['op'], where: string, line: number): void {
  const either = OUTCOME[op];
  if (either && (either[0] in o) === (either[1] in o)) throw new DeviceTraceError(where, line, `${op}: needs ${either[0]} or ${either[1]}, not ${either[0] in o ? 'both' : 'neither'}`);
  if (op === 'write' && typeof o.result === 'number' && o.result > (o.data as string).length / 2) {
    throw new DeviceTraceError(where, line, `write: result ${o.result} is more than the ${(o.data as string).length / 2} bytes written`);
  }
  // read(2) returns at most count bytes: the replay would hand out more than any read got.
  if (op === 'read' && typeof o.data === 'string' && o.data.length / 2 > (o.size as number)) {
    throw new DeviceTraceError(where, line, `read: data of ${o.data.length / 2} bytes is more than the ${String(o.size)} asked`);
  }
}

/**
 * Checks that `e` belongs to a file open at its place (`open`: whether
 * each file is open now), as the record model writes them: an entry of a
 * file never opened, whose open failed or that was released, or a second
 * open of one number, is a hand-edited trace that describes no session the
 * device could have had.
 */
function checkFile(e: TraceEntry, open: Map<number, boolean>, where: string, line: number): void {
  if (e.op === 'unplug') return;
  if (e.op === 'open') {
    if (open.has(e.file)) throw new DeviceTraceError(where, line, `open: file ${e.file} was opened before (each open has a number of its own)`);
    open.set(e.file, e.errno === undefined);
    return;
  }
  if (open.get(e.file) !== true) throw new DeviceTraceError(where, line, `${e.op}: file ${e.file} is not open here (never opened, its open failed, or released)`);
  if (e.op === 'release') open.set(e.file, false);
}

/**
 * A trace from its text; `where` names it in errors (its path). Refuses,
 * with the line and the reason, anything the replay model could not play
 * faithfully: another format or version, an unknown op or field (of an
 * entry or the header), a field of the wrong type, a read, write or ioctl
 * with neither a result nor an errno (or both), a write that took more
 * than it was given, a read that got more than it asked, an entry of a
 * file not open, no open at all, time that goes back, entries after the
 * unplug.
 */
export function parseDeviceTrace(text: string, where: string): DeviceTrace {
  if (text.trim() === '') throw new DeviceTraceError(where, 1, 'empty: a trace starts with its header line');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const header = parseHeader(parseJson(lines[0]!, where, 1), where);
  const entries: TraceEntry[] = [];
  const open = new Map<number, boolean>();
  let lastT = 0;
  for (let i = 1; i < lines.length; i++) {
    const e = parseEntry(parseJson(lines[i]!, where, i + 1), where, i + 1, lastT);
    if (entries.at(-1)?.op === 'unplug') throw new DeviceTraceError(where, i + 1, `${e.op}: nothing can follow the unplug`);
    checkFile(e, open, where, i + 1);
    entries.push(e);
    lastT = e.t;
  }
  // A replay of it would pass any program that leaves the device alone (cdevemu record fails such a run).
  if (open.size === 0) throw new DeviceTraceError(where, lines.length, 'no open: the recorded program never opened the device');
  return { header, entries };
}

/** One line of a trace file (header or entry), newline included. */
export function traceLine(v: TraceHeader | TraceEntry): string {
  return `${JSON.stringify(v)}\n`;
}
