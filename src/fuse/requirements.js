/**
 * What cdevemu needs from the machine to mount, and the one line that says
 * what is missing and how to get it. `npm start` (scripts/check-system.mjs)
 * and the daemon (src/fuse/mount.ts checkCanMount) give the same line for
 * the same cause. Plain JavaScript, typed by JSDoc, so that the check can
 * import it before anything is built.
 */

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

/**
 * mount(8) refuses `-t` to anyone but root (util-linux restricts a
 * non-root caller to fstab's user mounts), whatever capabilities they hold.
 */
export const NOT_ROOT = 'mounting needs root (cdevemu mounts with `mount -i`): run as root, e.g. with sudo';
