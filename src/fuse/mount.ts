/**
 * Mounting and unmounting a FUSE connection, and recovering a mountpoint
 * left behind by a daemon that died.
 *
 * Root mounts with mount(8)/umount(8): `mount -i` skips /sbin/mount.fuse.*
 * helpers; the /dev/fuse descriptor is passed as the child's fd 3
 * (docs/fuse-protocol.md#mount: the fd=3 option names that descriptor).
 * The kernel accepts only fd, rootmode, user_id, group_id,
 * default_permissions, allow_other, max_read and blksize as fs options;
 * nosuid/nodev are mount(2) flags that mount(8) translates. mount(8) takes
 * `-t` from root only, so any other user mounts through fusermount3
 * (src/fuse/fusermount.ts), which gives the same mount: type
 * fuse.cdevemu, nosuid, nodev, the user's user_id and group_id.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, readdir, statfs, writeFile, mkdir } from 'node:fs/promises';
import { FusermountError, fusermount, fusermountUnmount } from './fusermount.js';
import { FUSERMOUNT, FUSERMOUNT_MISSING, FUSE_DEVICE, mountProblems } from './requirements.js';
import { within } from '../awaitable.js';
import { UserError } from '../user-error.js';

export interface MountOptions {
  mountpoint: string;
  /** Mount option max_read; go-fuse passes max_write here too. */
  maxRead: number;
  allowOther?: boolean;
}

export class MountError extends UserError {}

/** The mountpoint cannot be used (taken by a live daemon or another filesystem, not a directory): the user's to fix. */
export class MountpointError extends MountError {
  constructor(message: string) {
    super(message);
    this.name = 'MountpointError';
  }
}

/** This machine or user cannot mount at all (no /dev/fuse, no fusermount3, allow_other refused): the user's to fix, said in one line. */
export class CannotMountError extends MountError {
  constructor(message: string) {
    super(message);
    this.name = 'CannotMountError';
  }
}

/**
 * Whether this process mounts as root, with mount(8): uid 0 in its user
 * namespace (in a user namespace of its own it may mount FUSE, the file
 * system being FS_USERNS_MOUNT). Any other uid mounts through fusermount3.
 */
export function mountsAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * Checks, before anything is touched, what every mount needs: /dev/fuse
 * opens read-write, and for a user who is not root, fusermount3 is there
 * and fuse.conf allows allow_other if it is asked for. The messages are
 * scripts/check-system.mjs's (requirements.js).
 */
export function checkCanMount(o: { allowOther?: boolean } = {}): void {
  const [problem] = mountProblems({ root: mountsAsRoot(), allowOther: o.allowOther ?? false });
  if (problem) throw new CannotMountError(problem);
}

interface RunResult {
  code: number | null;
  stderr: string;
}

function run(cmd: string, args: string[], stdio: Array<'ignore' | 'pipe' | number>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr: stderr.trim() }));
  });
}

/**
 * Opens /dev/fuse and mounts it, as root with mount(8), else through
 * fusermount3; resolves with the descriptor, to be read once this
 * resolves (FuseServer.mount). A mount that failed leaves no descriptor open.
 */
export async function mountFuse(o: MountOptions): Promise<number> {
  return mountsAsRoot() ? mountAsRoot(o) : mountAsUser(o);
}

async function mountAsRoot(o: MountOptions): Promise<number> {
  const fd = openSync(FUSE_DEVICE, 'r+');
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  // default_permissions: the kernel checks mode bits like it does for /dev
  // nodes, so chmod on an emulated device behaves as on a real one.
  const opts = [`fd=3`, `rootmode=40000`, `user_id=${uid}`, `group_id=${gid}`, `max_read=${o.maxRead}`, 'default_permissions'];
  if (o.allowOther) opts.push('allow_other');
  const args = ['-i', '-t', FSTYPE, '-o', `nosuid,nodev,${opts.join(',')}`, 'cdevemu', o.mountpoint];
  try {
    const r = await run('mount', args, ['ignore', 'ignore', 'pipe', fd]);
    if (r.code !== 0) throw new MountError(`mount ${o.mountpoint} failed: ${r.stderr || `exit ${r.code}`}`);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

async function mountAsUser(o: MountOptions): Promise<number> {
  try {
    return await fusermount({ mountpoint: o.mountpoint, maxRead: o.maxRead, allowOther: o.allowOther ?? false, subtype: FSTYPE.slice('fuse.'.length) });
  } catch (err) {
    if (!(err instanceof FusermountError)) throw err;
    if (err.message === FUSERMOUNT_MISSING) throw new CannotMountError(err.message);
    // fusermount3's own words name the cause ("user has no write access to mountpoint ...").
    throw new MountError(`${FUSERMOUNT} could not mount ${o.mountpoint}: ${err.message}`);
  }
}

/**
 * Unmounts; `lazy` detaches even while files are open. Root: umount(8),
 * `-l` when lazy. A user: `fusermount3 -u`, then `-u -z` if that was
 * refused (files open: EBUSY) and `lazy` allows it.
 */
export async function unmountFuse(mountpoint: string, lazy = true): Promise<void> {
  if (mountsAsRoot()) {
    const r = await run('umount', lazy ? ['-l', mountpoint] : [mountpoint], ['ignore', 'ignore', 'pipe']);
    if (r.code !== 0 && (await findMount(mountpoint))) {
      throw new MountError(`umount ${mountpoint} failed: ${r.stderr || `exit ${r.code}`}`);
    }
    return;
  }
  let r = await fusermountUnmount(mountpoint, false);
  if (r.code !== 0 && lazy && (await findMount(mountpoint))) r = await fusermountUnmount(mountpoint, true);
  if (r.code !== 0 && (await findMount(mountpoint))) throw new MountError(`${FUSERMOUNT} -u ${mountpoint} failed: ${r.complaint}`);
}

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  /** major:minor of st_dev; the minor names the fusectl connection. */
  dev: string;
}

/** Octal escapes in /proc/self/mountinfo (\040 for space and so on). */
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Every mount this process sees, in /proc/self/mountinfo's order (outer before inner), never touching one. */
async function mountTable(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const mounts: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f.length < 5) continue;
    mounts.push({ mountpoint: unescape(f[4]!), fstype: f[sep + 1]!, dev: f[2]! });
  }
  return mounts;
}

/** The innermost mount at exactly `mountpoint`. */
export async function findMount(mountpoint: string): Promise<MountEntry | null> {
  return (await mountTable()).filter((m) => m.mountpoint === mountpoint).at(-1) ?? null;
}

/** The mountpoints of cdevemu's mounts (FSTYPE) this process sees, live or dead. */
export async function cdevemuMountpoints(): Promise<string[]> {
  return (await mountTable()).filter((m) => m.fstype === FSTYPE).map((m) => m.mountpoint);
}

/** The filesystem type our mounts carry (mount -t fuse.cdevemu). */
export const FSTYPE = 'fuse.cdevemu';

/**
 * Makes `mountpoint` usable: creates it, and clears a cdevemu mount left
 * there by a daemon that died. Such a mount answers ENOTCONN ("Transport
 * endpoint is not connected") until it is unmounted. A mount that still
 * answers belongs to a live daemon and is refused; another filesystem's
 * FUSE mount (sshfs...) is never touched. A directory with something in it
 * is refused too: the mount would hide its files without a word.
 *
 * Live or dead is asked with statfs(): FUSE_STATFS goes to the daemon on
 * every call (fuse_statfs), and on a dead connection fails ENOTCONN at
 * once. stat() would not do: the kernel answers it from the attributes it
 * cached while the daemon was alive (fuse_update_attributes).
 */
export async function prepareMountpoint(mountpoint: string): Promise<void> {
  const m = await findMount(mountpoint);
  if (m && m.fstype.startsWith('fuse')) {
    if (m.fstype !== FSTYPE) {
      throw new MountpointError(`${mountpoint} is a ${m.fstype} mount that is not cdevemu's; unmount it or choose another mountpoint`);
    }
    const probe = await within(
      statfs(mountpoint).then(
        () => 'live' as const,
        (e: NodeJS.ErrnoException) => (e.code === 'ENOTCONN' || e.code === 'ECONNABORTED' ? ('stale' as const) : ('live' as const)),
      ),
      1000,
      () => 'hung' as const,
    );
    if (probe === 'live') throw new MountpointError(`${mountpoint} is already served by a live cdevemu daemon; stop it first or choose another mountpoint`);
    if (probe === 'hung') {
      // The daemon behind it is alive but not answering; aborting its
      // connection turns the mount into a stale one (fuse.rst, fusectl).
      await abortConnection(m.dev);
    }
    await unmountFuse(mountpoint, true);
  }
  try {
    await mkdir(mountpoint, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MountpointError(`cannot use ${mountpoint} as a mountpoint: ${code === 'EEXIST' || code === 'ENOTDIR' ? 'not a directory' : (code ?? String(e))}`);
  }
  await refuseNonEmpty(mountpoint);
}

/** A mount over a directory hides what is in it (until the unmount): refuse one that is not empty. */
async function refuseNonEmpty(mountpoint: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(mountpoint);
  } catch (e) {
    throw new MountpointError(`cannot use ${mountpoint} as a mountpoint: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (names.length === 0) return;
  const shown = names.sort().slice(0, 3).join(', ') + (names.length > 3 ? `, ... (${names.length} entries)` : '');
  throw new MountpointError(`${mountpoint} is not empty (${shown}): a mount would hide it; empty it or choose another mountpoint`);
}

/**
 * Aborts a FUSE connection through fusectl: every pending and future
 * request fails and the reader gets ENODEV/ECONNABORTED. Used when a
 * connection must end while clients still hold files open. Resolves with
 * whether the abort was written: the files of a connection belong to its
 * user_id (fs/fuse/control.c fuse_ctl_add_dentry), so a user may abort its
 * own, but only root may mount fusectl where it is not mounted.
 */
export async function abortConnection(dev: string): Promise<boolean> {
  const minor = dev.split(':')[1];
  const dir = '/sys/fs/fuse/connections';
  if (!(await readFile('/proc/self/mountinfo', 'utf8')).includes(' fusectl ')) {
    if (!mountsAsRoot()) return false;
    await run('mount', ['-t', 'fusectl', 'fusectl', dir], ['ignore', 'ignore', 'pipe']);
  }
  try {
    await writeFile(`${dir}/${minor}/abort`, '1');
    return true;
  } catch {
    // Already gone, or not ours to abort.
    return false;
  }
}
