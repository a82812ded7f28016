/**
 * The daemon's config file (YAML or JSON):
 *
 *   mountpoint: ./cdevemu-mnt      # relative paths are relative to the file
 *   socket: /run/cdevemu.sock
 *   allowOther: false
 *   passthrough: true              # false: no FUSE passthrough, mmap of device regions fails ENODEV
 *   drainTimeoutMs: 5000
 *   shutdownReleaseMs: 3000        # how long SIGTERM waits for open files to close
 *   logLevel: info
 *   models: [./my-model.mjs]       # user model modules, like --model
 *   devices:                       # plugged at start, in order
 *     - { model: echo, name: echo0, options: { capacity: 4096 } }
 *   faults:                        # fault rules added at start (src/faults/rule.ts)
 *     - { device: echo0, op: read, every: 10, action: delay, delayMs: 50 }
 *
 * Every field is optional; a missing one keeps its default (devices: the
 * demo set in defaults.ts). Command-line flags override the file.
 */
import { dirname, resolve } from 'node:path';
import { DeviceError, checkNamePattern } from '../core/index.js';
import { FaultRuleError, checkRuleSpec, type FaultRuleSpec } from '../faults/index.js';
import { MAX_DURATION_MS } from '../limits.js';
import type { UnplugMode } from '../core/index.js';
import { SourceDocument, type ConfigError, type Field } from './document.js';
import { LOG_LEVELS, type LogLevel } from './log-levels.js';

export interface DeviceSpec {
  model: string;
  name: string;
  options?: unknown;
}

/** What a config file sets; absent fields are left undefined. Paths are absolute. */
export interface DaemonConfigFile {
  mountpoint?: string;
  socket?: string;
  allowOther?: boolean;
  /** false: do not negotiate FUSE passthrough (device regions cannot be mapped). */
  passthrough?: boolean;
  drainTimeoutMs?: number;
  /** How long shutdown waits for files still open before unmounting (default DEFAULT_SHUTDOWN_RELEASE_MS). */
  shutdownReleaseMs?: number;
  logLevel?: LogLevel;
  models?: string[];
  devices?: DeviceSpec[];
  faults?: FaultRuleSpec[];
  /**
   * With `devices`: the error for a field of devices[i] that the file's
   * checks could not judge (a model loaded later, its options), pointed at
   * its line.
   */
  deviceError?: (index: number, field: 'model' | 'name' | 'options', detail: string) => ConfigError;
}

const TOP_LEVEL = ['mountpoint', 'socket', 'allowOther', 'passthrough', 'drainTimeoutMs', 'shutdownReleaseMs', 'logLevel', 'models', 'devices', 'faults'];

/** Reads a device list entry `{model, name, options}` (shared with scenario files). */
export function readDeviceSpec(f: Field): DeviceSpec {
  const m = f.mapping(['model', 'name', 'options']);
  const name = m.get('name');
  const spec: DeviceSpec = { model: m.get('model').string({ nonEmpty: true }), name: name.string({ nonEmpty: true }) };
  try {
    checkNamePattern(spec.name);
  } catch (e) {
    if (e instanceof DeviceError) throw name.error(e.message);
    throw e;
  }
  const options = m.get('options');
  if (options.present) {
    if (options.value !== null) options.mapping(null);
    spec.options = options.value;
  }
  return spec;
}

/** Reads a device list (shared with scenario files): two entries may not claim one name. */
export function readDeviceList(f: Field): DeviceSpec[] {
  if (f.value === null) return [];
  const specs = f.list().map(readDeviceSpec);
  specs.forEach((spec, i) => {
    const first = specs.findIndex((s) => s.name === spec.name);
    if (first < i && !spec.name.includes('%d')) {
      throw f.doc.error([...f.path, i, 'name'], `${spec.name} is already devices[${first}]'s name`);
    }
  });
  return specs;
}

const UNPLUG_MODES: readonly UnplugMode[] = ['orderly', 'surprise'];

/** An unplug mode (control API body, scenario step): orderly or surprise. */
export function readUnplugMode(f: Field): UnplugMode {
  const v = f.string({ nonEmpty: true });
  if (!(UNPLUG_MODES as readonly string[]).includes(v)) throw f.error(`expected ${UNPLUG_MODES.join(' or ')}, got ${JSON.stringify(v)}`);
  return v as UnplugMode;
}

/**
 * Reads a fault rule (shared with scenario files): checked with the fault
 * engine's own validation, its errors pointed at the offending key's line.
 */
export function readFaultRule(f: Field): FaultRuleSpec {
  f.mapping(null);
  try {
    return checkRuleSpec(f.value);
  } catch (e) {
    if (e instanceof FaultRuleError) throw f.doc.error([...f.path, e.field], e.message.slice(e.field.length + 2));
    throw e;
  }
}

/** Validates a parsed config document; relative paths resolve against `baseDir`. */
export function readDaemonConfig(doc: SourceDocument, baseDir: string): DaemonConfigFile {
  const root = doc.root();
  // An empty file is an empty config.
  if (root.value === null || root.value === undefined) return {};
  const m = root.mapping(TOP_LEVEL);
  const out: DaemonConfigFile = {};
  const path = (f: Field): string => {
    const p = f.string({ nonEmpty: true });
    if (p.includes('\0')) throw f.error('a path cannot contain a NUL byte');
    return resolve(baseDir, p);
  };
  const mountpoint = m.get('mountpoint').optional(path);
  if (mountpoint !== undefined) out.mountpoint = mountpoint;
  const socket = m.get('socket').optional(path);
  if (socket !== undefined) out.socket = socket;
  const allowOther = m.get('allowOther').optional((f) => f.boolean());
  if (allowOther !== undefined) out.allowOther = allowOther;
  const passthrough = m.get('passthrough').optional((f) => f.boolean());
  if (passthrough !== undefined) out.passthrough = passthrough;
  const drain = m.get('drainTimeoutMs').optional((f) => f.number({ min: 0, max: MAX_DURATION_MS }));
  if (drain !== undefined) out.drainTimeoutMs = drain;
  const release = m.get('shutdownReleaseMs').optional((f) => f.number({ min: 0, max: MAX_DURATION_MS }));
  if (release !== undefined) out.shutdownReleaseMs = release;
  const level = m.get('logLevel').optional((f) => {
    const s = f.string();
    if (!(LOG_LEVELS as readonly string[]).includes(s)) throw f.error(`expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(s)}`);
    return s as LogLevel;
  });
  if (level !== undefined) out.logLevel = level;
  const models = m.get('models').optional((f) => f.list().map(path));
  if (models !== undefined) out.models = models;
  const devices = m.get('devices').optional(readDeviceList);
  if (devices !== undefined) {
    out.devices = devices;
    out.deviceError = (i, field, detail) => doc.error(['devices', i, field], detail);
  }
  const faults = m.get('faults').optional((f) => (f.value === null ? [] : f.list().map(readFaultRule)));
  if (faults !== undefined) out.faults = faults;
  return out;
}

export async function loadDaemonConfig(file: string): Promise<DaemonConfigFile> {
  const doc = await SourceDocument.load(file);
  return readDaemonConfig(doc, dirname(resolve(file)));
}
