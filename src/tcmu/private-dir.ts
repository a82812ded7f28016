/**
 * Whether a directory is the running user's alone: what is in it can be
 * created, replaced or renamed by that user (or root) and nobody else, so
 * a library built there is the one loaded later. Every component of the
 * path from / is checked with lstat (a symbolic link anywhere could be
 * re-pointed by whoever owns the directory holding it):
 *
 * - no component is a symbolic link, each is a directory;
 * - each is owned by root or the running user;
 * - no ancestor is writable by group or others unless it is sticky (as
 *   /tmp: others may add entries but not rename or delete ours,
 *   fs/namei.c may_delete() -> check_sticky());
 * - the directory itself is owned by the running user, mode 0700 or less.
 *
 * Inside a user namespace an ordinary user made (`cdevemu run` as that
 * user), every owner but that user shows as the overflow uid, root and
 * the other users alike (user_namespaces(7)): there the check cannot be
 * made. The run's directory is then checked before the namespace is
 * entered, with the real ids, and that verdict stands for it and every
 * directory above it (`CheckedOutside`).
 */
import { lstatSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The directory could be changed by another user; the message says which component and why. */
export class UnsafeDirError extends Error {}

const S_ISVTX = 0o1000;

function componentProblem(path: string, st: Stats, uid: number, last: boolean): string | null {
  if (st.isSymbolicLink()) return `${path} is a symbolic link`;
  if (!st.isDirectory()) return `${path} is not a directory`;
  if (last) {
    if (st.uid !== uid) return `${path} is owned by uid ${st.uid}, not by uid ${uid} who runs cdevemu`;
    if ((st.mode & 0o077) !== 0) return `${path} has mode ${(st.mode & 0o7777).toString(8)}: others may use it (0700 expected)`;
    return null;
  }
  if (st.uid !== 0 && st.uid !== uid) return `${path} is owned by uid ${st.uid}, neither root nor uid ${uid} who runs cdevemu`;
  if ((st.mode & 0o022) !== 0 && (st.mode & S_ISVTX) === 0)
    return `${path} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}) and not sticky`;
  return null;
}

/** A directory checked outside the user namespace, and what was found: null when it passed. */
export interface CheckedOutside {
  dir: string;
  problem: string | null;
}

/**
 * Throws UnsafeDirError unless `dir` and every directory above it pass the
 * checks above. Given `outside`, a directory at or above `dir`, its verdict
 * is taken for it and what is above; the rest is checked here.
 */
export function assertPrivateDir(dir: string, outside?: CheckedOutside): void {
  const uid = process.geteuid?.() ?? 0;
  const chain: string[] = [];
  const checkedAt = outside ? resolve(outside.dir) : null;
  for (let p = resolve(dir); ; p = dirname(p)) {
    if (p === checkedAt) {
      if (outside?.problem) throw new UnsafeDirError(outside.problem);
      break;
    }
    chain.unshift(p);
    if (p === dirname(p)) break;
  }
  const last = chain.length - 1;
  chain.forEach((path, i) => {
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (err) {
      throw new UnsafeDirError(`${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const problem = componentProblem(path, st, uid, i === last);
    if (problem) throw new UnsafeDirError(problem);
  });
}
