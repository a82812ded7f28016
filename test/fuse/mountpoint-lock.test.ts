/**
 * MountpointLock between real processes: one holder per mountpoint (by
 * its real path), the refused one told the holder's pid, the claim gone
 * with its holder however it ends, and the lock file with a release.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { MountpointLock } from '../../src/fuse/mountpoint-lock.js';
import { repoRoot } from '../helpers/cli.js';
import { Interactive } from '../helpers/proc.js';

const module = join(repoRoot, 'dist', 'src', 'fuse', 'mountpoint-lock.js');
const dir = await mkdtemp(join(tmpdir(), 'cdevemu-lock-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Another process that takes the lock, says 'held' (or the refusal), and holds it until its stdin closes. */
function holder(mountpoint: string): Interactive {
  const src = `
const { MountpointLock } = await import(${JSON.stringify(module)});
try {
  await MountpointLock.take(process.argv[1]);
  console.log('held');
  process.stdin.resume();
} catch (e) {
  console.log(e.message);
}`;
  return new Interactive(process.execPath, ['--input-type=module', '-e', src, mountpoint]);
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
});
