/**
 * One emulator per mountpoint for as long as it serves: an exclusive
 * flock(2) on a lock file named after the mountpoint's real path, taken
 * before the mountpoint is touched and held until the emulator stops. The
 * kernel drops the lock when the process dies, however it dies, so a
 * daemon killed with SIGKILL leaves nothing that blocks the next one.
 *
 * Looking at the mount table cannot make the claim alone: two daemons
 * started at the same moment both find no mount there, and both mount
 * (the second on top of the first, which then cannot unmount).
 *
 * The lock files live in a directory only this user can write:
 * /run/cdevemu for root, else $TMPDIR/cdevemu-UID, UID being the user's
 * uid in the initial user namespace. So an ordinary user's daemon and the
 * same user's emulator run as root of a user namespace of its own
 * (`cdevemu run` without root) share one directory and meet on the same
 * lock, and two users' namespaces never share one. The holder writes its
 * pid into the file, so the one refused can name it.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { tryLockExclusive } from '../sys/ffi.js';
import { MountpointError } from './mount.js';

/** How long a refused claim waits for the holder to write its pid (it locks first, then writes). */
const HOLDER_PID_WAIT_MS = 1000;

/**
 * This process's uid as the initial user namespace knows it, from
 * /proc/self/uid_map (lines: first uid inside, first uid outside, count;
 * the parent namespace's uids, which for a namespace made by a user of the
 * initial one are the initial namespace's).
 */
export function hostUid(uid = process.getuid?.() ?? 0, uidMap = readFileSync('/proc/self/uid_map', 'utf8')): number {
  for (const line of uidMap.split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
    if (inside !== undefined && outside !== undefined && count !== undefined && uid >= inside && uid < inside + count) return outside + (uid - inside);
  }
  return uid;
}

function lockDirectory(): string {
  const uid = process.getuid?.() ?? 0;
  const host = hostUid(uid);
  const fallback = join(tmpdir(), `cdevemu-${host}`);
  let dir = uid === 0 && host === 0 ? '/run/cdevemu' : fallback;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    dir = fallback;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  // A directory another user planted (or made writable) could hold their lock files, or links to ours.
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new MountpointError(`${dir} is not a directory of this user's that only it can write; remove it so that cdevemu can make it`);
  }
  return dir;
}

/**
 * The mountpoint's real path: its parent's, resolved, and its own name.
 * The mountpoint itself is not resolved: it may be a dead mount (ENOTCONN)
 * or another daemon's that hangs, and resolving it would stat it.
 */
function realMountpoint(mountpoint: string): string {
  const abs = resolve(mountpoint);
  try {
    return join(realpathSync(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

function readHolder(path: string): number | null {
  try {
    const pid = parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export class MountpointLock {
  private released = false;

  private constructor(
    private readonly fd: number,
    readonly path: string,
  ) {}

  /** Claims `mountpoint`, or throws MountpointError naming the pid that holds it. */
  static async take(mountpoint: string): Promise<MountpointLock> {
    const real = realMountpoint(mountpoint);
    const path = join(lockDirectory(), `${createHash('sha256').update(real).digest('hex').slice(0, 32)}.lock`);
    for (;;) {
      // Close-on-exec, as libuv opens everything: mount(8) and the programs
      // a scenario runs must not inherit the lock and outlive it.
      const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
      let held = false;
      try {
        if (!tryLockExclusive(fd)) {
          const holder = await MountpointLock.holder(path);
          throw new MountpointError(
            `${mountpoint} is already in use by another cdevemu (pid ${holder ?? 'unknown'}); stop it first or choose another mountpoint`,
          );
        }
        // The holder before us unlinks the file as it lets go: a lock on an
        // unlinked file claims nothing, so start again on the new one.
        const mine = fstatSync(fd);
        const now = statOrNull(path);
        if (now && now.ino === mine.ino && now.dev === mine.dev) {
          ftruncateSync(fd, 0);
          writeSync(fd, `${process.pid}\n${real}\n`, 0);
          held = true;
          return new MountpointLock(fd, path);
        }
      } finally {
        if (!held) closeSync(fd);
      }
    }
  }

  /** The pid the holder wrote; it writes just after it locks, so a refusal may come first and wait for it. */
  private static async holder(path: string): Promise<number | null> {
    const deadline = Date.now() + HOLDER_PID_WAIT_MS;
    for (;;) {
      const pid = readHolder(path);
      if (pid !== null || Date.now() >= deadline) return pid;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * Removes the lock files of the mountpoints `mine` picks whose holder is
   * gone (killed: the kernel dropped its lock, but the file stays), as
   * their holders' release() would have: locked, then unlinked while
   * locked. A file whose lock is held is a live holder's, and stays. Only
   * for mountpoints no one takes twice (a run's, under a new directory
   * each time): a taker of the same mountpoint that tried while this held
   * the lock would be refused as if a live holder had it.
   */
  static clearStale(mine: (mountpoint: string) => boolean): void {
    const dir = lockDirectory();
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      let fd: number;
      try {
        // The holder wrote its pid and the mountpoint (take()).
        if (!name.endsWith('.lock') || !mine(readFileSync(path, 'utf8').split('\n')[1] ?? '')) continue;
        fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
      } catch {
        continue; // gone meanwhile
      }
      try {
        if (tryLockExclusive(fd)) unlinkSync(path);
      } catch {
        // gone meanwhile
      } finally {
        closeSync(fd);
      }
    }
  }

  /** Lets go: the file is unlinked while still locked, so no one can lock it in between and miss the next holder's. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
    closeSync(this.fd);
  }
}

function statOrNull(path: string): ReturnType<typeof statSync> | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}
