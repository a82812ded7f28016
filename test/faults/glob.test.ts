/**
 * The device-name glob matcher: the same answers as a plain recursive
 * matcher on seeded random patterns and names, and no blow-up on the
 * patterns that made a regex backtrack for hours.
 */
import { expect, it } from 'vitest';
import { globMatcher } from '../../src/faults/glob.js';
import { seededRng } from '../../src/faults/rng.js';

/** The definition, written the obvious (exponential) way; only for short inputs. */
function reference(p: string, s: string): boolean {
  if (p === '') return s === '';
  if (p[0] === '*') return reference(p.slice(1), s) || (s !== '' && reference(p, s.slice(1)));
  return s !== '' && (p[0] === '?' || p[0] === s[0]) && reference(p.slice(1), s.slice(1));
}

it('agrees with the definition on seeded random patterns and names', () => {
  const rng = seededRng(9);
  const from = (alphabet: string, max: number): string =>
    Array.from({ length: Math.floor(rng() * max) }, () => alphabet[Math.floor(rng() * alphabet.length)]).join('');
  for (let i = 0; i < 5000; i++) {
    const p = from('ab*?', 8);
    const s = from('ab', 8);
    expect(globMatcher(p)(s), `${p} vs ${s}`).toBe(reference(p, s));
  }
});

it('matches names as documented', () => {
  expect(globMatcher('uio*')('uio0')).toBe(true);
  expect(globMatcher('uio*')('xuio0')).toBe(false);
  expect(globMatcher('*')('')).toBe(true);
  expect(globMatcher('ev?nt0')('event0')).toBe(true);
  expect(globMatcher('a.b')('axb')).toBe(false); // no regex metacharacters
});

it('answers a pathological pattern on a long name at once', () => {
  const m = globMatcher(`${'*a'.repeat(50)}${'*'.repeat(50)}x`);
  // Thousands of calls, as a busy device would make: each is O(pattern x name) at worst.
  for (let i = 0; i < 2000; i++) expect(m('a'.repeat(255))).toBe(false);
  expect(m(`${'a'.repeat(254)}x`)).toBe(true);
});
