/**
 * Which test files need root and FUSE, and why. vitest.config.ts builds its
 * `unit` and `integration` projects from this, and scripts/check-system.mjs
 * prints the reasons when `npm test` runs as a user who cannot mount.
 * test/suites.test.ts checks that every test file is listed.
 */

/** Need neither root nor /dev/fuse: `npm run test:unit` runs them as any user. */
export const unitTests = [
  'test/fuse/abi.test.ts',
  'test/fuse/wire.test.ts',
  'test/fuse/session.test.ts',
  'test/fuse/mountpoint-lock.test.ts',
  'test/core/**/*.test.ts',
  'test/config/**/*.test.ts',
  'test/scenario/schema.test.ts',
  'test/control/**/*.test.ts',
  'test/docs/**/*.test.ts',
  'test/netlink/**/*.test.ts',
  'test/sys/**/*.test.ts',
  'test/memory/**/*.test.ts',
  'test/cli/**/*.test.ts',
  'test/suites.test.ts',
];

/**
 * Every other test file mounts a FUSE file system (`mount -i -t fuse`,
 * which needs CAP_SYS_ADMIN) and drives it with real client processes.
 */
export const rootSuites = {
  'test/fuse/transport.test.ts': 'a real mount driven by dd, python3 and C clients',
  'test/fuse/channel.test.ts': "the /dev/fuse channel's wait for requests on a real mount",
  'test/lifecycle': 'hot-unplug under real clients on a real mount',
  'test/models': 'each model on a real mount, driven by evtest, hwclock, wdctl, rngtest, stty, pyserial, gpsd',
  'test/faults': 'fault rules applied to real clients on a real mount',
  'test/daemon': 'a real `cdevemu daemon` driven through the CLI, curl and the socket',
  'test/scenario/run.test.ts': '`cdevemu run` (a private emulator; --bind also needs unshare --mount)',
  'test/scenario/run-user.test.ts': '`cdevemu run` as an ordinary user, started from root through setpriv, with /dev/fuse given in a mount namespace of the test\'s',
  'test/api.test.ts': 'startEmulator() mounts',
  'test/mmap': 'mmap of device regions through FUSE passthrough (FUSE_DEV_IOC_BACKING_OPEN needs CAP_SYS_ADMIN)',
  'test/tcmu': 'the real tcmu-runner in a private mount namespace (unshare --mount), on a real mount',
};
