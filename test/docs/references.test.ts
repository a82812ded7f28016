/**
 * The docs and code comments point only at things a reader of the
 * repository has: files in the repository (docs/...), or kernel sources.
 * Fails on a reference to a design document outside the repository, on a
 * relative Markdown link to a file that does not exist, and on a
 * `docs/NAME.md#anchor` that names no section.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
const SCANNED = ['README.md', 'CONTRIBUTING.md', 'CHANGELOG.md', 'docs', 'src', 'daemon', 'bench', 'test', 'scripts', 'examples'];
const TEXT = /\.(ts|mts|mjs|js|c|h|py|sh|md|yaml|yml|json)$/;

function files(path: string): string[] {
  const abs = join(repo, path);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && TEXT.test(e.name))
    .map((e) => relative(repo, join(e.parentPath, e.name)));
}
const all = SCANNED.flatMap((p) => (p.includes('.') ? (existsSync(join(repo, p)) ? [p] : []) : files(p)));
const text = new Map(all.map((f) => [f, readFileSync(join(repo, f), 'utf8')]));

// Written in pieces so that this file does not match itself.
const design = ['DES', 'IGN'].join('');
const style = ['STY', 'LE'].join('');
const OUTSIDE = [
  new RegExp(['\\.\\.', 'shared'].join('/')),
  new RegExp(`${design}(\\.md)?\\s*§`),
  new RegExp(['FUSE', 'NOTES'].join('-')),
  new RegExp(`${style}(\\.md)?\\s*§`),
  new RegExp(`(${design}|${style})\\.md`),
  new RegExp(['/work', '/'].join('')),
];

describe('references', () => {
  it('scans the docs, README and sources', () => {
    expect(all).toContain('docs/architecture.md');
    expect(all).toContain('src/fuse/session.ts');
    expect(all.length).toBeGreaterThan(50);
  });

  it('cite nothing outside the repository', () => {
    const found: string[] = [];
    for (const [file, body] of text) {
      body.split('\n').forEach((line, i) => {
        if (OUTSIDE.some((re) => re.test(line))) found.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });

  it('link only to files that exist in the repository', () => {
    const broken: string[] = [];
    for (const [file, body] of text) {
      if (!file.endsWith('.md')) continue;
      for (const m of body.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.split('#')[0]!;
        if (target === '' || /^[a-z]+:/.test(target)) continue;
        const abs = resolve(join(repo, dirname(file)), target);
        if (!abs.startsWith(repo + '/') || !existsSync(abs)) broken.push(`${file}: ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('name only sections that exist when they cite docs/NAME.md#anchor', () => {
    const missing: string[] = [];
    for (const [file, body] of text) {
      for (const m of body.matchAll(/\b(?:docs\/)?([\w-]+\.md)#([\w-]+)/g)) {
        const doc = join(repo, 'docs', m[1]!);
        if (!existsSync(doc)) continue; // not a docs/ page (the link test covers relative links)
        if (!readFileSync(doc, 'utf8').includes(`<a id="${m[2]}"></a>`)) missing.push(`${file}: ${m[0]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
