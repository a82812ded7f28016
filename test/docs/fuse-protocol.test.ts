/** docs/fuse-protocol.md states the protocol version and INIT flags the transport really uses. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as abi from '../../src/fuse/abi.js';

const doc = readFileSync(new URL('../../docs/fuse-protocol.md', import.meta.url), 'utf8');
const session = readFileSync(new URL('../../src/fuse/session.ts', import.meta.url), 'utf8');

it('names the minor version src/fuse/abi.ts speaks and the oldest it accepts', () => {
  expect(doc).toContain(`cdevemu speaks 7.${abi.FUSE_KERNEL_MINOR_VERSION}`);
  expect(doc).toContain(`below 7.${abi.FUSE_MIN_MINOR_VERSION}`);
});

it('lists every flag the session asks for in INIT', () => {
  const wanted = /const WANTED_FLAGS =([^;]+);/.exec(session)?.[1];
  expect(wanted, 'WANTED_FLAGS in src/fuse/session.ts').toBeDefined();
  const flags = [...wanted!.matchAll(/FUSE_(\w+)/g)].map((m) => m[1]!);
  expect(flags.length).toBeGreaterThan(3);
  const init = doc.slice(doc.indexOf('<a id="init"></a>'), doc.indexOf('<a id="forget"></a>'));
  expect(flags.filter((f) => !init.includes(`\`${f}\``))).toEqual([]);
});
