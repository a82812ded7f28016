/**
 * Starts that cannot go ahead, each refused with one line (the cause and
 * the fix), exit 2, no stack, and nothing mounted: a machine or user that
 * cannot mount (which `npm start`'s check says in the same words), a
 * mountpoint with files in it, config devices that cannot be plugged, and
 * a mountpoint another daemon claims at the same moment. Also the system
 * check `npm test` runs, as an ordinary user.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NOT_ROOT, fuseDeviceProblem } from '../../src/fuse/requirements.js';
import { repoRoot } from '../helpers/cli.js';
import { Interactive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { ControlClient } from '../../src/control/client.js';
import { CLI, cli, eventually, isMounted, scratch } from './harness.js';

const CHECK = join(repoRoot, 'scripts', 'check-system.mjs');
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
/** An ordinary user's PATH: no sbin directories. */
const USER_PATH = '/usr/local/bin:/usr/bin:/bin';

/** A word for sh -c. */
const q = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`;

/**
 * Runs `command` in a private mount namespace where /dev/fuse is what
 * `fuse` says: 'missing' (an empty tmpfs over /dev), or a device node of
 * the FUSE device with that mode (bound over /dev/fuse from a tmpfs in
 * `dir`), optionally as nobody. The host's /dev is untouched.
 */
function withFuse(dir: string, fuse: 'missing' | number, asNobody: boolean, command: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const node = join(dir, 'devfs');
  const setup =
    fuse === 'missing'
      ? 'mount -t tmpfs none /dev'
      : `mkdir -p ${q(node)} && mount -t tmpfs -o mode=755 none ${q(node)} && mknod -m ${fuse.toString(8)} ${q(join(node, 'fuse'))} c 10 229 && mount --bind ${q(join(node, 'fuse'))} /dev/fuse`;
  const user = asNobody ? NOBODY.map(q).join(' ') + ' ' : '';
  return run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${setup} && exec ${user}env PATH=${USER_PATH} ${command.map(q).join(' ')}`]);
}

describe('a machine or user that cannot mount: the daemon and `npm start` say the same line', () => {
  const cases: Array<[string, 'missing' | number, boolean, string]> = [
    ['no /dev/fuse', 'missing', false, fuseDeviceProblem('ENOENT', true)!],
    ['/dev/fuse that this user may not open', 0o600, true, fuseDeviceProblem('EACCES', false)!],
    ['an ordinary user, /dev/fuse open to all', 0o666, true, NOT_ROOT],
  ];
  it.each(cases)('%s', async (_what, fuse, asNobody, line) => {
    const dir = await scratch('nofuse');
    await chmod(dir, 0o755);
    const mnt = join(dir, 'mnt');
    const daemon = await withFuse(dir, fuse, asNobody, ['node', CLI, 'daemon', '--mount', mnt, '--socket', join(dir, 'ctl.sock')]);
    // JSON logs (stderr is a pipe): the one line, nothing else.
    expect(daemon.stderr).toBe(`cdevemu: ${line}\n`);
    expect(daemon.code).toBe(2);
    expect(await isMounted(mnt)).toBe(false);

    // On a terminal (pretty logs): the same line. script(1) needs /dev's
    // pseudo-terminals, which the empty /dev of the first case lacks.
    if (fuse !== 'missing') {
      const tty = await withFuse(dir, fuse, asNobody, ['script', '-qec', ['node', CLI, 'daemon', '--mount', mnt, '--socket', join(dir, 'ctl.sock')].map(q).join(' '), '/dev/null']);
      expect(tty.stdout).toBe(`cdevemu: ${line}\r\n`);
      expect(tty.code).toBe(2);
    }

    // npm start runs scripts/check-system.mjs first: the same words.
    const check = await withFuse(dir, fuse, asNobody, ['node', CHECK]);
    expect(check.stderr).toContain(`cdevemu cannot run here:\n  - ${line}\n`);
    expect(check.code).toBe(1);
  });
});

describe('a path that cannot be used', () => {
  it('a socket where none can be made is refused before anything is mounted', async () => {
    const dir = await scratch('badsock');
    const mnt = join(dir, 'mnt');
    const r = await cli(['daemon', '--mount', mnt, '--socket', '/proc/cdevemu-test.sock']);
    expect(r.stderr).toBe('cdevemu: listen EACCES: permission denied /proc/cdevemu-test.sock: choose another path\n');
    expect(r.code).toBe(2);
    expect(await isMounted(mnt)).toBe(false);
  });
});

describe('the mountpoint', () => {
  it('with files in it is refused: the mount would hide them', async () => {
    const dir = await scratch('full');
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    await writeFile(join(mnt, 'keep.txt'), 'mine');
    const r = await cli(['daemon', '--mount', mnt, '--socket', join(dir, 'ctl.sock')]);
    expect(r.stderr).toBe(`cdevemu: ${mnt} is not empty (keep.txt): a mount would hide it; empty it or choose another mountpoint\n`);
    expect(r.code).toBe(2);
    expect(await isMounted(mnt)).toBe(false);
    expect(await readFile(join(mnt, 'keep.txt'), 'utf8')).toBe('mine');
  });

  it('config devices that cannot be plugged are refused before anything is mounted: the refusal is the only line', async () => {
    const dir = await scratch('cfgfirst');
    const cfg = join(dir, 'cfg.yaml');
    const mnt = join(dir, 'mnt');
    for (const [yaml, line] of [
      ['devices:\n  - { model: zero, name: z0 }\n  - { model: nosuch, name: n0 }\n', `${cfg}:3: devices[1].model: cannot plug n0: no model named "nosuch"`],
      ['devices:\n  - { model: zero, name: z0 }\n  - { model: echo, name: e0, options: { capacity: -1 } }\n', `${cfg}:3: devices[1].options: cannot plug e0: echo: create failed: `],
    ] as const) {
      await writeFile(cfg, yaml);
      const r = await cli(['daemon', '--mount', mnt, '--socket', join(dir, 'ctl.sock'), '--config', cfg]);
      expect(r.stderr.split('\n')).toHaveLength(2);
      expect(r.stderr.startsWith(`cdevemu: ${line}`), r.stderr).toBe(true);
      expect(r.code).toBe(2);
      expect(await isMounted(mnt)).toBe(false);
    }
  });
});

describe('two daemons started at the same moment on one mountpoint', () => {
  it('exactly one wins, every time; the other names its pid; the winner stops cleanly', async () => {
    const dir = await scratch('race');
    const mnt = join(dir, 'mnt');
    for (let pair = 0; pair < 8; pair++) {
      const socks = [join(dir, `a${pair}.sock`), join(dir, `b${pair}.sock`)];
      const procs = socks.map((s) => new Interactive('node', [CLI, 'daemon', '--mount', mnt, '--socket', s]));
      const exits: Array<{ code: number | null } | null> = [null, null];
      procs.forEach((p, i) => void p.exited.then((e) => (exits[i] = e)));
      try {
        // One exits, refused; the other serves.
        await until(() => exits.some((e) => e !== null), 30_000, `pair ${pair}: one daemon refused`);
        const loser = exits.findIndex((e) => e !== null);
        const winner = 1 - loser;
        const pid = await eventually(() => new ControlClient(socks[winner]!).status().then((st) => st.pid), 30_000);
        expect(pid).toBe(procs[winner]!.pid);
        expect(exits[winner], procs[winner]!.stderr).toBeNull();
        expect(procs[loser]!.stderr).toBe(`cdevemu: ${mnt} is already in use by another cdevemu (pid ${procs[winner]!.pid}); stop it first or choose another mountpoint\n`);
        expect(exits[loser]).toEqual({ code: 2, signal: null });
        const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.split(' ')[4] === mnt);
        expect(mounts).toHaveLength(1);
        procs[winner]!.kill('SIGTERM');
        expect(await procs[winner]!.exited).toEqual({ code: 0, signal: null });
        expect(await isMounted(mnt)).toBe(false);
      } finally {
        for (const p of procs) p.kill();
        while (await isMounted(mnt)) await run('umount', ['-l', mnt]);
      }
    }
  });
});

describe('scripts/check-system.mjs as an ordinary user', () => {
  it('finds the tools the tests run from sbin (hwclock: util-linux-extra) though they are not on the PATH', async () => {
    // What the suite installs as root; the check as root has run before the tests.
    expect((await run('dpkg-query', ['-W', '-f', '${Status}', 'util-linux-extra'])).stdout).toBe('install ok installed');
    expect((await run('env', [`PATH=${USER_PATH}`, 'sh', '-c', 'command -v hwclock'])).code).not.toBe(0);
    const r = await run(NOBODY[0]!, [...NOBODY.slice(1), 'env', `PATH=${USER_PATH}`, 'node', CHECK, '--tests']);
    expect(r.code).toBe(1); // it stops: the suites need root
    expect(r.stderr).toContain('these suites mount FUSE with `mount -i`, which needs root');
    expect(r.stderr).not.toContain('missing Debian packages');
  });
});
