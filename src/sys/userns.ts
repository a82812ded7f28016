/**
 * Whether this process is in a user namespace other than the initial one,
 * as /proc/self/uid_map shows it (user_namespaces(7)): each line maps a
 * range of ids inside to ids of the parent namespace, and the initial
 * namespace maps every id to itself (`0 0 4294967295`); `unshare
 * --map-root-user` maps uid 0 alone, to the user who made the namespace
 * (`0 1000 1`). Which id outside an id stands for: src/fuse/mountpoint-lock.ts
 * hostUid.
 */
import { readFileSync } from 'node:fs';

/** Whether a map is the initial namespace's identity map. */
export function isIdentityMap(map: string): boolean {
  return map.trim().split(/\s+/).join(' ') === '0 0 4294967295';
}

/** Whether this process is in a user namespace other than the initial one. */
export function inUserNamespace(): boolean {
  try {
    return !isIdentityMap(readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return false; // no user namespaces in this kernel: the initial one
  }
}
