/**
 * `cdevemu daemon` and startEmulator() as an ordinary user: mounted
 * through fusermount3 (type fuse.cdevemu, the user's user_id), served to
 * the user's other processes, unmounted with fusermount3 -u on stop (also
 * with a file held open, with or without fusectl to abort the connection),
 * and a dead mount cleared by the next start after SIGKILL. Run as root,
 * the user is uid 65534 in a private mount namespace where /dev/fuse is
 * 0666 (test/helpers/as-user.ts); run by an ordinary user, that user.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { ALLOW_OTHER_REFUSED, userAllowOther } from '../../src/fuse/requirements.js';
import { repoRoot } from '../helpers/cli.js';
import { run, type Interactive } from '../helpers/proc.js';
import { UserWorld, itUnless, needsRoot, runsAsRoot } from '../helpers/as-user.js';
import { CLI } from './harness.js';

const E = { ENOTCONN: 107 };

const worlds: UserWorld[] = [];
const daemons = new Set<Interactive>();
afterAll(async () => {
  for (const d of daemons) d.kill('SIGKILL');
  await Promise.all([...daemons].map((d) => d.exited));
  await Promise.all(worlds.map((w) => w.close()));
});

async function world(o: Parameters<typeof UserWorld.open>[0] = {}): Promise<UserWorld> {
  const w = await UserWorld.open(o);
  worlds.push(w);
  return w;
}

/** A daemon of the user's on DIR/mnt with its socket at DIR/ctl.sock; resolves once it serves. */
async function startDaemon(w: UserWorld, args: string[] = []): Promise<{ proc: Interactive; mnt: string; client: ControlClient }> {
  const mnt = join(w.dir, 'mnt');
  const socket = join(w.dir, 'ctl.sock');
  const proc = w.spawn([process.execPath, CLI, 'daemon', '--mount', mnt, '--socket', socket, ...args]);
  daemons.add(proc);
  void proc.exited.then(() => daemons.delete(proc));
  const client = new ControlClient(socket);
  let exited: unknown = null;
  void proc.exited.then((e) => (exited = e));
  for (;;) {
    if (exited) throw new Error(`daemon exited (${JSON.stringify(exited)}) before it served; stderr:\n${proc.stderr}`);
    try {
      // The pid answers for this daemon, not one a stale socket file might name.
      if ((await client.status()).pid === proc.pid) return { proc, mnt, client };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Writes a line to the echo device from one process of the user's and reads it back from another. */
async function echoRoundTrip(w: UserWorld, mnt: string): Promise<string> {
  const dev = join(mnt, 'dev', 'echo0');
  const wrote = await w.run(['sh', '-c', 'echo "round trip" > "$0"', dev]);
  expect(wrote.stderr).toBe('');
  const read = await w.run(['head', '-c', '11', dev]);
  expect(read.stderr).toBe('');
  return read.stdout;
}

/** Holds `dev` open; on a line on stdin, reads it once and prints the errno (or 'read ok'). */
const HOLD_THEN_READ = `import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print('open', flush=True)
sys.stdin.readline()
try:
    os.read(fd, 1); print('read ok', flush=True)
except OSError as e:
    print(e.errno, flush=True)
`;

describe('cdevemu daemon as an ordinary user', () => {
  it('mounts through fusermount3 with its user_id, serves its other processes, and leaves no mount on stop', async () => {
    const w = await world();
    const d = await startDaemon(w);
    const line = await w.mountAt(d.mnt);
    expect(line).toMatch(new RegExp(`^cdevemu ${d.mnt} fuse\\.cdevemu rw,nosuid,nodev,\\S*user_id=${w.uid},group_id=${w.gid},default_permissions`));
    expect(line).not.toContain('allow_other');
    expect(await echoRoundTrip(w, d.mnt)).toBe('round trip\n');
    if (runsAsRoot) {
      // Without allow_other the kernel turns away every other user, root included.
      const [c, ...args] = w.argvAsRoot(['cat', join(d.mnt, 'sys', 'class', 'uio', 'uio0', 'name')]);
      const root = await run(c!, args);
      expect(root.stderr).toMatch(/Permission denied/);
    }
    d.proc.kill('SIGTERM');
    expect(await d.proc.exited).toEqual({ code: 0, signal: null });
    expect(await w.mountAt(d.mnt)).toBeNull();
  });

  /** Stops a daemon while another process of the user's holds a device open: a clean exit, no mount, and the holder's next read fails ENOTCONN. */
  async function stopWithFileOpen(w: UserWorld): Promise<void> {
    const d = await startDaemon(w);
    const holder = w.spawn(['python3', '-u', '-c', HOLD_THEN_READ, join(d.mnt, 'dev', 'echo0')]);
    expect(await holder.line()).toBe('open');
    d.proc.kill('SIGTERM');
    expect(await d.proc.exited).toEqual({ code: 0, signal: null });
    expect(await w.mountAt(d.mnt)).toBeNull();
    holder.send('read');
    expect(Number(await holder.line())).toBe(E.ENOTCONN);
    expect(d.proc.stderr).not.toContain('umount failed');
  }

  it('stops with a file held open: fusermount3 -u -z detaches, the connection is aborted, the holder gets ENOTCONN', async () => {
    await stopWithFileOpen(await world());
  });

  itUnless(needsRoot('fusectl is unmounted in a private mount namespace'))('stops with a file held open where fusectl is not mounted: closing /dev/fuse aborts the connection', async () => {
    const w = await world({ fusectl: false });
    expect(await w.mounts()).not.toContain(' fusectl ');
    await stopWithFileOpen(w);
  });

  it('recovers after SIGKILL: the dead mount is cleared by the next start on the same mountpoint and socket', async () => {
    const w = await world();
    const first = await startDaemon(w);
    first.proc.kill('SIGKILL');
    await first.proc.exited;
    // Left behind: a dead connection's mount, which answers ENOTCONN.
    expect(await w.mountAt(first.mnt)).toMatch(/fuse\.cdevemu/);
    expect((await w.run(['ls', first.mnt])).stderr).toMatch(/Transport endpoint is not connected/);
    const second = await startDaemon(w);
    expect((await w.mounts()).split('\n').filter((l) => l.split(' ')[1] === second.mnt)).toHaveLength(1);
    expect(await echoRoundTrip(w, second.mnt)).toBe('round trip\n');
    second.proc.kill('SIGTERM');
    expect(await second.proc.exited).toEqual({ code: 0, signal: null });
    expect(await w.mountAt(second.mnt)).toBeNull();
  });

  it("refuses a mountpoint fusermount3 refuses, in fusermount3's words: one line, exit 2, nothing mounted", async () => {
    const w = await world();
    const mnt = join(w.dir, 'mnt');
    // The user's own directory, but not writable: fusermount3 checks access(W_OK).
    await w.run(['sh', '-c', 'mkdir "$0" && chmod 0555 "$0"', mnt]);
    const r = await w.run([process.execPath, CLI, 'daemon', '--mount', mnt, '--socket', join(w.dir, 'ctl.sock')]);
    expect(r.stderr).toBe(`cdevemu: fusermount3 could not mount ${mnt}: fusermount3: user has no write access to mountpoint ${mnt}\n`);
    expect(r.code).toBe(2);
    expect(await w.mountAt(mnt)).toBeNull();
  });

  itUnless(runsAsRoot || userAllowOther() ? null : ALLOW_OTHER_REFUSED)('--allow-other where fuse.conf has user_allow_other: other users reach the devices', async () => {
    const w = await world(runsAsRoot ? { fuseConf: '# the test\'s\nuser_allow_other\n' } : {});
    const d = await startDaemon(w, ['--allow-other']);
    expect(await w.mountAt(d.mnt)).toMatch(/,allow_other/);
    if (runsAsRoot) {
      const [c, ...args] = w.argvAsRoot(['cat', join(d.mnt, 'sys', 'class', 'uio', 'uio0', 'name')]);
      const root = await run(c!, args);
      expect(root).toMatchObject({ code: 0, stdout: expect.stringMatching(/\S/) });
    }
    d.proc.kill('SIGTERM');
    expect(await d.proc.exited).toEqual({ code: 0, signal: null });
  });
});

describe('startEmulator() as an ordinary user', () => {
  it('mounts a temporary mountpoint through fusermount3, serves a child of the user, and removes both on stop', async () => {
    const w = await world();
    const script = join(w.dir, 'emulator.mjs');
    await writeFile(
      script,
      `import { startEmulator } from ${JSON.stringify(join(repoRoot, 'dist', 'src', 'index.js'))};
import { execFile } from 'node:child_process';
const emu = await startEmulator();
await emu.plug('echo', 'echo0');
const dev = emu.path('dev/echo0');
// A child answers through the mount: this process serves it.
const out = await new Promise((resolve, reject) =>
  execFile('sh', ['-c', 'echo library > "$0"; head -c 8 "$0"', dev], (err, stdout) => (err ? reject(err) : resolve(stdout))));
console.log(JSON.stringify({ mountpoint: emu.mountpoint, out }));
process.stdin.once('data', async () => {
  process.stdin.destroy();
  await emu.stop();
  console.log('stopped');
});
`,
    );
    const lib = w.spawn([process.execPath, script]);
    daemons.add(lib);
    const { mountpoint, out } = JSON.parse(await lib.line(30_000)) as { mountpoint: string; out: string };
    expect(mountpoint.startsWith(join(w.dir, 'tmp') + '/')).toBe(true);
    expect(out).toBe('library\n');
    expect(await w.mountAt(mountpoint)).toMatch(new RegExp(`fuse\\.cdevemu \\S*user_id=${w.uid},`));
    lib.send('stop');
    expect(await lib.line()).toBe('stopped');
    expect(await lib.exited).toEqual({ code: 0, signal: null });
    expect(await w.mountAt(mountpoint)).toBeNull();
    expect((await w.run(['ls', '-A', join(w.dir, 'tmp')])).stdout).not.toContain(mountpoint.split('/').pop()!);
  });
});
