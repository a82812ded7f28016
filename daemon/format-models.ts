/** Plain-text output of `cdevemu models`: a table of the models, or one model's options and actions. */
import type { FieldView, ModelView } from '../src/control/protocol.js';
import { table } from './format.js';

/** NAME, OPTIONS and ACTIONS of every model, then how to see one. */
export function modelsTable(models: ModelView[]): string {
  const names = (fields: { name: string }[] | null): string =>
    fields === null ? '(unchecked)' : fields.map((f) => f.name).join(', ') || '-';
  return (
    table(
      ['MODEL', 'DESCRIPTION', 'ACTIONS'],
      models.map((m) => [m.name, m.description || '-', names(m.actions)]),
    ) + "\n`cdevemu models NAME` shows a model's options and actions' arguments.\n"
  );
}

/** A model's description, its options table, and each action with its arguments' table. */
export function modelText(m: ModelView): string {
  const out = [`${m.name}: ${m.description || '(no description)'}`, '', 'Options:'];
  out.push(fieldsTable(m.options));
  out.push('Actions:');
  if (m.actions.length === 0) out.push('  none\n');
  for (const a of m.actions) {
    out.push(`  ${a.name}: ${a.description || '(no description)'}`);
    if (a.args === null || a.args.length > 0) out.push(fieldsTable(a.args, '    '));
  }
  out.push('Events (beside the core ones):');
  if (m.events === null) out.push('  undeclared: it may emit any');
  else if (Object.keys(m.events).length === 0) out.push('  none');
  for (const [type, fields] of Object.entries(m.events ?? {})) out.push(`  ${type}: ${Object.entries(fields).map(([n, t]) => `${n} (${t})`).join(', ') || 'no fields'}`);
  return out.join('\n').replace(/\n*$/, '\n');
}

function fieldsTable(fields: FieldView[] | null, indent = '  '): string {
  if (fields === null) return `${indent}unchecked: passed to the model as given\n`;
  if (fields.length === 0) return `${indent}none\n`;
  const text = table(
    ['NAME', 'TYPE', 'RANGE', 'DEFAULT', 'DESCRIPTION'],
    flatten(fields).map((f) => [
      f.name,
      typeName(f),
      range(f),
      f.default === undefined ? (f.required ? '(required)' : '-') : JSON.stringify(f.default),
      f.description,
    ]),
  );
  return text.replace(/^(?=.)/gm, indent);
}

/** Nested fields (an object's, an array's items') as rows of their own: `id.vendor`, `maps[].size`. */
function flatten(fields: FieldView[], prefix = ''): FieldView[] {
  return fields.flatMap((f) => {
    const row = { ...f, name: prefix + f.name };
    const inner = f.fields ?? f.items?.fields;
    return inner ? [row, ...flatten(inner, `${row.name}${f.items ? '[]' : ''}.`)] : [row];
  });
}

function typeName(f: Omit<FieldView, 'name'>): string {
  const t = Array.isArray(f.type) ? f.type.join('|') : f.type;
  if (t === 'string' && f.format) return f.format;
  return t === 'array' && f.items && !f.items.fields ? `${typeName(f.items)}[]` : t;
}

function range(f: Omit<FieldView, 'name'>): string {
  if (f.enum) return f.enum.map((e) => String(e)).join('|');
  const of = f.items && !f.items.fields ? f.items : f;
  const count = f.minItems !== undefined || f.maxItems !== undefined ? `${f.minItems ?? 0}..${f.maxItems ?? ''} items` : '';
  const bounds = of.min !== undefined || of.max !== undefined ? `${of.min ?? ''}..${of.max ?? ''}` : of.enum ? of.enum.join('|') : '';
  return [bounds, count].filter(Boolean).join(', ') || '-';
}
