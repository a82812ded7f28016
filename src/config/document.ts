/**
 * YAML or JSON documents that keep source positions, and a field validator
 * whose errors name the file, the line and the field:
 *
 *   config.yaml:12: devices[1].model: expected a string
 *
 * The daemon's config file uses it, scenario files will, and the control
 * API validates request bodies with the same Field API (no file, no line:
 * `model: expected a string`). YAML 1.2 is a superset of JSON, so one parser
 * (yaml's parseDocument with a LineCounter) reads both.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Document, LineCounter, Node } from 'yaml';
import { UserError } from '../user-error.js';

export type FieldPath = ReadonlyArray<string | number>;

type Yaml = typeof import('yaml');
let yamlModule: Yaml | null = null;
/**
 * The yaml package, loaded by the first parse(): a value with no source
 * text (the control API's JSON bodies) never needs it, nor does a daemon
 * started without a config file, which starts ~60 ms sooner and ~1 MiB
 * smaller for it. require(), not import(), because parse() is synchronous;
 * the package's entry for Node is CommonJS either way.
 */
const yaml = (): Yaml => (yamlModule ??= createRequire(import.meta.url)('yaml') as Yaml);

/** `devices[1].model`; the empty path is the document itself. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}

/** A refused document or field. `message` is the whole `file:line: field: detail` line. */
export class ConfigError extends UserError {
  constructor(
    /** The document's label (its path as the user gave it), '' for a bare value. */
    readonly file: string,
    readonly line: number | null,
    /** formatPath() of the field, '' for the document or a syntax error. */
    readonly field: string,
    readonly detail: string,
  ) {
    const where = file ? `${file}${line !== null ? `:${line}` : ''}: ` : '';
    super(`${where}${field ? `${field}: ` : ''}${detail}`);
    this.name = 'ConfigError';
  }
}

export class SourceDocument {
  private constructor(
    readonly file: string,
    readonly value: unknown,
    private readonly doc: Document | null,
    private readonly lines: LineCounter | null,
  ) {}

  /** Parses YAML or JSON text; a syntax error is thrown as a ConfigError naming its line. */
  static parse(text: string, file: string): SourceDocument {
    const { LineCounter, parseDocument } = yaml();
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) {
      const line = lines.linePos(err.pos[0]).line;
      throw new ConfigError(file, line, '', firstLine(err.message));
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new ConfigError(file, null, '', e instanceof Error ? e.message : String(e));
    }
    return new SourceDocument(file, value, doc, lines);
  }

  /** Reads and parses `path`; errors are labelled with `path` as given. */
  static async load(path: string): Promise<SourceDocument> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      throw new ConfigError(path, null, '', `cannot read: ${code || (e as Error).message}`);
    }
    return SourceDocument.parse(text, path);
  }

  /** A value with no source text (a JSON request body): errors name only the field. */
  static fromValue(value: unknown, label = ''): SourceDocument {
    return new SourceDocument(label, value, null, null);
  }

  root(): Field {
    return new Field(this, [], this.value);
  }

  /**
   * 1-based line of the field at `path` (of its key when `key` is set), or
   * of its nearest ancestor that exists in the text.
   */
  line(path: FieldPath, key = false): number | null {
    if (!this.doc || !this.lines) return null;
    // A document with source text was parsed, so the package is loaded.
    const { isMap, isPair, isScalar, isSeq } = yaml();
    let node: unknown = this.doc.contents;
    let at: number | null = offsetOf(node);
    for (let i = 0; i < path.length; i++) {
      const p = path[i]!;
      let next: unknown;
      let keyNode: unknown;
      if (isMap(node)) {
        const pair = node.items.find((it) => isPair(it) && (isScalar(it.key) ? it.key.value : it.key) === p);
        if (pair && isPair(pair)) {
          keyNode = pair.key;
          next = pair.value;
        }
      } else if (isSeq(node) && typeof p === 'number') {
        next = node.items[p];
      }
      if (next === undefined && keyNode === undefined) break;
      const last = i === path.length - 1;
      at = (last && key ? offsetOf(keyNode) : null) ?? offsetOf(next) ?? offsetOf(keyNode) ?? at;
      node = next;
    }
    return at === null ? null : this.lines.linePos(at).line;
  }

  error(path: FieldPath, detail: string, o: { key?: boolean } = {}): ConfigError {
    return new ConfigError(this.file, this.line(path, o.key), formatPath(path), detail);
  }
}

function offsetOf(node: unknown): number | null {
  const range = (node as Node | undefined)?.range;
  return Array.isArray(range) ? range[0] : null;
}

function firstLine(msg: string): string {
  return msg.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

/** One field of a document: read it as the type it must have, or throw a ConfigError naming it. */
export class Field {
  constructor(
    readonly doc: SourceDocument,
    readonly path: FieldPath,
    readonly value: unknown,
  ) {}

  get present(): boolean {
    return this.value !== undefined;
  }

  get name(): string {
    return formatPath(this.path);
  }

  error(detail: string, o: { key?: boolean } = {}): ConfigError {
    return this.doc.error(this.path, detail, o);
  }

  string(o: { nonEmpty?: boolean } = {}): string {
    if (typeof this.value !== 'string') throw this.error(this.missingOr('expected a string'));
    if (o.nonEmpty && this.value === '') throw this.error('must not be empty');
    return this.value;
  }

  number(o: { integer?: boolean; min?: number; max?: number } = {}): number {
    const v = this.value;
    if (typeof v !== 'number') throw this.error(this.missingOr('expected a number'));
    // 1e400 parses to Infinity: a number, but not one anything can use.
    if (!Number.isFinite(v)) throw this.error(`expected a finite number, got ${v}`);
    if (o.integer && !Number.isInteger(v)) throw this.error(`expected an integer, got ${v}`);
    if (o.min !== undefined && v < o.min) throw this.error(`must be at least ${o.min}, got ${v}`);
    if (o.max !== undefined && v > o.max) throw this.error(`must be at most ${o.max}, got ${v}`);
    return v;
  }

  boolean(): boolean {
    if (typeof this.value !== 'boolean') throw this.error(this.missingOr('expected true or false'));
    return this.value;
  }

  list(): Field[] {
    if (!Array.isArray(this.value)) throw this.error(this.missingOr('expected a list'));
    return this.value.map((v, i) => new Field(this.doc, [...this.path, i], v));
  }

  /** A mapping with only the `known` keys (any keys if null); an unknown key is an error at that key's line. */
  mapping(known: readonly string[] | null): Mapping {
    const v = this.value;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw this.error(this.missingOr('expected a mapping'));
    for (const k of known ? Object.keys(v) : []) {
      if (!known!.includes(k)) {
        const expected = known!.length ? `expected one of: ${known!.join(', ')}` : 'this takes no fields';
        throw this.doc.error([...this.path, k], `unknown field (${expected})`, { key: true });
      }
    }
    return new Mapping(this.doc, this.path, v as Record<string, unknown>);
  }

  /** `read(this)` when the field is present, else undefined. */
  optional<T>(read: (f: Field) => T): T | undefined {
    return this.present ? read(this) : undefined;
  }

  private missingOr(expected: string): string {
    return this.present ? `${expected}, got ${kind(this.value)}` : `missing (${expected})`;
  }
}

export class Mapping {
  constructor(
    readonly doc: SourceDocument,
    readonly path: FieldPath,
    readonly value: Record<string, unknown>,
  ) {}

  get(key: string): Field {
    return new Field(this.doc, [...this.path, key], Object.hasOwn(this.value, key) ? this.value[key] : undefined);
  }
}
