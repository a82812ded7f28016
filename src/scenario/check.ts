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
 * - an event filter names an event type there is, and only fields an
 *   event of that type carries.
 *
 * Each refusal is a ConfigError at the offending line (exit 2).
 */
import { CORE_EVENT_FIELDS } from '../core/events.js';
import type { AnyDeviceModel } from '../core/index.js';
import { globMatcher } from '../faults/glob.js';
import type { Scenario } from './schema.js';

/** The event types a run can meet, each with its detail fields. */
export interface EventCatalog {
  fields: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * Whether every type is in `fields`: false when some model does not
   * declare its events (DeviceModel.events), or the models are a daemon's,
   * unknown here; a type missing from `fields` is then taken unchecked.
   */
  complete: boolean;
}

/** The fields a filter may name beside the type's own. */
const IDENTITY = ['type', 'device', 'generation'];

/** The core events, and those the given models declare; `models` null: not known (a daemon's). */
export function eventCatalog(models: readonly AnyDeviceModel[] | null): EventCatalog {
  const fields = new Map<string, Set<string>>();
  const add = (type: string, names: readonly string[]): void => {
    const set = fields.get(type) ?? new Set<string>();
    for (const n of names) set.add(n);
    fields.set(type, set);
  };
  for (const [type, names] of Object.entries(CORE_EVENT_FIELDS)) add(type, names);
  for (const m of models ?? []) for (const [type, names] of Object.entries(m.events ?? {})) add(type, names);
  return { fields, complete: models !== null && models.every((m) => m.events !== undefined) };
}

const listed = (names: Iterable<string>): string => [...names].sort().join(', ') || 'none';

/** Throws a ConfigError at the first name or filter that refers to nothing; `present`: the target's device names at the start. */
export function checkScenario(s: Scenario, present: readonly string[], events: EventCatalog): void {
  checkDeviceNames(s, present);
  checkEventFilters(s, events);
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

function checkEventFilters(s: Scenario, events: EventCatalog): void {
  for (const f of s.filters) {
    const type = String(f.match.type);
    const fields = events.fields.get(type);
    if (!fields) {
      if (events.complete) throw s.doc.error([...f.path, 'type'], `unknown event type ${JSON.stringify(type)} (known: ${listed(events.fields.keys())})`);
      continue;
    }
    for (const k of Object.keys(f.match)) {
      if (IDENTITY.includes(k) || fields.has(k)) continue;
      throw s.doc.error([...f.path, k], `${type} events have no field ${k} (their fields: ${[...IDENTITY.slice(1), ...fields].join(', ')})`, { key: true });
    }
  }
}
