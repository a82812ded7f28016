/**
 * Comparisons in a scenario (README.md, "Comparing values"): on the fields
 * of events (a `wait: {event}` filter, an `expect: {event}`) and of an
 * action's saved result (`expect: {result}`), and on a count of events.
 *
 *   verifyErrors: 0                      # equal: a string, number, true/false or null
 *   completed: { '>=': 400 }             # '==', '!=', '>=', '>', '<=', '<'
 *   latencyMs: { '>': 0, '<': 100 }      # several: every one must hold
 *   lost: { between: [0, 2] }            # both ends included
 *   sense.key: 5                         # a field inside a field (a list's item: ended.0.status)
 *
 * A comparison holds only on a value that is there and of its own kind: a
 * missing field satisfies none, not even '!=' (so no comparison can hold
 * for want of its subject), `'!=': 0` does not hold on a string, and an
 * ordering compares numbers only. One that no value could satisfy
 * (`{ '>': 5, '<': 3 }`) is refused when the file is read.
 */
import type { Field, FieldPath } from '../config/index.js';

export type Scalar = string | number | boolean | null;

const ORDERINGS = ['>=', '>', '<=', '<'] as const;
type Ordering = (typeof ORDERINGS)[number];
type Op = '==' | '!=' | Ordering;
/** The keys of a comparison mapping. */
const OPERATORS: readonly string[] = ['==', '!=', ...ORDERINGS, 'between'];

interface Test {
  op: Op;
  value: Scalar;
}

/** The kind of value a comparison can hold on: `null` when any (`'!=': null`). */
export type ComparedKind = 'number' | 'string' | 'boolean' | null;

export interface Comparison {
  readonly tests: readonly Test[];
  /** How it reads in messages: `== 0`, `>= 1 and < 10`, `between 1 and 5`. */
  readonly text: string;
  readonly kind: ComparedKind;
}

/** A comparison on one field, named by its path (`sense.key`). */
export interface FieldTest {
  /** The path as written: `sense.key`. */
  readonly name: string;
  readonly path: readonly string[];
  readonly cmp: Comparison;
  /** Where it is in the file, for load-time errors. */
  readonly at: FieldPath;
}

const kindOf = (v: Scalar): ComparedKind => (v === null ? null : (typeof v as 'number' | 'string' | 'boolean'));

function testHolds(t: Test, v: unknown): boolean {
  if (v === undefined) return false;
  switch (t.op) {
    case '==':
      return v === t.value;
    case '!=':
      return t.value === null ? v !== null : typeof v === typeof t.value && v !== t.value;
    default:
      return typeof v === 'number' && ordered(t.op, v, t.value as number);
  }
}

function ordered(op: Ordering, v: number, bound: number): boolean {
  switch (op) {
    case '>=':
      return v >= bound;
    case '>':
      return v > bound;
    case '<=':
      return v <= bound;
    case '<':
      return v < bound;
  }
}

/** Whether `v` (undefined: missing) satisfies every test of `c`. */
export function holds(c: Comparison, v: unknown): boolean {
  return c.tests.every((t) => testHolds(t, v));
}

/**
 * Whether `c` holds on every count of events (0, 1, 2...): `>= 0`,
 * `> -1`, `!= 0.5`. A count so compared checks nothing, whatever came.
 */
export function holdsOnEveryCount(c: Comparison): boolean {
  return c.tests.every((t) => {
    const v = t.value as number;
    if (t.op === '!=') return !(Number.isInteger(v) && v >= 0);
    return (t.op === '>=' && v <= 0) || (t.op === '>' && v < 0);
  });
}

/** `== 3`, for a count the scenario gives as a plain number. */
export function equalTo(n: number): Comparison {
  return { tests: [{ op: '==', value: n }], text: `== ${n}`, kind: 'number' };
}

/** What an event expectation without a `count` asks: that there was one. */
export const AT_LEAST_ONE: Comparison = { tests: [{ op: '>=', value: 1 }], text: '>= 1', kind: 'number' };

const FORM = "expected a value (a string, number, true/false or null) or a mapping of operators: '==', '!=', '>=', '>', '<=', '<', between: [low, high]";

/** Reads a comparison: a plain value (equal to it), or a mapping of operators that must all hold. */
export function readComparison(f: Field): Comparison {
  const v = f.value;
  if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) {
    if (typeof v === 'number') f.number(); // finite
    return { tests: [{ op: '==', value: v as Scalar }], text: `== ${show(v)}`, kind: kindOf(v as Scalar) };
  }
  if (Array.isArray(v) || typeof v !== 'object') throw f.error(FORM);
  const m = f.mapping(null);
  const keys = Object.keys(m.value);
  if (keys.length === 0) throw f.error(`an empty comparison holds on anything: ${FORM}`);
  const tests: Test[] = [];
  const texts: string[] = [];
  for (const k of keys) {
    const e = m.get(k);
    if (!OPERATORS.includes(k)) {
      const outer = f.path[f.path.length - 1];
      const hint = /^[A-Za-z_]/.test(k) && typeof outer === 'string' ? `; a field inside ${outer} is named ${outer}.${k}` : '';
      throw e.error(`not an operator: ${FORM}${hint}`, { key: true });
    }
    if (k === 'between') {
      const ends = e.list();
      if (ends.length !== 2) throw e.error('expected [low, high]');
      const [lo, hi] = ends.map((x) => x.number());
      if (lo! > hi!) throw e.error(`low ${lo} is above high ${hi}: no value is between them`);
      tests.push({ op: '>=', value: lo! }, { op: '<=', value: hi! });
      texts.push(`between ${lo} and ${hi}`);
    } else if ((ORDERINGS as readonly string[]).includes(k)) {
      if (typeof e.value !== 'number') throw e.error(`${k} compares numbers, not ${show(e.value)}`);
      tests.push({ op: k as Ordering, value: e.number() });
      texts.push(`${k} ${e.value}`);
    } else {
      const lit = e.value;
      if (lit !== null && !['string', 'number', 'boolean'].includes(typeof lit)) throw e.error(`${k} compares a string, number, true/false or null`);
      if (typeof lit === 'number') e.number();
      tests.push({ op: k as Op, value: lit as Scalar });
      texts.push(`${k} ${show(lit)}`);
    }
  }
  const kinds = [...new Set(tests.map((t) => (t.op === '==' || t.op === '!=' ? kindOf(t.value) : 'number')).filter((x) => x !== null))];
  if (kinds.length > 1) throw f.error(`compares a ${kinds.join(' and a ')}: no value is both`);
  const c: Comparison = { tests, text: texts.join(' and '), kind: kinds[0] ?? null };
  if (!satisfiable(c)) throw f.error(`${c.text} can never hold`);
  return c;
}

/** Whether some value satisfies `c`: an `==` value that does, or a number in the orderings' interval (which no `!=` can empty). */
function satisfiable(c: Comparison): boolean {
  const eq = c.tests.find((t) => t.op === '==');
  if (eq) return holds(c, eq.value);
  if (c.kind !== 'number') return true;
  let [lo, loOpen, hi, hiOpen] = [-Infinity, false, Infinity, false];
  for (const t of c.tests) {
    const b = t.value as number;
    if ((t.op === '>=' || t.op === '>') && (b > lo || (b === lo && t.op === '>'))) [lo, loOpen] = [b, t.op === '>'];
    if ((t.op === '<=' || t.op === '<') && (b < hi || (b === hi && t.op === '<'))) [hi, hiOpen] = [b, t.op === '<'];
  }
  if (lo !== hi) return lo < hi;
  return !loOpen && !hiOpen && holds(c, lo);
}

/** Reads `{ PATH: COMPARISON, ... }`: at least one. */
export function readFieldTests(f: Field): FieldTest[] {
  const m = f.mapping(null);
  const keys = Object.keys(m.value);
  if (keys.length === 0) throw f.error('expected at least one field to compare');
  return keys.map((k) => readFieldTest(m.get(k), k));
}

/** One `PATH: COMPARISON` entry of a mapping. */
export function readFieldTest(f: Field, key: string): FieldTest {
  const path = key.split('.');
  if (path.some((p) => p === '')) throw f.error(`expected a field name, or names joined by dots (sense.key), got ${JSON.stringify(key)}`, { key: true });
  return { name: key, path, cmp: readComparison(f), at: f.path };
}

/** The value at `path` inside `v` (a list's items by index), undefined if there is none. */
export function valueAt(v: unknown, path: readonly string[]): unknown {
  let cur = v;
  for (const p of path) {
    if (Array.isArray(cur) && /^\d+$/.test(p)) cur = cur[Number(p)];
    else if (cur !== null && typeof cur === 'object' && !Array.isArray(cur) && Object.hasOwn(cur, p)) cur = (cur as Record<string, unknown>)[p];
    else return undefined;
  }
  return cur;
}

/** A value as messages show it. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;
}

/**
 * Why `t` does not hold on `subject` (named `name` in the message), or
 * null if it holds: `expected w.verifyErrors == 0, saw 3`; a missing field
 * is named with what is there instead.
 */
export function whyNot(t: FieldTest, subject: unknown, name: string): string | null {
  const v = valueAt(subject, t.path);
  if (holds(t.cmp, v)) return null;
  const expected = `expected ${name}.${t.name} ${t.cmp.text}`;
  if (v === undefined) return `${expected}, but ${missing(subject, t.path, name)}`;
  const kind = t.cmp.kind;
  const mismatch = kind !== null && v !== null && typeof v !== kind ? ` (${typeName(v)}, not a ${kind})` : '';
  return `${expected}, saw ${show(v)}${mismatch}`;
}

/** Whether a comparison of `kind` can be judged on `v`: a value there, of that kind (any, for a comparison with null). */
export function comparable(v: unknown, kind: ComparedKind): boolean {
  return v !== undefined && (kind === null || typeof v === kind);
}

/** `w has no field good (its fields: count, delivered)`: the deepest part of `path` that is there, and what it holds. */
export function missing(subject: unknown, path: readonly string[], name: string): string {
  let cur = subject;
  let at = name;
  for (const p of path) {
    const next = valueAt(cur, [p]);
    if (next === undefined) {
      if (cur === null || typeof cur !== 'object') return `${at} is ${show(cur)} (${typeName(cur)}), which has no field ${p}`;
      const fields = Array.isArray(cur) ? `${cur.length} item(s)` : `its fields: ${Object.keys(cur).join(', ') || 'none'}`;
      return `${at} has no ${Array.isArray(cur) ? 'item' : 'field'} ${p} (${fields})`;
    }
    cur = next;
    at = `${at}.${p}`;
  }
  return `${at} is missing`;
}
