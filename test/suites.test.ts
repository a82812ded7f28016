/** Every test file is either a unit test or has its reason for root in test/suites.mjs. */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { rootSuites, unitTests } from './suites.mjs';

const repo = join(import.meta.dirname, '..');

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [relative(repo, join(dir, e.name))] : [],
  );
}

const isUnit = (f: string): boolean =>
  unitTests.some((g) => (g.endsWith('/**/*.test.ts') ? f.startsWith(g.slice(0, -'**/*.test.ts'.length)) : f === g));
const needsRoot = (f: string): boolean => Object.keys(rootSuites).some((s) => f === s || f.startsWith(s + '/'));

it('lists every test file once: unit, or needing root with a reason', () => {
  const files = testFiles(join(repo, 'test'));
  expect(files.length).toBeGreaterThan(20);
  const unlisted = files.filter((f) => isUnit(f) === needsRoot(f));
  expect(unlisted, 'in neither list, or in both').toEqual([]);
});
