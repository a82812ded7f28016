/**
 * The errno table against the kernel's own: every name in
 * <asm-generic/errno-base.h> and <asm-generic/errno.h> has the kernel's
 * number, whether Node names it or not (src/errno.ts LINUX_ONLY), so a
 * model or a fault rule can answer any errno a driver can.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { Errno, errnoName, errnoNumber, isErrnoName } from '../src/errno.js';

const HEADERS = ['/usr/include/asm-generic/errno-base.h', '/usr/include/asm-generic/errno.h'];

it('names every errno of the kernel headers with its number', () => {
  const defined = HEADERS.flatMap((h) => [...readFileSync(h, 'utf8').matchAll(/^#define\s+(E[A-Z0-9]+)\s+(\d+)\b/gm)].map((m) => [m[1]!, Number(m[2])] as const));
  expect(defined.length).toBeGreaterThan(120);
  const wrong = defined.filter(([name, num]) => !isErrnoName(name) || errnoNumber(name) !== num);
  expect(wrong).toEqual([]);
});

it('makes and prints the errnos Node does not name', () => {
  expect(new Errno('ESHUTDOWN').errno).toBe(108);
  expect(errnoName(121)).toBe('EREMOTEIO');
  // Aliases keep the name strerror prints.
  expect(errnoName(errnoNumber('EWOULDBLOCK'))).toBe('EAGAIN');
});
