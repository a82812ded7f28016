/**
 * Mounting and unmounting as an ordinary user, through fusermount3 (the
 * fuse3 package's setuid helper), as libfuse does for users who are not
 * root (docs/fuse-protocol.md#mounting-as-an-ordinary-user):
 *
 * - mount: a connected pair of Unix stream sockets; fusermount3 gets one
 *   as its fd 3 with `_FUSE_COMMFD=3` in its environment, checks that the
 *   user may mount there, opens /dev/fuse, mounts (nosuid,nodev, with the
 *   user's user_id and group_id, which it adds itself), sends the
 *   /dev/fuse descriptor back over the socket (SCM_RIGHTS) and exits;
 * - unmount: `fusermount3 -u` (`-z`: lazily), which unmounts only a FUSE
 *   mount whose user_id is the caller's.
 *
 * Without auto_unmount. With it, fusermount3 would stay, asleep, and
 * unmount a dead mount once our end of the socket closes; but fuse3
 * before 3.15 (Debian 12, Ubuntu 24.04) looks at the mount as root, which
 * FUSE turns away from a mount without allow_other (EACCES, not the
 * ENOTCONN it waits for), so it never unmounts; and root's path has no
 * such watcher. Both clear a dead mount the same way: the next start on
 * the mountpoint (prepareMountpoint).
 */
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { receiveFd, unixSocketPair } from '../sys/ffi.js';
import { FUSERMOUNT, FUSERMOUNT_MISSING, findFusermount } from './requirements.js';

export interface FusermountOptions {
  mountpoint: string;
  maxRead: number;
  allowOther: boolean;
  /** The part after `fuse.` of the type the mount table shows (subtype=). */
  subtype: string;
}

/** A failure of fusermount3, in its own words (it names the cause: `fusermount3: mount failed: ...`). */
export class FusermountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FusermountError';
  }
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** spawn's own failure (the file vanished since it was found). */
  error?: Error;
}

/** What fusermount3 said on stderr, or how it ended when it said nothing. */
function complaint(e: Ended): string {
  const said = e.stderr.trim().split('\n').filter(Boolean);
  if (said.length) return said.join('; ');
  if (e.error) return `${FUSERMOUNT}: ${e.error.message}`;
  return `${FUSERMOUNT} ${e.signal ? `killed by ${e.signal}` : `exited ${e.code}`}`;
}

/** Runs fusermount3 with `args`; `commfd` becomes its fd 3. Resolves once it has exited and its stderr is read. */
function runFusermount(args: string[], commfd?: number): Promise<Ended> {
  const path = findFusermount();
  if (path === null) return Promise.reject(new FusermountError(FUSERMOUNT_MISSING));
  return new Promise((resolve) => {
    const child = spawn(path, args, {
      // Its name in its messages ("fusermount3: ..."), not its path.
      argv0: FUSERMOUNT,
      stdio: ['ignore', 'ignore', 'pipe', ...(commfd === undefined ? [] : [commfd])],
      ...(commfd === undefined ? {} : { env: { ...process.env, _FUSE_COMMFD: '3' } }),
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (error) => resolve({ code: null, signal: null, stderr, error }));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/**
 * Mounts through fusermount3 and resolves with the mounted /dev/fuse
 * descriptor. `-o` takes what the kernel is given (default_permissions,
 * allow_other, max_read; fusermount3 adds fd, rootmode, user_id and
 * group_id itself) and what fusermount3 keeps (fsname, subtype).
 */
export async function fusermount(o: FusermountOptions): Promise<number> {
  const opts = ['fsname=cdevemu', `subtype=${o.subtype}`, `max_read=${o.maxRead}`, 'default_permissions'];
  if (o.allowOther) opts.push('allow_other');
  const [mine, theirs] = unixSocketPair();
  try {
    const ended = runFusermount(['-o', opts.join(','), '--', o.mountpoint], theirs);
    // The child has its copy (its fd 3) once spawned: ours goes, so that only its exit closes the socket.
    closeSync(theirs);
    const e = await ended;
    // Sent before it exited, so queued now if at all.
    const fd = receiveFd(mine);
    if (fd !== null && e.code === 0) return fd;
    if (fd !== null) closeSync(fd);
    throw new FusermountError(e.code === 0 ? `${FUSERMOUNT} exited 0 without sending the /dev/fuse descriptor` : complaint(e));
  } finally {
    closeSync(mine);
  }
}

/** `fusermount3 -u [-z] -- MOUNTPOINT`: resolves with its exit code and, on failure, what it said. */
export async function fusermountUnmount(mountpoint: string, lazy: boolean): Promise<{ code: number | null; complaint: string }> {
  const e = await runFusermount(['-u', ...(lazy ? ['-z'] : []), '--', mountpoint]);
  return { code: e.code, complaint: e.code === 0 ? '' : complaint(e) };
}
