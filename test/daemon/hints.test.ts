/**
 * The "try it" lines `cdevemu daemon` prints work as pasted, from a folder
 * other than the one the daemon was started in (the harness starts it in /):
 * each command is run through sh from a scratch folder and must succeed.
 */
import { realpath } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { run } from '../helpers/proc.js';
import { CLI, Daemon, scratch } from './harness.js';

let d: Daemon;
const hint: string[] = [];
beforeAll(async () => {
  d = await Daemon.start();
  for (;;) {
    const line = await d.proc.line();
    hint.push(line);
    if (line.startsWith('Stop with Ctrl-C')) break;
  }
});
afterAll(() => d.stop());

const commands = (): string[] => hint.filter((l) => l.startsWith('  ') && !l.startsWith('  #')).map((l) => l.trim());

it('names the executable `cdevemu` when that is it on PATH, else by its absolute path', async () => {
  const onPath = (await run('sh', ['-c', 'command -v cdevemu'])).stdout.trim();
  const self = onPath && (await realpath(onPath)) === (await realpath(CLI)) ? 'cdevemu' : `node ${CLI}`;
  const cli = commands().filter((c) => c.includes(' ls'));
  expect(cli).toEqual([`${self} ls --socket ${d.socket}`]);
});

it('prints commands that work from any folder', async () => {
  const elsewhere = await scratch('elsewhere');
  const safe = commands().filter((c) => / (ls|action uio0 irq)\b/.test(c) || c.startsWith('head -c 16') || c.startsWith('curl '));
  expect(safe.length).toBeGreaterThanOrEqual(4);
  for (const cmd of safe) {
    const r = await run('sh', ['-c', cmd], { cwd: elsewhere });
    expect(r.code, `${cmd}: ${r.stderr}`).toBe(0);
  }
});
