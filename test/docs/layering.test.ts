/**
 * The layering docs/architecture.md#layers states, checked on the imports
 * of every source file: core knows nothing of FUSE, fuse nothing of
 * devices, and only src/sys/ffi.ts loads koffi.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
const sources = readdirSync(join(repo, 'src'), { withFileTypes: true, recursive: true })
  .filter((e) => e.isFile() && e.name.endsWith('.ts'))
  .map((e) => relative(repo, join(e.parentPath, e.name)));

/** What `file` imports: repository paths for relative specifiers, package names otherwise. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(repo, file), 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'|\bimport\('([^']+)'\)/gm)].map((m) => {
    const spec = (m[1] ?? m[2] ?? m[3])!;
    return spec.startsWith('.') ? relative(repo, resolve(repo, file, '..', spec)) : spec;
  });
}

const violations = (layer: string, forbidden: RegExp): string[] =>
  sources
    .filter((f) => f.startsWith(`src/${layer}/`))
    .flatMap((f) =>
      importsOf(f)
        .filter((i) => forbidden.test(i))
        .map((i) => `${f} imports ${i}`),
    );

it('reads the imports of every source file', () => {
  expect(sources.length).toBeGreaterThan(40);
  expect(importsOf('src/fs/devicefs.ts')).toContain('src/fuse/filesystem.js');
});

it('keeps src/core free of the FUSE layers', () => {
  expect(violations('core', /^src\/(fuse|fs|models|faults|control|scenario|config)\//)).toEqual([]);
});

it('keeps src/fuse free of devices', () => {
  expect(violations('fuse', /^src\/(core|fs|models|faults|control|scenario|config)\//)).toEqual([]);
});

it('loads koffi only in src/sys/ffi.ts', () => {
  const users = sources.filter((f) => f !== 'src/sys/ffi.ts' && importsOf(f).some((i) => i === 'koffi' || i.startsWith('koffi/')));
  expect(users).toEqual([]);
});
