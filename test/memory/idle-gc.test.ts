/**
 * daemon/idle-gc.ts in a real Node process: garbage left in the old
 * generation by a burst is collected once the event loop is idle, where
 * V8 alone would keep it until the next allocations need room; with
 * --expose-gc (the #! line of `cdevemu`) and without it (`node
 * dist/daemon/cli.js`, which the docs give as the same command).
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';
import { run } from '../helpers/proc.js';

const module = join(repoRoot, 'dist', 'daemon', 'idle-gc.js');

// Leaves ~40 MiB of garbage in the old generation, starts the collector,
// then reports the heap in use until it has dropped by 20 MiB.
const burst = `
const { collectWhenIdle } = await import(${JSON.stringify(module)});
const { getHeapStatistics } = await import('node:v8');
const used = () => getHeapStatistics().used_heap_size;
let junk = [];
for (let i = 0; i < 10_000; i++) junk.push(new Array(500).fill(i));
junk = null;
const before = used();
const stop = collectWhenIdle({ debug: () => {} });
console.log(JSON.stringify({ started: stop !== null, before }));
if (stop) {
  const poll = setInterval(() => {
    if (used() > before - 20 * 1024 * 1024) return;
    console.log(JSON.stringify({ after: used() }));
    clearInterval(poll);
    stop();
  }, 100);
}
`;

const lines = (stdout: string): Array<Record<string, unknown>> =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

it.each([
  ['with --expose-gc', ['--expose-gc']],
  ['without --expose-gc', []],
])("frees a burst's garbage once the event loop is idle, %s", async (_how, flags) => {
  const r = await run(process.execPath, ['--max-semi-space-size=1', ...flags, '--input-type=module', '-e', burst], { timeoutMs: 30_000 });
  expect(r.stderr).toBe('');
  const [start, end] = lines(r.stdout);
  expect(start).toMatchObject({ started: true });
  expect(start!.before as number).toBeGreaterThan(30 * 1024 * 1024);
  // Exited by itself (nothing else keeps the loop alive), after the drop.
  expect(r.code).toBe(0);
  expect(end!.after as number).toBeLessThan((start!.before as number) - 20 * 1024 * 1024);
});

// Leaves ~30 MiB in the old generation of which one object in 16 survives,
// spread over every page, then reports the old generation's committed
// pages and its live bytes once the collector has run.
const sparse = `
const { collectWhenIdle } = await import(${JSON.stringify(module)});
const { getHeapSpaceStatistics } = await import('node:v8');
const old = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
let kept;
(() => {
  const all = [];
  for (let i = 0; i < 200_000; i++) all.push({ i, list: [i, i + 1, i + 2], name: 'n' + i });
  gc(); // all of it in the old generation now
  kept = all.filter((_, i) => i % 16 === 0);
})();
const before = old();
const stop = collectWhenIdle({ debug: () => {} });
const poll = setInterval(() => {
  const now = old();
  if (now.space_used_size > before.space_used_size / 2) return;
  console.log(JSON.stringify({ before: before.physical_space_size, after: now.physical_space_size, live: now.space_used_size, kept: kept.length }));
  clearInterval(poll);
  stop();
}, 100);
`;

it("gives back the old generation's pages a burst left sparse, not only the garbage on them", async () => {
  const r = await run(process.execPath, ['--max-semi-space-size=1', '--expose-gc', '--input-type=module', '-e', sparse], { timeoutMs: 30_000 });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const [o] = lines(r.stdout) as Array<{ before: number; after: number; live: number; kept: number }>;
  expect(o!.kept).toBe(12_500);
  expect(o!.before).toBeGreaterThan(20 * 1024 * 1024);
  // One collection frees the garbage but keeps every page committed (~30 MiB
  // for ~5 MiB live); the second evacuates the survivors and releases the rest.
  expect(o!.after).toBeLessThan(3 * o!.live);
  expect(o!.after).toBeLessThan(o!.before / 2);
});
