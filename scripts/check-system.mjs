#!/usr/bin/env node
/**
 * Checks what cdevemu needs from the machine before `npm start` and
 * `npm test`, and says how to get what is missing. Missing Debian packages
 * are installed with apt-get under `--install` (.ci/run) and, as root, for
 * `npm test`.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { mountProblems } from '../src/fuse/requirements.js';

const forTests = process.argv.includes('--tests') || process.env.npm_lifecycle_event === 'pretest';
const isRoot = process.getuid?.() === 0;

// command -> Debian package that provides it
const commands = { mount: 'mount', umount: 'mount', unshare: 'util-linux', findmnt: 'util-linux' };
const testCommands = {
  gcc: 'gcc',
  python3: 'python3',
  // device model tests (test/models) run the real tools against emulated nodes
  evtest: 'evtest',
  // test/models/evdev-evemu.test.ts: evemu's own tools describe and record evdev nodes (evemu-record under setarch -Z)
  'evemu-describe': 'evemu-tools',
  'evemu-record': 'evemu-tools',
  setarch: 'util-linux',
  hwclock: 'util-linux-extra',
  wdctl: 'util-linux',
  rngtest: 'rng-tools5',
  stdbuf: 'coreutils',
  // the control API is documented and tested with curl --unix-socket
  curl: 'curl',
  // cdevemu run --bind: a private mount namespace (unshare) and its mount table (findmnt)
  unshare: 'util-linux',
  findmnt: 'util-linux',
  // test/daemon/user-mount.test.ts: the daemon as an ordinary user (fusermount3), its processes entering the test's namespace as that user
  fusermount3: 'fuse3',
  nsenter: 'util-linux',
  setpriv: 'util-linux',
  // test/tcmu runs the real tcmu-runner against emulated TCMU devices (cdevemu run --preset tcmu)
  'tcmu-runner': 'tcmu-runner',
  // test/models/tty.test.ts and gpsd.test.ts: stty, and the real gpsd with its clients on an emulated GPS
  stty: 'coreutils',
  gpsd: 'gpsd',
  gpsdctl: 'gpsd',
  gpspipe: 'gpsd-clients',
  // test/models/i2c.test.ts: i2c-tools against an emulated adapter
  i2cdetect: 'i2c-tools',
  i2ctransfer: 'i2c-tools',
  // test/models/spidev.test.ts: spi-tools on an emulated SPI device
  'spi-config': 'spi-tools',
  'spi-pipe': 'spi-tools',
  // test/bench runs the bench, which builds its C peer with pkg-config's flags for libfuse3
  'pkg-config': 'pkg-config',
  // test/scenario/report.test.ts opens `cdevemu run --report`'s HTML in a real headless browser
  chromium: 'chromium',
};
// file -> Debian package: the headers `--preset tcmu` builds its netlink shim against (with gcc),
// and the kernel's FUSE header test/fuse/abi.test.ts checks the codecs against (test/clients/fuse_abi.c)
const testFiles = {
  '/usr/include/libnl3/netlink/genl/genl.h': 'libnl-genl-3-dev',
  '/usr/include/linux/fuse.h': 'linux-libc-dev',
  // the bench's C peer (bench/peer/devserver.c), built by test/bench
  '/usr/include/fuse3/fuse_lowlevel.h': 'libfuse3-dev',
};
// python module -> Debian package, for Debian's own python3: the tests run /usr/bin/python3, whatever python3 is first on PATH
// (pyserial for the tty tests, smbus2 for the i2c tests, python3-spidev for the spidev tests; a module's file name carries the interpreter's version)
const DEBIAN_PYTHON = '/usr/bin/python3';
const testPythonModules = { serial: 'python3-serial', smbus2: 'python3-smbus2', spidev: 'python3-spidev' };

/** The modules of `names` that Debian's python3 cannot import (all of them without that python3). */
function missingPythonModules(names) {
  if (!existsSync(DEBIAN_PYTHON)) return names;
  const script = 'import importlib.util, sys; print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))';
  return execFileSync(DEBIAN_PYTHON, ['-c', script, ...names], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
}

/**
 * Whether `cmd` is installed: an executable file of that name on PATH or in
 * the sbin directories. An ordinary user's PATH often lacks the sbin ones,
 * where Debian puts tools the tests run as root (hwclock is
 * /usr/sbin/hwclock), so PATH alone would call them missing.
 */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
const has = (cmd) =>
  [...(process.env.PATH ?? '').split(delimiter).filter(isAbsolute), ...SBIN].some((dir) => {
    try {
      const path = join(dir, cmd);
      accessSync(path, constants.X_OK);
      return statSync(path).isFile();
    } catch {
      return false;
    }
  });

const problems = [];
if (process.platform !== 'linux') problems.push('cdevemu runs on Linux only (it serves a FUSE mount).');
// The daemon says the same lines when it cannot start (src/fuse/mount.ts checkCanMount).
// For the tests, a user who cannot mount still runs what needs no mount: the suites left out are named below.
if (!forTests) problems.push(...mountProblems({ root: isRoot }));

// As root, `npm test` installs the client tools it drives (evtest,
// rngtest...) itself, so that `npm ci && npm test` works on a fresh Debian
// machine; an ordinary user is told what to install.
const install = process.argv.includes('--install') || (forTests && isRoot && has('apt-get'));

const wanted = { ...commands, ...(forTests ? testCommands : {}) };
const wantedFiles = forTests ? testFiles : {};
const wantedModules = forTests ? testPythonModules : {};
const missing = [
  ...new Set([
    ...Object.entries(wanted).filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg),
    ...Object.entries(wantedFiles).filter(([file]) => !existsSync(file)).map(([, pkg]) => pkg),
    ...missingPythonModules(Object.keys(wantedModules)).map((mod) => wantedModules[mod]),
  ]),
];
if (missing.length && install) {
  console.error(`check-system: installing ${missing.join(' ')} with apt-get`);
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch (err) {
    problems.push(`apt-get could not install ${missing.join(' ')}: ${err.message.split('\n')[0]}`);
  }
} else if (missing.length) {
  problems.push(`missing Debian packages: ${missing.join(' ')} (apt-get install ${missing.join(' ')}, or run: node scripts/check-system.mjs --install)`);
}

if (problems.length) {
  console.error('cdevemu cannot run here:\n' + problems.map((p) => `  - ${p}`).join('\n'));
  process.exit(1);
}

/**
 * Why programs cannot map device regions' very pages, or null when they
 * can: that needs FUSE passthrough (Linux 6.9+, CONFIG_FUSE_PASSTHROUGH)
 * and CAP_SYS_ADMIN for FUSE_DEV_IOC_BACKING_OPEN. Without it the daemon
 * maps them through the page cache where the kernel allows (6.6+), else
 * mmap fails ENODEV; it serves every device either way.
 */
function mappingsUnavailable() {
  const [major, minor] = release().split('.').map((n) => parseInt(n, 10));
  if (major < 6 || (major === 6 && minor < 9)) return `Linux ${release()} has no FUSE passthrough (6.9+)`;
  let config = null;
  for (const path of ['/proc/config.gz', `/boot/config-${release()}`]) {
    try {
      const raw = readFileSync(path);
      config = (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString();
      break;
    } catch {
      // not exposed here; try the next place
    }
  }
  if (config !== null && !/^CONFIG_FUSE_PASSTHROUGH=y/m.test(config)) return `this kernel is built without CONFIG_FUSE_PASSTHROUGH`;
  if (!isRoot) return 'registering backing files needs CAP_SYS_ADMIN';
  return null;
}
const noMaps = mappingsUnavailable();
// Without passthrough, regions are mapped through the page cache (FUSE_DIRECT_IO_ALLOW_MMAP, Linux 6.6+).
const [kmajor, kminor] = release().split('.').map((n) => parseInt(n, 10));
const pageCache = kmajor > 6 || (kmajor === 6 && kminor >= 6);
console.error(
  !noMaps
    ? `check-system: mmap of device regions available (FUSE passthrough, Linux ${release()})`
    : pageCache
      ? `check-system: mmap of device regions through the page cache (${noMaps}): kept in step at each read and write of the device, not store by store (docs/models.md#shared-memory-mmap)`
      : `check-system: mmap of device regions unavailable (${noMaps}, and Linux ${release()} has no FUSE_DIRECT_IO_ALLOW_MMAP, 6.6+); devices still serve read/write/poll/ioctl, mmap fails ENODEV`,
);

if (forTests) {
  const { skippedSuites } = await import('../test/suites.mjs');
  const skipped = skippedSuites();
  if (skipped.length) {
    const width = Math.max(...skipped.map((s) => s.suite.length));
    console.error(
      `check-system: as uid ${process.getuid?.()}, ${skipped.length} suite(s) cannot run here and are left out:\n` +
        skipped.map((s) => `      ${s.suite.padEnd(width)}  ${s.what}: ${s.why}`).join('\n') +
        '\n    npm test as root runs them all',
    );
  }
  let version = '';
  try {
    version = ' ' + execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'tcmu-runner'], { encoding: 'utf8' });
  } catch {
    // not from a Debian package: the tests still use whatever tcmu-runner is on the PATH
  }
  console.error(`check-system: tcmu-runner${version}, libnl-genl-3-dev and gcc present (the tcmu-runner tests and --preset tcmu's netlink shim)`);
}
