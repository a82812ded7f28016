/**
 * docs/models.md lists each model's options by hand, in a table per model
 * (`| option | type | default | meaning |`). This checks every table
 * against the schema the daemon checks plugs with (the same one GET
 * /v1/models shows): the same option names, and, where the table gives a
 * default as a literal (a number, `a string`, true or false), the same
 * default. A model section with no table must have no options.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeSchema } from '../../src/core/index.js';
import { builtinModels } from '../../src/models/index.js';

const doc = readFileSync(resolve(import.meta.dirname, '../../docs/models.md'), 'utf8');

/**
 * The option rows of the first `| option |` table in the section whose
 * heading names `model` (`## tcmu — ...`, `## null, zero, full, echo`),
 * as option -> default cell. A row may name several options
 * (`` `minTimeout`, `maxTimeout` ``) with a default each (`1, 65535`).
 */
function documented(model: string): Map<string, string> | null {
  const sections = doc.split(/^## /m).slice(1);
  const section = sections.find((s) =>
    s
      .split(/ — |\n/)[0]!
      .split(/, /)
      .includes(model),
  );
  if (!section) throw new Error(`docs/models.md has no section for model ${model}`);
  const start = section.search(/^\| option \| type \| default \| meaning \|$/m);
  if (start < 0) return null;
  const rows = new Map<string, string>();
  for (const line of section.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    const names = cells[1]!.split(/`,\s*`/).map((n) => n.replace(/^`|`$/g, ''));
    const defaults = cells[3]!.split(/,\s*/);
    names.forEach((n) => rows.set(n, names.length === 1 ? cells[3]! : names.length === defaults.length ? defaults[names.indexOf(n)]! : ''));
  }
  return rows;
}

/** A default cell as a value, when it is a literal; undefined when it is prose ("64 MiB", "from maxDataAreaMB"). */
function literal(cell: string): unknown {
  if (/^-?\d+$/.test(cell)) return Number(cell);
  if (cell === 'true' || cell === 'false') return cell === 'true';
  if (cell === "`''`") return '';
  const m = /^`([^`]*)`$/.exec(cell);
  return m ? m[1] : undefined;
}

describe('docs/models.md option tables', () => {
  it.each(builtinModels.map((m) => [m.name, m] as const))(
    '%s: the options and their literal defaults are those of its schema',
    (name, model) => {
      const fields = describeSchema(model.options ?? {});
      const rows = documented(name);
      if (rows === null) {
        expect(
          fields.map((f) => f.name),
          `${name} has options but docs/models.md no table of them`,
        ).toEqual([]);
        return;
      }
      expect([...rows.keys()].sort()).toEqual(fields.map((f) => f.name).sort());
      for (const f of fields) {
        const given = literal(rows.get(f.name)!);
        if (given !== undefined) expect(given, `${name} option ${f.name}: default`).toEqual(f.default);
      }
    },
  );
});
