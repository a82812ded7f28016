/**
 * What a command line loads. Every client command (ls, unplug, fault add,
 * ...) is a short-lived process that scripts run again and again, so the
 * command tree loads only what builds it and talks to the daemon: the
 * server (daemon/serve.ts and the layers under it) and the scenario runner
 * (daemon/run-scenario.ts) are loaded by the commands that run them, when
 * they run. An import that pulls them back into every command line fails
 * here, naming the module.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cdevemu, repoRoot } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'cdevemu-imports-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOOK = join(repoRoot, 'test', 'fixtures', 'record-imports.mjs');
const NO_DAEMON = join(dir, 'no-daemon.sock');

/** Runs the CLI with `args`; its exit code, and every module it loaded, relative to the repository. */
async function loaded(name: string, args: string[]): Promise<{ code: number | null; modules: string[] }> {
  const record = join(dir, `${name}.txt`);
  const r = await cdevemu(args, { env: { ...process.env, RECORD_IMPORTS: record, NODE_OPTIONS: `--import ${HOOK}` } });
  const urls = readFileSync(record, 'utf8').split('\n').filter(Boolean);
  const root = new URL(`file://${repoRoot}/`).href;
  return { code: r.code, modules: urls.filter((u) => u.startsWith(root)).map((u) => u.slice(root.length)) };
}

/** What only the daemon, or only a scenario run, needs. */
const SERVER_SIDE = [
  'dist/daemon/serve.js',
  'dist/daemon/run-scenario.js',
  'dist/src/fuse/',
  'dist/src/fs/',
  'dist/src/core/',
  'dist/src/models/',
  'dist/src/scenario/runner.js',
  'dist/src/sys/',
  'node_modules/yaml/',
  'node_modules/pino/',
  'node_modules/koffi/',
];

describe('a client command', () => {
  it.each([
    ['ls', ['ls', '--socket', NO_DAEMON]],
    ['unplug', ['unplug', 'echo0', '--socket', NO_DAEMON]],
    ['fault-add', ['fault', 'add', 'device=echo0', 'op=read', 'action=fail', 'errno=EIO', '--socket', NO_DAEMON]],
    ['version', ['--version']],
  ])('%s loads neither the server nor the scenario runner', async (name, args) => {
    const { code, modules } = await loaded(name, args);
    // No daemon answers there: exit 3 (unreachable), or 0 for --version.
    expect(code).toBe(name === 'version' ? 0 : 3);
    expect(modules).toContain('dist/daemon/program.js');
    expect(modules.filter((m) => SERVER_SIDE.some((s) => m.startsWith(s)))).toEqual([]);
  });
});

describe('the commands that serve or run', () => {
  it('run loads the scenario runner when it runs (a bad --log-level: exit 2 from its checks)', async () => {
    const { code, modules } = await loaded('run', ['run', '--log-level', 'loud', join(dir, 'none.yaml')]);
    expect(code).toBe(2);
    expect(modules).toContain('dist/daemon/run-scenario.js');
  });

  it('daemon loads the server when it runs (a config file that is not there: exit 2)', async () => {
    const { code, modules } = await loaded('daemon', ['daemon', '--config', join(dir, 'none.yaml'), '--socket', NO_DAEMON]);
    expect(code).toBe(2);
    expect(modules).toContain('dist/daemon/serve.js');
  });
});
