/**
 * Every mount a test makes lives under one temporary root. Teardown
 * unmounts whatever is still mounted below it, so a crashed or failed test
 * file never leaves a FUSE mount on the machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'cdevemu-test-'));
  process.env.CDEVEMU_TEST_ROOT = root;
  return () => {
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
    if (left.length) console.error(`global teardown: unmounted ${left.length} leftover mount(s): ${left.join(', ')}`);
    rmSync(root, { recursive: true, force: true });
  };
}
