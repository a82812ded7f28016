/** Every test file is either a unit test or covered by an integration entry, with what it needs, in test/suites.mjs. */
import { expect, it } from 'vitest';
import { integrationSuites, isUnit, skippedSuites, suiteOf, testFiles } from './suites.mjs';

it('lists every test file once: unit, or an integration suite with its needs', () => {
  const files = testFiles();
  expect(files.length).toBeGreaterThan(20);
  const unlisted = files.filter((f) => isUnit(f) === (suiteOf(f) !== null));
  expect(unlisted, 'in neither list, or in both').toEqual([]);
  for (const [suite, { needs }] of Object.entries(integrationSuites)) expect(needs.length, suite).toBeGreaterThan(0);
});

it('skips the suites whose needs are unmet, each with the reason of the first it lacks', () => {
  const everything = { mount: 'm', root: 'r', userns: 'u', allowOther: 'a' };
  expect(skippedSuites({})).toEqual([]);
  expect(skippedSuites(everything).map((s) => s.suite)).toEqual(Object.keys(integrationSuites));
  const rootOnly = skippedSuites({ root: 'needs root' });
  expect(rootOnly.length).toBeGreaterThan(0);
  expect(rootOnly.every((s) => integrationSuites[s.suite as keyof typeof integrationSuites].needs.includes('root') && s.why === 'needs root')).toBe(true);
  // A file's own entry wins over its folder's.
  expect(suiteOf('test/models/rtc.test.ts')).toBe('test/models/rtc.test.ts');
  expect(suiteOf('test/models/evdev.test.ts')).toBe('test/models');
});
