/**
 * What cdevemu needs from the machine to mount, and the one line that says
 * what is missing and how to get it. `npm start` (scripts/check-system.mjs)
 * and the daemon (src/fuse/mount.ts checkCanMount) give the same line for
 * the same cause. Plain JavaScript, typed by JSDoc, so that the check can
 * import it before anything is built.
 */

import { closeSync, openSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/** The FUSE device every mount is served through. */
export const FUSE_DEVICE = '/dev/fuse';

/**
 * Why `/dev/fuse` cannot be opened read-write, from open(2)'s errno code,
 * with the fix; null when it opened.
 * @param {string | null} code ENOENT, ENXIO, ENODEV (no device), EACCES, EPERM (no access)...
 * @param {boolean} root whether the process runs as root
 * @returns {string | null}
 */
export function fuseDeviceProblem(code, root) {
  if (code === null) return null;
  if (code === 'ENOENT' || code === 'ENXIO' || code === 'ENODEV') {
    return `${FUSE_DEVICE} is missing: load the fuse module (modprobe fuse) or, in a container, pass --device ${FUSE_DEVICE}`;
  }
  if ((code === 'EACCES' || code === 'EPERM') && !root) return `${FUSE_DEVICE} is not readable and writable by this user: run as root`;
  // Root refused: a device cgroup (a container without --device), or a read-only /dev.
  return `cannot open ${FUSE_DEVICE} (${code}): in a container, pass --device ${FUSE_DEVICE}`;
}

/** The errno code of opening /dev/fuse read-write now, or null when it opens. */
export function fuseDeviceOpenError() {
  try {
    // fuse_dev_open() sets nothing up (the connection comes with mount(2)): opening costs nothing.
    closeSync(openSync(FUSE_DEVICE, 'r+'));
    return null;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code ?? String(err);
  }
}

/**
 * mount(8) refuses `-t` to anyone but root (util-linux restricts a
 * non-root caller to fstab's user mounts), whatever capabilities they hold.
 */
export const NOT_ROOT = 'mounting needs root (cdevemu mounts with `mount -i`): run as root, e.g. with sudo';

/**
 * The sysctls that close user namespaces to users who are not root, the
 * value that closes them, and the fix. Debian's own switch
 * (kernel.unprivileged_userns_clone, a Debian kernel patch), the
 * namespace count limit (kernel/ucount.c), and Ubuntu's AppArmor
 * restriction (the namespace is made, but without capabilities in it).
 */
const USERNS_SYSCTLS = [
  { name: 'kernel.unprivileged_userns_clone', closed: '0', fix: 'sysctl -w kernel.unprivileged_userns_clone=1' },
  { name: 'user.max_user_namespaces', closed: '0', fix: 'sysctl -w user.max_user_namespaces=15000' },
  { name: 'kernel.apparmor_restrict_unprivileged_userns', closed: '1', fix: 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0' },
];

/**
 * @param {string} name a sysctl name (dots)
 * @returns {string | null} its value, or null where this kernel has none
 */
function readSysctl(name) {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * Why this user cannot make a user and mount namespace of its own (what
 * `unshare -Urm` and an ordinary user's `cdevemu run` need), with the
 * fix; null when it can. The sysctls name the usual causes; failing
 * those, the probe (`unshare -Urm true`) says whether it works.
 * @param {(name: string) => string | null} [read] reads a sysctl
 * @param {() => string | null} [probe] the probe's failure, or null
 * @returns {string | null}
 */
export function userNamespaceProblem(read = readSysctl, probe = probeUserNamespace) {
  for (const s of USERNS_SYSCTLS) {
    if (read(s.name) === s.closed) return `user namespaces are closed to this user (${s.name}=${s.closed}): as root, ${s.fix}`;
  }
  const failed = probe();
  return failed === null ? null : `cannot make a user namespace (unshare -Urm: ${failed}): check the sysctls user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns`;
}

/** Runs `unshare -Urm true`: null when it works, else its first line of complaint. */
function probeUserNamespace() {
  const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'true'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0) return null;
  return (r.stderr || '').trim().split('\n')[0] || (r.error ? r.error.message : `exit ${r.status}`);
}
