/**
 * Scenario files (README.md, "Scenarios"): the devices to plug, fault rules to add, the
 * program under test, and a timeline of steps. YAML or JSON:
 *
 *   name: the consumer lets go of uio0 on unplug
 *   devices:
 *     - { model: uio, name: uio0 }
 *   program:
 *     command: [python3, consumer.py, "{mount}/dev/uio0"]
 *     bind: ["/dev/uio0=dev/uio0"]          # optional, see bind.ts
 *   timeline:
 *     - wait: { opened: uio0, timeout: 5s }
 *     - action: { device: uio0, action: irq }
 *     - unplug: uio0                       # { device, mode: surprise }: no notice first;
 *                                          # { device, background: true }: go on while it runs
 *     - expect: { released: uio0, within: 2s }
 *     - expect: { exit: 0, within: 5s }
 *
 * Also `plug: {model, name, options}` (a device added while the program
 * runs), `signal: SIGTERM` (to the program), `stop: {signal, timeout}` and
 * `start: {command?, env?}` (a restart, restart.ts), `action: {..., as: r}`
 * then `expect: {result: r, fields: {count: {'>=': 1}}}` and
 * `expect: {event: FILTER, count, fields}` (comparisons, compare.ts), and
 * `preset: tcmu` at the top (the program's namespace prepared for
 * tcmu-runner, src/tcmu/preset.ts).
 *
 * Every error names the file, the line and the field (src/config/document.ts).
 * The device names and event filters it collects are checked against the
 * target before the run (check.ts).
 */
import { dirname, resolve } from 'node:path';
import { ConfigError, SourceDocument, type Field, type FieldPath, type Mapping } from '../config/index.js';
import { readDeviceList, readDeviceSpec, readFaultRule, readUnplugMode, type DeviceSpec } from '../config/index.js';
import { MAX_DURATION_MS, MAX_DURATION_TEXT } from '../limits.js';
import type { UnplugMode } from '../core/index.js';
import type { FaultRuleSpec } from '../faults/index.js';
import { constants } from 'node:os';
import { AT_LEAST_ONE, equalTo, holds, holdsOnEveryCount, readComparison, readFieldTest, readFieldTests, type Comparison, type FieldTest } from './compare.js';
import { PRESETS } from './presets.js';

export type Step =
  | { kind: 'sleep'; ms: number }
  | { kind: 'wait'; what: 'opened' | 'read' | 'written' | 'released'; device: string; count: number; timeoutMs: number }
  | { kind: 'wait'; what: 'event'; filter: EventFilter; count: number; timeoutMs: number }
  /** `as`: the name its result is saved under, for `expect: {result}`. */
  | { kind: 'action'; device: string; action: string; arg?: unknown; as?: string }
  | { kind: 'fault'; rule: FaultRuleSpec }
  | { kind: 'plug'; spec: DeviceSpec }
  | { kind: 'unplug'; device: string; drainTimeoutMs?: number; mode?: UnplugMode; noticeTimeoutMs?: number; background?: boolean }
  /** SIGSTOP waits up to `timeoutMs` for every thread of the program to stop (stopped.ts). */
  | { kind: 'signal'; signal: NodeJS.Signals; timeoutMs: number }
  | { kind: 'replug'; device: string; options?: unknown }
  /** Ends the program: `signal` to its process group, SIGKILL if it has not exited within `timeoutMs`. */
  | { kind: 'stop'; signal: NodeJS.Signals; timeoutMs: number }
  /** Starts it again: its own command, or `command` (run in `cwd`); `env` added to its environment. */
  | { kind: 'start'; command?: string[]; cwd: string; env: Record<string, string> }
  | { kind: 'expect'; what: 'released'; device: string; withinMs: number }
  | { kind: 'expect'; what: 'lateReleases'; device: string; count: number; withinMs: number }
  /** `code` an exit code, or the signal that killed it. */
  | { kind: 'expect'; what: 'exit'; code: number | NodeJS.Signals; withinMs: number }
  | { kind: 'expect'; what: 'running' }
  | { kind: 'expect'; what: 'noStuck' }
  /** The events FILTER matches now: their number satisfies `count`, and each satisfies `fields`. */
  /** `forMs`: the count must hold at every look for that long, not only now. */
  | { kind: 'expect'; what: 'event'; filter: EventFilter; count: Comparison; fields: FieldTest[]; forMs?: number }
  /** The result an earlier action saved as `name` satisfies `fields`. */
  | { kind: 'expect'; what: 'result'; name: string; fields: FieldTest[] };

export interface TimelineStep {
  step: Step;
  /** 1-based line of the step in the file, for reports. */
  line: number | null;
  /** How the step reads in the output, e.g. `wait opened uio0`. */
  title: string;
}

export interface ProgramSpec {
  /** argv; `{mount}` in any element is replaced by the mount path, `{tmp}` by the run's scratch directory, `{port}` by a free TCP port. */
  command: string[];
  env: Record<string, string>;
  /** HOSTPATH=MOUNTPATH pairs, as --bind takes them. */
  bind: string[];
  /** Where the program starts: `cwd` from the file (relative to it), else the scenario file's directory. */
  cwd: string;
}

/**
 * A device name the scenario uses, where it uses it: checked against the
 * names it plugs before it runs (check.ts).
 */
export interface DeviceRef {
  name: string;
  /** plug: the scenario makes the name here; device: the name must exist by here; glob: a fault rule's device pattern. */
  use: 'plug' | 'device' | 'glob';
  path: FieldPath;
}

/**
 * An event filter: the events of `type` (of `device`, if given) whose
 * fields (`generation` and the type's own) satisfy every test.
 */
export interface EventFilter {
  type: string;
  device?: string;
  tests: FieldTest[];
  /** The filter as written, for titles: `{"type":"opened","device":"uio0"}`. */
  text: string;
}

/** The comparisons on one event type's fields, for check.ts: a filter's, and an event expectation's `fields`. */
export interface EventTests {
  type: string;
  /** The filter's `device`: the events it can match are that device's model's. */
  device?: string;
  /** Where the type is named. */
  typePath: FieldPath;
  tests: FieldTest[];
}

export interface Scenario {
  file: string;
  /** The source, for errors that point at a line. */
  doc: SourceDocument;
  /** Every device name used, in the order the run meets them: devices, faults, then the timeline. */
  refs: DeviceRef[];
  filters: EventTests[];
  name: string;
  devices: DeviceSpec[];
  faults: FaultRuleSpec[];
  program?: ProgramSpec;
  timeline: TimelineStep[];
  /** Bound on the whole run. */
  timeoutMs: number;
  /** A prepared environment for the program (`preset: tcmu`); `cdevemu run --preset` overrides it. */
  preset?: string;
}

const DEFAULT_WAIT_MS = 10_000;
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/** 250, "250ms", "2s", "1.5s", "1m". */
export function readDuration(f: Field): number {
  if (typeof f.value === 'number') return f.number({ min: 0, max: MAX_DURATION_MS });
  const m = typeof f.value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$/.exec(f.value) : null;
  if (!m) throw f.error(`expected a duration such as 500ms, 2s or 250 (ms), got ${JSON.stringify(f.value)}`);
  const ms = Math.round(Number(m[1]) * UNITS[m[2]!]!);
  // Timers hold no more; a longer sleep would fire after 1 ms.
  if (!(ms <= MAX_DURATION_MS)) throw f.error(`${MAX_DURATION_TEXT}, got ${JSON.stringify(f.value)}`);
  return ms;
}

/** A step's argument that is a device name, or a mapping with `device` and other keys. */
function deviceArg(f: Field, extra: readonly string[]): { device: string; m: Mapping | null } {
  if (typeof f.value === 'string') return { device: f.string({ nonEmpty: true }), m: null };
  const m = f.mapping(['device', ...extra]);
  return { device: m.get('device').string({ nonEmpty: true }), m };
}

const WAITS = ['opened', 'read', 'written', 'released'] as const;

function readWait(f: Field): Step {
  const m = f.mapping([...WAITS, 'event', 'count', 'timeout']);
  const timeoutMs = m.get('timeout').optional(readDuration) ?? DEFAULT_WAIT_MS;
  const count = m.get('count').optional((c) => c.number({ integer: true, min: 1 })) ?? 1;
  const given = [...WAITS, 'event'].filter((k) => m.get(k).present);
  if (given.length !== 1) throw f.error(`give exactly one of ${[...WAITS, 'event'].join(', ')}`);
  const what = given[0]!;
  if (what === 'event') return { kind: 'wait', what: 'event', filter: readEventFilter(m.get('event')), count, timeoutMs };
  return { kind: 'wait', what: what as (typeof WAITS)[number], device: m.get(what).string({ nonEmpty: true }), count, timeoutMs };
}

/**
 * An event filter: `type`, optionally `device` (a name), and fields with
 * the value each must equal or a comparison (compare.ts). Which fields an
 * event of that type has, and their types, are checked with the models
 * (check.ts).
 */
function readEventFilter(f: Field): EventFilter {
  const m = f.mapping(null);
  const type = m.get('type').string({ nonEmpty: true });
  const device = m.get('device').optional((d) => d.string({ nonEmpty: true }));
  const gen = m.get('generation');
  // A plain generation names one; 0 never exists.
  if (gen.present && (typeof gen.value === 'number' || gen.value === null)) gen.number({ integer: true, min: 1 });
  const tests = Object.keys(m.value)
    .filter((k) => k !== 'type' && k !== 'device')
    .map((k) => readFieldTest(m.get(k), k));
  return { type, ...(device === undefined ? {} : { device }), tests, text: JSON.stringify(m.value) };
}

/** Each expectation and the keys it takes: one expectation per step, so none is left unchecked beside another. */
const EXPECTS = {
  released: ['released', 'within'],
  lateReleases: ['lateReleases', 'device', 'within'],
  exit: ['exit', 'within'],
  running: ['running'],
  noStuck: ['noStuck'],
  event: ['event', 'count', 'fields', 'for'],
  result: ['result', 'fields'],
} as const satisfies Record<string, readonly string[]>;
type ExpectKind = keyof typeof EXPECTS;
const EXPECT_KINDS = Object.keys(EXPECTS) as ExpectKind[];

function readExpect(f: Field): Step {
  const m = f.mapping([...new Set(Object.values(EXPECTS).flat())]);
  const kinds = Object.keys(m.value).filter((k): k is ExpectKind => Object.hasOwn(EXPECTS, k));
  const kind = kinds[0];
  if (!kind) throw f.error(`expected one of ${EXPECT_KINDS.join(', ')}`);
  if (kinds.length > 1) throw m.get(kinds[1]!).error(`one expectation per step: ${kinds.join(' and ')} are two`, { key: true });
  const takes: readonly string[] = EXPECTS[kind];
  const extra = Object.keys(m.value).find((k) => !takes.includes(k));
  if (extra) throw m.get(extra).error(`not a field of a ${kind} expectation (${takes.join(', ')})`, { key: true });
  const within = (): number => m.get('within').optional(readDuration) ?? DEFAULT_WAIT_MS;
  switch (kind) {
    case 'released':
      return { kind: 'expect', what: 'released', device: m.get('released').string({ nonEmpty: true }), withinMs: within() };
    case 'lateReleases':
      return {
        kind: 'expect',
        what: 'lateReleases',
        device: m.get('device').string({ nonEmpty: true }),
        count: m.get('lateReleases').number({ integer: true, min: 0 }),
        withinMs: within(),
      };
    case 'exit': {
      const e = m.get('exit');
      // An exit status holds 8 bits (exit(256) is 0): a larger code no program can exit with, and the step could only fail.
      const code = typeof e.value === 'string' ? readSignal(e) : e.number({ integer: true, min: 0, max: 255 });
      return { kind: 'expect', what: 'exit', code, withinMs: within() };
    }
    case 'running':
      if (m.get('running').boolean() !== true) throw m.get('running').error('only `running: true` is meaningful; use exit to expect an end');
      return { kind: 'expect', what: 'running' };
    case 'noStuck':
      if (m.get('noStuck').boolean() !== true) throw m.get('noStuck').error('only `noStuck: true` is meaningful');
      return { kind: 'expect', what: 'noStuck' };
    case 'event':
      return readEventExpectation(m);
    case 'result': {
      const name = m.get('result').string({ nonEmpty: true });
      return { kind: 'expect', what: 'result', name, fields: readFieldTests(m.get('fields')) };
    }
  }
}

/**
 * `expect: {event: FILTER, count?, fields?, for?}`: `count` a number or a
 * comparison (default: at least one); `fields` checked on each event
 * matched, so a count that allows none would let them check nothing;
 * `for` a duration the verdict must hold through, looked at again and
 * again (a count of none right after an unplug holds before the late
 * releases it is about have had time to come).
 */
function readEventExpectation(m: Mapping): Step {
  const filter = readEventFilter(m.get('event'));
  const c = m.get('count');
  const count = c.present ? (typeof c.value === 'number' ? equalTo(c.number({ integer: true, min: 0 })) : readComparison(c)) : AT_LEAST_ONE;
  if (count.kind !== 'number') throw c.error('a count compares numbers');
  // It would hold whatever happened, and yet excuse a fault rule it names from having to fire (run-faults.ts).
  if (holdsOnEveryCount(count)) throw c.error(`count ${count.text} holds on every count, 0 included: the expectation would check nothing (count: 0 expects none)`);
  const fields = m.get('fields').optional(readFieldTests) ?? [];
  if (fields.length > 0 && holds(count, 0)) {
    throw c.error(`count ${count.text} allows no event at all, and then fields would check nothing: use a count that needs one, or drop fields`);
  }
  const forMs = m.get('for').optional(readDuration);
  return { kind: 'expect', what: 'event', filter, count, fields, ...(forMs === undefined ? {} : { forMs }) };
}

const STEP_KINDS = ['sleep', 'wait', 'action', 'fault', 'plug', 'unplug', 'replug', 'signal', 'stop', 'start', 'expect'] as const;

/** The name an action's result is saved under: a word, so `NAME.field` in messages reads one way. */
const RESULT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function readSignal(f: Field): NodeJS.Signals {
  const name = f.string({ nonEmpty: true }).toUpperCase();
  const full = name.startsWith('SIG') ? name : `SIG${name}`;
  if (!Object.hasOwn(constants.signals, full)) throw f.error(`expected a signal name such as SIGTERM, got ${JSON.stringify(f.value)}`);
  return full as NodeJS.Signals;
}

/** A timeline entry: `{KIND: ARG}`; returns the step and its ARG field. */
function readStep(f: Field, baseDir: string): { step: Step; arg: Field } {
  if (f.value === null || typeof f.value !== 'object' || Array.isArray(f.value)) {
    throw f.error(`expected a step: a mapping with one of ${STEP_KINDS.join(', ')}`);
  }
  const keys = Object.keys(f.value);
  if (keys.length !== 1) throw f.error(`a step has exactly one key (${STEP_KINDS.join(', ')}), got ${keys.join(', ') || 'none'}`);
  const kind = keys[0]!;
  const arg = f.mapping(STEP_KINDS).get(kind);
  return { step: readStepArg(kind as (typeof STEP_KINDS)[number], arg, baseDir), arg };
}

function readStepArg(kind: (typeof STEP_KINDS)[number], arg: Field, baseDir: string): Step {
  switch (kind) {
    case 'sleep':
      return { kind: 'sleep', ms: readDuration(arg) };
    case 'wait':
      return readWait(arg);
    case 'action': {
      const m = arg.mapping(['device', 'action', 'arg', 'as']);
      const step: Step = { kind: 'action', device: m.get('device').string({ nonEmpty: true }), action: m.get('action').string({ nonEmpty: true }) };
      if (m.get('arg').present) step.arg = m.get('arg').value;
      const as = m.get('as').optional((a) => a.string({ nonEmpty: true }));
      if (as !== undefined && !RESULT_NAME.test(as)) throw m.get('as').error(`expected a name of letters, digits and _ (such as report), got ${JSON.stringify(as)}`);
      if (as !== undefined) step.as = as;
      return step;
    }
    case 'fault':
      return { kind: 'fault', rule: readFaultRule(arg) };
    case 'plug':
      return { kind: 'plug', spec: readDeviceSpec(arg) };
    case 'unplug': {
      const { device, m } = deviceArg(arg, ['drainTimeoutMs', 'mode', 'noticeTimeout', 'background']);
      const drain = m?.get('drainTimeoutMs').optional(readDuration);
      const mode = m?.get('mode').optional(readUnplugMode);
      const notice = m?.get('noticeTimeout').optional(readDuration);
      const background = m?.get('background').optional((f) => f.boolean());
      return {
        kind: 'unplug',
        device,
        ...(drain === undefined ? {} : { drainTimeoutMs: drain }),
        ...(mode === undefined ? {} : { mode }),
        ...(notice === undefined ? {} : { noticeTimeoutMs: notice }),
        ...(background ? { background } : {}),
      };
    }
    case 'signal': {
      // `signal: SIGTERM`, or `{signal, timeout}`: the timeout bounds SIGSTOP's wait for every thread to stop.
      if (typeof arg.value === 'string') return { kind: 'signal', signal: readSignal(arg), timeoutMs: DEFAULT_WAIT_MS };
      const m = arg.mapping(['signal', 'timeout']);
      const signal = readSignal(m.get('signal'));
      const timeout = m.get('timeout');
      if (timeout.present && signal !== 'SIGSTOP') {
        throw timeout.error(`only SIGSTOP waits (for every thread of the program to stop); ${signal} is sent and the step ends`, { key: true });
      }
      return { kind: 'signal', signal, timeoutMs: timeout.optional(readDuration) ?? DEFAULT_WAIT_MS };
    }
    case 'stop': {
      // `stop: SIGINT`, or `{signal, timeout}`; `stop: {}` is SIGTERM.
      if (typeof arg.value === 'string') return { kind: 'stop', signal: readSignal(arg), timeoutMs: DEFAULT_WAIT_MS };
      const m = arg.mapping(['signal', 'timeout']);
      return { kind: 'stop', signal: m.get('signal').optional(readSignal) ?? 'SIGTERM', timeoutMs: m.get('timeout').optional(readDuration) ?? DEFAULT_WAIT_MS };
    }
    case 'start': {
      const m = arg.mapping(['command', 'env']);
      const command = m.get('command').optional(readCommand);
      return { kind: 'start', ...(command ? { command } : {}), cwd: baseDir, env: m.get('env').optional(readEnv) ?? {} };
    }
    case 'replug': {
      const { device, m } = deviceArg(arg, ['options']);
      const options = m?.get('options');
      return options?.present ? { kind: 'replug', device, options: options.value } : { kind: 'replug', device };
    }
    case 'expect':
      return readExpect(arg);
  }
}

function title(s: Step): string {
  switch (s.kind) {
    case 'sleep':
      return `sleep ${s.ms}ms`;
    case 'wait':
      return s.what === 'event' ? `wait event ${s.filter.text}` : `wait ${s.what} ${s.device}${s.count > 1 ? ` x${s.count}` : ''}`;
    case 'action':
      return `action ${s.device} ${s.action}${s.arg !== undefined ? ` ${JSON.stringify(s.arg)}` : ''}${s.as ? ` as ${s.as}` : ''}`;
    case 'fault':
      return `fault ${JSON.stringify(s.rule)}`;
    case 'plug':
      return `plug ${s.spec.model} ${s.spec.name}`;
    case 'unplug':
      return `unplug ${s.device}${s.mode === 'surprise' ? ' (surprise)' : ''}${s.background ? ' (background)' : ''}`;
    case 'signal':
      return `signal ${s.signal} to the program`;
    case 'stop':
      return `stop the program (${s.signal}${s.signal === 'SIGKILL' ? '' : `, SIGKILL after ${s.timeoutMs}ms`})`;
    case 'start':
      return s.command ? `start ${s.command.join(' ')}` : 'start the program again';
    case 'replug':
      return `replug ${s.device}`;
    case 'expect':
      switch (s.what) {
        case 'released':
          return `expect ${s.device} released within ${s.withinMs}ms`;
        case 'lateReleases':
          return `expect ${s.count} lateRelease(s) on ${s.device} within ${s.withinMs}ms`;
        case 'exit':
          return typeof s.code === 'number' ? `expect program exit ${s.code} within ${s.withinMs}ms` : `expect program killed by ${s.code} within ${s.withinMs}ms`;
        case 'running':
          return 'expect program still running';
        case 'noStuck':
          return 'expect no stuck handlers';
        case 'event':
          return `expect event ${s.filter.text}: count ${s.count.text}${fieldsText(s.fields)}${s.forMs === undefined ? '' : ` for ${s.forMs}ms`}`;
        case 'result':
          return `expect result ${s.name}: ${fieldsText(s.fields).slice(2)}`;
      }
  }
}

const fieldsText = (fields: readonly FieldTest[]): string => (fields.length ? `; ${fields.map((t) => `${t.name} ${t.cmp.text}`).join(', ')}` : '');

/** argv: a list, or a string split at spaces. */
function readCommand(cmd: Field): string[] {
  const command =
    typeof cmd.value === 'string'
      ? cmd.string({ nonEmpty: true }).trim().split(/\s+/)
      : cmd.list().map((a) => a.string());
  if (command.length === 0) throw cmd.error('must not be empty');
  return command;
}

function readEnv(e: Field): Record<string, string> {
  const env: Record<string, string> = {};
  const em = e.mapping(null);
  for (const k of Object.keys(em.value)) env[k] = readEnvValue(em.get(k), k);
  return env;
}

/**
 * A variable's value: a string, number or true/false. Anything else would
 * reach the program as text it was not meant to be: a list as `a,b`, a
 * YAML merge (`<<: *base`, which YAML 1.2 reads as a variable named `<<`)
 * as `[object Object]` while the variables it was to bring stay unset,
 * `X:` with no value as `null`.
 */
function readEnvValue(f: Field, name: string): string {
  const v = f.value;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (name === '<<') throw f.error('a YAML merge key, which scenario files do not take: give each variable', { key: true });
  throw f.error(`expected a string, number or true/false, got ${v === null ? 'no value (write "" for an empty one)' : Array.isArray(v) ? 'a list' : 'a mapping'}`);
}

function readProgram(f: Field, baseDir: string): ProgramSpec {
  const m = f.mapping(['command', 'env', 'bind', 'cwd']);
  const command = readCommand(m.get('command'));
  const env = m.get('env').optional(readEnv) ?? {};
  const bind = m.get('bind').optional((b) => b.list().map(readBind)) ?? [];
  const cwd = m.get('cwd').optional((c) => resolve(baseDir, c.string({ nonEmpty: true }))) ?? baseDir;
  return { command, env, bind, cwd };
}

function readPreset(f: Field): string {
  const v = f.string({ nonEmpty: true });
  if (!(PRESETS as readonly string[]).includes(v)) throw f.error(`unknown preset ${JSON.stringify(v)}; presets: ${PRESETS.join(', ')}`);
  return v;
}

/**
 * HOSTPATH=MOUNTPATH: an absolute host path, and a path inside the mount.
 * Neither may hold `.` or `..`: the bind namespace walks the host path up
 * by its text (bind.ts), which `..` would make name another directory
 * than the one the kernel resolves.
 */
export function parseBind(s: string): { host: string; mount: string } | null {
  const i = s.indexOf('=');
  if (i < 0) return null;
  const hostParts = s.slice(0, i).split('/');
  const mount = s.slice(i + 1).replace(/^\/+/, '');
  const dots = (parts: string[]): boolean => parts.includes('..') || parts.includes('.');
  if (hostParts[0] !== '' || dots(hostParts) || mount === '' || dots(mount.split('/'))) return null;
  const host = `/${hostParts.filter(Boolean).join('/')}`;
  return host === '/' ? null : { host, mount };
}

/** The one-line form a bad bind is refused with (scenario file and --bind alike). */
export const BIND_FORM = 'expected HOSTPATH=MOUNTPATH: an absolute host path and a path in the mount, without . or .., e.g. /dev/uio0=dev/uio0';

function readBind(f: Field): string {
  const s = f.string({ nonEmpty: true });
  if (!parseBind(s)) throw f.error(BIND_FORM);
  return s;
}

/**
 * The device names one step uses, with their paths: `arg` is the step's
 * value (timeline[i].KIND), a name or a mapping.
 */
function stepRefs(step: Step, arg: Field): DeviceRef[] {
  const ref = (name: string, at: FieldPath, use: DeviceRef['use'] = 'device'): DeviceRef => ({ name, use, path: [...arg.path, ...at] });
  switch (step.kind) {
    case 'wait':
      if (step.what !== 'event') return [ref(step.device, [step.what])];
      return step.filter.device !== undefined ? [ref(step.filter.device, ['event', 'device'])] : [];
    case 'action':
      return [ref(step.device, ['device'])];
    case 'fault':
      return typeof step.rule.device === 'string' ? [ref(step.rule.device, ['device'], 'glob')] : [];
    case 'plug':
      return [plugRef(arg.doc, step.spec.name, [...arg.path, 'name'])];
    case 'unplug':
    case 'replug':
      return [ref(step.device, typeof arg.value === 'string' ? [] : ['device'])];
    case 'expect':
      if (step.what === 'released') return [ref(step.device, ['released'])];
      if (step.what === 'lateReleases') return [ref(step.device, ['device'])];
      if (step.what === 'event' && step.filter.device !== undefined) return [ref(step.filter.device, ['event', 'device'])];
      return [];
    case 'sleep':
    case 'signal':
    case 'stop':
    case 'start':
      return [];
  }
}

/** The comparisons on event fields in one step, for check.ts. */
function stepEventTests(step: Step, arg: Field): EventTests[] {
  if ((step.kind !== 'wait' && step.kind !== 'expect') || (step.what !== 'event')) return [];
  const extra = step.kind === 'expect' ? step.fields : [];
  const { type, device } = step.filter;
  return [{ type, ...(device === undefined ? {} : { device }), typePath: [...arg.path, 'event', 'type'], tests: [...step.filter.tests, ...extra] }];
}

/** A device a scenario plugs has the name it is given: its steps, and the expectations on it, name it. */
function plugRef(doc: SourceDocument, name: string, path: FieldPath): DeviceRef {
  if (name.includes('%d')) {
    throw doc.error(path, `a scenario names its devices (${name.replace('%d', '0')}, not ${name}): its steps and expectations refer to them by name`);
  }
  return { name, use: 'plug', path };
}

const TOP = ['name', 'preset', 'devices', 'faults', 'program', 'timeline', 'timeout'];

/** `baseDir` resolves the program's relative paths: the scenario file's directory. */
export function readScenario(doc: SourceDocument, baseDir: string): Scenario {
  const m = doc.root().mapping(TOP);
  const refs: DeviceRef[] = [];
  const filters: EventTests[] = [];
  const devices = m.get('devices').optional(readDeviceList) ?? [];
  devices.forEach((d, i) => refs.push(plugRef(doc, d.name, ['devices', i, 'name'])));
  const faultFields = m.get('faults').optional((d) => d.list()) ?? [];
  const faults = faultFields.map(readFaultRule);
  faults.forEach((rule, i) => {
    if (typeof rule.device === 'string') refs.push({ name: rule.device, use: 'glob', path: [...faultFields[i]!.path, 'device'] });
  });
  const program = m.get('program').optional((p) => readProgram(p, baseDir));
  const timelineField = m.get('timeline');
  const saved = new Set<string>();
  const timeline = timelineField.list().map((f) => {
    // A start step's own command runs where the program does.
    const { step, arg } = readStep(f, program?.cwd ?? baseDir);
    filters.push(...stepEventTests(step, arg));
    if (step.kind === 'action' && step.as) saved.add(step.as);
    if (step.kind === 'expect' && step.what === 'result' && !saved.has(step.name)) {
      const names = saved.size ? `results saved before it: ${[...saved].join(', ')}` : 'no step before it saves one';
      throw arg.doc.error([...arg.path, 'result'], `no earlier action saves a result as ${step.name} (${names}; an action saves with \`as: ${step.name}\`)`);
    }
    refs.push(...stepRefs(step, arg));
    return { step, line: doc.line(f.path, false), title: title(step) };
  });
  const preset = m.get('preset').optional(readPreset);
  const scenario: Scenario = {
    ...(preset ? { preset } : {}),
    file: doc.file,
    doc,
    refs,
    filters,
    name: m.get('name').optional((n) => n.string()) ?? doc.file,
    devices,
    faults,
    ...(program ? { program } : {}),
    timeline,
    timeoutMs: m.get('timeout').optional(readDuration) ?? 120_000,
  };
  // Last, so that every other error in the file is reported first.
  if (!timeline.some((t) => t.step.kind === 'wait' || t.step.kind === 'expect')) {
    throw timelineField.error('no wait or expect step: a scenario that checks nothing cannot fail', { key: true });
  }
  return scenario;
}

export async function loadScenario(path: string): Promise<Scenario> {
  return readScenario(await SourceDocument.load(path), dirname(resolve(path)));
}

export { ConfigError };
