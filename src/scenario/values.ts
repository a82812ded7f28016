/**
 * Event filters and the expectations on values (README.md, "Comparing
 * values"): whether an event matches a filter, what to say when a wait for
 * one runs out, and the verdicts of `expect: {event}` and
 * `expect: {result}`, which are given at once with the value seen.
 */
import { AFTER_UNPLUG, type DeviceEvent } from '../core/events.js';
import { comparable, holds, missing, show, valueAt, whyNot, type FieldTest } from './compare.js';
import type { GenerationRecord } from './ledger.js';
import type { EventFilter, Scenario, Step } from './schema.js';

export function matches(e: DeviceEvent, f: Pick<EventFilter, 'type' | 'device' | 'tests'>): boolean {
  return e.type === f.type && (f.device === undefined || e.device === f.device) && f.tests.every((t) => whyNot(t, e, f.type) === null);
}

/**
 * Whether a wait or an expectation of `s` is about `e`: its filter, with
 * an expectation's `fields`, holds on it. An event that fails a run
 * whatever its steps say (a model_error, a crash) is left to the scenario
 * only then: one about a worker's aborts, or b0's model errors, says
 * nothing of another process's crash or of b1's.
 */
export const judgedBy =
  (s: Scenario) =>
  (e: DeviceEvent): boolean =>
    s.filters.some((f) => matches(e, f));

const ofDevice = (f: EventFilter): string => (f.device !== undefined ? ` of ${f.device}` : '');
/** The event's subject: a device's generation, or for the run's own events (run-events.ts), which have no device, the process. */
const which = (e: DeviceEvent): string => (e.device === '' ? `pid ${String(e.pid)}` : `${e.device} generation ${e.generation}`);

/**
 * Why a wait for `want` events matching `f` is still short, from the
 * `events` it counted: how many matched, and for the last event of the
 * filter's type and device that did not, the first field that failed.
 */
export function shortfall(events: readonly DeviceEvent[], f: EventFilter, want: number): string {
  const same = events.filter((e) => e.type === f.type && (f.device === undefined || e.device === f.device));
  const matched = same.filter((e) => matches(e, f)).length;
  const seen = `${matched} of ${want} matched`;
  const missed = same.filter((e) => !matches(e, f));
  const last = missed[missed.length - 1];
  if (!last) return `${seen}; there was no other ${f.type} event${ofDevice(f)}`;
  const why = f.tests.map((t) => whyNot(t, last, f.type)).find((w) => w !== null);
  return `${seen}; of the ${missed.length} other ${f.type} event(s)${ofDevice(f)}, the last (${which(last)}): ${why}`;
}

/** Why `expect: {event}` fails on the events counted, or null if it holds. */
export function eventExpectationFails(events: readonly DeviceEvent[], s: Extract<Step, { kind: 'expect'; what: 'event' }>): string | null {
  const matched = events.filter((e) => matches(e, s.filter));
  if (!holds(s.count, matched.length)) {
    const last = matched[matched.length - 1];
    const lastText = last ? `; the last: ${show(last)}` : '';
    return `expected the count of events matching ${s.filter.text} ${s.count.text}, saw ${matched.length}${lastText}`;
  }
  if (holds(s.count, 0)) {
    const vacuous = neverComparable(events, s.filter);
    if (vacuous) return vacuous;
  }
  const lines = matched.flatMap((e) => failures(s.fields, e, s.filter.type).map((w) => `${w} (${which(e)})`));
  return lines.length ? lines.join('\n') : null;
}

/**
 * A count that holds with no event matching (`count: 0`, `'<': 3`) holds
 * too for a filter that could never match: a field path misspelled inside
 * a list, a mapping or a field a model declares by name only (which the
 * load-time check cannot see into: check.ts), or a value of another kind
 * (`size: "4096"` against a number). So once events of the filter's type
 * and device were counted, each field it compares must have held, in one
 * of them at least, a value of the kind it compares; else the expectation
 * fails, saying what those events hold there. With no such event there is
 * nothing to tell a misspelling from an absence by.
 */
function neverComparable(events: readonly DeviceEvent[], f: EventFilter): string | null {
  const same = events.filter((e) => e.type === f.type && (f.device === undefined || e.device === f.device));
  const last = same[same.length - 1];
  if (!last) return null;
  for (const t of f.tests) {
    const kind = t.cmp.kind;
    if (same.some((e) => comparable(valueAt(e, t.path), kind))) continue;
    const there = valueAt(last, t.path);
    const saw = `in the last (${which(last)}), ${there === undefined ? missing(last, t.path, f.type) : `${f.type}.${t.name} is ${show(there)}`}`;
    return `${f.type}.${t.name} holds no ${kind ?? 'value'} in any of the ${same.length} ${f.type} event(s)${ofDevice(f)} counted: ${saw}; a filter on it matches nothing whatever happens (a misspelled field, or a value of another kind)`;
  }
  return null;
}

/**
 * Why an event expectation whose count holds with no event matching
 * (`count: 0`) holds for want of what its filter is about, or null:
 * `gens`, the generations the run has known of the filter's device (of
 * every device, without one), include none its `generation` names (no
 * replug made generation 2), or none was unplugged while the filter
 * counts events only an unplug brings (`late_released`, `stuck`): then
 * the count held whatever the program did.
 */
export function absentSubject(s: Extract<Step, { kind: 'expect'; what: 'event' }>, gens: readonly GenerationRecord[]): string | null {
  if (!holds(s.count, 0)) return null;
  const f = s.filter;
  const of = f.device ?? 'any device';
  const vacuous = `so count ${s.count.text} would hold whatever the program did`;
  const genTest = f.tests.find((t) => t.name === 'generation' && !gens.some((g) => holds(t.cmp, g.generation)));
  if (genTest) {
    const had = gens.map((g) => g.generation).join(', ') || 'none';
    return `no generation of ${of} in this run is ${genTest.cmp.text} (there were: ${had}), ${vacuous}`;
  }
  if (AFTER_UNPLUG.has(f.type) && !gens.some((g) => g.unplugged)) {
    return `no unplug of ${of} began in this run, and ${f.type} events come only after one, ${vacuous}: put this expectation after an unplug`;
  }
  return null;
}

/** Why `expect: {result}` fails on the saved result, or null if it holds. */
export function resultExpectationFails(result: unknown, s: Extract<Step, { kind: 'expect'; what: 'result' }>): string | null {
  const lines = failures(s.fields, result, s.name);
  return lines.length ? lines.join('\n') : null;
}

function failures(tests: readonly FieldTest[], subject: unknown, name: string): string[] {
  return tests.map((t) => whyNot(t, subject, name)).filter((w): w is string => w !== null);
}
