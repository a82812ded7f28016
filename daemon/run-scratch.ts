/**
 * The scratch directory of a `cdevemu run` on its own emulator,
 * TMPDIR/cdevemu-run-XXXXXX, and what a run killed outright left there.
 *
 * A run mounts its emulator at SCRATCH/mnt and takes it down as it ends,
 * on SIGINT, SIGTERM and SIGHUP too. Killed with SIGKILL (a CI job's timeout, the
 * OOM killer), it cannot: the kernel ends the FUSE connection with the
 * process, but the mount stays in the table, dead (every call on it fails
 * ENOTCONN), until someone unmounts it, and each run mounts at a new
 * directory, so nothing ever would. So each run first clears the dead
 * mounts of earlier runs: one whose mountpoint lock (src/fuse/mountpoint-
 * lock.ts, held by a live emulator until it stops, dropped by the kernel
 * when it dies) can be taken has no emulator behind it, and is unmounted
 * with its scratch directory removed, and so is the lock file the killed
 * run left. A live run's lock is held, and its mount is left alone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { cdevemuMountpoints, findMount, MountpointError, prepareMountpoint } from '../src/fuse/mount.js';
import { MountpointLock } from '../src/fuse/mountpoint-lock.js';

const PREFIX = 'cdevemu-run-';

/** A new scratch directory for a run. */
export function makeRunScratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), PREFIX));
}

/**
 * Unmounts the dead mounts earlier runs left under TMPDIR, and removes
 * their scratch directories and lock files. A mount that cannot be
 * cleared now (its unmount refused) is left for the next run.
 */
export async function clearDeadRuns(): Promise<void> {
  const root = realpathSync(tmpdir());
  const ofRun = (mountpoint: string): boolean => {
    const scratch = dirname(mountpoint);
    return dirname(scratch) === root && basename(scratch).startsWith(PREFIX) && basename(mountpoint) === 'mnt';
  };
  for (const mountpoint of await cdevemuMountpoints()) {
    if (!ofRun(mountpoint)) continue;
    const scratch = dirname(mountpoint);
    let lock: MountpointLock;
    try {
      lock = await MountpointLock.take(mountpoint);
    } catch (err) {
      if (err instanceof MountpointError) continue; // a live run's
      throw err;
    }
    try {
      // With the lock ours, no emulator serves it: prepareMountpoint() unmounts what it finds dead there.
      await prepareMountpoint(mountpoint);
      if (await findMount(mountpoint)) continue;
      await rm(scratch, { recursive: true, force: true });
    } catch {
      // left for the next run
    } finally {
      lock.release();
    }
  }
  // The locks of runs whose mounts are gone otherwise (unmounted by hand).
  MountpointLock.clearStale(ofRun);
}
