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
import { ALLOW_OTHER_REFUSED, FUSERMOUNT_MISSING, fuseDeviceProblem } from '../../src/fuse/requirements.js';
import { describeUnless, needsRoot, runsAsRoot, shellWord as q } from '../helpers/as-user.js';
import { repoRoot } from '../helpers/cli.js';
import { Interactive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { ControlClient } from '../../src/control/client.js';
import { CLI, cli, eventually, isMounted, lazyUnmount, scratch } from './harness.js';

const CHECK = join(repoRoot, 'scripts', 'check-system.mjs');
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
/** An ordinary user's PATH: no sbin directories. */
const USER_PATH = '/usr/local/bin:/usr/bin:/bin';

interface Machine {
  /** /dev/fuse: 'missing' (an empty tmpfs over /dev), or a device node of the FUSE device with this mode. */
  fuse: 'missing' | number;
  /** Run as nobody (else root). */
  nobody: boolean;
  /** fusermount3 replaced by a file that is not executable. */
  noFusermount?: boolean;
  /** The text of /etc/fuse.conf. */
  fuseConf?: string;
}

/**
 * Runs `command` in a private mount namespace where the machine is as `m`
 * says, arranged with files of the test's (in a tmpfs in `dir`) bound over
 * the host's: the host's /dev, /usr/bin and /etc are untouched.
 */
function onMachine(dir: string, m: Machine, command: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const own = join(dir, 'own');
  const steps = [`mkdir -p ${q(own)}`, `mount -t tmpfs -o mode=755 none ${q(own)}`];
  if (m.fuse === 'missing') steps.push('mount -t tmpfs none /dev');
  else steps.push(`mknod -m ${m.fuse.toString(8)} ${q(join(own, 'fuse'))} c 10 229`, `mount --bind ${q(join(own, 'fuse'))} /dev/fuse`);
  if (m.noFusermount) steps.push(`touch ${q(join(own, 'fusermount3'))}`, `mount --bind ${q(join(own, 'fusermount3'))} /usr/bin/fusermount3`);
  if (m.fuseConf !== undefined) steps.push(`printf %s ${q(m.fuseConf)} > ${q(join(own, 'fuse.conf'))}`, `mount --bind ${q(join(own, 'fuse.conf'))} /etc/fuse.conf`);
  const user = m.nobody ? NOBODY.map(q).join(' ') + ' ' : '';
  return run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${steps.join(' && ')} && exec ${user}env PATH=${USER_PATH} ${command.map(q).join(' ')}`]);
}

describeUnless(needsRoot('the machine is arranged in a private mount namespace, and the user is uid 65534 (setpriv)'))('a machine or user that cannot mount: the daemon and `npm start` say the same line', () => {
  const cases: Array<[string, Machine, string[], string]> = [
    ['no /dev/fuse', { fuse: 'missing', nobody: false }, [], fuseDeviceProblem('ENOENT', true)!],
    ['/dev/fuse that this user may not open', { fuse: 0o600, nobody: true }, [], fuseDeviceProblem('EACCES', false)!],
    ['a user without fusermount3', { fuse: 0o666, nobody: true, noFusermount: true }, [], FUSERMOUNT_MISSING],
    ['a user asking for allow_other without user_allow_other', { fuse: 0o666, nobody: true, fuseConf: '#user_allow_other\n' }, ['--allow-other'], ALLOW_OTHER_REFUSED],
  ];
  it.each(cases)('%s', async (_what, machine, args, line) => {
    const dir = await scratch('nofuse');
    await chmod(dir, 0o755);
    const mnt = join(dir, 'mnt');
    const daemon = ['node', CLI, 'daemon', '--mount', mnt, '--socket', join(dir, 'ctl.sock'), ...args];
    const r = await onMachine(dir, machine, daemon);
    // JSON logs (stderr is a pipe): the one line, nothing else.
    expect(r.stderr).toBe(`cdevemu: ${line}\n`);
    expect(r.code).toBe(2);
    expect(await isMounted(mnt)).toBe(false);

    // On a terminal (pretty logs): the same line. script(1) needs /dev's
    // pseudo-terminals, which the empty /dev of the first case lacks.
    if (machine.fuse !== 'missing') {
      const tty = await onMachine(dir, machine, ['script', '-qec', daemon.map(q).join(' '), '/dev/null']);
      expect(tty.stdout).toBe(`cdevemu: ${line}\r\n`);
      expect(tty.code).toBe(2);
    }

    // npm start runs scripts/check-system.mjs first: the same words (it
    // starts the daemon without options, so allow_other is the daemon's to check).
    if (!args.includes('--allow-other')) {
      const check = await onMachine(dir, machine, ['node', CHECK]);
      expect(check.stderr).toContain(`cdevemu cannot run here:\n  - ${line}\n`);
      expect(check.code).toBe(1);
    }
  });
});

describe('a path that cannot be used', () => {
  it('a socket where none can be made is refused before anything is mounted', async () => {
    const dir = await scratch('badsock');
    const mnt = join(dir, 'mnt');
    const r = await cli(['daemon', '--mount', mnt, '--socket', '/proc/cdevemu-test.sock']);
    const fix = runsAsRoot ? 'choose another path' : 'choose a path this user may use';
    expect(r.stderr).toBe(`cdevemu: listen EACCES: permission denied /proc/cdevemu-test.sock: ${fix}\n`);
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
      ['devices:\n  - { model: zero, name: z0 }\n  - { model: nosuch, name: n0 }\n', `${cfg}:3: devices[1].model: cannot plug n0: no model named "nosuch"; models: null, zero, full, echo, `],
      ['devices:\n  - { model: zero, name: z0 }\n  - { model: echo, name: e0, options: { capacity: -1 } }\n', `${cfg}:3: devices[1].options: cannot plug e0: echo: option capacity must be an integer from 1 to 1073741824, got -1`],
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
        while (await isMounted(mnt)) await lazyUnmount(mnt);
      }
    }
  });
});

describeUnless(needsRoot('the ordinary user is uid 65534 (setpriv)'))('scripts/check-system.mjs as an ordinary user', () => {
  it('finds the tools the tests run from sbin (hwclock: util-linux-extra) though they are not on the PATH, and names the suites it leaves out', async () => {
    // What the suite installs as root; the check as root has run before the tests.
    expect((await run('dpkg-query', ['-W', '-f', '${Status}', 'util-linux-extra'])).stdout).toBe('install ok installed');
    expect((await run('env', [`PATH=${USER_PATH}`, 'sh', '-c', 'command -v hwclock'])).code).not.toBe(0);
    // The host's /dev/fuse mode is the machine's business: each case has its own node.
    const dir = await scratch('checksys');
    await chmod(dir, 0o755);
    const debian = await onMachine(dir, { fuse: 0o666, nobody: true }, ['node', CHECK, '--tests']);
    expect(debian.code, debian.stderr).toBe(0); // what it cannot run is left out, not a failure
    expect(debian.stderr).toMatch(/check-system: as uid 65534, \d+ suite\(s\) cannot run here and are left out:\n {6}test\/\S+ +.*: needs root\n/);
    expect(debian.stderr).not.toContain('/dev/fuse is not readable');
    expect(debian.stderr).not.toContain('missing Debian packages');
    // Mode 0600: the suites that mount are left out too, each with the fix.
    const closed = await onMachine(dir, { fuse: 0o600, nobody: true }, ['node', CHECK, '--tests']);
    expect(closed.code, closed.stderr).toBe(0);
    expect(closed.stderr).toMatch(/ {6}test\/api\.test\.ts +.*: \/dev\/fuse is not readable and writable by this user: make it mode 0666/);
  });
});
