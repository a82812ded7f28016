#!/usr/bin/env node
/**
 * Checks what cdevemu needs from the machine before `npm start` and
 * `npm test`, and says how to get what is missing. Missing Debian packages
 * are installed with apt-get under `--install` (.ci/run) and, as root, for
 * `npm test`.
 */
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FUSE_DEVICE, NOT_ROOT, fuseDeviceProblem } from '../src/fuse/requirements.js';

const forTests = process.argv.includes('--tests') || process.env.npm_lifecycle_event === 'pretest';
const isRoot = process.getuid?.() === 0;

// command -> Debian package that provides it
const commands = { mount: 'mount', umount: 'mount', unshare: 'util-linux', findmnt: 'util-linux' };
const testCommands = {
  gcc: 'gcc',
  python3: 'python3',
  // device model tests (test/models) run the real tools against emulated nodes
  evtest: 'evtest',
  hwclock: 'util-linux-extra',
  wdctl: 'util-linux',
  rngtest: 'rng-tools5',
  stdbuf: 'coreutils',
  // the control API is documented and tested with curl --unix-socket
  curl: 'curl',
  // cdevemu run --bind: a private mount namespace (unshare) and its mount table (findmnt)
  unshare: 'util-linux',
  findmnt: 'util-linux',
  // test/tcmu runs the real tcmu-runner against emulated TCMU devices (cdevemu run --preset tcmu)
  'tcmu-runner': 'tcmu-runner',
  // test/models/tty.test.ts and gpsd.test.ts: stty, and the real gpsd with its clients on an emulated GPS
  stty: 'coreutils',
  gpsd: 'gpsd',
  gpsdctl: 'gpsd',
  gpspipe: 'gpsd-clients',
};
// file -> Debian package: the headers `--preset tcmu` builds its netlink shim against (with gcc),
// the kernel's FUSE header test/fuse/abi.test.ts checks the codecs against (test/clients/fuse_abi.c), and python modules
const testFiles = {
  '/usr/include/libnl3/netlink/genl/genl.h': 'libnl-genl-3-dev',
  '/usr/include/linux/fuse.h': 'linux-libc-dev',
  // pyserial for Debian's own python3 (the tty tests run /usr/bin/python3, whatever python3 is first on PATH)
  '/usr/lib/python3/dist-packages/serial/serialposix.py': 'python3-serial',
};

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
let fuseCode = null;
try {
  closeSync(openSync(FUSE_DEVICE, 'r+'));
} catch (err) {
  fuseCode = err.code ?? String(err);
}
const fuseProblem = fuseDeviceProblem(fuseCode, isRoot);
if (fuseProblem) problems.push(fuseProblem);
if (!isRoot && forTests) {
  const { rootSuites } = await import('../test/suites.mjs');
  const width = Math.max(...Object.keys(rootSuites).map((s) => s.length));
  problems.push(
    'these suites mount FUSE with `mount -i`, which needs root (CAP_SYS_ADMIN); run `npm test` as root:\n' +
      Object.entries(rootSuites).map(([suite, why]) => `      ${suite.padEnd(width)}  ${why}`).join('\n') +
      '\n    The tests that need neither root nor FUSE run as any user: npm run test:unit',
  );
} else if (!isRoot) {
  problems.push(NOT_ROOT);
}

// The tests run as root anyway (they mount); there `npm test` installs the
// client tools it drives (evtest, rngtest...) itself, so that `npm ci &&
// npm test` works on a fresh Debian machine.
const install = process.argv.includes('--install') || (forTests && isRoot && has('apt-get'));

const wanted = { ...commands, ...(forTests ? testCommands : {}) };
const wantedFiles = forTests ? testFiles : {};
const missing = [
  ...new Set([
    ...Object.entries(wanted).filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg),
    ...Object.entries(wantedFiles).filter(([file]) => !existsSync(file)).map(([, pkg]) => pkg),
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
  let version = '';
  try {
    version = ' ' + execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'tcmu-runner'], { encoding: 'utf8' });
  } catch {
    // not from a Debian package: the tests still use whatever tcmu-runner is on the PATH
  }
  console.error(`check-system: tcmu-runner${version}, libnl-genl-3-dev and gcc present (the tcmu-runner tests and --preset tcmu's netlink shim)`);
}
