/**
 * What a scenario refers to, checked before it runs (README.md,
 * "Scenarios"), so that no expectation can hold for want of its subject:
 *
 * - every device name a step uses is one the target has when the run
 *   starts (a daemon's devices, with --socket) or one the scenario plugs
 *   before that step (`devices`, an earlier `plug`);
 * - a fault rule's `device` glob matches at least one of the names the
 *   target has or the scenario plugs anywhere (a rule may wait for a device
 *   plugged later);
 * - an event filter, or an event expectation's `fields`, names an event
 *   type there is, only fields an event of that type carries, and compares
 *   each with a value of the type it is declared to hold (a string is not
 *   compared with `>=`; compare.ts), and a core event's `comm` with a
 *   name the kernel could keep (at most 15 bytes);
 * - an event filter's type is one a device it can be about emits: the
 *   core's, or one the model of its `device` declares (of any device the
 *   scenario plugs, without a `device`, on the run's own emulator), so that
 *   `{type: expired, device: uio0}` is not taken for the absence of
 *   watchdog expiries on a uio;
 * - a filter on an event of the run's own (run-events.ts: a process of the
 *   program crashed) names no `device` or `generation`: it has none.
 *
 * With --socket the models are the daemon's (GET /v1/models), and the
 * devices those it has when the run starts.
 *
 * Each refusal is a ConfigError at the offending line (exit 2).
 */
import { CORE_EVENT_FIELDS, declaredFields, isCoreEvent, type EventFieldType } from '../core/events.js';
import type { DeviceSpec } from '../config/index.js';
import type { EventFieldsDeclaration } from '../core/index.js';
import { globMatcher } from '../faults/glob.js';
import type { Comparison } from './compare.js';
import type { EventTests, Scenario } from './schema.js';
import { isRunEvent, RUN_EVENT_FIELDS } from './run-events.js';

/** The event types a run can meet, each with its detail fields. */
export interface EventCatalog {
  /** Each type's fields, with their types (`any` where a model declares names only). */
  fields: ReadonlyMap<string, ReadonlyMap<string, EventFieldType>>;
  /**
   * Whether every type is in `fields`: false when a model the run may
   * plug does not declare its events (DeviceModel.events); a type missing
   * from `fields` is then taken unchecked.
   */
  complete: boolean;
  /** Each model's own event types, by model name (null: it does not declare them, and may emit any). */
  byModel: ReadonlyMap<string, ReadonlySet<string> | null>;
  /** Whether devices of any model may come that the scenario does not plug: a daemon's, which other clients plug too. */
  othersPlug: boolean;
}

/** What the catalog needs of a model: a DeviceModel, or a daemon's ModelView. */
export interface ModelEvents {
  name: string;
  /** undefined or null: not declared (it may emit any). */
  events?: Readonly<Record<string, EventFieldsDeclaration>> | null;
}

/** A device the target has when the run starts. */
export interface PresentDevice {
  name: string;
  model: string;
}

/** The fields a filter may name beside the type's own. */
const IDENTITY: ReadonlyMap<string, EventFieldType> = new Map([
  ['device', 'string'],
  ['generation', 'number'],
]);

/**
 * The core events, the run's own (run-events.ts), and those the given models declare. Only a model
 * named in `plugged` can leave the catalog incomplete: one loaded and
 * never plugged emits nothing, and must not let a misspelled core type
 * through. `plugged` 'any': a daemon's models, any of which another
 * client may plug.
 */
export function eventCatalog(models: readonly ModelEvents[], plugged: ReadonlySet<string> | 'any' = new Set()): EventCatalog {
  const mayPlug = (m: ModelEvents): boolean => plugged === 'any' || plugged.has(m.name);
  const fields = new Map<string, Map<string, EventFieldType>>();
  const add = (type: string, declared: ReadonlyMap<string, EventFieldType>): void => {
    const known = fields.get(type) ?? new Map<string, EventFieldType>();
    // Two models declaring one type with different types for a field: either may be met.
    for (const [n, t] of declared) known.set(n, known.has(n) && known.get(n) !== t ? 'any' : t);
    fields.set(type, known);
  };
  for (const [type, decl] of Object.entries({ ...CORE_EVENT_FIELDS, ...RUN_EVENT_FIELDS })) add(type, declaredFields(decl));
  for (const m of models) for (const [type, decl] of Object.entries(m.events ?? {})) add(type, declaredFields(decl));
  const byModel = new Map(models.map((m) => [m.name, m.events ? new Set(Object.keys(m.events)) : null]));
  return { fields, complete: models.every((m) => m.events || !mayPlug(m)), byModel, othersPlug: plugged === 'any' };
}

/** The devices a scenario plugs: its `devices` and `plug` steps. */
const pluggedSpecs = (s: Scenario): DeviceSpec[] => [...s.devices, ...s.timeline.flatMap((t) => (t.step.kind === 'plug' ? [t.step.spec] : []))];

/**
 * The models a local run plugs: the scenario's devices and `plug` steps.
 * (The tcmu preset's devices, made by tcmu-runner's netlink, are of model
 * tcmu, which declares its events: it never leaves the catalog incomplete.)
 */
export function pluggedModels(s: Scenario): Set<string> {
  return new Set(pluggedSpecs(s).map((d) => d.model));
}

const listed = (names: Iterable<string>): string => [...names].sort().join(', ') || 'none';

/**
 * A `stop` step, or a `start` step without its own command, needs a
 * program under test: the scenario's, or `command` (`cdevemu run ... --
 * CMD`) when one is given.
 */
export function checkProgramSteps(s: Scenario, command: boolean): void {
  if (command || s.program) return;
  const i = s.timeline.findIndex((t) => t.step.kind === 'stop' || (t.step.kind === 'start' && !t.step.command));
  if (i < 0) return;
  const kind = s.timeline[i]!.step.kind;
  throw s.doc.error(['timeline', i, kind], `there is no program under test to ${kind === 'stop' ? 'stop' : 'start again'} (give the scenario a program, or a command after --)`);
}

/**
 * A run on its own emulator needs a program under test (the scenario's,
 * `command`, or a `start` step's): without one nothing but the scenario
 * acts on its devices, and every expectation about files would hold for
 * want of one (no stuck handler, no late release). A daemon's run
 * (--socket) has the daemon's programs for its subject.
 */
export function checkHasProgram(s: Scenario, command: boolean): void {
  if (command || s.program || s.timeline.some((t) => t.step.kind === 'start')) return;
  throw s.doc.error(['timeline'], 'there is no program under test (give the scenario a program, or a command after --): on its own emulator, nothing else would act on the devices');
}

/** Throws a ConfigError at the first name or filter that refers to nothing; `present`: the target's devices at the start. */
export function checkScenario(s: Scenario, present: readonly PresentDevice[], events: EventCatalog): void {
  checkDeviceNames(s, present.map((d) => d.name));
  checkEventFilters(s, present, events);
}

function checkDeviceNames(s: Scenario, present: readonly string[]): void {
  const known = new Set(present);
  const plugs = s.refs.filter((r) => r.use === 'plug');
  const everywhere = new Set([...present, ...plugs.map((r) => r.name)]);
  for (const r of s.refs) {
    if (r.use === 'plug') {
      known.add(r.name);
    } else if (r.use === 'glob') {
      const match = globMatcher(r.name);
      if (![...everywhere].some(match)) throw s.doc.error(r.path, `${JSON.stringify(r.name)} matches no device (known: ${listed(everywhere)})`);
    } else if (!known.has(r.name)) {
      const later = plugs.find((p) => p.name === r.name);
      const hint = later ? `; ${r.name} is plugged only later, at line ${s.doc.line(later.path)}` : '';
      throw s.doc.error(r.path, `unknown device ${JSON.stringify(r.name)} (known: ${listed(known)}${hint})`);
    }
  }
}

function checkEventFilters(s: Scenario, present: readonly PresentDevice[], events: EventCatalog): void {
  for (const f of s.filters) {
    const fields = events.fields.get(f.type);
    if (!fields) {
      if (events.complete) throw s.doc.error(f.typePath, `unknown event type ${JSON.stringify(f.type)} (known: ${listed(events.fields.keys())})`);
      continue;
    }
    checkEmitted(s, f, present, events);
    // The run's own events are about processes: no device, no generation.
    const ofRun = isRunEvent(f.type);
    const identity = ofRun ? new Map<string, EventFieldType>() : IDENTITY;
    if (ofRun && f.device !== undefined) {
      throw s.doc.error([...f.typePath.slice(0, -1), 'device'], `${f.type} events are the run's, about the program's processes: they have no device`, { key: true });
    }
    for (const t of f.tests) {
      const [head, ...inside] = t.path;
      const type = identity.get(head!) ?? fields.get(head!);
      if (!type) {
        const theirs = [...identity.keys(), ...fields.keys()].join(', ');
        throw s.doc.error(t.at, `${f.type} events have no field ${head} (their fields: ${theirs})`, { key: true });
      }
      const why = mismatch(type, head!, inside.length > 0, t.cmp) ?? ((isCoreEvent(f.type) || ofRun) && t.name === 'comm' ? longerThanComm(t.cmp) : null);
      if (why) throw s.doc.error(t.at, `${f.type}'s ${head} is ${why}`, { key: inside.length > 0 });
    }
  }
}

/** The most bytes of a task's name the kernel keeps (TASK_COMM_LEN 16, with its NUL): a core event's `comm`, /proc/PID/comm. */
const COMM_MAX_BYTES = 15;

/**
 * Why `cmp` on a core event's `comm` can never hold as meant, or null: a
 * name longer than the kernel keeps is never one, so `== NAME` matches
 * nothing (a `count: 0` holds while NAME opens the device, as its
 * truncated name) and `!= NAME` everything.
 */
function longerThanComm(cmp: Comparison): string | null {
  const long = cmp.tests.find((t) => typeof t.value === 'string' && Buffer.byteLength(t.value) > COMM_MAX_BYTES);
  if (!long) return null;
  const name = long.value as string;
  const kept = Buffer.from(name).subarray(0, COMM_MAX_BYTES).toString();
  return `the task's name as the kernel keeps it (/proc/PID/comm), at most ${COMM_MAX_BYTES} bytes: ${JSON.stringify(name)} is never one (the kernel keeps ${JSON.stringify(kept)})`;
}

/** Why `cmp` on field `name` of `type` (on a field inside it, if `inside`) can never hold, or null. */
function mismatch(type: EventFieldType, name: string, inside: boolean, cmp: Comparison): string | null {
  if (type === 'any') return null;
  const scalar = type === 'number' || type === 'string' || type === 'boolean';
  if (inside) return scalar ? `a ${type}, with no fields inside` : null;
  if (!scalar) return `a ${type}: compare a field inside it (${type === 'list' ? `${name}.0 is its first item` : `${name}.FIELD`})`;
  return cmp.kind !== null && cmp.kind !== type ? `a ${type}; ${cmp.text} compares a ${cmp.kind}: it can never hold` : null;
}

/**
 * Refuses a filter on a model's event type that no device it can be about
 * emits: of its `device`, the models under that name (the target's at the
 * start, the scenario's plugs); without one, every model the scenario
 * plugs (none plugged, or another client may plug: nothing to tell by).
 * A model that leaves its events undeclared may emit any.
 */
function checkEmitted(s: Scenario, f: EventTests, present: readonly PresentDevice[], events: EventCatalog): void {
  if (isCoreEvent(f.type) || isRunEvent(f.type) || (f.device === undefined && events.othersPlug)) return;
  const devices = [...present, ...pluggedSpecs(s).map((d) => ({ name: d.name, model: d.model }))];
  const models = [...new Set(devices.filter((d) => f.device === undefined || d.name === f.device).map((d) => d.model))];
  const emits = (m: string): boolean => {
    const types = events.byModel.get(m);
    return types === null || types === undefined || types.has(f.type);
  };
  if (models.length === 0 || models.some(emits)) return;
  const whose = [...events.byModel].flatMap(([m, types]) => (types?.has(f.type) ? [m] : []));
  const subject = f.device === undefined ? `no device the scenario plugs (${listed(models)}) emits` : `${f.device} (${listed(models)}) emits no`;
  throw s.doc.error(f.typePath, `${subject} ${f.type} events: ${f.type} is an event of ${listed(whose)}, so the filter would match nothing whatever happened`);
}

