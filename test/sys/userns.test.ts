/**
 * Reading /proc/self/uid_map and gid_map (src/sys/userns.ts): which ids of
 * the parent namespace an id stands for, and whether a map is the initial
 * namespace's own. The texts are what the kernel prints (proc_id_map_show:
 * three right-aligned columns), and this process's own maps are read too.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inUserNamespace, isIdentityMap, mapToParent, outsideRootIds } from '../../src/sys/userns.js';

const INITIAL = '         0          0 4294967295\n';
const ROOT_OF_USER = '         0       1000          1\n';
const RANGES = '         0       1000          1\n         1     100000      65536\n';

describe('uid_map', () => {
  it('maps an id through the line whose range holds it, and nothing else', () => {
    expect(mapToParent(ROOT_OF_USER, 0)).toBe(1000);
    expect(mapToParent(ROOT_OF_USER, 1)).toBeNull();
    expect(mapToParent(RANGES, 0)).toBe(1000);
    expect(mapToParent(RANGES, 1)).toBe(100000);
    expect(mapToParent(RANGES, 65536)).toBe(165535);
    expect(mapToParent(RANGES, 65537)).toBeNull();
    expect(mapToParent('', 0)).toBeNull();
  });

  it('tells the initial namespace by its identity map', () => {
    expect(isIdentityMap(INITIAL)).toBe(true);
    expect(isIdentityMap(ROOT_OF_USER)).toBe(false);
    expect(isIdentityMap(RANGES)).toBe(false);
    // A namespace that maps 0 to 0 and no more is not the initial one.
    expect(isIdentityMap('         0          0          1\n')).toBe(false);
  });

  it("reads this process's own maps", () => {
    const initial = isIdentityMap(readFileSync('/proc/self/uid_map', 'utf8'));
    expect(inUserNamespace()).toBe(!initial);
    if (initial) expect(outsideRootIds()).toBeNull();
  });
});
