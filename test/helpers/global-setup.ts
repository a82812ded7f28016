/**
 * Every mount a test makes lives under one temporary root. Teardown
 * unmounts whatever is still mounted below it, so a crashed or failed test
 * file never leaves a FUSE mount on the machine. A run that was killed
 * never tears down: the next run of the same user unmounts and removes
 * the roots whose run is gone (each root names its run's pid), as an
 * ordinary user's mounts (fusermount3's) stay on the host until someone
 * does.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const PREFIX = 'cdevemu-test-';
/** The file in a root that names the pid of the run that made it. */
const OWNER = 'run.pid';

/** Parsed here rather than imported from src/: teardown must work even when src/ does not load. */
function cdevemuMountsUnder(root: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0) continue;
    const mp = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp.startsWith(root + '/') && f[sep + 1]!.startsWith('fuse')) out.push(mp);
  }
  // Deepest first, so nested mounts go before their parents.
  return out.sort((a, b) => b.length - a.length);
}

/** Unmounts what is mounted under `root` and removes it; returns the mounts it found. */
function clear(root: string): string[] {
  const left = cdevemuMountsUnder(root);
  // Root's mounts are umount(8)'s; an ordinary user's, fusermount3's (src/fuse/mount.ts).
  const [cmd, ...args] = process.getuid?.() === 0 ? ['umount', '-l'] : ['fusermount3', '-u', '-z'];
  for (const mp of left) {
    try {
      execFileSync(cmd!, [...args, mp], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
  // Never through a mount that is still there: the removal would walk into it.
  if (cdevemuMountsUnder(root).length === 0) rmSync(root, { recursive: true, force: true });
  return left;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The roots of this user's runs that were killed: their run's pid is gone. Roots without the pid file are left alone. */
function abandonedRoots(): string[] {
  const uid = process.getuid?.();
  return readdirSync(tmpdir())
    .filter((e) => e.startsWith(PREFIX))
    .map((e) => join(tmpdir(), e))
    .filter((root) => {
      try {
        if (statSync(root).uid !== uid) return false;
        const pid = Number(readFileSync(join(root, OWNER), 'utf8'));
        return Number.isInteger(pid) && pid > 0 && !alive(pid);
      } catch {
        return false;
      }
    });
}

export default function setup(): () => void {
  for (const old of abandonedRoots()) {
    const left = clear(old);
    console.error(`global setup: cleared ${old}, left by a run that was killed${left.length ? `, and its mount(s): ${left.join(', ')}` : ''}`);
  }
  const root = mkdtempSync(join(tmpdir(), PREFIX));
  writeFileSync(join(root, OWNER), `${process.pid}\n`);
  process.env.CDEVEMU_TEST_ROOT = root;
  return () => {
    const left = clear(root);
    if (left.length) console.error(`global teardown: unmounted ${left.length} leftover mount(s): ${left.join(', ')}`);
  };
}
