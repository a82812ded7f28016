/**
 * Which user namespace this process is in, as /proc/self/uid_map and
 * gid_map show it (user_namespaces(7)): each line maps a range of ids
 * inside to ids of the parent namespace. The initial namespace maps every
 * id to itself (`0 0 4294967295`); `unshare --map-root-user` maps uid 0
 * alone, to the user who made the namespace (`0 1000 1`).
 */
import { readFileSync } from 'node:fs';

/** The ids outside that uid and gid 0 of this namespace stand for. */
export interface OutsideIds {
  uid: number;
  gid: number;
}

/** The id that `inside` maps to in the parent namespace, from one map's text; null if unmapped. */
export function mapToParent(map: string, inside: number): number | null {
  for (const line of map.split('\n')) {
    const [first, lower, count] = line.trim().split(/\s+/).map(Number);
    if (first === undefined || lower === undefined || count === undefined || Number.isNaN(count)) continue;
    if (inside >= first && inside < first + count) return lower + (inside - first);
  }
  return null;
}

/** Whether a map is the initial namespace's identity map. */
export function isIdentityMap(map: string): boolean {
  return map.trim().split(/\s+/).join(' ') === '0 0 4294967295';
}

/**
 * The ids that uid and gid 0 of this process's user namespace stand for
 * outside it, when it is not the initial namespace and 0 is mapped; null
 * otherwise (the initial namespace, or a namespace where 0 is no one).
 */
export function outsideRootIds(): OutsideIds | null {
  let uidMap: string;
  let gidMap: string;
  try {
    uidMap = readFileSync('/proc/self/uid_map', 'utf8');
    gidMap = readFileSync('/proc/self/gid_map', 'utf8');
  } catch {
    return null; // no user namespaces in this kernel: the initial one
  }
  if (isIdentityMap(uidMap)) return null;
  const uid = mapToParent(uidMap, 0);
  const gid = mapToParent(gidMap, 0);
  return uid === null || gid === null ? null : { uid, gid };
}

/** Whether this process is in a user namespace other than the initial one. */
export function inUserNamespace(): boolean {
  try {
    return !isIdentityMap(readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return false;
  }
}
