/**
 * The one declaration of what a model takes: its options (checked before
 * create() runs) and each action's argument (checked before the action
 * runs), field by field with type, range, enum and default. The daemon
 * checks input against exactly this, and GET /v1/models and `cdevemu
 * models` show it (docs/writing-a-model.md#options-and-actions).
 */
import { Errno } from '../errno.js';
import { didYouMean } from '../suggest.js';

export type FieldType = 'integer' | 'number' | 'string' | 'boolean' | 'object' | 'array';

export interface FieldSpec {
  /** One type, or several a value may have (a region given by index or by name). */
  readonly type: FieldType | readonly FieldType[];
  /** One line for people: GET /v1/models, `cdevemu models`, docs/models.md. */
  readonly description: string;
  /** Bounds, inclusive, of an integer or number. */
  readonly min?: number;
  readonly max?: number;
  /** What a string must spell: hex byte pairs, base64, an absolute path. */
  readonly format?: StringFormat;
  /** The only values allowed. */
  readonly enum?: readonly (string | number)[];
  /**
   * What an absent field is; a field without a default or `required` stays
   * undefined. An array's default is a list of strings or numbers (a
   * watchdog's WDIOF_* flags), each plug given a copy of its own.
   */
  readonly default?: string | number | boolean | readonly (string | number)[];
  readonly required?: boolean;
  /** The fields of an object, checked the same way (unknown ones refused). */
  readonly fields?: Schema;
  /** Each element of an array, checked the same way. */
  readonly items?: FieldSpec;
  /** Bounds, inclusive, of an array's length. */
  readonly minItems?: number;
  readonly maxItems?: number;
}

export type StringFormat = 'hex' | 'base64' | 'absolute-path';

const FORMATS: Readonly<Record<StringFormat, { test(s: string): boolean; noun: string }>> = {
  hex: { test: (s) => /^([0-9a-fA-F]{2})*$/.test(s), noun: 'a string of hex byte pairs' },
  base64: { test: (s) => /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0, noun: 'a base64 string' },
  'absolute-path': { test: (s) => s.startsWith('/'), noun: 'an absolute path' },
};

export type Schema = Readonly<Record<string, FieldSpec>>;

/** The type of a value of one FieldType. */
export type TypeValue<T> = T extends 'integer' | 'number'
  ? number
  : T extends 'string'
    ? string
    : T extends 'boolean'
      ? boolean
      : T extends 'array'
        ? unknown[]
        : Record<string, unknown>;
/** The type of a field's checked value. */
export type FieldValue<F extends FieldSpec> = F extends { enum: readonly (infer E)[] }
  ? E
  : F extends { fields: infer N extends Schema }
    ? Values<N>
    : F extends { items: infer I extends FieldSpec }
      ? FieldValue<I>[]
      : TypeValue<F['type'] extends readonly (infer T)[] ? T : F['type']>;

/** The checked values of a schema: a field with a default or `required` is always there. */
export type Values<S extends Schema> = {
  -readonly [K in keyof S]: S[K] extends { default: unknown } | { required: true } ? FieldValue<S[K]> : FieldValue<S[K]> | undefined;
};

/**
 * Input refused by a schema: a wrong type, a value out of range or not in
 * the enum, an unknown or missing field. An EINVAL, as the library API
 * throws it; the control API answers it 400 `bad_request`. `field` is the
 * dotted path of the field at fault.
 */
export class SchemaError extends Errno {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super('EINVAL', message);
    this.name = 'SchemaError';
  }
}

/** A schema as given, with its defaults checked against it: a model's mistake fails where the model is declared. */
export function defineSchema<const S extends Schema>(schema: S): S {
  for (const [name, f] of Object.entries(schema)) {
    if (f.default !== undefined) check(`schema field ${name}`, 'default', f, f.default);
    if (f.fields) defineSchema(f.fields);
  }
  return schema;
}

/**
 * `value` (an object, or undefined/null for none) checked against `schema`:
 * each field's type, range and enum, defaults filled in, unknown fields
 * refused with the known ones and a "did you mean". `what` names the
 * container in messages: "tcmu: option", "tcmu: action submit: argument".
 */
export function checkValues<S extends Schema>(what: string, schema: S, value: unknown): Values<S> {
  return checkObject(what, '', schema, value) as Values<S>;
}

/**
 * One value checked against one field's spec, its default when absent: for
 * a bound that depends on another field (a watchdog's timeout between its
 * minTimeout and maxTimeout), known only once that field is checked.
 */
export function checkField<F extends FieldSpec>(what: string, field: string, spec: F, value: unknown): FieldValue<F> {
  return (value === undefined ? spec.default : check(what, field, spec, value)) as FieldValue<F>;
}

function checkObject(what: string, path: string, schema: Schema, value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new SchemaError(`${what}${path ? ` ${path}` : 's'} must be an object, got ${describe(value)}`, path);
  }
  const given = value as Record<string, unknown>;
  const known = Object.keys(schema);
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(schema, key)) {
      const field = join(path, key);
      throw new SchemaError(`${what} ${field} is unknown${didYouMean(key, known)}; known: ${known.join(', ') || 'none'}`, field);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(schema)) {
    const field = join(path, key);
    const v = given[key];
    if (v === undefined || v === null) {
      if (f.required) throw new SchemaError(`${what} ${field} is required (${allowed(f)})`, field);
      if (f.default !== undefined) out[key] = Array.isArray(f.default) ? [...(f.default as readonly unknown[])] : f.default;
      continue;
    }
    out[key] = check(what, field, f, v);
  }
  return out;
}

function check(what: string, field: string, f: FieldSpec, v: unknown): unknown {
  const types = typeof f.type === 'string' ? [f.type] : f.type;
  const type = types.find((t) => is(t, v));
  const bad = (): SchemaError => new SchemaError(`${what} ${field} must be ${allowed(f)}, got ${describe(v)}`, field);
  if (type === undefined) throw bad();
  if (f.enum && !f.enum.includes(v as string | number)) throw bad();
  if (typeof v === 'string' && f.format && !FORMATS[f.format].test(v)) throw bad();
  if (typeof v === 'number' && ((f.min !== undefined && v < f.min) || (f.max !== undefined && v > f.max))) throw bad();
  if (type === 'object' && f.fields) return checkObject(what, field, f.fields, v);
  if (Array.isArray(v) && ((f.minItems !== undefined && v.length < f.minItems) || (f.maxItems !== undefined && v.length > f.maxItems)))
    throw bad();
  if (type === 'array' && f.items) {
    const items = f.items;
    return (v as unknown[]).map((x, i) => check(what, `${field}[${i}]`, items, x));
  }
  return v;
}

function is(type: FieldType, v: unknown): boolean {
  switch (type) {
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    default:
      return typeof v === type;
  }
}

/** "an integer from 0 to 65535", "one of 'a', 'b'", "a string or an integer >= 0". */
export function allowed(f: FieldSpec): string {
  if (f.enum) return `one of ${f.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  const types = typeof f.type === 'string' ? [f.type] : f.type;
  return types
    .map((t) => {
      if (t === 'string' && f.format) return FORMATS[f.format].noun;
      if (t === 'array') return `an array${itemCount(f)}${f.items ? `, each ${allowed(f.items)}` : ''}`;
      const noun = t === 'integer' ? 'an integer' : t === 'object' ? 'an object' : `a ${t}`;
      if (t !== 'integer' && t !== 'number') return noun;
      if (f.min !== undefined && f.max !== undefined) return `${noun} from ${f.min} to ${f.max}`;
      if (f.min !== undefined) return `${noun} >= ${f.min}`;
      if (f.max !== undefined) return `${noun} <= ${f.max}`;
      return noun;
    })
    .join(' or ');
}

/** " of 8 items", " of 1 to 5 items", " of at least 1 item(s)", " of at most 5 items", or "". */
function itemCount(f: FieldSpec): string {
  const { minItems: lo, maxItems: hi } = f;
  if (lo !== undefined && lo === hi) return ` of ${lo} items`;
  if (lo !== undefined && hi !== undefined) return ` of ${lo} to ${hi} items`;
  if (lo !== undefined) return ` of at least ${lo} items`;
  return hi !== undefined ? ` of at most ${hi} items` : '';
}

function describe(v: unknown): string {
  const text = JSON.stringify(v);
  if (text === undefined) return typeof v;
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** A field as GET /v1/models shows it: the declaration, with its name and nested fields listed the same way. */
export interface FieldView {
  name: string;
  type: FieldType | FieldType[];
  description: string;
  min?: number;
  max?: number;
  enum?: (string | number)[];
  format?: StringFormat;
  default?: string | number | boolean | readonly (string | number)[];
  required?: boolean;
  fields?: FieldView[];
  items?: Omit<FieldView, 'name'>;
  minItems?: number;
  maxItems?: number;
}

export function describeSchema(schema: Schema): FieldView[] {
  return Object.entries(schema).map(([name, f]) => ({ name, ...fieldView(f) }));
}

function fieldView(f: FieldSpec): Omit<FieldView, 'name'> {
  const { fields, items, type, enum: e, ...rest } = f;
  return {
    type: typeof type === 'string' ? type : [...type],
    ...rest,
    ...(e ? { enum: [...e] } : {}),
    ...(fields ? { fields: describeSchema(fields) } : {}),
    ...(items ? { items: fieldView(items) } : {}),
  };
}
