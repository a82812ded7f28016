/**
 * `cdevemu run` with the scenario given by flags (a one-liner, as
 * umockdev-run is): the one-liner form of examples/scenarios/uio-unplug.yaml
 * gives the file's verdict, exit code and JUnit report for the well-behaved
 * consumer and for its leaky twin, on a real mount with the real consumer
 * (python3), `--bind` included; a bad one-liner is refused before anything
 * is mounted; and what a run killed outright leaves, the next one clears.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UIO_UNPLUG_FLAGS, UIO_UNPLUG_LEAKY_FLAGS, uioUnplugLeakyText } from '../fixtures/uio-unplug-flags.js';
import { runsAsRoot } from '../helpers/as-user.js';
import { cdevemu, cliPath, repoRoot } from '../helpers/cli.js';
import { Interactive, run } from '../helpers/proc.js';
import { testRoot } from '../helpers/mount.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(testRoot(), 'oneliner-'));
  // `cdevemu run` mounts under tmpdir(): here, so that the checks below see this file's mounts only.
  process.env.TMPDIR = dir;
});

function runMounts(): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes('fuse.cdevemu') && l.includes(`${dir}/cdevemu-run-`));
}

/** Root's mountpoint lock files (src/fuse/mountpoint-lock.ts) that name a mountpoint under `scratch`. */
function lockFilesOf(scratch: string): string[] {
  const names = (path: string): boolean => {
    try {
      return readFileSync(path, 'utf8').includes(`${scratch}/`);
    } catch {
      return false; // released meanwhile, by another file's run
    }
  };
  return readdirSync('/run/cdevemu').filter((f) => f.endsWith('.lock') && names(join('/run/cdevemu', f)));
}

const FILE = join(repoRoot, 'examples/scenarios/uio-unplug.yaml');
const CONSUMER = 'examples/uio_consumer.py';

/** A JUnit report's testcases as `NAME: passed|failed|skipped`, and the suite's counts. */
function junitCases(path: string): { cases: string[]; suite: string } {
  const xml = readFileSync(path, 'utf8');
  const cases = [...xml.matchAll(/<testcase [^>]*name="([^"]*)"[^>]*?(\/>|>(<skipped\/>|<failure))/g)].map(
    (m) => `${m[1]}: ${m[2] === '/>' ? 'passed' : m[3] === '<skipped/>' ? 'skipped' : 'failed'}`,
  );
  const suite = /<testsuite [^>]*(tests="\d+" failures="\d+" skipped="\d+")/.exec(xml)?.[1] ?? '';
  return { cases, suite };
}

/** The file's run and the one-liner's, each with its JUnit report. */
async function both(fileArgs: string[], flagArgs: string[], name: string, scenario = { file: FILE, flags: UIO_UNPLUG_FLAGS }) {
  const fileXml = join(dir, `${name}-file.xml`);
  const flagsXml = join(dir, `${name}-flags.xml`);
  const file = await cdevemu(['run', '--junit', fileXml, scenario.file, ...fileArgs], { timeoutMs: 60_000 });
  const flags = await cdevemu(['run', '--junit', flagsXml, ...scenario.flags, ...flagArgs], { timeoutMs: 60_000 });
  return { file, flags, fileJunit: junitCases(fileXml), flagsJunit: junitCases(flagsXml) };
}

describe('the one-liner form of examples/scenarios/uio-unplug.yaml', () => {
  it('passes with the well-behaved consumer, as the file does, and reports the same JUnit testcases', async () => {
    // The one-liner's consumer finds the device where it hard-codes it: --bind, as with a file.
    const r = await both([], ['--bind', '/dev/uio0=dev/uio0', '--', 'python3', CONSUMER, '/dev/uio0'], 'good');
    expect(r.file.code, r.file.stdout + r.file.stderr).toBe(0);
    expect(r.flags.code, r.flags.stdout + r.flags.stderr).toBe(0);
    expect(r.flags.stdout).toMatch(/with 1 bind\(s\)/);
    expect(r.flags.stdout).toMatch(/device gone: poll revents 0x1[89]; closing fd/);
    expect(r.flags.stdout).toMatch(/^PASS python3 examples\/uio_consumer.py \/dev\/uio0: 10 step\(s\)/m);
    expect(r.flagsJunit.suite).toBe('tests="10" failures="0" skipped="0"');
    expect(r.flagsJunit.cases).toEqual(r.fileJunit.cases);
    expect(r.flagsJunit.cases.every((c) => c.endsWith(': passed'))).toBe(true);
    expect(runMounts()).toEqual([]);
  });

  it('fails with the leaky consumer where the file does, naming the flag, with the same JUnit failure', async () => {
    const leaky = ['--', 'python3', CONSUMER, '--leaky', '{mount}/dev/uio0'];
    // With 2 s to release uio0, not the example's 10 s: the leaky consumer waits the bound out.
    const file = join(dir, 'uio-unplug.yaml');
    await writeFile(file, uioUnplugLeakyText());
    const r = await both(leaky, leaky, 'leaky', { file, flags: UIO_UNPLUG_LEAKY_FLAGS });
    expect(r.file.code, r.file.stdout + r.file.stderr).toBe(1);
    expect(r.flags.code, r.flags.stdout + r.flags.stderr).toBe(1);
    expect(r.flags.stdout).toMatch(
      /FAIL {2}expect uio0 released within 2000ms\n {11}uio0 was not released within 2000 ms:\n {13}pid \d+ \(python3\) holds fd \d+/,
    );
    expect(r.flags.stdout).toMatch(
      /^FAIL python3 examples\/uio_consumer.py --leaky \{mount\}\/dev\/uio0: expect uio0 released within 2000ms \(--expect released:uio0:2s\)$/m,
    );
    expect(r.flagsJunit.suite).toBe('tests="10" failures="1" skipped="3"');
    expect(r.flagsJunit.cases).toEqual(r.fileJunit.cases);
    expect(r.flagsJunit.cases[6]).toBe('07 expect uio0 released within 2000ms: failed');
    expect(runMounts()).toEqual([]);
  });
});

describe('a program that opens no device of the run', () => {
  const NOTE =
    /^\[ *[\d.]+s\] note: no device of the run was ever opened; if the program was meant to use one, check the path it was given/m;

  it('is told of, by a note that does not fail the run: the path it was given may be wrong', async () => {
    // The host's /dev/uio0, not the run's: the program tested nothing.
    const wrong = await cdevemu(['run', '--device', 'uio0=uio', '--expect', 'exit:0', '--', 'sh', '-c', 'test -e /dev/uio0 || exit 0']);
    expect(wrong.stdout).toMatch(NOTE);
    expect(wrong.stdout, wrong.stderr).toMatch(/^PASS /m);
    // Its sysfs read, then an open of the node: no note.
    const right = await cdevemu([
      'run',
      '--device',
      'uio0=uio',
      '--expect',
      'exit:0',
      '--',
      'sh',
      '-c',
      'cat {mount}/sys/class/uio/uio0/name >/dev/null && exec 3<{mount}/dev/uio0',
    ]);
    expect(right.stdout, right.stderr).toMatch(/^PASS /m);
    expect(right.stdout).not.toMatch(/note: no device/);
  });

  it('fails where the one-liner asks for the opens (--expect opened:NAME[:COUNT])', async () => {
    const wrong = await cdevemu([
      'run',
      '--device',
      'uio0=uio',
      '--expect',
      'exit:0',
      '--expect',
      'opened:uio0',
      '--',
      'sh',
      '-c',
      'test -e /dev/uio0 || exit 0',
    ]);
    expect(wrong.stdout).toMatch(/the program exited with code 0 before an open of uio0\n/);
    expect(wrong.stdout).toMatch(/^FAIL .*: wait opened uio0 \(--expect opened:uio0\)$/m);
    expect(wrong.code).toBe(1);
    const twice = 'exec 3<{mount}/dev/uio0; exec 3<&-; exec 3<{mount}/dev/uio0';
    const short = await cdevemu(['run', '--device', 'uio0=uio', '--expect', 'opened:uio0:3', '--', 'sh', '-c', twice]);
    expect(short.stdout).toMatch(/the program exited with code 0 before 3 opens of uio0 \(2 seen\)\n/);
    expect(short.code).toBe(1);
    // Alone, it waits for the opens (a count taken at once would come before them).
    const enough = await cdevemu(['run', '--device', 'uio0=uio', '--expect', 'opened:uio0:2', '--', 'sh', '-c', `${twice}; exec sleep 60`]);
    expect(enough.stdout, enough.stderr).toMatch(/^PASS /m);
    expect(enough.code).toBe(0);
  });
});

describe('a run killed outright', () => {
  /**
   * Starts a run of `sleep 600`, kills it and its program with SIGKILL, and
   * gives `check` its scratch directory; whatever check leaves mounted is
   * unmounted after.
   */
  async function afterKilledRun(check: (scratch: string) => Promise<void>): Promise<void> {
    const killed = new Interactive(process.execPath, [cliPath, 'run', '--device', 'e0=echo', '--expect', 'running', '--', 'sleep', '600'], {
      ...process.env,
      TMPDIR: dir,
    });
    let scratch = '';
    try {
      scratch = /^scenario .* on (\S+)\/mnt, control socket /.exec(await killed.line())![1]!;
      const started = /started sleep 600 \(pid (\d+)\)/.exec(await killed.line())!;
      process.kill(Number(started[1]), 'SIGKILL'); // the program, ours too
      killed.kill('SIGKILL');
      await killed.exited;
      await check(scratch);
    } finally {
      killed.kill('SIGKILL');
      if (scratch && runMounts().length) await run('umount', ['-l', `${scratch}/mnt`]);
    }
  }

  const nextRunPasses = async (): Promise<void> => {
    const next = await cdevemu(['run', '--device', 'e0=echo', '--expect', 'exit:0', '--', 'true']);
    expect(next.stdout, next.stderr).toMatch(/^PASS /m);
  };

  // An ordinary user's run mounts in a namespace of its own, whose mounts die with it.
  it.runIf(runsAsRoot)('leaves a dead mount, which the next run clears with its directory and lock file', () =>
    afterKilledRun(async (scratch) => {
      expect(runMounts().map((l) => l.split(' ')[1])).toEqual([`${scratch}/mnt`]);
      expect((await run('stat', ['-f', `${scratch}/mnt`])).stderr).toContain('Transport endpoint is not connected');
      await nextRunPasses();
      expect(runMounts()).toEqual([]);
      expect(existsSync(scratch)).toBe(false);
      expect(lockFilesOf(scratch)).toEqual([]);
    }),
  );

  it.runIf(runsAsRoot)('leaves a lock file, which the next run removes though the mount is gone', () =>
    afterKilledRun(async (scratch) => {
      // Unmounted by someone else: only the lock file is left of the run.
      expect((await run('umount', [`${scratch}/mnt`])).code).toBe(0);
      expect(lockFilesOf(scratch)).toHaveLength(1);
      await nextRunPasses();
      expect(lockFilesOf(scratch)).toEqual([]);
    }),
  );
});

describe('a bad one-liner', () => {
  it.each([
    [
      'an expectation on a device it does not plug',
      [...UIO_UNPLUG_FLAGS, '--expect', 'released:uio1', '--', 'true'],
      'cdevemu: --expect released:uio1: unknown device "uio1" (known: uio0)\n',
    ],
    [
      'a program before --',
      ['--device', 'e0=echo', '--expect', 'exit:0', 'true'],
      /^cdevemu: run: "true": with --device the scenario is given by flags, not a file; the program goes after -- \(usage: /,
    ],
    ['no program', ['--device', 'e0=echo', '--expect', 'exit:0'], /^cdevemu: run: the program under test goes after -- \(usage: /],
    [
      'an expectation of no opens',
      ['--device', 'e0=echo', '--expect', 'opened:e0:0', '--', 'true'],
      'cdevemu: --expect opened:e0:0: expected opened:NAME[:COUNT][:WITHIN], COUNT at least 1, e.g. opened:uio0 or opened:uio0:2:30s\n',
    ],
    [
      'an exit code no program can exit with',
      ['--device', 'e0=echo', '--expect', 'exit:256', '--', 'true'],
      'cdevemu: --expect exit:256: must be at most 255, got 256\n',
    ],
    ['--timeout with a scenario file', ['--timeout', '5s', FILE], /^cdevemu: run: --timeout goes with a scenario given by flags/],
  ])('%s: exit 2, one line, nothing mounted', async (_what, args, stderr) => {
    const r = await cdevemu(['run', ...args]);
    expect(r.code).toBe(2);
    if (typeof stderr === 'string') expect(r.stderr).toBe(stderr);
    else expect(r.stderr).toMatch(stderr);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
    expect(runMounts()).toEqual([]);
  });

  it('a flag of one value given twice (--timeout 1s --timeout 60s): exit 2, not the last taken and the first dropped', async () => {
    const r = await cdevemu(['run', '--timeout', '1s', '--device', 'e0=echo', '--timeout=60s', '--expect', 'exit:0', '--', 'true']);
    expect(r.stderr).toMatch(/^error: option '--timeout <duration>' given twice \("1s" and "60s"\); give it once\n/);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(runMounts()).toEqual([]);
    // The repeatable flags still repeat, and a switch given twice says nothing new.
    const ok = await cdevemu(['run', '--as-user', '--as-user', '--device', 'e0=echo', '--device', 'e1=echo', '--expect', 'exit:0', '--expect', 'exit:0', '--', 'true']);
    expect(ok.code, ok.stderr).toBe(0);
  });
});
