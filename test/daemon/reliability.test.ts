/**
 * What attacking the daemon found (issue 9), each shown on a daemon process
 * driven by real clients: a pathological fault glob, a restart right after
 * SIGKILL, someone else's FUSE mount, a slow mount(8), config devices that
 * cannot be plugged, out-of-range durations, aborted requests, shutdown
 * with a handler that never returns, and a user who may not use the socket.
 */
import { connect } from 'node:net';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareMountpoint } from '../../src/fuse/mount.js';
import { until } from '../helpers/wait.js';
import { pythonInteractive, run } from '../helpers/proc.js';
import { itUnless, needsRoot } from '../helpers/as-user.js';
import { CLI, Daemon, cli, eventually, isMounted, lazyUnmount, scratch } from './harness.js';

/** No JavaScript stack trace in `text` (an "    at fn (file:line)" frame or a logged "stack" field). */
const noStack = (text: string): void => {
  expect(text).not.toMatch(/^\s+at .+:\d+/m);
  expect(text).not.toContain('"stack"');
};

describe('fault globs', () => {
  it('a glob of thirty stars does not stall the daemon: a read of another device completes', async () => {
    const d = await Daemon.start();
    try {
      expect((await d.cli(['plug', 'zero', 'zeroaaaaaaaaaaaaaaaa'])).code).toBe(0);
      const add = await d.cli(['fault', 'add', `device=${'*'.repeat(30)}x`, 'op=read', 'action=fail', 'errno=EIO']);
      expect(add.code, add.stderr).toBe(0);
      // A regex made of this glob backtracks for hours on a 20-character name.
      const r = await run('head', ['-c', '4', d.dev('zeroaaaaaaaaaaaaaaaa')], { timeoutMs: 20_000 });
      expect(r).toMatchObject({ code: 0, signal: null, stdout: '\0\0\0\0' });
      // The rule does apply to a name it matches.
      expect((await d.cli(['plug', 'zero', 'zerox'])).code).toBe(0);
      expect((await run('head', ['-c', '4', d.dev('zerox')])).stderr).toMatch(/Input\/output error/);
    } finally {
      await d.stop();
    }
  });
});

/**
 * Leaves the mount root's attributes in the kernel's cache for the next
 * second (attr_valid), so stat() answers "alive" from the cache even once
 * the daemon is dead: Node's stat is a statx() asking for btime, which the
 * kernel sends as FUSE_STATX until the daemon answers ENOSYS (fc->no_statx),
 * and from then on answers from the cache like a plain stat().
 */
async function freshAttributes(mount: string): Promise<void> {
  const r = await run('node', ['-e', `const fs = require('fs'); fs.statSync(process.argv[1]); fs.statSync(process.argv[1])`, mount]);
  expect(r.code, r.stderr).toBe(0);
}

describe('the mountpoint', () => {
  it('restarts at once after SIGKILL, while the kernel still caches the dead mount\'s attributes', async () => {
    const first = await Daemon.start();
    await freshAttributes(first.mount);
    expect(await first.stop('SIGKILL')).toMatchObject({ signal: 'SIGKILL' });
    const second = await Daemon.start({ dir: first.dir });
    try {
      expect((await second.client.status()).pid).toBe(second.pid);
      expect((await run('head', ['-c', '2', second.dev('zero')])).stdout).toBe('\0\0');
    } finally {
      await second.stop();
    }
  });

  it('prepareMountpoint clears a dead cdevemu mount right after SIGKILL (statfs, not the attribute cache)', async () => {
    const d = await Daemon.start();
    await freshAttributes(d.mount);
    await d.stop('SIGKILL');
    expect(await isMounted(d.mount)).toBe(true);
    await prepareMountpoint(d.mount);
    expect(await isMounted(d.mount)).toBe(false);
  });

  it('refuses another filesystem\'s FUSE mount with one line, exit 2, and leaves its connection alone', async () => {
    const dir = await scratch('foreign');
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    // A FUSE "filesystem" of another type that never answers, like a hung
    // sshfs: mounted as root with mount -i, as a user through fusermount3.
    const foreign = pythonInteractive(
      `import os, sys, struct, subprocess, errno, socket
if os.getuid() == 0:
    fd = os.open('/dev/fuse', os.O_RDWR)
    os.dup2(fd, 3)
    r = subprocess.run(['mount', '-i', '-t', 'fuse.notours', '-o', 'fd=3,rootmode=40000,user_id=0,group_id=0', 'notours', sys.argv[1]], pass_fds=(3,))
    unmount = ['umount', '-l', sys.argv[1]]
else:
    mine, theirs = socket.socketpair()
    comm = theirs.fileno()
    r = subprocess.run(['fusermount3', '-o', 'subtype=notours', '--', sys.argv[1]], pass_fds=(comm,), env=dict(os.environ, _FUSE_COMMFD=str(comm)))
    fd = socket.recv_fds(mine, 1, 1)[1][0]
    unmount = ['fusermount3', '-u', '-z', sys.argv[1]]
print('mounted', r.returncode)
sys.stdin.readline()
try:
    buf = os.read(fd, 1 << 20)
    print('opcode', struct.unpack_from('<II', buf)[1])
except OSError as e:
    print(errno.errorcode[e.errno])
subprocess.run(unmount)`,
      [mnt],
    );
    try {
      expect(await foreign.line()).toBe('mounted 0');
      const r = await cli(['daemon', '--mount', mnt, '--socket', join(dir, 'ctl.sock')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`cdevemu: ${mnt} is a fuse.notours mount that is not cdevemu's`);
      noStack(r.stderr);
      // Its connection was not aborted: the kernel still hands it INIT (opcode 26).
      foreign.send('read');
      expect(await foreign.line()).toBe('opcode 26');
      await foreign.exited;
      expect(await isMounted(mnt)).toBe(false);
    } finally {
      foreign.kill();
      await lazyUnmount(mnt);
    }
  });

  it('a slow mount(8) (fusermount3 for a user) does not end the session: the reader starts once the mount exists', async () => {
    // The mount taking longer than a worker thread takes to start, as on a
    // loaded machine: a read of /dev/fuse before mount(2) fails EPERM.
    const bin = await scratch('slowmount');
    const helper = process.getuid?.() === 0 ? 'mount' : 'fusermount3';
    const real = (await run('sh', ['-c', `command -v ${helper}`])).stdout.trim();
    await writeFile(join(bin, helper), `#!/bin/sh\nsleep 0.5\nexec ${real} "$@"\n`);
    await chmod(join(bin, helper), 0o755);
    const d = await Daemon.start({ env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` } });
    try {
      expect((await run('head', ['-c', '2', d.dev('zero')])).stdout).toBe('\0\0');
    } finally {
      await d.stop();
    }
  });
});

describe('start-up refusals: one line naming the field, exit 2, nothing left mounted', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['unknown model', 'devices:\n  - { model: zero, name: z0 }\n  - { model: nosuch, name: n0 }\n', /cfg\.yaml:3: devices\[1\]\.model: cannot plug n0: no model named "nosuch"/],
    ['invalid name', 'devices:\n  - { model: zero, name: "a/b" }\n', /cfg\.yaml:2: devices\[0\]\.name: device name "a\/b": use letters/],
    ['duplicate name', 'devices:\n  - { model: zero, name: z0 }\n  - { model: full, name: z0 }\n', /cfg\.yaml:3: devices\[1\]\.name: z0 is already devices\[0\]'s name/],
    ['bad option', 'devices:\n  - { model: echo, name: e0, options: { capacity: -1 } }\n', /cfg\.yaml:2: devices\[0\]\.options: cannot plug e0: .*capacity/],
    ['name too long', `devices:\n  - { model: zero, name: ${'z'.repeat(256)} }\n`, /cfg\.yaml:2: devices\[0\]\.name: .*at most 255 characters/],
    ['NUL in the mountpoint', 'mountpoint: "mnt\\0x"\n', /cfg\.yaml:1: mountpoint: a path cannot contain a NUL byte/],
    ['infinite drain timeout', 'drainTimeoutMs: 1e400\n', /cfg\.yaml:1: drainTimeoutMs: expected a finite number, got Infinity/],
    ['drain timeout past a timer', 'drainTimeoutMs: 3000000000\n', /cfg\.yaml:1: drainTimeoutMs: must be at most 2147483647/],
    ['fault delay past a timer', 'faults:\n  - { action: delay, delayMs: 2147483648 }\n', /cfg\.yaml:2: faults\[0\]\.delayMs: at most 2147483647 ms/],
    ['pathological glob characters', 'faults:\n  - { device: "a b", action: hang }\n', /cfg\.yaml:2: faults\[0\]\.device: expected a device name or glob/],
  ];
  for (const [what, yaml, message] of cases) {
    it(what, async () => {
      const dir = await scratch('refuse');
      await writeFile(join(dir, 'cfg.yaml'), yaml);
      const mnt = join(dir, 'mnt');
      // --mount wins over the file's mountpoint, except where the file's is the point.
      const mountArgs = what.startsWith('NUL') ? [] : ['--mount', mnt];
      const r = await cli(['daemon', ...mountArgs, '--socket', join(dir, 'ctl.sock'), '--config', join(dir, 'cfg.yaml')]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      noStack(r.stderr);
      expect(await isMounted(mnt)).toBe(false);
    });
  }

  it('a mountpoint that is a regular file', async () => {
    const dir = await scratch('refuse');
    await writeFile(join(dir, 'file'), 'x');
    const r = await cli(['daemon', '--mount', join(dir, 'file'), '--socket', join(dir, 'ctl.sock')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cdevemu: cannot use ${join(dir, 'file')} as a mountpoint: not a directory`);
    noStack(r.stderr);
  });

  it('a second daemon on a live daemon\'s mountpoint', async () => {
    const d = await Daemon.start();
    try {
      const r = await cli(['daemon', '--mount', d.mount, '--socket', join(d.dir, 'other.sock')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`cdevemu: ${d.mount} is already in use by another cdevemu (pid ${d.pid}); stop it first or choose another mountpoint\n`);
      noStack(r.stderr);
      // The first one never noticed.
      expect((await run('head', ['-c', '1', d.dev('zero')])).stdout).toBe('\0');
    } finally {
      await d.stop();
    }
  });

  it('a scenario sleep past what a timer holds', async () => {
    const dir = await scratch('refuse');
    await writeFile(join(dir, 's.yaml'), 'timeline:\n  - sleep: 2147483648\n');
    const r = await cli(['run', join(dir, 's.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/s\.yaml:2: timeline\[0\]\.sleep: must be at most 2147483647/);
    noStack(r.stderr);
  });
});

describe('the control API', () => {
  it('clients that abort their requests mid-body are not server errors: nothing logged at error level', async () => {
    const d = await Daemon.start({ args: ['--log-level', 'debug'] });
    try {
      const N = 100;
      for (let i = 0; i < N; i++) {
        await new Promise<void>((resolve, reject) => {
          const s = connect(d.socket, () => {
            s.write('POST /v1/faults HTTP/1.1\r\nHost: cdevemu\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"action":');
            // Gone before the rest of the body: the daemon sees 'aborted'.
            setImmediate(() => {
              s.destroy();
              resolve();
            });
          });
          s.once('error', reject);
        });
      }
      const answered = (): number => d.proc.stderr.split('\n').filter((l) => l.includes('"url":"/v1/faults"') && l.includes('"msg":"control request"')).length;
      await until(() => answered() >= N, 20_000, `${N} aborted requests logged at debug level`);
      const severe = d.proc.stderr.split('\n').filter((l) => /"level":(50|60)/.test(l));
      expect(severe).toEqual([]);
      noStack(d.proc.stderr);
      expect((await run('head', ['-c', '1', d.dev('zero')])).stdout).toBe('\0');
    } finally {
      await d.stop();
    }
  });

  itUnless(needsRoot('the other user is uid 65534 (setpriv)'))('a user other than the daemon\'s is told whose socket it is and how to reach it (exit 3)', async () => {
    const d = await Daemon.start();
    try {
      const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'node', CLI, 'ls', '--socket', d.socket]);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(`cdevemu: permission denied on ${d.socket}: the daemon's socket (mode 0600) is root's; run this command as that user (e.g. with sudo)`);
    } finally {
      await d.stop();
    }
  });
});

describe('shutdown', () => {
  it('is bounded even with drainTimeoutMs of ten minutes, a handler that never returns and files held open', async () => {
    const dir = await scratch('shutdown');
    // A model whose read never returns and ignores its signal: a stuck handler.
    await writeFile(
      join(dir, 'stuck.mjs'),
      `export default { name: 'stuckread', stream: true, create: () => ({}), read: () => new Promise(() => {}) };\n`,
    );
    await writeFile(
      join(dir, 'cfg.yaml'),
      'drainTimeoutMs: 600000\nmodels: [./stuck.mjs]\ndevices:\n  - { model: stuckread, name: stuck0 }\n  - { model: echo, name: echo0 }\n',
    );
    const d = await Daemon.start({ dir, args: ['--config', join(dir, 'cfg.yaml')] });
    const reader = pythonInteractive(
      `import os, sys, errno
fd = os.open(sys.argv[1], os.O_RDONLY)
print('open')
try:
    os.read(fd, 1)
except OSError as e:
    print(errno.errorcode[e.errno])
sys.stdin.readline()`,
      [d.dev('stuck0')],
    );
    const holder = pythonInteractive(`import os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\nprint('open')\nsys.stdin.readline()`, [d.dev('echo0')]);
    try {
      expect(await reader.line()).toBe('open');
      expect(await holder.line()).toBe('open');
      await eventually(async () => expect((await d.client.getDevice('stuck0')).inFlight).toHaveLength(1));
      // Not a timing claim: unbounded, the drain alone would take ten minutes.
      expect(await d.stop('SIGTERM', 25_000)).toEqual({ code: 0, signal: null });
      // The stuck read was answered with the unplug errno; the mount is gone.
      expect(await reader.line()).toBe('EIO');
      expect(await isMounted(d.mount)).toBe(false);
      noStack(d.proc.stderr);
    } finally {
      reader.kill();
      holder.kill();
      await d.stop();
    }
  });
});
