/**
 * Telling the initial user namespace from the others by its uid_map
 * (src/sys/userns.ts): the texts are what the kernel prints
 * (proc_id_map_show: three right-aligned columns), and this process's own
 * map is read too.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { inUserNamespace, isIdentityMap } from '../../src/sys/userns.js';

it('tells the initial namespace by its identity map', () => {
  expect(isIdentityMap('         0          0 4294967295\n')).toBe(true);
  expect(isIdentityMap('         0       1000          1\n')).toBe(false);
  expect(isIdentityMap('         0       1000          1\n         1     100000      65536\n')).toBe(false);
  // A namespace that maps 0 to 0 and no more is not the initial one.
  expect(isIdentityMap('         0          0          1\n')).toBe(false);
});

it("reads this process's own map", () => {
  expect(inUserNamespace()).toBe(!isIdentityMap(readFileSync('/proc/self/uid_map', 'utf8')));
});
