/**
 * MountpointLock between real processes: one holder per mountpoint (by
 * its real path), the refused one told the holder's pid, the claim gone
 * with its holder however it ends, and the lock file with a release.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { MountpointLock, hostUid } from '../../src/fuse/mountpoint-lock.js';
import { userNamespaceProblem } from '../../src/fuse/requirements.js';
import { repoRoot } from '../helpers/cli.js';
import { Interactive } from '../helpers/proc.js';

const module = join(repoRoot, 'dist', 'src', 'fuse', 'mountpoint-lock.js');
const dir = await mkdtemp(join(tmpdir(), 'cdevemu-lock-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/**
 * Another process that takes the lock, says 'held' (or the refusal), and
 * holds it until its stdin closes; `wrap` runs it under other commands
 * (setpriv, unshare). With `release`, it lets go at once instead and says
 * 'released': a holder killed leaves its lock file (which claims nothing),
 * and a release unlinks it, so each test ends with one.
 */
function holder(mountpoint: string, wrap: string[] = [], o: { release?: boolean } = {}): Interactive {
  const src = `
const { MountpointLock } = await import(${JSON.stringify(module)});
try {
  const lock = await MountpointLock.take(process.argv[1]);
  if (process.argv[2] === 'release') {
    lock.release();
    console.log('released');
  } else {
    console.log('held');
    process.stdin.resume();
  }
} catch (e) {
  console.log(e.message);
}`;
  const [cmd, ...args] = [...wrap, process.execPath, '--input-type=module', '-e', src, mountpoint, o.release ? 'release' : 'hold'];
  return new Interactive(cmd!, args);
}

/** Removes the lock file holders killed left (holder's `release`). */
async function clearLock(mountpoint: string, wrap: string[] = []): Promise<void> {
  const h = holder(mountpoint, wrap, { release: true });
  expect(await h.line()).toBe('released');
  await h.exited;
}

it('one holder per mountpoint: another process is refused with the holder\'s pid, here as through a symlinked parent', async () => {
  const mnt = join(dir, 'a', 'mnt');
  await mkdir(join(dir, 'a'));
  await symlink(join(dir, 'a'), join(dir, 'link'));
  const other = holder(mnt);
  try {
    expect(await other.line()).toBe('held');
    await expect(MountpointLock.take(mnt)).rejects.toThrow(`${mnt} is already in use by another cdevemu (pid ${other.pid}); stop it first or choose another mountpoint`);
    const viaLink = join(dir, 'link', 'mnt');
    await expect(MountpointLock.take(viaLink)).rejects.toThrow(`(pid ${other.pid})`);
    // Another mountpoint is another lock.
    (await MountpointLock.take(join(dir, 'a', 'other'))).release();
  } finally {
    other.kill('SIGKILL');
    await other.exited;
  }
  // Killed, it let go: the kernel drops a flock with its last descriptor.
  const mine = await MountpointLock.take(mnt);
  expect(existsSync(mine.path)).toBe(true);
  mine.release();
  expect(existsSync(mine.path)).toBe(false);
  // Released, the next process takes it.
  const next = holder(mnt);
  expect(await next.line()).toBe('held');
  next.kill('SIGKILL');
  await next.exited;
  await clearLock(mnt);
});

it('many processes claiming one mountpoint at once: exactly one holds it', async () => {
  const mnt = join(dir, 'many');
  const claims = Array.from({ length: 6 }, () => holder(mnt));
  try {
    const said = await Promise.all(claims.map((c) => c.line()));
    expect(said.filter((l) => l === 'held')).toHaveLength(1);
    const winner = claims[said.indexOf('held')]!;
    for (const l of said.filter((x) => x !== 'held')) expect(l).toContain(`(pid ${winner.pid})`);
  } finally {
    for (const c of claims) c.kill('SIGKILL');
    await Promise.all(claims.map((c) => c.exited));
  }
  await clearLock(mnt);
});

it('the uid in the initial user namespace, from uid_map', () => {
  expect(hostUid(0, '         0          0 4294967295\n')).toBe(0);
  expect(hostUid(1000, '         0          0 4294967295\n')).toBe(1000);
  // unshare -Ur by uid 1000: its root is uid 1000 outside.
  expect(hostUid(0, '         0       1000          1\n')).toBe(1000);
  expect(hostUid(5, '         0     100000      65536\n')).toBe(100005);
});

// As root, the user is nobody (setpriv); as an ordinary user, that user.
const asUser = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
it.skipIf(userNamespaceProblem() !== null)(
  "a user's emulator and the same user's as root of a user namespace of its own meet on one lock",
  async () => {
    // Both must reach the mountpoint's parent to name it by its real path.
    const open = await mkdtemp(join(tmpdir(), 'cdevemu-lock-ns-'));
    await chmod(open, 0o755);
    try {
      const mnt = join(open, 'mnt');
      const user = holder(mnt, asUser);
      try {
        expect(await user.line()).toBe('held');
        const nsRoot = holder(mnt, [...asUser, 'unshare', '--user', '--map-root-user']);
        expect(await nsRoot.line()).toBe(`${mnt} is already in use by another cdevemu (pid ${user.pid}); stop it first or choose another mountpoint`);
        await nsRoot.exited;
      } finally {
        user.kill('SIGKILL');
        await user.exited;
      }
      // And the other way round, once the user's is gone.
      const nsRoot = holder(mnt, [...asUser, 'unshare', '--user', '--map-root-user']);
      try {
        expect(await nsRoot.line()).toBe('held');
        const user2 = holder(mnt, asUser);
        expect(await user2.line()).toBe(`${mnt} is already in use by another cdevemu (pid ${nsRoot.pid}); stop it first or choose another mountpoint`);
        await user2.exited;
      } finally {
        nsRoot.kill('SIGKILL');
        await nsRoot.exited;
      }
      await clearLock(mnt, asUser);
    } finally {
      await rm(open, { recursive: true, force: true });
    }
  },
);
