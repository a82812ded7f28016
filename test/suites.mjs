/**
 * Which test files need what from the machine, and why. vitest.config.ts
 * builds its `unit` and `integration` projects from this and leaves out
 * the suites this machine and user cannot run; scripts/check-system.mjs
 * names those when `npm test` starts. test/suites.test.ts checks that every
 * test file is listed.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLOW_OTHER_REFUSED, mountProblems, userAllowOther, userNamespaceProblem } from '../src/fuse/requirements.js';

/** Need neither root nor /dev/fuse: `npm run test:unit` runs them as any user. */
export const unitTests = [
  'test/fuse/abi.test.ts',
  'test/fuse/wire.test.ts',
  'test/fuse/session.test.ts',
  'test/fuse/mountpoint-lock.test.ts',
  'test/fuse/requirements.test.ts',
  'test/core/**/*.test.ts',
  'test/config/**/*.test.ts',
  'test/scenario/schema.test.ts',
  'test/scenario/compare.test.ts',
  'test/scenario/html-report.test.ts',
  'test/scenario/flags.test.ts',
  'test/scenario/stopped.test.ts',
  'test/scenario/failure-report.test.ts',
  'test/scenario/ledger.test.ts',
  'test/control/**/*.test.ts',
  'test/docs/**/*.test.ts',
  'test/netlink/**/*.test.ts',
  'test/tcmu-unit/**/*.test.ts',
  'test/sys/**/*.test.ts',
  'test/memory/**/*.test.ts',
  'test/mmap/page-mirror.test.ts',
  'test/cli/**/*.test.ts',
  'test/suites.test.ts',
  'test/errno.test.ts',
  'test/bench/chart.test.ts',
  'test/models-unit/device-trace.test.ts',
  'test/models-unit/rtc-timer.test.ts',
];

/**
 * What an integration suite may need, beyond the tools check-system
 * installs. `mount` is a mount of its own, made as root with `mount -i` or
 * by any other user through fusermount3.
 * @typedef {'mount' | 'root' | 'userns' | 'allowOther'} Need
 */

/**
 * Every other test file mounts a FUSE file system and drives it with real
 * client processes: a file or folder, what it tests, and what it needs.
 * The entry for a file wins over its folder's. A suite is `root` only
 * where the kernel or the test's setup leaves no other way (FUSE
 * passthrough needs CAP_SYS_ADMIN in the initial user namespace; other
 * uids, private /dev nodes and mounts outside a user namespace need root).
 * @type {Record<string, { what: string, needs: Need[] }>}
 */
export const integrationSuites = {
  'test/fuse/transport.test.ts': { what: 'a real mount driven by dd, python3 and C clients', needs: ['mount'] },
  'test/fuse/channel.test.ts': { what: "the /dev/fuse channel's wait for requests on a real mount", needs: ['mount'] },
  'test/lifecycle': { what: 'hot-unplug under real clients on a real mount', needs: ['mount'] },
  'test/models': { what: 'each model on a real mount, driven by evtest, wdctl, rngtest, stty, pyserial, i2c-tools, smbus2, python3-spidev, spi-tools', needs: ['mount'] },
  'test/models/echo.test.ts': { what: 'the echo model\'s pipe wake-ups (fs/pipe.c): blocked writers and readers, POLLOUT pollers, edge-triggered epoll', needs: ['mount'] },
  'test/models/rtc.test.ts': { what: "the rtc model: interrupts, alarms, unplug; hwclock --set and RTC_SET_TIME as root only (the caller's CAP_SYS_TIME, drivers/rtc/dev.c)", needs: ['mount'] },
  'test/models/tcmu.test.ts': { what: 'the tcmu model served to a C consumer that maps its ring (as root through FUSE passthrough, else through the page cache)', needs: ['mount'] },
  'test/models/gpsd.test.ts': { what: 'the real gpsd through `cdevemu run`, and on a daemon whose node it reopens (as root with allow_other: gpsd drops root to its own user)', needs: ['mount', 'userns'] },
  'test/models/i2c.test.ts': { what: 'i2c-tools and smbus2 on the i2c model, `i2cdetect -l` through `cdevemu run --bind`', needs: ['mount', 'userns'] },
  'test/models/record-cli.test.ts': { what: '`cdevemu record` of the real gpsd on a pty and of rngtest on the real /dev/hwrng (root only), replayed through `cdevemu run --bind`', needs: ['root'] },
  'test/models/spidev.test.ts': { what: 'python3-spidev and spi-tools on the spidev model, through `cdevemu run --bind`', needs: ['mount', 'userns'] },
  'test/faults': { what: 'fault rules applied to real clients on a real mount', needs: ['mount'] },
  'test/daemon': { what: 'a real `cdevemu daemon` driven through the CLI, curl and the socket', needs: ['mount'] },
  'test/scenario/report.test.ts': { what: '`cdevemu run --report` on a private emulator, the page opened in headless chromium', needs: ['mount'] },
  'test/scenario/program-ends.test.ts': { what: '`cdevemu run` fails a program that never started or crashed, on a private emulator', needs: ['mount'] },
  'test/scenario/run.test.ts': { what: '`cdevemu run` (a private emulator; --bind also needs unshare --mount)', needs: ['mount', 'userns'] },
  'test/scenario/oneliner.test.ts': { what: '`cdevemu run` with the scenario given by flags, its consumer under --bind (a user: in a user namespace)', needs: ['mount', 'userns'] },
  'test/scenario/process-crashes.test.ts': { what: "the name a crashed process is reported under, on the kernel's process events (CAP_NET_ADMIN)", needs: ['root'] },
  'test/scenario/run-user.test.ts': { what: "`cdevemu run` as an ordinary user, started from root through setpriv, with /dev/fuse given in a mount namespace of the test's", needs: ['root'] },
  'test/api.test.ts': { what: 'startEmulator() mounts', needs: ['mount'] },
  'test/mmap/uio-mmap.test.ts': { what: 'mmap of device regions through FUSE passthrough (FUSE_DEV_IOC_BACKING_OPEN needs CAP_SYS_ADMIN in the initial user namespace)', needs: ['root'] },
  'test/mmap/page-cache.test.ts': { what: 'mmap of device regions through the page cache, as without CAP_SYS_ADMIN', needs: ['mount'] },
  'test/mmap/mapping-count.test.ts': { what: 'the count of mappings of device regions among 1,500 processes', needs: ['mount'] },
  'test/mmap/unprivileged.test.ts': { what: 'mmap of uio0 by python3 with the daemon in a user namespace (as root: run as uid 65534)', needs: ['mount', 'userns'] },
  'test/tcmu': { what: 'the emulated TCM-USER family and the real tcmu-runner through `cdevemu run --preset tcmu` (a user: in user, mount and network namespaces of its own)', needs: ['mount', 'userns'] },
  'test/tcmu/tcmu-runner.test.ts': { what: "the real tcmu-runner on the test's own emulator: it joins the family's multicast group, which needs CAP_NET_ADMIN in the emulator's network namespace (the host's)", needs: ['root'] },
  'test/bench/cleanup.test.ts': { what: 'the bench end to end: a C libfuse3 server and the daemon mount, and every way a run ends unmounts them; its chart opened in headless chromium', needs: ['mount'] },
};

const repo = join(fileURLToPath(import.meta.url), '..', '..');

/** Every test file, relative to the repository. */
export function testFiles(dir = join(repo, 'test')) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [relative(repo, join(dir, e.name))] : [],
  );
}

/** @param {string} file */
export const isUnit = (file) =>
  unitTests.some((g) => (g.endsWith('/**/*.test.ts') ? file.startsWith(g.slice(0, -'**/*.test.ts'.length)) : file === g));

/**
 * The integration entry that covers `file` (its own, else its folder's), or null.
 * @param {string} file
 */
export function suiteOf(file) {
  const keys = Object.keys(integrationSuites).filter((s) => file === s || file.startsWith(s + '/'));
  return keys.sort((a, b) => b.length - a.length)[0] ?? null;
}

/** Whether this process is root of the initial user namespace (uid_map maps every uid to itself). */
function initialRoot() {
  if (process.getuid?.() !== 0) return false;
  try {
    return /^\s*0\s+0\s+4294967295\s*$/m.test(readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return true;
  }
}

/**
 * Why this machine and user lack each need, in one line with the fix;
 * absent when it is met.
 * @returns {Partial<Record<Need, string>>}
 */
export function unmetNeeds() {
  const root = initialRoot();
  /** @type {Partial<Record<Need, string>>} */
  const unmet = {};
  const [mount] = mountProblems({ root: process.getuid?.() === 0 });
  if (mount) unmet.mount = mount;
  if (!root) unmet.root = 'needs root';
  if (!root) {
    const userns = userNamespaceProblem();
    if (userns) unmet.userns = userns;
  }
  if (!root && !userAllowOther()) unmet.allowOther = ALLOW_OTHER_REFUSED;
  return unmet;
}

/**
 * The suites this machine and user cannot run, each with the first need
 * it lacks and why.
 * @param {Partial<Record<Need, string>>} [unmet]
 * @returns {Array<{ suite: string, what: string, need: Need, why: string }>}
 */
export function skippedSuites(unmet = unmetNeeds()) {
  return Object.entries(integrationSuites).flatMap(([suite, { what, needs }]) => {
    const need = needs.find((n) => unmet[n] !== undefined);
    return need === undefined ? [] : [{ suite, what, need, why: /** @type {string} */ (unmet[need]) }];
  });
}

/**
 * The test files the integration project leaves out here: those whose
 * entry is skipped.
 * @param {ReturnType<typeof skippedSuites>} [skipped]
 */
export function skippedFiles(skipped = skippedSuites()) {
  const names = new Set(skipped.map((s) => s.suite));
  return testFiles().filter((f) => !isUnit(f) && names.has(/** @type {string} */ (suiteOf(f))));
}
