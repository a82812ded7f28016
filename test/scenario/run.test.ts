/**
 * `cdevemu run` end to end: the CLI as a child process, its own emulator,
 * real programs under test. Whatever happens, no mount, namespace or
 * program may outlive the run.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { inMountNamespaceOf, itUnless, needsRoot, runsAsRoot } from '../helpers/as-user.js';
import { cClient } from '../helpers/cc.js';
import { cdevemu, cliPath, repoRoot } from '../helpers/cli.js';
import { Interactive, run } from '../helpers/proc.js';
import { allProcesses, exited } from '../../src/sys/procstat.js';
import { Program } from '../../src/scenario/program.js';
import { readScenario, runScenario, type ScenarioTarget } from '../../src/scenario/index.js';
import { SourceDocument } from '../../src/config/index.js';
import type { DeviceEvent } from '../../src/core/events.js';
import { targetWithoutDevices } from '../helpers/scenario-target.js';
import { until } from '../helpers/wait.js';
import { testRoot } from '../helpers/mount.js';
import { uioUnplugLeakyText } from '../fixtures/uio-unplug-flags.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(testRoot(), 'scenarios-'));
  // `cdevemu run` mounts under tmpdir(): here, so that the checks below see
  // this file's mounts only, not those of other runs on the machine.
  process.env.TMPDIR = dir;
});

async function scenario(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

function cdevemuMounts(): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes('fuse.cdevemu') && l.includes(`${dir}/cdevemu-run-`));
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The processes of session `sid` not yet exited (a zombie is left out): a setsid'd shell, and what it started. */
const sessionMembers = (sid: number): number[] => [...allProcesses()].flatMap(([pid, s]) => (s.session === sid && !exited(s) ? [pid] : []));

/** The pid a program under test printed as `...[PID]...` or `pid PID`. */
const pidIn = (out: string, re: RegExp): number => Number(re.exec(out)?.[1]);

describe('the example uio scenario', () => {
  const file = join(repoRoot, 'examples/scenarios/uio-unplug.yaml');

  it('passes with the well-behaved consumer', async () => {
    const r = await cdevemu(['run', file], { timeoutMs: 30_000 });
    expect(r.stdout).toMatch(/ok {4}unplug uio0/);
    expect(r.stdout).toMatch(/ok {4}expect uio0 released within 10000ms/);
    expect(r.stdout).toMatch(/device gone: poll revents 0x1[89]/);
    expect(r.stdout).toMatch(/^PASS /m);
    expect(r.code).toBe(0);
    expect(cdevemuMounts()).toEqual([]);
  });

  it('fails with the leaky consumer, naming its pid and the fd it holds', async () => {
    const junit = join(dir, 'leaky.xml');
    // With 2 s to release uio0, not the example's 10 s: the leaky consumer waits the bound out.
    const leakyFile = await scenario('uio-unplug.yaml', uioUnplugLeakyText());
    const r = await cdevemu(
      ['run', '--junit', junit, leakyFile, '--', 'python3', 'examples/uio_consumer.py', '--leaky', '{mount}/dev/uio0'],
      { timeoutMs: 30_000 },
    );
    expect(r.code).toBe(1);
    const pid = pidIn(r.stdout, /uio_consumer\[(\d+)\]/);
    expect(r.stdout).toMatch(/FAIL {2}expect uio0 released within 2000ms \(.*uio-unplug\.yaml:\d+\)/);
    expect(r.stdout).toMatch(new RegExp(`pid ${pid} \\(python3\\) holds fd 3 \\(.*/dev/uio0.*\\) on generation 1`));
    expect(r.stdout).toMatch(/^FAIL uio consumer releases the device on unplug/m);
    expect(alive(pid)).toBe(false);
    expect(cdevemuMounts()).toEqual([]);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuite name="uio consumer releases the device on unplug"[^>]* failures="1" skipped="3"/);
    expect(xml).toMatch(/<failure message="uio0 was not released within 2000 ms:">/);
  });
});

describe('reports of a run that writes none', () => {
  it("leaves no earlier run's passing JUnit XML or HTML report at their paths when it ends with exit 2", async () => {
    const junit = join(dir, 'stale-junit.xml');
    const report = join(dir, 'stale-report.html');
    const reports = ['--junit', junit, '--report', report];
    const passed = await cdevemu(['run', ...reports, '--device', 'e0=echo', '--expect', 'exit:0', '--', 'true'], { timeoutMs: 30_000 });
    expect(passed.code, passed.stderr).toBe(0);
    expect(readFileSync(junit, 'utf8')).toMatch(/failures="0"/);
    expect(readFileSync(report, 'utf8')).toMatch(/PASS /);
    // Its setup fails (a trace that is not there): no verdict, so no report, and a CI job must not find the last one.
    const broken = await cdevemu(['run', ...reports, '--device', 'r0=replay:{"trace":"/nonexistent/trace.jsonl"}', '--expect', 'exit:0', '--', 'true'], {
      timeoutMs: 30_000,
    });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/setting up: .*nonexistent\/trace\.jsonl/);
    expect(existsSync(junit)).toBe(false);
    expect(existsSync(report)).toBe(false);
    expect(cdevemuMounts()).toEqual([]);
  });
});

describe('programs that misbehave', () => {
  it('reports a program that crashes', async () => {
    const f = await scenario(
      'crash.yaml',
      `devices: [{ model: echo, name: e0 }]
program: { command: [python3, -c, "import os,sys; fd = os.open(sys.argv[1], os.O_RDWR); os.kill(os.getpid(), 11)", "{mount}/dev/e0"] }
timeline:
  - wait: { opened: e0, timeout: 5s }
  - expect: { exit: 0, within: 5s }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}expect program exit 0 within 5000ms/);
    expect(r.stdout).toMatch(/the program was killed by SIGSEGV/);
    expect(cdevemuMounts()).toEqual([]);
  });

  it('reports a program that hangs past its timeout, and kills it', async () => {
    const f = await scenario(
      'hang.yaml',
      `devices: [{ model: echo, name: e0 }]
program: { command: [sh, -c, "echo pid $$; exec sleep 60"] }
timeline:
  - sleep: 200ms
  - expect: { exit: 0, within: 300ms }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/is still running after 300 ms/);
    const pid = pidIn(r.stdout, /pid (\d+)/);
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
  });

  it('reports a program that never opens the device', async () => {
    const f = await scenario(
      'never.yaml',
      `devices: [{ model: echo, name: e0 }]
program: { command: [sleep, "30"] }
timeline:
  - wait: { opened: e0, timeout: 400ms }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/an open of e0 did not happen within 400 ms/);
    expect(r.stdout).not.toMatch(/status then/); // echo has no status action
  });

  it("a failed wait on a device whose model has a status action shows that status as it was then", async () => {
    const f = await scenario(
      'status-then.yaml',
      `devices: [{ model: watchdog, name: wd0, options: { timeout: 41 } }]
program: { command: [sleep, "30"] }
timeline:
  - wait: { event: { type: fault_fired, device: wd0 }, timeout: 300ms }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/did not happen within 300 ms: 0 of 1 matched[^\n]*\n\s+wd0 status then: \{"active":false,"timeout":41,/);
    expect(r.stdout).not.toMatch(/calls in flight then/); // nobody had it open
  });

  it('a failed wait on a device names the calls still running in its model then: a read blocked in echo', async () => {
    const f = await scenario(
      'in-flight-then.yaml',
      `devices: [{ model: echo, name: e0 }]
program: { command: [cat, "{mount}/dev/e0"] }
timeline:
  - wait: { opened: e0, timeout: 10s }
  - wait: { read: e0, timeout: 10s }
  - wait: { released: e0, timeout: 300ms }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.code).toBe(1);
    // The read that counted is the one still blocked: echo is empty.
    const pid = pidIn(r.stdout, /a close of e0 did not happen within 300 ms\n\s+e0 calls in flight then: read by cat \(pid (\d+)\) for \d+ ms\n/);
    expect(r.stdout).not.toMatch(/e0 status then/); // echo has no status action
    // Where cat sleeps: in the read, a FUSE request waiting for our answer (its kernel function's name varies with the kernel).
    expect(r.stdout).toMatch(new RegExp(`\\n\\s+program threads then: tid ${pid} \\(cat\\) S in \\w+`));
  });

  // SIGHUP: the terminal or ssh session the run was started from closed.
  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('cleans up when interrupted (%s): the program is stopped, the mount removed', async (signal) => {
    const f = await scenario(
      `${signal}.yaml`,
      `devices: [{ model: echo, name: e0 }]
program: { command: [sh, -c, "echo pid $$; exec sleep 60"] }
timeline:
  - sleep: 30s
  - expect: { running: true }
`,
    );
    const run = new Interactive(process.execPath, [cliPath, 'run', f]);
    await run.line(); // the scenario header
    await run.line(); // started ...
    const pid = pidIn(await run.line(), /pid (\d+)/);
    try {
      run.kill(signal);
      expect((await run.exited).code).toBe(1);
      expect(alive(pid)).toBe(false);
      expect(cdevemuMounts()).toEqual([]);
    } finally {
      // What a run killed by the signal (not stopped by it) leaves: its program, and its mount, dead.
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      const { lazyUnmount } = await import('../daemon/harness.js');
      for (const m of cdevemuMounts()) await lazyUnmount(m.split(' ')[1]!);
    }
  });

  it('fails when interrupted after its last step, while it stops the program: never PASS', async () => {
    // The program, told to stop at the run's end, interrupts the run ($PPID) before it exits: the signal comes after every step passed.
    // Its open, which the run waits for, comes after its trap is set.
    const prog = 'echo pid $$; trap "kill -INT $PPID; exit 0" TERM; exec 3<"$CDEVEMU_MOUNT/dev/e0"; while :; do sleep 0.05; done';
    const r = await cdevemu(['run', '--device', 'e0=echo', '--expect', 'opened:e0', '--expect', 'running', '--', 'sh', '-c', prog]);
    expect(r.stdout).toMatch(/ok {4}expect program still running\n/);
    expect(r.stdout).toMatch(/program exited with code 0\n/); // by its trap, having sent the signal
    expect(r.stdout).toMatch(/FAIL {2}the run was not interrupted\n/);
    expect(r.stdout).not.toMatch(/^PASS/m);
    expect(r.code).toBe(1);
    expect(alive(pidIn(r.stdout, /pid (\d+)/))).toBe(false);
    expect(cdevemuMounts()).toEqual([]);
  });

  it('keeps going when its reader goes away (`cdevemu run | head -2`): the program is stopped, the mount removed', async () => {
    const f = await scenario(
      'reader-gone.yaml',
      `devices: [{ model: echo, name: e0 }]
program: { command: [sh, -c, "echo pid $$; exec sleep 60"] }
timeline:
  - wait: { opened: e0, timeout: 30s }
  - expect: { running: true }
`,
    );
    const cli = new Interactive(process.execPath, [cliPath, 'run', f]);
    const mount = /on (\S+), control socket/.exec(await cli.line())![1]!;
    await cli.line(); // started ...
    const pid = pidIn(await cli.line(), /pid (\d+)/);
    cli.child.stdout!.destroy();
    // The open makes the run write its next line into the closed pipe.
    const open = inMountNamespaceOf(pid, ['sh', '-c', ': < "$0"', join(mount, 'dev/e0')]);
    expect((await run(open[0]!, open.slice(1))).code).toBe(0);
    expect((await cli.exited).code).toBe(0);
    expect(cli.stderr).toBe('');
    expect(alive(pid)).toBe(false);
    expect(cdevemuMounts().filter((m) => m === mount)).toEqual([]);
  });

  it('fails a wait at once when the program exits before doing it', async () => {
    const f = await scenario(
      'early.yaml',
      `devices: [{ model: echo, name: e0 }]
program: { command: ["true"] }
timeline:
  - wait: { opened: e0, timeout: 20s }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.code).toBe(1);
    // Failed on the exit, not on the 20 s timeout.
    expect(r.stdout).toMatch(/the program exited with code 0 before an open of e0/);
    expect(r.stdout).not.toMatch(/did not happen within/);
  });
});

describe('steps', () => {
  it('runs faults, actions, replug and event waits against a program given after --', async () => {
    const f = await scenario(
      'steps.yaml',
      `name: steps
devices: [{ model: echo, name: e0 }]
faults: [{ device: e0, op: write, nth: 2, action: fail, errno: ENOSPC }]
timeline:
  - wait: { written: e0, count: 1 }
  - wait: { event: { type: fault_fired, device: e0, rule: f1 }, timeout: 5s }
  - replug: e0
  - wait: { event: { type: plugged, device: e0, generation: 2 } }
  - fault: { device: e0, op: read, action: delay, delayMs: 10 }
  - expect: { running: true }
  - unplug: e0
  - wait: { released: e0, count: 2, timeout: 3s }
  - expect: { released: e0, within: 3s }
  - expect: { device: e0, lateReleases: 2 }
  - expect: { noStuck: true }
  # The reads were of generation 1's file: refused by its gate, they never reach a rule.
  - expect: { event: { type: fault_fired, device: e0, rule: f2 }, count: 0 }
`,
    );
    // Both files are opened before the writes: the replug follows the failed write at once.
    const prog = `import os,sys,time,errno
fd = os.open(sys.argv[1], os.O_RDWR)
fd2 = os.open(sys.argv[1], os.O_RDWR)
for i in range(2):
    try: os.write(fd, b"x")
    except OSError as e: print("write", errno.errorcode[e.errno], flush=True)
while True:
    try: os.read(fd2, 1)
    except OSError as e:
        print("read", errno.errorcode[e.errno], flush=True); os.close(fd2); os.close(fd); break
time.sleep(30)`;
    const r = await cdevemu(['run', f, '--', 'python3', '-c', prog, '{mount}/dev/e0']);
    expect(r.stdout).toMatch(/\| write ENOSPC/);
    expect(r.stdout).toMatch(/^PASS steps: 12 step/m);
    expect(r.code).toBe(0);
  });
});

  it('lateReleases waits for a close still to come, and fails on a count that never comes', async () => {
    // The program closes 300 ms after its read failed: the expect must wait for it.
    const prog = `import os,sys,time
fd = os.open(sys.argv[1], os.O_RDWR)
try: os.read(fd, 1)
except OSError: time.sleep(0.3); os.close(fd)
time.sleep(30)`;
    const text = (n: number, within: string): string => `name: late
devices: [{ model: echo, name: e0 }]
timeline:
  - wait: { opened: e0, timeout: 10s }
  - unplug: e0
  - expect: { device: e0, lateReleases: ${n}, within: ${within} }
`;
    const ok = await cdevemu(['run', await scenario('late1.yaml', text(1, '5s')), '--', 'python3', '-c', prog, '{mount}/dev/e0']);
    expect(ok.stdout, ok.stderr).toMatch(/ok {4}expect 1 lateRelease\(s\) on e0 within 5000ms/);
    expect(ok.code).toBe(0);
    // A bound far past the close: the expectation ends, failing, as soon as the file is closed, however slow the machine.
    const bad = await cdevemu(['run', await scenario('late2.yaml', text(2, '30s')), '--', 'python3', '-c', prog, '{mount}/dev/e0']);
    expect(bad.stdout).toMatch(/expected 2 lateRelease\(s\) on e0 within 30000 ms, saw 1/);
    expect(bad.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });

describe('the private emulator', () => {
  it('answers the control API on $CDEVEMU_SOCKET, so the program under test can drive it', async () => {
    const cli = `${process.execPath} ${cliPath}`;
    const f = await scenario(
      'socket.yaml',
      `devices: [{ model: uio, name: uio0 }]
program: { command: [sh, -c, "${cli} action uio0 irq && ${cli} ls"] }
timeline:
  - expect: { exit: 0, within: 10s }
  - wait: { event: { type: action, device: uio0, action: irq } }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.stdout).toMatch(new RegExp(`control socket ${dir}/cdevemu-run-\\w+/ctl\\.sock`));
    expect(r.stdout).toMatch(/\| \{"count":1,"delivered":true\}/);
    expect(r.stdout).toMatch(/\| uio0\s+uio\s+1\s+live/);
    expect(r.code).toBe(0);
  });
});

describe('--bind', () => {
  it('binds /dev/uio0 and /sys/class/uio as tcmu-runner expects them, leaving the host untouched', async () => {
    const hostHad = { dev: existsSync('/dev/uio0'), sys: existsSync('/sys/class/uio') };
    const f = await scenario(
      'uio-bind.yaml',
      `devices: [{ model: uio, name: uio0, options: { name: tcmu-test } }]
program:
  command: [sh, -c, "cat /sys/class/uio/uio0/name; exec 3<>/dev/uio0 && echo opened"]
  bind: ["/sys/class/uio=sys/class/uio", "/dev/uio0=dev/uio0"]
timeline:
  - expect: { exit: 0, within: 5s }
  - wait: { opened: uio0 }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.stdout).toMatch(/\| tcmu-test$/m);
    expect(r.stdout).toMatch(/\| opened$/m);
    expect(r.code).toBe(0);
    expect({ dev: existsSync('/dev/uio0'), sys: existsSync('/sys/class/uio') }).toEqual(hostHad);
  });

  it('binds mount paths over host paths in a private namespace, leaving the host untouched', async () => {
    const host = '/dev/cdevemu-bindtest0';
    expect(existsSync(host)).toBe(false);
    const f = await scenario(
      'bind.yaml',
      `devices: [{ model: zero, name: zero0 }]
program:
  command: [sh, -c, "head -c 4 ${host} | od -An -tx1; ls -d /dev/pts/ptmx; ls /mnt; echo mount=$CDEVEMU_MOUNT"]
  bind: ["${host}=dev/zero0"]
timeline:
  - expect: { exit: 0, within: 5s }
`,
    );
    const mntBefore = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(' /mnt ')).length;
    const r = await cdevemu(['run', '--bind', '/mnt=dev', f]);
    expect(r.stdout).toMatch(/\| +00 00 00 00/);
    expect(r.stdout).toMatch(/\| \/dev\/pts\/ptmx/); // /dev's submounts are still there
    expect(r.stdout).toMatch(/\| zero0/); // /mnt shows the mount's dev/
    expect(r.stdout).toMatch(new RegExp(`\\| mount=${dir}/cdevemu-run-\\w+/mnt$`, 'm'));
    expect(r.code).toBe(0);
    expect(existsSync(host)).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(' /mnt ')).length).toBe(mntBefore);
  });

  /**
   * Missing targets exist only in the program's namespace, wherever they
   * are: each case runs a program that reads a zero device through its
   * bind, and the host's listings of `/`, /dev and the case's directory
   * (recursively), and its mounts there, must be the same after the run as
   * before. Whatever a case creates is removed, even when it fails.
   */
  describe('never writes the host', () => {
    /** A name no host has: a leak there is ours alone, and removed. */
    const unique = (what: string): string => `cdevemu-bindtest-${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

    function listing(path: string): string[] {
      if (!existsSync(path)) return [];
      const out: string[] = [];
      const walk = (d: string): void => {
        for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
          const p = join(d, e.name);
          out.push(`${p} ${e.isDirectory() ? 'd' : e.isSymbolicLink() ? `l->${readlinkSync(p)}` : `f:${statSync(p).size}`}`);
          if (e.isDirectory() && !e.isSymbolicLink()) walk(p);
        }
      };
      walk(path);
      return out;
    }

    /** What the host shows: `/` and /dev (one level), `caseDir` (all of it), and the mounts at or under these or made by a bind namespace. */
    function hostView(caseDir: string): Record<string, string[]> {
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .filter((l) => {
          const [source, target] = l.split(' ');
          return source === 'cdevemu-ns' || target === '/' || target?.startsWith(caseDir);
        });
      return { '/': readdirSync('/').sort(), '/dev': readdirSync('/dev').sort(), [caseDir]: listing(caseDir), mounts };
    }

    interface Case {
      name: string;
      /** Makes what the case needs under `caseDir`; returns the bind targets (read through in the program) and any top-level leak to remove. */
      setup(caseDir: string): Promise<{ targets: string[]; leaks: string[]; undo?: () => Promise<void> }>;
      /** Why only root can make what the case needs (needsRoot), or null. */
      skip?: string | null;
    }

    const sh = async (cmd: string): Promise<void> => {
      const r = await run('sh', ['-c', cmd]);
      if (r.code !== 0) throw new Error(`${cmd}: ${r.stderr}`);
    };

    const cases: Case[] = [
      {
        name: 'several levels deep under / itself',
        async setup() {
          const top = `/${unique('root')}`;
          return { targets: [`${top}/deep/er/uio0`], leaks: [top] };
        },
      },
      {
        name: 'directly in /',
        async setup() {
          const top = `/${unique('top')}`;
          return { targets: [top], leaks: [top] };
        },
      },
      {
        name: 'under a symlink to /',
        async setup(caseDir) {
          const top = unique('vialink');
          symlinkSync('/', join(caseDir, 'root'));
          return { targets: [join(caseDir, 'root', top, 'uio0')], leaks: [`/${top}`] };
        },
      },
      {
        name: "beside the run's own scratch directory, under the parent the overlay covers",
        async setup() {
          // cdevemu run stages its namespace in TMPDIR (this file's directory): the overlay goes over that.
          const top = join(dir, unique('scratch'));
          return { targets: [join(top, 'zero0')], leaks: [top] };
        },
      },
      {
        name: 'under a read-only tmpfs and a read-only bind mount',
        skip: needsRoot('the test mounts them on the host, where the run starts'),
        async setup(caseDir) {
          const ro = join(caseDir, 'ro-tmpfs');
          const src = join(caseDir, 'ro-src');
          const rob = join(caseDir, 'ro-bind');
          for (const d of [ro, src, rob]) mkdirSync(d);
          writeFileSync(join(src, 'kept'), 'host');
          await sh(`mount -t tmpfs -o ro cdevemu-test ${ro} && mount --bind ${src} ${rob} && mount -o remount,bind,ro ${rob}`);
          return {
            targets: [join(ro, 'a', 'b', 'uio0'), join(rob, 'c', 'uio0')],
            leaks: [],
            undo: () => sh(`umount ${rob}; umount ${ro}`),
          };
        },
      },
      {
        name: 'over a file and a directory that exist',
        async setup(caseDir) {
          mkdirSync(join(caseDir, 'dir'));
          writeFileSync(join(caseDir, 'dir', 'entry'), 'host');
          writeFileSync(join(caseDir, 'file'), 'host file');
          // The directory target gets the mount's dev/, whose zero0 is read through it.
          return { targets: [join(caseDir, 'file'), `${join(caseDir, 'dir')}=dev`], leaks: [] };
        },
      },
      {
        name: 'at a dangling symlink, which is replaced in the namespace, not followed',
        async setup(caseDir) {
          // Created through the link, the target would be `made`, outside the overlay of links/: on the host.
          mkdirSync(join(caseDir, 'links'));
          symlinkSync(join(caseDir, 'made'), join(caseDir, 'links', 'dangling'));
          return { targets: [join(caseDir, 'links', 'dangling')], leaks: [] };
        },
      },
    ];

    for (const c of cases) {
      itUnless(c.skip ?? null)(c.name, async () => {
        const caseDir = await mkdtemp(join(dir, 'bindcase-'));
        let made: Awaited<ReturnType<Case['setup']>> | null = null;
        try {
          made = await c.setup(caseDir);
          for (const leak of made.leaks) expect(existsSync(leak)).toBe(false);
          const binds = made.targets.map((t) => (t.includes('=') ? t : `${t}=dev/zero0`));
          // Each bound path is read in the program: through a file, 4 zero bytes; through a directory, its zero0.
          const reads = made.targets.map((t) => {
            const path = t.includes('=') ? `${t.split('=')[0]}/zero0` : t;
            return `head -c 4 ${path} | od -An -tx1`;
          });
          const f = await scenario(
            'bind-host.yaml',
            `devices: [{ model: zero, name: zero0 }]
program: { command: [sh, -c, ${JSON.stringify(reads.join(' && '))}] }
timeline:
  - expect: { exit: 0, within: 10s }
`,
          );
          const before = hostView(caseDir);
          const r = await cdevemu(['run', ...binds.flatMap((b) => ['--bind', b]), f]);
          expect(r.stdout, r.stderr).toMatch(/^PASS /m);
          expect(r.stdout.match(/\| +00 00 00 00$/gm)).toHaveLength(made.targets.length);
          expect(hostView(caseDir)).toEqual(before);
          for (const leak of made.leaks) expect(existsSync(leak)).toBe(false);
        } finally {
          await made?.undo?.();
          for (const leak of made?.leaks ?? []) rmSync(leak, { recursive: true, force: true });
          rmSync(caseDir, { recursive: true, force: true });
        }
      });
    }

    it('under the private /dev of --preset tcmu: not in /dev, not in the directory bound there', async () => {
      const sub = unique('dev');
      const f = await scenario(
        'bind-private-dev.yaml',
        `preset: tcmu
devices: [{ model: zero, name: zero0 }]
program:
  command: [sh, -c, "head -c 4 /dev/${sub}/zero0 | od -An -tx1 && echo private: $(ls {tmp}/../preset/dev)"]
  bind: ["/dev/${sub}/zero0=dev/zero0"]
timeline:
  - expect: { exit: 0, within: 10s }
`,
      );
      const devBefore = readdirSync('/dev').sort();
      try {
        const r = await cdevemu(['run', f], { timeoutMs: 60_000 });
        expect(r.stdout, r.stderr).toMatch(/\| +00 00 00 00$/m);
        // The preset's own /dev (a directory of the run, bound over /dev) lists its nodes, not the bind's directory.
        const priv = /\| private: (.*)$/m.exec(r.stdout)?.[1]?.split(' ');
        expect(priv, r.stdout).toContain('null');
        expect(priv).not.toContain(sub);
        expect(r.code).toBe(0);
        expect(readdirSync('/dev').sort()).toEqual(devBefore);
      } finally {
        rmSync(`/dev/${sub}`, { recursive: true, force: true });
      }
    });
  });
});

describe('{tmp}: the run scratch directory', () => {
  it('is given to the command, the environment and device options, and is removed after the run', async () => {
    const f = await scenario(
      'tmp.yaml',
      `devices: [{ model: uio, name: uio0, options: { name: "{tmp}/disk.img" } }]
program:
  command: [sh, -c, 'echo data > "$0" && cat "$1" && echo "env=$CDEVEMU_TMP" && ls "$CDEVEMU_TMP"', "{tmp}/disk.img", "{mount}/sys/class/uio/uio0/name"]
timeline:
  - expect: { exit: 0, within: 5s }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.code).toBe(0);
    const tmp = new RegExp(`^ *\\| env=(${dir}/cdevemu-run-\\w+/tmp)$`, 'm').exec(r.stdout)?.[1];
    expect(tmp, r.stdout).toBeDefined();
    expect(r.stdout).toContain(`| ${tmp}/disk.img\n`); // the uio name attribute: the option, expanded
    expect(r.stdout).toMatch(/\| disk\.img$/m); // the program's file, in the same directory
    expect(existsSync(tmp!)).toBe(false);
  });
});

describe('{port}: a free TCP port', () => {
  it('is the same port in the command and the environment, and two runs at once each listen on their own', async () => {
    const meeting = join(dir, 'port-meeting');
    mkdirSync(meeting);
    // Each program listens on its {port}, says so in the meeting directory,
    // and holds the port until the other run's program listens too.
    const f = await scenario(
      'port.yaml',
      `program:
  command:
    - python3
    - -c
    - |
      import os, socket, sys, time
      port, meeting = int(sys.argv[1]), sys.argv[2]
      s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen()
      print("listening", port, os.environ["PORT"], flush=True)
      open(os.path.join(meeting, str(port)), "w").close()
      while len(os.listdir(meeting)) < 2: time.sleep(0.05)
    - "{port}"
    - ${meeting}
  env: { PORT: "{port}" }
timeline:
  - expect: { exit: 0, within: 30s }
`,
    );
    const runs = await Promise.all([cdevemu(['run', f], { timeoutMs: 60_000 }), cdevemu(['run', f], { timeoutMs: 60_000 })]);
    const ports = runs.map((r) => {
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const [, command, env] = /\| listening (\d+) (\d+)$/m.exec(r.stdout) ?? [];
      expect(env, r.stdout).toBe(command);
      return Number(command);
    });
    expect(ports[0]).not.toBe(ports[1]);
    expect(readdirSync(meeting).sort()).toEqual(ports.map(String).sort());
  });
});

describe('bad scenarios exit 2 with one line naming the line', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['bad YAML', 'timeline:\n  - sleep: 1s\n   - oops: [', /bad\.yaml:\d+: /],
    ['unknown step', 'timeline:\n  - sleep: 1s\n  - dance: 3\n', /bad\.yaml:3: timeline\[1\]\.dance: unknown field/],
    ['unknown errno', 'timeline:\n  - fault:\n      action: fail\n      errno: EWHATEVER\n', /bad\.yaml:4: timeline\[0\]\.fault\.errno: /],
    ['wrong type', 'timeline:\n  - sleep: soon\n', /bad\.yaml:2: timeline\[0\]\.sleep: expected a duration/],
    ['no timeline', 'name: x\n', /bad\.yaml:1: timeline: missing/],
    ['unknown unplug mode', 'timeline:\n  - unplug: { device: x, mode: gentle }\n', /bad\.yaml:2: timeline\[0\]\.unplug\.mode: expected orderly or surprise/],
    ['unknown signal', 'timeline:\n  - signal: SIGNOPE\n', /bad\.yaml:2: timeline\[0\]\.signal: expected a signal name/],
    ['unknown preset', 'preset: kvm\ntimeline: []\n', /bad\.yaml:1: preset: unknown preset "kvm"; presets: tcmu/],
    [
      'a device it does not plug',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - unplug: e0\n  - expect: { released: e1 }\n',
      /bad\.yaml:4: timeline\[1\]\.expect\.released: unknown device "e1" \(known: e0\)\n$/,
    ],
    [
      'a misspelled event field',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - wait: { event: { type: fault_fired, device: e0, rul: f1 }, timeout: 5s }\n',
      /bad\.yaml:3: timeline\[0\]\.wait\.event\.rul: fault_fired events have no field rul/,
    ],
    ['two expectations in a step', 'timeline:\n  - expect: { running: true, exit: 0 }\n', /bad\.yaml:2: timeline\[0\]\.expect\.exit: one expectation per step/],
    [
      'a YAML merge in the environment (it left the variables it was to bring unset)',
      'program:\n  command: [sh, -c, "test -n \\"$STRICT\\""]\n  env: { <<: { STRICT: "1" } }\ntimeline: [{ expect: { exit: 0 } }]\n',
      /bad\.yaml:3: program\.env\["<<"\]: a YAML merge key, which scenario files do not take/,
    ],
    [
      'a list as an environment value (it reached the program as a,b)',
      'program:\n  command: [sh, -c, "echo $OPTS"]\n  env: { OPTS: [a, b] }\ntimeline: [{ expect: { exit: 0 } }]\n',
      /bad\.yaml:3: program\.env\.OPTS: expected a string, number or true\/false, got a list/,
    ],
    ['nothing that can fail', 'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - unplug: e0\n', /bad\.yaml:2: timeline: no wait or expect step/],
  ];
  for (const [what, text, re] of cases) {
    it(what, async () => {
      const f = await scenario('bad.yaml', text);
      const r = await cdevemu(['run', f]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    });
  }

  it('a scenario file forgotten before the program (`run -- CMD`)', async () => {
    const r = await cdevemu(['run', '--', 'cat', '/dev/null']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'cdevemu: run: expected a scenario file first (usage: cdevemu run [options] <scenario> [-- command...]), e.g. cdevemu run scenario.yaml -- cat /dev/null;' +
        ' or give the scenario as flags (usage: cdevemu run [options] --device NAME=MODEL[:OPTIONS]... [--action|--unplug|--replug ...] --expect ... -- command...)\n',
    );
    expect(r.stdout).toBe('');
  });

  it('an unknown model', async () => {
    const f = await scenario('model.yaml', 'devices: [{ model: nosuch, name: x }]\nprogram: { command: [sleep, "5"] }\ntimeline: [{ expect: { running: true } }]\n');
    const r = await cdevemu(['run', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nosuch/);
    expect(cdevemuMounts()).toEqual([]);
  });
});

/**
 * Each of these scenarios passed before it was refused or made to fail: an
 * expectation held for want of its subject, or saw a window that missed
 * what it was about. The programs are real (the example uio consumer, its
 * leaky twin, python3 and sleep).
 */
describe('no vacuous verdicts', () => {
  const consumer = join(repoRoot, 'examples/uio_consumer.py');
  const uio = (program: string, timeline: string): string =>
    `name: vacuous\ndevices: [{ model: uio, name: uio0 }]\nprogram: { command: [${program}] }\ntimeline:\n${timeline}`;

  it('refuses, before it starts anything, an expectation on a device the scenario does not have (the leaky consumer passed)', async () => {
    for (const [expectation, message] of [
      ['{ released: uio, within: 2s }', 'timeline[2].expect.released: unknown device "uio" (known: uio0)'],
      ['{ device: uio1, lateReleases: 0 }', 'timeline[2].expect.device: unknown device "uio1" (known: uio0)'],
    ]) {
      const f = await scenario(
        'vacuous-name.yaml',
        uio(`python3, ${consumer}, --leaky, "{mount}/dev/uio0"`, `  - wait: { opened: uio0, timeout: 5s }\n  - unplug: uio0\n  - expect: ${expectation}\n`),
      );
      const r = await cdevemu(['run', f]);
      expect(r.stderr).toBe(`cdevemu: ${f}:7: ${message}\n`);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(cdevemuMounts()).toEqual([]);
    }
  });

  const fails: Array<[what: string, program: string, timeline: string, message: RegExp]> = [
    [
      'released on a device never unplugged',
      'sleep, "30"',
      '  - expect: { released: uio0, within: 300ms }\n',
      /uio0 was not unplugged within 300 ms: this expectation is about its unplugged generation/,
    ],
    [
      'released on a device no program opened',
      'sleep, "30"',
      '  - unplug: uio0\n  - expect: { released: uio0, within: 2s }\n',
      /no file of uio0 \(generation 1\) was open in this run: there was nothing to release/,
    ],
    [
      'lateReleases: 0 on a device no program opened',
      'sleep, "30"',
      '  - unplug: uio0\n  - expect: { device: uio0, lateReleases: 0, within: 2s }\n',
      /no file of uio0 \(generation 1\) was open in this run/,
    ],
    [
      'lateReleases: 0 on a device never unplugged',
      `python3, ${consumer}, "{mount}/dev/uio0"`,
      '  - wait: { opened: uio0, timeout: 5s }\n  - expect: { device: uio0, lateReleases: 0, within: 300ms }\n',
      /uio0 was not unplugged within 300 ms/,
    ],
    [
      'lateReleases: 0 while the leaky consumer still holds the device (the count is not final)',
      `python3, ${consumer}, --leaky, "{mount}/dev/uio0"`,
      // Unplugged once the consumer has enabled interrupts (its first write): an unplug right after its open fails that write, and it exits.
      '  - wait: { written: uio0, timeout: 5s }\n  - unplug: uio0\n  - expect: { device: uio0, lateReleases: 0, within: 1s }\n',
      /uio0 still has 1 file\(s\) open after 1000 ms: its lateRelease count \(0 so far\) is not final/,
    ],
    [
      'lateReleases: 0 checked before a late release that comes (the expectation sees it)',
      `python3, -c, "import os,sys,time\\nfd = os.open(sys.argv[1], os.O_RDWR)\\ntry: os.read(fd, 4)\\nexcept OSError: time.sleep(0.3); os.close(fd)\\ntime.sleep(30)", "{mount}/dev/uio0"`,
      '  - wait: { opened: uio0, timeout: 5s }\n  - unplug: uio0\n  - expect: { device: uio0, lateReleases: 0, within: 5s }\n',
      /expected 0 lateRelease\(s\) on uio0 within 5000 ms, saw 1/,
    ],
    [
      'released on a device the program closed, and exited, before the unplug (the unplug found nothing to release)',
      `python3, -c, "import os,sys\\nos.close(os.open(sys.argv[1], os.O_RDWR))", "{mount}/dev/uio0"`,
      '  - wait: { released: uio0, timeout: 5s }\n  - unplug: uio0\n  - expect: { released: uio0, within: 2s }\n',
      /every file the program opened of uio0 \(generation 1\) was closed before its unplug began: the unplug found nothing of it to release/,
    ],
    [
      'lateReleases: 0 on a device the program closed before the unplug',
      `python3, -c, "import os,sys\\nos.close(os.open(sys.argv[1], os.O_RDWR))", "{mount}/dev/uio0"`,
      '  - wait: { released: uio0, timeout: 5s }\n  - unplug: uio0\n  - expect: { device: uio0, lateReleases: 0, within: 2s }\n',
      /every file the program opened of uio0 \(generation 1\) was closed before its unplug began/,
    ],
    [
      'count: 0 of late releases of a device never unplugged (none could come)',
      `python3, ${consumer}, "{mount}/dev/uio0"`,
      '  - wait: { opened: uio0, timeout: 5s }\n  - expect: { event: { type: late_released, device: uio0 }, count: 0 }\n',
      /no unplug of uio0 began in this run, and late_released events come only after one, so count == 0 would hold whatever the program did/,
    ],
    [
      'count: 0 of opens of generation 2 of a device unplugged and never replugged (there is no generation 2)',
      `python3, ${consumer}, "{mount}/dev/uio0"`,
      '  - wait: { opened: uio0, timeout: 5s }\n  - unplug: uio0\n  - expect: { event: { type: opened, device: uio0, generation: 2 }, count: 0 }\n',
      /no generation of uio0 in this run is == 2 \(there were: 1\), so count == 0 would hold whatever the program did/,
    ],
    [
      'noStuck before any unplug',
      `python3, ${consumer}, "{mount}/dev/uio0"`,
      '  - wait: { opened: uio0, timeout: 5s }\n  - expect: { noStuck: true }\n',
      /no device was unplugged in this run: noStuck is about what an unplug found; put it after one/,
    ],
    [
      'noStuck after the unplug of a device no program held (no call could be stuck)',
      'sleep, "30"',
      '  - unplug: uio0\n  - expect: { noStuck: true }\n',
      /no file the program opened of uio0 generation 1 was open when it was unplugged: no handler of it could be stuck/,
    ],
  ];
  it('fails noStuck on a program stuck in a read of an unplugged rtc, which sleeps on as rtc_dev_read() does, and names the read', async () => {
    const f = await scenario(
      'rtc-sleeps.yaml',
      `name: rtc reader
devices: [{ model: rtc, name: rtc0 }]
program: { command: [python3, -c, "import os,sys\\nfd = os.open(sys.argv[1], os.O_RDONLY)\\nos.read(fd, 8)", "{mount}/dev/rtc0"] }
timeline:
  - wait: { read: rtc0, timeout: 5s }
  - unplug: rtc0
  - expect: { noStuck: true }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.stdout, r.stderr).toMatch(/rtc0: read by pid \d+ \(python3\) asleep since the unplug/);
    expect(r.stdout).toMatch(/^FAIL rtc reader: /m);
    expect(r.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });

  for (const [what, program, timeline, message] of fails) {
    it(`fails ${what}`, async () => {
      const r = await cdevemu(['run', await scenario('vacuous.yaml', uio(program, timeline))]);
      expect(r.stdout, r.stderr).toMatch(message);
      expect(r.stdout).toMatch(/^FAIL vacuous: /m);
      expect(r.code).toBe(1);
    });
  }

  it('released passes for a correct program that reopens the replugged device (it is about the unplugged generation)', async () => {
    // The read fails at the unplug, before the new generation's node is there (ENOENT, or ENODEV through the
    // kernel's stale entry): the program waits for it, as one waits for udev.
    const prog = `import errno,os,sys,time
fd = os.open(sys.argv[1], os.O_RDWR)
try: os.read(fd, 1)
except OSError as e:
    os.close(fd)
    while True:
        try: fd = os.open(sys.argv[1], os.O_RDWR); break
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENODEV): raise
            time.sleep(0.01)
    print("reopened", flush=True)
    # The write tells the run its line is out; then it stays, holding the new device.
    os.write(fd, b"r"); time.sleep(60)`;
    const f = await scenario(
      'replug-released.yaml',
      `name: reopen
devices: [{ model: echo, name: e0 }]
timeline:
  - wait: { opened: e0, timeout: 30s }
  - replug: e0
  - wait: { opened: e0, count: 2, timeout: 30s }
  - wait: { written: e0, timeout: 30s }
  - expect: { released: e0, within: 30s }
  - expect: { device: e0, lateReleases: 1 }
  - expect: { running: true }
`,
    );
    const r = await cdevemu(['run', f, '--', 'python3', '-c', prog, '{mount}/dev/e0']);
    expect(r.stdout).toMatch(/\| reopened/);
    expect(r.stdout, r.stderr).toMatch(/^PASS reopen: 7 step/m);
    expect(r.code).toBe(0);
  });

  it('fails an exit expectation when the bind namespace failed and the program never ran', async () => {
    // A component of the target is a file: making the target fails (mkdir, exit 1) before the program runs.
    const file = join(await mkdtemp(join(dir, 'bindfail-')), 'not-a-dir');
    writeFileSync(file, '');
    const f = await scenario(
      'bind-fail.yaml',
      `name: bindfail
devices: [{ model: zero, name: zero0 }]
program: { command: [python3, -c, "print('ran'); exit(1)"], bind: ["${file}/sub/zero0=dev/zero0"] }
timeline:
  - expect: { exit: 1, within: 5s }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.stdout).not.toMatch(/\| ran/);
    expect(r.stdout).toMatch(/expected exit code 1; the program never started: its namespace could not be set up, or its command not executed there \(exit 1; see its output above\)/);
    expect(r.code).toBe(1);
  });

  it('takes a command its bind namespace cannot execute for a program that never started, not for one that exited 127 or 126', async () => {
    // Without a bind, spawn() fails (ENOENT) and the run says so; with one, the exec is the wrapper
    // shell's, whose failure exits 127 (not found) or 126 (not executable) as a program could.
    const notExecutable = join(await mkdtemp(join(dir, 'noexec-')), 'consumer');
    writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const run = async (name: string, command: string, code: number): Promise<void> => {
      const f = await scenario(
        `${name}.yaml`,
        `name: ${name}
devices: [{ model: zero, name: zero0 }]
program: { command: [${command}, /dev/zero0], bind: ["/dev/zero0=dev/zero0"] }
timeline:
  - expect: { exit: ${code}, within: 5s }
`,
      );
      const r = await cdevemu(['run', f]);
      expect(r.stdout, r.stderr).toMatch(new RegExp(`expected exit code ${code}; the program never started: its namespace could not be set up, or its command not executed there \\(exit 127; see its output above\\)`));
      expect(r.stdout).toMatch(/! cannot execute .*: no executable file by that name/);
      expect(r.stdout).toMatch(new RegExp(`^FAIL ${name}: expect program exit ${code} within 5000ms`, 'm'));
      expect(r.code).toBe(1);
    };
    await run('not-found', '/nonexistent/consumer', 127);
    await run('not-executable', notExecutable, 126);
    await run('not-on-path', 'no-such-consumer-anywhere', 127);
    expect(cdevemuMounts()).toEqual([]);
  });

  it('running: a program that died but is not reaped yet is not running', async () => {
    const p = new Program(['sh', '-c', 'exit 3'], { env: process.env, onLine: () => {} });
    // Node reaps it on a later turn of the event loop: until this test yields, it stays a zombie.
    const state = (): string => {
      const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    };
    const deadline = performance.now() + 10_000;
    while (state() !== 'Z' && performance.now() < deadline);
    expect(state()).toBe('Z');
    expect(p.exit).toBeNull(); // what `expect: { running: true }` used to go by
    expect(p.running).toBe(false);
    expect((await p.exited).code).toBe(3);
  });
});

describe('a signal step', () => {
  it('fails on a program that has exited though Node has not reaped it yet: it got no signal', async () => {
    // The action lets the program go (a line into the FIFO it waits on) and then holds the run's event loop
    // until the program is a zombie: the signal step comes next, before Node has reaped it.
    const model = join(dir, 'go-model.mjs');
    await writeFile(
      model,
      `import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
const state = (pid) => { try { const s = readFileSync('/proc/' + pid + '/stat', 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' '); } catch { return []; } };
const zombieChild = () => readdirSync('/proc').some((p) => { const [st, ppid] = state(p); return st === 'Z' && Number(ppid) === process.pid; });
export default {
  name: 'go', description: 'lets the program go, and waits for its end', stream: true,
  options: { fifo: { type: 'string', description: 'the FIFO the program waits on' } },
  create: (_inst, o) => ({ fifo: o.fifo }),
  actions: {
    go(inst) {
      const fd = openSync(inst.state.fifo, 'w');
      writeSync(fd, 'go\\n');
      closeSync(fd);
      const end = Date.now() + 10000;
      while (!zombieChild() && Date.now() < end);
      return { zombie: zombieChild() };
    },
  },
};
`,
    );
    const f = await scenario(
      'signal-zombie.yaml',
      `name: signal-zombie
devices: [{ model: go, name: g0, options: { fifo: "{tmp}/go" } }]
program: { command: [sh, -c, "mkfifo {tmp}/go; exec 3<{mount}/dev/g0; exec 3<&-; read x < {tmp}/go; exit 0"] }
timeline:
  - wait: { opened: g0, timeout: 5s }
  - action: { device: g0, action: go, as: go }
  - expect: { result: go, fields: { zombie: true } }
  - signal: SIGTERM
  - expect: { exit: 0, within: 5s }
`,
    );
    const r = await cdevemu(['run', '--model', model, f]);
    expect(r.stdout, r.stderr).toMatch(/ok {4}expect result go: zombie == true/);
    expect(r.stdout).toMatch(/FAIL {2}signal SIGTERM to the program .*\n {11}there is no running program to send SIGTERM to/);
    expect(r.stdout).toMatch(/^FAIL signal-zombie: signal SIGTERM to the program/m);
    expect(r.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });
});

/**
 * Comparisons on what actions answered and events carried (README.md,
 * "Comparing values"), with the uio, evdev and hwrng models on the run's
 * own mount and the example uio consumer: an expectation on a value fails
 * at once, with the value it saw and what was asked, never by a timeout.
 */
describe('a model that throws', () => {
  /** A user model whose read has a bug (its table is null) and whose write does not. */
  const buggyModel = async (): Promise<string> => {
    const path = join(dir, 'buggy-model.mjs');
    await writeFile(
      path,
      `export default {
  name: 'buggy', description: 'a read with a bug', stream: true, options: {},
  create: () => ({ table: null }),
  read: (file, size) => file.instance.state.table.subarray(0, size),
  write: (_file, data) => data.length,
};
`,
    );
    return path;
  };
  /** Reads the node, shrugs off the error and exits 0, as a program that takes EIO for a device error may. */
  const shrugs = ['sh', '-c', 'echo x > {mount}/dev/b0; cat {mount}/dev/b0 >/dev/null 2>&1; echo "cat exit $?"'];

  it('fails the run though the program exited 0: the EIO it got came from a bug, not from the device', async () => {
    const r = await cdevemu(['run', '--model', await buggyModel(), '--device', 'b0=buggy', '--expect', 'exit:0', '--', ...shrugs]);
    expect(r.stdout).toMatch(/\| cat exit 1/);
    expect(r.stdout).toMatch(/model error: the model of b0 \(generation 1\) threw in read: TypeError: Cannot read properties of null/);
    expect(r.stdout).toMatch(/ok {4}expect program exit 0/);
    expect(r.stdout).toMatch(/FAIL {2}no device saw a failure\n {11}model error: the model of b0 \(generation 1\) threw in read: TypeError/);
    expect(r.stdout).toMatch(/^FAIL .*: no device saw a failure$/m);
    expect(r.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });

  it('leaves them to a scenario that expects model_error events', async () => {
    const f = await scenario(
      'model-error.yaml',
      `name: model errors
devices: [{ model: buggy, name: b0 }]
timeline:
  - wait: { event: { type: model_error, device: b0, op: read }, timeout: 10s }
  - expect: { event: { type: model_error, device: b0 }, count: 1, fields: { error: "TypeError: Cannot read properties of null (reading 'subarray')" } }
`,
    );
    const r = await cdevemu(['run', '--model', await buggyModel(), f, '--', ...shrugs]);
    expect(r.stdout, r.stderr).toMatch(/^PASS model errors: 2 step/m);
    expect(r.code).toBe(0);
  });

  it("leaves to the scenario only the model_error events its filters match: b0's, not b1's", async () => {
    const f = await scenario(
      'model-error-b0.yaml',
      `name: model errors of b0
devices: [{ model: buggy, name: b0 }, { model: buggy, name: b1 }]
timeline:
  - wait: { event: { type: model_error, device: b0 }, timeout: 10s }
  - expect: { exit: 0, within: 10s }
`,
    );
    const r = await cdevemu(['run', '--model', await buggyModel(), f, '--', 'sh', '-c', 'cat {mount}/dev/b0 {mount}/dev/b1 >/dev/null 2>&1; exit 0']);
    expect(r.stdout, r.stderr).toMatch(/ok {4}expect program exit 0/);
    expect(r.stdout).toMatch(/FAIL {2}no device saw a failure\n {11}model error: the model of b1 \(generation 1\) threw in read: TypeError/);
    expect(r.stdout).toMatch(/^FAIL model errors of b0: no device saw a failure$/m);
    expect(r.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });

  it("against a daemon, answers for the devices the scenario names, not for another's", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start({ args: ['--model', await buggyModel()] });
    try {
      await d.client.plug({ model: 'buggy', name: 'b0' });
      await d.client.plug({ model: 'buggy', name: 'other' });
      const text = (dev: string): string => `name: remote ${dev}\ntimeline:\n  - wait: { read: ${dev}, timeout: 10s }\n  - expect: { exit: 0, within: 10s }\n`;
      const program = (dev: string): string[] => ['sh', '-c', `head -c 4 {mount}/dev/${dev} >/dev/null 2>&1; head -c 4 {mount}/dev/other >/dev/null 2>&1; exit 0`];
      const mine = await cdevemu(['run', '--socket', d.socket, await scenario('remote-b0.yaml', text('b0')), '--', ...program('b0')]);
      expect(mine.stdout).toMatch(/^FAIL remote b0: no device saw a failure$/m);
      expect(mine.stdout).not.toMatch(/model of other/);
      expect(mine.code).toBe(1);
      // zero's model does not throw; the throw on "other", which the scenario does not name, is not this run's.
      await d.client.plug({ model: 'zero', name: 'z0' });
      const theirs = await cdevemu(['run', '--socket', d.socket, await scenario('remote-z0.yaml', text('z0')), '--', ...program('z0')]);
      expect(theirs.stdout, theirs.stderr).toMatch(/^PASS remote z0: 2 step/m);
      expect(theirs.code).toBe(0);
    } finally {
      await d.stop();
    }
  });
});

describe('the fault rules a run adds', () => {
  const reads = ['sh', '-c', 'head -c 4 {mount}/dev/z0 >/dev/null && echo read'];

  it('fails a run whose rule never fired: the program was never put under it', async () => {
    const r = await cdevemu(['run', '--device', 'z0=zero', '--fault', 'device=z0,op=write,nth=3,action=fail,errno=EIO', '--expect', 'exit:0', '--', ...reads]);
    expect(r.stdout).toMatch(/ok {4}expect program exit 0/);
    expect(r.stdout).toMatch(/FAIL {2}every fault rule fired\n {11}fault rule\(s\) never fired: f1 \(z0 write nth=3 -> fail errno=EIO; it matched 0 call\(s\)\)/);
    expect(r.code).toBe(1);
    // The same rule on the op the program makes passes.
    const fired = await cdevemu(['run', '--device', 'z0=zero', '--fault', 'device=z0,op=read,first=1,action=fail,errno=EIO', '--expect', 'exit:1', '--', ...reads]);
    expect(fired.stdout, fired.stderr).toMatch(/^PASS /m);
  });

  /** A scenario whose rule w3 fails the first call of `op`, and that expects no firing of a rule named `named`. */
  const judgedBy = (file: string, op: string, exit: number, named: string): Promise<string> =>
    scenario(
      file,
      `name: judged
devices: [{ model: zero, name: z0 }]
faults: [{ id: w3, device: z0, op: ${op}, first: 1, action: fail, errno: EIO }]
timeline:
  - expect: { exit: ${exit}, within: 10s }
  - expect: { event: { type: fault_fired, device: z0, rule: ${named} }, count: 0 }
`,
    );

  it('leaves a rule to a scenario that judges its firings by name', async () => {
    const r = await cdevemu(['run', await judgedBy('unfired-judged.yaml', 'write', 0, 'w3'), '--', ...reads]);
    expect(r.stdout, r.stderr).toMatch(/^PASS judged: 2 step/m);
    expect(r.code).toBe(0);
  });

  it('fails a judgement by the name of a rule there never was: it holds count 0 whatever fired', async () => {
    // w3 fires on the first read; the expectation meant it to stay quiet, but names w4.
    const r = await cdevemu(['run', await judgedBy('judged-misnamed.yaml', 'read', 1, 'w4'), '--', ...reads]);
    expect(r.stdout).toMatch(/ok {4}expect event .*"rule":"w4".* count == 0/);
    expect(r.stdout).toMatch(/FAIL {2}every rule a fault_fired filter names was there\n {11}the fault_fired filter at line 6 \(rule == "w4"\) matches no rule the run had \(its rules: w3\)/);
    expect(r.code).toBe(1);
  });

  it('removes its rules from a daemon when it ends, so that the next run is not judged under them', async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    try {
      await d.client.plug({ model: 'zero', name: 'z0' });
      const before = await d.client.addFault({ id: 'theirs', device: 'z0', op: 'write', action: 'fail', errno: 'EIO' });
      const f = await scenario(
        'remote-faults.yaml',
        `name: remote faults
faults: [{ device: z0, op: read, first: 1, action: fail, errno: EIO }]
timeline:
  - wait: { event: { type: fault_fired, device: z0 } }
`,
      );
      // $CDEVEMU_SOCKET in the shell, with no --socket, names the daemon, and the first line says so.
      const r = await cdevemu(['run', f, '--', ...reads], { env: { ...process.env, CDEVEMU_SOCKET: d.socket } });
      expect(r.stdout).toMatch(new RegExp(`^scenario remote faults \\(.*\\) on ${d.mount}, the daemon at ${d.socket}$`, 'm'));
      expect(r.stdout, r.stderr).toMatch(/^PASS remote faults: 1 step/m);
      expect((await d.client.listFaults()).map((x) => x.id)).toEqual([before.id]);
    } finally {
      await d.stop();
    }
  });
});

describe("a daemon's models", () => {
  it('refuse an event filter that could match nothing on the daemon: a misspelt type, a type the device never emits', async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    try {
      await d.client.plug({ model: 'watchdog', name: 'wd0' });
      await d.client.plug({ model: 'zero', name: 'z0' });
      const run = async (filter: string) =>
        cdevemu(['run', '--socket', d.socket, await scenario('daemon-filter.yaml', `name: filter\ntimeline:\n  - expect: { event: ${filter}, count: 0 }\n`), '--', 'true']);
      const typo = await run('{ type: expird, device: wd0 }');
      expect(typo.stderr).toMatch(/daemon-filter\.yaml:3: timeline\[0\]\.expect\.event\.type: unknown event type "expird"/);
      expect(typo.code).toBe(2);
      const elsewhere = await run('{ type: expired, device: z0 }');
      expect(elsewhere.stderr).toMatch(/z0 \(zero\) emits no expired events/);
      expect(elsewhere.code).toBe(2);
      const meant = await run('{ type: expired, device: wd0 }');
      expect(meant.stdout, meant.stderr).toMatch(/^PASS filter: 1 step/m);
    } finally {
      await d.stop();
    }
  });
});

describe('values', () => {
  const consumer = join(repoRoot, 'examples/uio_consumer.py');
  const text = (timeline: string): string => `name: values
devices: [{ model: uio, name: uio0 }, { model: evdev, name: event0 }, { model: hwrng, name: hwrng }]
program: { command: [python3, ${consumer}, "{mount}/dev/uio0"] }
timeline:
  - wait: { opened: uio0, timeout: 10s }
  - wait: { written: uio0 }
  - action: { device: uio0, action: irq, as: irq1 }
  - action: { device: event0, action: key, arg: { code: 30 }, as: key }
  - wait: { read: uio0 }
${timeline}`;

  it("compares action results and events as asked, and passes when every one holds", async () => {
    const f = await scenario(
      'values-ok.yaml',
      text(`  - expect: { result: irq1, fields: { count: 1, delivered: true } }
  - expect: { result: key, fields: { accepted: { between: [4, 4] } } }
  - action: { device: hwrng, action: stats, as: rng }
  - expect: { result: rng, fields: { bytes: { '>=': 0 }, seeded: { '!=': null } } }
  - wait: { event: { type: opened, device: uio0, pid: { '>': 1 } } }
  - expect: { event: { type: opened, device: uio0 }, count: 1, fields: { flags: { '>': 0 }, comm: python3 } }
  - expect: { event: { type: action, device: uio0 }, count: { '>=': 1 }, fields: { action: irq } }
  - expect: { event: { type: model_error }, count: 0 }
`),
    );
    const r = await cdevemu(['run', f]);
    expect(r.stdout, r.stderr).toMatch(/ok {4}expect result key: accepted between 4 and 4/);
    expect(r.stdout).toMatch(/ok {4}expect event \{"type":"opened","device":"uio0"\}: count == 1; flags > 0, comm == "python3"/);
    expect(r.stdout).toMatch(/^PASS values: 13 step/m);
    expect(r.code).toBe(0);
  });

  const fails: Array<[what: string, timeline: string, message: RegExp]> = [
    ['a result below its bound', "  - expect: { result: key, fields: { accepted: { '>=': 5 } } }\n", /expected key\.accepted >= 5, saw 4$/m],
    [
      'every field that fails, a missing one named with what is there',
      '  - expect: { result: irq1, fields: { count: 2, lost: 0 } }\n',
      /expected irq1\.count == 2, saw 1\n\s+expected irq1\.lost == 0, but irq1 has no field lost \(its fields: count, delivered\)/,
    ],
    [
      "an event's field",
      '  - expect: { event: { type: opened, device: uio0 }, fields: { comm: cat } }\n',
      /expected opened\.comm == "cat", saw "python3" \(uio0 generation 1\)/,
    ],
    [
      'a count of events',
      "  - expect: { event: { type: action, device: uio0, action: irq }, count: { '>=': 2 } }\n",
      /expected the count of events matching \{"type":"action","device":"uio0","action":"irq"\} >= 2, saw 1; the last: \{"action":"irq",/,
    ],
    ['no event at all (fields check something or fail)', '  - expect: { event: { type: drained, device: uio0 }, fields: { stuck: 0 } }\n', /count of events matching .* >= 1, saw 0$/m],
    [
      'a count of none that must hold for a while, broken by the late release that came after the unplug',
      '  - unplug: uio0\n  - expect: { event: { type: late_released, device: uio0 }, count: 0, for: 20s }\n',
      /expected the count of events matching \{"type":"late_released","device":"uio0"\} == 0, saw 1; .* \(\d+ ms into 20000\)$/m,
    ],
    [
      'a count of none whose filter names a field no event of its type has (misspelled inside a list)',
      '  - expect: { event: { type: plugged, device: uio0, regions.0.sise: 4096 }, count: 0 }\n',
      /plugged\.regions\.0\.sise holds no number in any of the 1 plugged event\(s\) of uio0 counted: in the last \(uio0 generation 1\), plugged\.regions\.0 has no field sise \(its fields: .*size/,
    ],
    [
      'a count of none whose filter compares a field with a value of another kind',
      "  - expect: { event: { type: plugged, device: uio0, regions.0.size: '4096' }, count: { '<': 1 } }\n",
      /plugged\.regions\.0\.size holds no string in any of the 1 plugged event\(s\) of uio0 counted: in the last \(uio0 generation 1\), plugged\.regions\.0\.size is 4096/,
    ],
  ];
  for (const [what, timeline, message] of fails) {
    it(`fails at once on ${what}, saying what it saw`, async () => {
      // A long wait follows: a verdict by timeout would show as that step's.
      const r = await cdevemu(['run', await scenario('values-fail.yaml', text(`${timeline}  - wait: { released: uio0, timeout: 60s }\n`))]);
      expect(r.stdout, r.stderr).toMatch(message);
      expect(r.stdout).toMatch(/^FAIL values: expect /m);
      expect(r.stdout).not.toMatch(/did not happen within/);
      expect(r.code).toBe(1);
      expect(cdevemuMounts()).toEqual([]);
    });
  }

  it('holds a count for as long as `for` says, looking again until then', async () => {
    const r = await cdevemu(['run', await scenario('values-for.yaml', text("  - expect: { event: { type: released, device: uio0 }, count: 0, for: 300ms }\n  - expect: { event: { type: opened, device: uio0 }, count: 1, for: 200ms }\n"))]);
    expect(r.stdout, r.stderr).toMatch(/ok {4}expect event \{"type":"released","device":"uio0"\}: count == 0 for 300ms/);
    expect(r.stdout).toMatch(/ok {4}expect event \{"type":"opened","device":"uio0"\}: count == 1 for 200ms/);
    // Each took its time: the next step came no sooner.
    const at = [...r.stdout.matchAll(/^\[ *(\d+\.\d+)s\] ok {4}expect event/gm)].map((m) => Number(m[1]));
    expect(at).toHaveLength(2);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(0.2);
    expect(r.code).toBe(0);
  });

  it('says, when a wait for an event runs out, how many matched and why the last other did not', async () => {
    const r = await cdevemu(['run', await scenario('values-wait.yaml', text('  - wait: { event: { type: action, device: uio0, action: reset }, timeout: 300ms }\n'))]);
    expect(r.stdout, r.stderr).toMatch(
      /did not happen within 300 ms: 0 of 1 matched; of the 1 other action event\(s\) of uio0, the last \(uio0 generation 1\): expected action\.action == "reset", saw "irq"/,
    );
    expect(r.code).toBe(1);
  });
});

/**
 * stop and start steps (README.md, "Restarting the program") with real
 * programs: the example uio consumer, python3, sh and sleep. Waits after a
 * start count what the new instance does, never what the stopped one did.
 */
describe('restarting the program', () => {
  const consumer = join(repoRoot, 'examples/uio_consumer.py');

  it('the example: stopped, its device replugged, started again with the same bind, the consumer opens generation 2', async () => {
    const r = await cdevemu(['run', join(repoRoot, 'examples/scenarios/uio-restart.yaml')], { timeoutMs: 60_000 });
    expect(r.stdout, r.stderr).toMatch(/^PASS /m);
    const [first, second] = [...r.stdout.matchAll(/started python3 .* \(pid (\d+)(, instance 2)?\) with 1 bind/g)].map((m) => Number(m[1]));
    expect(first).toBeGreaterThan(0);
    expect(second).toBeGreaterThan(0);
    expect(second).not.toBe(first);
    expect(r.stdout).toMatch(/stopped: SIGTERM, then the program was killed by SIGTERM after \d+ ms/);
    expect(r.stdout).toMatch(/ok {4}expect event \{"type":"opened","device":"uio0"\}: count == 1; generation == 2/);
    expect(alive(first!)).toBe(false);
    expect(alive(second!)).toBe(false);
    expect(r.code).toBe(0);
    expect(cdevemuMounts()).toEqual([]);
  });

  it("fails the example with a consumer that leaks, naming the instance that holds the device", async () => {
    const r = await cdevemu(['run', join(repoRoot, 'examples/scenarios/uio-restart.yaml'), '--', 'python3', consumer, '--leaky', '/dev/uio0'], { timeoutMs: 60_000 });
    const second = pidIn(r.stdout, /\(pid (\d+), instance 2\)/);
    expect(r.stdout, r.stderr).toMatch(new RegExp(`pid ${second} \\(python3\\) holds .* on generation 2, open [\\d.]+s; it is the program \\(instance 2 of 2\\)`));
    expect(r.code).toBe(1);
  });

  it("does not count what the stopped instance did toward a wait after the start (it passed on the first instance's open)", async () => {
    const f = await scenario(
      'restart-window.yaml',
      `name: window
devices: [{ model: uio, name: uio0 }]
program: { command: [python3, ${consumer}, "{mount}/dev/uio0"] }
timeline:
  - wait: { opened: uio0, timeout: 10s }
  - sleep: 300ms
  - wait: { event: { type: opened, device: uio0 }, timeout: 1s }   # before the step, after the start: counted
  - stop: SIGKILL
  - start: { command: [sleep, "30"] }
  - wait: { opened: uio0, timeout: 500ms }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.stdout, r.stderr).toMatch(/ok {4}wait event \{"type":"opened","device":"uio0"\}/);
    expect(r.stdout).toMatch(/ok {4}start sleep 30/);
    expect(r.stdout).toMatch(/FAIL {2}wait opened uio0 .*\n\s+an open of uio0 did not happen within 500 ms/);
    expect(r.code).toBe(1);
  });

  it('a start step gives its own command and environment; the waits follow the new instance', async () => {
    const f = await scenario(
      'restart-command.yaml',
      `name: other command
devices: [{ model: echo, name: e0 }]
program: { command: [sh, -c, "echo first $$; exec sleep 30"], env: { WHO: base } }
timeline:
  - stop: { signal: SIGTERM, timeout: 5s }
  - expect: { exit: SIGTERM }
  - start: { command: [python3, -c, "import os,sys; print('second', os.environ['WHO'], os.environ['EXTRA']); os.write(os.open(sys.argv[1], os.O_RDWR), b'x')", "{mount}/dev/e0"], env: { EXTRA: "1" } }
  - wait: { written: e0, timeout: 10s }
  - expect: { exit: 0, within: 10s }
  - wait: { released: e0, timeout: 10s }   # the kernel sends the release after the exit, in its own time
  - expect: { event: { type: opened, device: e0 }, count: 1, fields: { comm: python3 } }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.stdout, r.stderr).toMatch(/\| second base 1$/m);
    expect(r.stdout).toMatch(/^PASS other command: 7 step/m);
    expect(r.code).toBe(0);
  });

  it('stop: SIGKILL after the bound for a program that ignores the signal, and the step fails saying so', async () => {
    const f = await scenario(
      'restart-kill.yaml',
      `name: ignores SIGTERM
devices: [{ model: echo, name: e0 }]
program: { command: [python3, -c, "import os,signal,sys,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('pid', os.getpid(), flush=True); os.open(sys.argv[1], os.O_RDWR); time.sleep(60)", "{mount}/dev/e0"] }
timeline:
  - wait: { opened: e0, timeout: 10s }      # its handler is set
  - stop: { signal: SIGTERM, timeout: 500ms }
  - expect: { running: true }
`,
    );
    const r = await cdevemu(['run', f]);
    const pid = pidIn(r.stdout, /\| pid (\d+)/);
    expect(r.stdout, r.stderr).toMatch(new RegExp(`FAIL {2}stop the program .*\\n\\s+the program \\(pid ${pid}\\) did not exit within 500 ms of SIGTERM: killed it with SIGKILL; it then was killed by SIGKILL`));
    expect(alive(pid)).toBe(false);
    expect(r.code).toBe(1);
  });

  it('stop kills what the program left in its process group once it has exited', async () => {
    const f = await scenario(
      'restart-group.yaml',
      `name: group
devices: [{ model: echo, name: e0 }]
program: { command: [sh, -c, "(trap '' TERM; exec sleep 60) & echo $! > {tmp}/child; trap 'exit 0' TERM; exec 3<>{mount}/dev/e0; wait"] }
timeline:
  - wait: { opened: e0, timeout: 10s }      # its trap is set, the child's pid written
  - stop: SIGTERM
  - expect: { exit: 0 }
  - start: { command: [python3, -c, "import sys; pid = open(sys.argv[1]).read().strip(); st = open('/proc/%s/stat' % pid).read() if __import__('os').path.exists('/proc/' + pid) else ''; print('child', 'gone' if not st or st[st.rindex(')') + 2] == 'Z' else 'alive'); sys.exit(0)", "{tmp}/child"] }
  - expect: { exit: 0, within: 10s }
`,
    );
    const r = await cdevemu(['run', f]);
    expect(r.stdout, r.stderr).toMatch(/\| child gone$/m);
    expect(r.code).toBe(0);
  });

  /**
   * Runs `yaml`, whose program starts a shell in a session of its own that
   * writes its pid (the session's id) to `{pidFile}`, and checks that once
   * the run has ended nothing of that session is left (a zombie not yet
   * reaped by init aside), nor a mount; returns the run. What is left is
   * killed (by pid: only the session's, which the test made).
   */
  async function runDetached(name: string, yaml: (pidFile: string) => string): Promise<Awaited<ReturnType<typeof cdevemu>>> {
    const pidFile = join(dir, `${name}.pid`);
    const f = await scenario(`${name}.yaml`, yaml(pidFile));
    let sid = 0;
    try {
      const r = await cdevemu(['run', f]);
      sid = Number(readFileSync(pidFile, 'utf8'));
      expect(sid, r.stdout).toBeGreaterThan(0);
      expect(sessionMembers(sid), r.stdout).toEqual([]);
      expect(cdevemuMounts()).toEqual([]);
      return r;
    } finally {
      for (const pid of sid ? sessionMembers(sid) : []) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  }

  it('stop ends a child the program detached from its group and session (setsid): its late open does not pass the next instance\'s wait, and it does not outlive the run', async () => {
    // The detached shell opens uio0 while the first instance runs (what the
    // first wait waits for), and again 1 s later. Before, the stop reached
    // only the program's process group: the shell lived on, its second open
    // passed the wait of `sleep 5`, which opens nothing, and the run passed.
    const r = await runDetached(
      'restart-setsid',
      (pidFile) => `name: setsid
devices: [{ model: uio, name: uio0 }]
program: { command: [sh, -c, 'setsid sh -c "echo \\$\\$ > ${pidFile}; exec 4<{mount}/dev/uio0; sleep 1; exec 3<{mount}/dev/uio0; sleep 3" </dev/null >/dev/null 2>&1 & sleep 100'] }
timeline:
  - wait: { opened: uio0, timeout: 10s }   # the detached shell runs, its pid written
  - stop: SIGTERM
  - start: { command: [sleep, '5'] }
  - wait: { opened: uio0, timeout: 3s }
  - expect: { event: { type: opened, device: uio0 }, count: 1 }
`,
    );
    expect(r.stdout, r.stderr).toMatch(/FAIL {2}wait opened uio0 .*\n\s+an open of uio0 did not happen within 3000 ms/);
    expect(r.code).toBe(1);
  });

  /**
   * A daemon the program double-forks, started through `launcher`: the
   * subshell that started it exits at once, so its parent is init (or a
   * subreaper) long before the stop, and no parent link leads to it. The
   * stop must end it all the same.
   */
  async function stopEndsDaemon(name: string, launcher: string): Promise<void> {
    const r = await runDetached(
      name,
      (pidFile) => `name: ${name}
devices: [{ model: uio, name: uio0 }]
program: { command: [sh, -c, '( ${launcher} sh -c "echo \\$\\$ > ${pidFile}; exec 3<{mount}/dev/uio0; sleep 60" </dev/null >/dev/null 2>&1 & ); sleep 100'] }
timeline:
  - wait: { opened: uio0, timeout: 10s }
  - stop: SIGTERM
  - expect: { exit: SIGTERM }
`,
    );
    expect(r.stdout, r.stderr).toMatch(/^PASS /m);
    expect(r.code).toBe(0);
  }

  it("stop ends a daemon the program double-forked, orphaned before the stop: it carries the program's mark in its environment", () =>
    stopEndsDaemon('restart-daemon', 'setsid'));

  // Found only on the kernel's process events, which only root may follow (process-crashes.ts).
  it.runIf(runsAsRoot)('stop ends a daemon the program double-forked that cleared its environment (no mark): the process events saw it born', () =>
    stopEndsDaemon('restart-daemon-no-mark', 'env -i setsid'));

  /**
   * Runs `text` against a target whose events the test makes: each action
   * step calls `act` with the action's name, the pids of the program's
   * instances started so far and an `emit` of events. Returns the step
   * statuses, the run's output and those pids.
   */
  async function runWithEvents(
    text: string,
    act: (action: string, pids: readonly number[], emit: (e: DeviceEvent) => void) => Promise<void>,
  ): Promise<{ statuses: string[]; out: string; pids: number[] }> {
    const tmp = await mkdtemp(join(dir, 'events-'));
    mkdirSync(join(tmp, 'stage'));
    mkdirSync(join(tmp, 'tmp'));
    const pids: number[] = [];
    let emit: (e: DeviceEvent) => void = () => {};
    const target: ScenarioTarget = {
      ...targetWithoutDevices(join(tmp, 'mnt'), async (_device, action) => {
        await act(action, pids, emit);
        return {};
      }),
      subscribe: async (on) => ((emit = on), () => {}),
    };
    const out: string[] = [];
    const result = await runScenario(readScenario(SourceDocument.parse(text, 'events.yaml'), tmp), {
      target,
      stageDir: join(tmp, 'stage'),
      tmpDir: join(tmp, 'tmp'),
      out: (line) => {
        const pid = /started .* \(pid (\d+)/.exec(line)?.[1];
        if (pid) pids.push(Number(pid));
        out.push(line);
      },
    });
    return { statuses: result.steps.map((st) => st.status), out: out.join('\n'), pids };
  }

  const fileEvent = (type: 'opened' | 'released', pid: number): DeviceEvent =>
    ({ type, device: 'p', generation: 1, at: Date.now(), file: pid, pid, comm: 'sleep', ...(type === 'opened' ? { flags: 0 } : {}) }) as DeviceEvent;

  it("leaves out of the next instance's counts what a stopped instance's process caused after the start (an open answered late)", async () => {
    // An open by the killed first instance's pid comes after the second has
    // started (a FUSE open the daemon had taken is answered, and recorded,
    // after the kill), then one by the second's. Before, the first counted.
    const r = await runWithEvents(
      `name: late
program: { command: [sleep, "30"] }
timeline:
  - stop: SIGKILL
  - start: {}
  - action: { device: p, action: first }
  - expect: { event: { type: opened, device: p }, count: 0 }
  - action: { device: p, action: second }
  - expect: { event: { type: opened, device: p }, count: 1 }
`,
      async (action, pids, emit) => emit(fileEvent('opened', pids[action === 'first' ? 0 : 1]!)),
    );
    expect(r.pids, r.out).toHaveLength(2);
    expect(r.statuses, r.out).toEqual(['passed', 'passed', 'passed', 'passed', 'passed', 'passed']);
    expect(r.pids.filter(alive)).toEqual([]);
  });

  it("leaves out of the next instance's counts the late release of a file a stopped instance's thread opened, the thread gone before the stop", async () => {
    // A worker thread of the first instance opens (its event names the
    // thread, seen alive), and exits; the process holds the file. The stop
    // collects the process and its threads left, not the worker, and the
    // file's release comes after the second instance started. Before, it
    // counted for the second.
    const tidFile = join(dir, `worker-${process.pid}.tid`);
    const script = join(dir, 'worker-opens.py');
    writeFileSync(
      script,
      [
        'import os, sys, threading, time',
        'tid_file = sys.argv[1]',
        'def worker():',
        "    with open(tid_file + '.tmp', 'w') as f: f.write(str(threading.get_native_id()))",
        "    os.rename(tid_file + '.tmp', tid_file)",
        "    while not os.path.exists(tid_file + '.go'): time.sleep(0.01)",
        't = threading.Thread(target=worker)',
        't.start()',
        't.join()',
        "open(tid_file + '.joined', 'w').close()",
        'time.sleep(30)',
        '',
      ].join('\n'),
    );
    let tid = 0;
    const r = await runWithEvents(
      `name: worker
program: { command: [/usr/bin/python3, ${script}, ${tidFile}] }
timeline:
  - action: { device: p, action: open }
  - stop: SIGKILL
  - start: { command: [sleep, "30"] }
  - action: { device: p, action: release }
  - expect: { event: { type: released, device: p }, count: 0 }
`,
      async (action, _pids, emit) => {
        if (action === 'open') {
          await until(() => existsSync(tidFile), 10_000, 'the worker thread running');
          tid = Number(readFileSync(tidFile, 'utf8'));
          emit(fileEvent('opened', tid));
          writeFileSync(`${tidFile}.go`, '');
          await until(() => existsSync(`${tidFile}.joined`), 10_000, 'the worker thread gone');
        } else emit(fileEvent('released', tid));
      },
    );
    expect(tid).toBeGreaterThan(0);
    expect(r.pids, r.out).toHaveLength(2);
    expect(r.pids).not.toContain(tid);
    expect(r.statuses, r.out).toEqual(['passed', 'passed', 'passed', 'passed', 'passed']);
    expect(r.pids.filter(alive)).toEqual([]);
  });

  it('fails a stop when the program has already exited, and a start while it still runs', async () => {
    const ended = await scenario('restart-ended.yaml', 'devices: [{ model: echo, name: e0 }]\nprogram: { command: ["true"] }\ntimeline:\n  - expect: { exit: 0 }\n  - stop: SIGTERM\n');
    const r1 = await cdevemu(['run', ended]);
    expect(r1.stdout, r1.stderr).toMatch(/the program exited with code 0 before this step: there was nothing to stop/);
    expect(r1.code).toBe(1);
    const running = await scenario('restart-running.yaml', 'devices: [{ model: echo, name: e0 }]\nprogram: { command: [sleep, "30"] }\ntimeline:\n  - start: {}\n  - expect: { running: true }\n');
    const r2 = await cdevemu(['run', running]);
    expect(r2.stdout, r2.stderr).toMatch(/the program \(pid \d+\) is still running: stop it first \(a stop step\)/);
    expect(r2.code).toBe(1);
  });

  it('refuses a stop without a program before anything starts (exit 2), and takes the one after --', async () => {
    const f = await scenario('restart-none.yaml', 'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - stop: SIGTERM\n  - expect: { exit: SIGTERM }\n');
    const r = await cdevemu(['run', f]);
    expect(r.stderr).toBe(`cdevemu: ${f}:3: timeline[0].stop: there is no program under test to stop (give the scenario a program, or a command after --)\n`);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    const given = await cdevemu(['run', f, '--', 'sleep', '30']);
    expect(given.stdout, given.stderr).toMatch(/^PASS /m);
    expect(given.code).toBe(0);
  });
});

describe('--socket: against a running daemon', () => {
  it('plugs, faults and unplugs on the daemon, whose events drive the waits', async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    try {
      const f = await scenario(
        'remote.yaml',
        `name: remote
devices: [{ model: echo, name: rs0 }]
faults: [{ device: rs0, op: write, first: 1, action: fail, errno: EBUSY }]
timeline:
  - wait: { opened: rs0, timeout: 5s }
  - wait: { event: { type: fault_fired, device: rs0 } }
  - unplug: rs0
  - expect: { released: rs0, within: 3s }
  - expect: { device: rs0, lateReleases: 1 }
`,
      );
      const prog = `import os,sys,errno,select
fd = os.open(sys.argv[1], os.O_RDWR)
try: os.write(fd, b"x")
except OSError as e: print("write", errno.errorcode[e.errno], flush=True)
p = select.poll(); p.register(fd, select.POLLIN); p.poll(10000)
os.close(fd)`;
      const r = await cdevemu(['run', '--socket', d.socket, f, '--', 'python3', '-c', prog, '{mount}/dev/rs0']);
      expect(r.stdout).toContain(`on ${d.mount}`);
      expect(r.stdout).toMatch(/\| write EBUSY/);
      expect(r.stdout).toMatch(/^PASS remote: 5 step/m);
      expect(r.code).toBe(0);
      // The run acted on the daemon: the device is gone; its fault rule, which fired, was removed as the run ended.
      expect(await d.client.listFaults()).toEqual([]);
      expect((await d.client.listDevices()).map((x) => x.name)).not.toContain('rs0');
    } finally {
      await d.stop();
    }
  });

  it("refuses a name the daemon does not have, before acting on it; counts only the run's own reads", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    try {
      const unknown = await scenario(
        'remote-unknown.yaml',
        'faults: [{ device: zero, op: read, action: fail, errno: EIO }]\ntimeline:\n  - unplug: zero1\n  - expect: { released: zero1 }\n',
      );
      const r = await cdevemu(['run', '--socket', d.socket, unknown]);
      const known = (await d.client.listDevices()).map((x) => x.name).sort().join(', ');
      expect(r.stderr).toContain(`remote-unknown.yaml:3: timeline[0].unplug: unknown device "zero1" (known: ${known})`);
      expect(r.code).toBe(2);
      expect(await d.client.listFaults()).toEqual([]); // nothing was done
      // The daemon's zero was read before the run: a wait for a read in the run must not count it.
      expect((await run('head', ['-c', '4', d.dev('zero')])).code).toBe(0);
      const wait = await scenario('remote-read.yaml', 'name: reads\ntimeline:\n  - wait: { read: zero, timeout: 500ms }\n');
      const w = await cdevemu(['run', '--socket', d.socket, wait, '--', 'sleep', '30']);
      expect(w.stdout, w.stderr).toMatch(/a read on zero did not happen within 500 ms/);
      expect(w.code).toBe(1);
    } finally {
      await d.stop();
    }
  });

  it("counts from a restart on the daemon too: the stopped instance's open and writes do not satisfy the waits after it", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    const text = (dev: string, wait: string): string => `name: remote restart
devices: [{ model: echo, name: ${dev} }]
timeline:
  - wait: { opened: ${dev}, timeout: 10s }
  - wait: { written: ${dev}, count: 3, timeout: 10s }
  - stop: SIGTERM
  - start: { command: [sleep, "30"] }
  - wait: { ${wait}: ${dev}, timeout: 300ms }
`;
    const prog = 'import os,sys,time\nfd = os.open(sys.argv[1], os.O_RDWR)\nfor i in range(3): os.write(fd, b"x")\ntime.sleep(30)';
    try {
      for (const [dev, wait, message] of [
        ['rr0', 'written', /ok {4}start sleep 30\n[^]*a write on rr0 did not happen within 300 ms/],
        ['rr1', 'opened', /ok {4}start sleep 30\n[^]*an open of rr1 did not happen within 300 ms/],
      ] as const) {
        const f = await scenario(`remote-restart-${dev}.yaml`, text(dev, wait));
        const r = await cdevemu(['run', '--socket', d.socket, f, '--', 'python3', '-c', prog, `{mount}/dev/${dev}`]);
        expect(r.stdout, r.stderr).toMatch(message);
        expect(r.code).toBe(1);
      }
    } finally {
      await d.stop();
    }
  });

  /** Another client of the daemon: opens DEV, prints "open", and closes it once the file FLAG exists. */
  const holder = (dev: string, flag: string): Interactive =>
    new Interactive('python3', ['-c', 'import os,sys,time\nfd = os.open(sys.argv[1], os.O_RDWR)\nprint("open", flush=True)\nwhile not os.path.exists(sys.argv[2]): time.sleep(0.02)\nos.close(fd)', dev, flag]);

  it("takes no unplug begun before the run for the run's: a zombie another client holds, and closes during the run, is nothing released", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    const flag = join(dir, 'zombie-closes');
    const other = holder(d.dev('echo0'), flag);
    try {
      expect(await other.line()).toBe('open');
      await d.client.unplug('echo0'); // generation 1 stays, a zombie held by the other client
      const none = await scenario('remote-zombie-late.yaml', 'name: zombie late\ntimeline:\n  - expect: { event: { type: late_released, device: echo0 }, count: 0 }\n');
      const n = await cdevemu(['run', '--socket', d.socket, none, '--', 'true']);
      expect(n.stdout, n.stderr).toMatch(/no unplug of echo0 began in this run/);
      expect(n.code).toBe(1);
      // The program under test only lets the other client close: nothing of it was unplugged or released.
      const released = await scenario('remote-zombie.yaml', 'name: zombie\ntimeline:\n  - expect: { released: echo0, within: 2s }\n');
      const r = await cdevemu(['run', '--socket', d.socket, released, '--', 'touch', flag]);
      expect(r.stdout, r.stderr).toMatch(/echo0 was not unplugged within 2000 ms/);
      expect(r.code).toBe(1);
    } finally {
      other.kill();
      await d.stop();
    }
  });

  it("judges noStuck on the run's devices only: another client's unplug of a device it holds does not stand for the run's", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    const flag = join(dir, 'other-unplugged');
    const other = holder(d.dev('echo0'), flag);
    try {
      expect(await other.line()).toBe('open');
      const f = await scenario(
        'remote-nostuck.yaml',
        'name: nostuck\ndevices: [{ model: echo, name: ns0 }]\ntimeline:\n  - expect: { exit: 0, within: 10s }\n  - unplug: ns0\n  - expect: { noStuck: true }\n',
      );
      const running = cdevemu(['run', '--socket', d.socket, f, '--', 'sh', '-c', `until [ -e ${flag} ]; do sleep 0.02; done`]);
      // While the run's program waits, another client unplugs the device it holds open.
      await until(async () => (await d.client.listDevices()).some((x) => x.name === 'ns0'), 10_000, 'the run plugging ns0');
      await d.client.unplug('echo0');
      writeFileSync(flag, '');
      const r = await running;
      expect(r.stdout, r.stderr).toMatch(/no file the program opened of ns0 generation 1 was open when it was unplugged/);
      expect(r.code).toBe(1);
    } finally {
      other.kill();
      await d.stop();
    }
  });

  it("counts no other client's open in a wait or an expectation about the program's; its child's open counts", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    const started = join(dir, 'other-open-started');
    const go = join(dir, 'other-open-go');
    const flag = join(dir, 'other-open-close');
    const f = await scenario(
      'remote-other-open.yaml',
      'name: other open\ntimeline:\n  - wait: { opened: echo0, timeout: 20s }\n  - expect: { event: { type: opened, device: echo0 }, count: 1, fields: { comm: sh } }\n',
    );
    // The program says it started, waits for GO, then (OPEN: a child of it, a shell that stays) opens echo0 or not.
    const program = (open: boolean): string[] => [
      'sh',
      '-c',
      `touch ${started}; until [ -e ${go} ]; do sleep 0.02; done; ${open ? `sh -c 'exec 3<${d.dev('echo0')}; exec sleep 30' & wait` : 'exit 0'}`,
    ];
    try {
      for (const open of [false, true]) {
        rmSync(started, { force: true });
        rmSync(go, { force: true });
        const running = cdevemu(['run', '--socket', d.socket, f, '--', ...program(open)]);
        await until(() => existsSync(started), 20_000, 'the program to start');
        // Another client of the daemon opens echo0 while the run waits for the program to.
        const other = holder(d.dev('echo0'), flag);
        try {
          expect(await other.line()).toBe('open');
          writeFileSync(go, '');
          const r = await running;
          if (open) {
            expect(r.stdout, r.stderr).toMatch(/ok {4}expect event \{"type":"opened","device":"echo0"\}: count == 1; comm == "sh"/);
            expect(r.code).toBe(0);
          } else {
            expect(r.stdout, r.stderr).toMatch(/FAIL {2}wait opened echo0/);
            expect(r.code).toBe(1);
          }
        } finally {
          other.kill();
        }
      }
    } finally {
      await d.stop();
    }
  });

  it("counts the opens of the program's short-lived children: one that exits while the run looks for it is not another client", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    try {
      const f = await scenario('remote-short-lived.yaml', 'name: short lived\ntimeline:\n  - wait: { opened: echo0, count: 5, timeout: 20s }\n');
      // Each child opens echo0, closes it and exits at once: its open is read while it exits.
      const py = 'import os,sys\nos.close(os.open(sys.argv[1], os.O_RDWR))';
      const program = ['sh', '-c', `for i in 1 2 3 4 5; do python3 -c '${py}' ${d.dev('echo0')}; done; exec sleep 30`];
      const r = await cdevemu(['run', '--socket', d.socket, f, '--', ...program]);
      expect(r.stdout, r.stderr).toMatch(/^PASS short lived: 1 step/m);
      expect(r.code).toBe(0);
    } finally {
      await d.stop();
    }
  });

  it("counts the reads made through the program's files: another client's reads do not meet a wait about the program's", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    const started = join(dir, 'reads-started');
    const go = join(dir, 'reads-go');
    const f = await scenario(
      'remote-other-reads.yaml',
      'name: other reads\ndevices: [{ model: zero, name: rz0 }]\ntimeline:\n  - wait: { read: rz0, count: 3, timeout: 20s }\n  - wait: { read: rz0, count: 4, timeout: 2s }\n',
    );
    // The program reads rz0 twice through a file it closes (counted by its
    // release), then once through one it keeps open (counted by the holders).
    const py = 'import os,sys,time\nfd=os.open(sys.argv[1], os.O_RDONLY)\nos.read(fd, 8)\nos.read(fd, 8)\nos.close(fd)\nfd=os.open(sys.argv[1], os.O_RDONLY)\nos.read(fd, 8)\ntime.sleep(60)';
    const program = ['sh', '-c', `touch ${started}; until [ -e ${go} ]; do sleep 0.02; done; exec python3 -c '${py}' ${d.dev('rz0')}`];
    // Another client reads rz0 five times while the program runs, and stays.
    const reads = 'import os,sys,time\nfd=os.open(sys.argv[1], os.O_RDONLY)\nfor _ in range(5): os.read(fd, 8)\nprint("read", flush=True)\ntime.sleep(60)';
    let other: Interactive | null = null;
    try {
      const running = cdevemu(['run', '--socket', d.socket, f, '--', ...program]);
      await until(() => existsSync(started), 20_000, 'the program to start');
      other = new Interactive('python3', ['-c', reads, d.dev('rz0')]);
      expect(await other.line()).toBe('read');
      writeFileSync(go, '');
      const r = await running;
      expect(r.stdout, r.stderr).toMatch(/ok +wait read rz0 x3\n/);
      expect(r.stdout, r.stderr).toMatch(/FAIL {2}wait read rz0 x4 [^\n]*\n\s+4 reads on rz0 did not happen within 2000 ms \(3 seen\)/);
      expect(r.code).toBe(1);
    } finally {
      other?.kill();
      await d.stop();
    }
  });

  it("takes no other client's late release for the program's: lateReleases fails on a program that closed before the unplug", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    const otherOpen = join(dir, 'late-other-open');
    const flag = join(dir, 'late-other-close');
    const f = await scenario(
      'remote-other-late.yaml',
      'name: other late\ndevices: [{ model: echo, name: lr0 }]\ntimeline:\n  - wait: { released: lr0, timeout: 20s }\n  - unplug: lr0\n  - expect: { device: lr0, lateReleases: 1, within: 10s }\n',
    );
    // The program opens and closes lr0 once another client holds it, and waits.
    const py = 'import os,sys\nos.close(os.open(sys.argv[1], os.O_RDWR))';
    const program = ['sh', '-c', `until [ -e ${otherOpen} ]; do sleep 0.02; done; python3 -c '${py}' ${d.dev('lr0')}; exec sleep 30`];
    let other: Interactive | null = null;
    try {
      const running = cdevemu(['run', '--socket', d.socket, f, '--', ...program]);
      await until(async () => (await d.client.listDevices()).some((x) => x.name === 'lr0'), 20_000, 'the run plugging lr0');
      other = holder(d.dev('lr0'), flag);
      expect(await other.line()).toBe('open');
      writeFileSync(otherOpen, '');
      // The other client closes its file once the unplug has begun: a late release, but not the program's.
      await until(async () => (await d.client.listDevices()).some((x) => x.name === 'lr0' && x.state !== 'live'), 20_000, 'the unplug of lr0');
      writeFileSync(flag, '');
      const r = await running;
      expect(r.stdout, r.stderr).toMatch(/every file the program opened of lr0 \(generation 1\) was closed before its unplug began/);
      expect(r.code).toBe(1);
    } finally {
      other?.kill();
      await d.stop();
    }
  });

  it("fails a rule of the run that fired only on another client's call: its first: 1 was used up before the program's open", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    const go = join(dir, 'fault-other-go');
    const f = await scenario(
      'remote-fault-other.yaml',
      'name: fault other\ndevices: [{ model: echo, name: fo0 }]\nfaults: [{ device: fo0, op: open, first: 1, action: fail, errno: EBUSY }]\ntimeline:\n  - expect: { exit: 0, within: 20s }\n',
    );
    const program = ['sh', '-c', `until [ -e ${go} ]; do sleep 0.02; done; exec 3<${d.dev('fo0')}`];
    // Another client tries to open fo0, says how it went, and stays until killed (so its event can be placed).
    const tries = 'import os,sys,time\ntry:\n  os.open(sys.argv[1], os.O_RDWR); print("opened", flush=True)\nexcept OSError as e: print(os.strerror(e.errno), flush=True)\ntime.sleep(60)';
    let other: Interactive | null = null;
    try {
      const running = cdevemu(['run', '--socket', d.socket, f, '--', ...program]);
      await until(async () => (await d.client.listFaults()).some((r) => r.device === 'fo0'), 20_000, "the run's rule on fo0");
      other = new Interactive('python3', ['-c', tries, d.dev('fo0')]);
      expect(await other.line()).toBe('Device or resource busy');
      writeFileSync(go, '');
      const r = await running;
      expect(r.stdout, r.stderr).toMatch(/FAIL {2}every fault rule fired\n\s+fault rule\(s\) fired only on another client's calls: f\d+ \(on pid \d+ \(python3\)\)/);
      expect(r.code).toBe(1);
    } finally {
      other?.kill();
      await d.stop();
    }
  });

  it('fails a rule of the run removed before it fired (here by the program, through the control API)', async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    try {
      const f = await scenario(
        'remote-rule-removed.yaml',
        'name: rule removed\ndevices: [{ model: echo, name: fr0 }]\nfaults: [{ device: fr0, op: read, action: fail, errno: EIO }]\ntimeline:\n  - expect: { exit: 0, within: 10s }\n',
      );
      const r = await cdevemu(['run', '--socket', d.socket, f, '--', 'curl', '-sf', '--unix-socket', d.socket, '-X', 'DELETE', 'http://cdevemu/v1/faults']);
      expect(r.stdout, r.stderr).toMatch(/FAIL {2}every fault rule fired\n\s+fault rule\(s\) removed before the end of the run, never having fired: f\d+/);
      expect(r.code).toBe(1);
    } finally {
      await d.stop();
    }
  });

  it("judges released and lateReleases on the program's files: another client that holds the unplugged device does not fail a program that let go", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    // The program opens DEV once another client holds it, closes it when the unplug wakes its poll, and stays.
    const py = 'import os,sys,select,time\nwhile not os.path.exists(sys.argv[2]): time.sleep(0.02)\nfd = os.open(sys.argv[1], os.O_RDWR)\np = select.poll(); p.register(fd, select.POLLIN); p.poll(20000)\nos.close(fd)\ntime.sleep(30)';
    try {
      for (const [dev, expectation] of [
        ['oh0', 'released: oh0, within: 3s'],
        ['oh1', 'device: oh1, lateReleases: 1, within: 3s'],
      ] as const) {
        const go = join(dir, `other-holds-go-${dev}`);
        const f = await scenario(
          `remote-other-holds-${dev}.yaml`,
          `name: other holds\ndevices: [{ model: echo, name: ${dev} }]\ntimeline:\n  - wait: { opened: ${dev}, timeout: 20s }\n  - unplug: ${dev}\n  - expect: { ${expectation} }\n`,
        );
        const running = cdevemu(['run', '--socket', d.socket, f, '--', 'python3', '-c', py, d.dev(dev), go]);
        await until(async () => (await d.client.listDevices()).some((x) => x.name === dev), 20_000, `the run plugging ${dev}`);
        const other = holder(d.dev(dev), join(dir, `other-holds-close-${dev}`)); // holds DEV past the run's end
        try {
          expect(await other.line()).toBe('open');
          writeFileSync(go, '');
          const r = await running;
          expect(r.stdout, r.stderr).toMatch(/^PASS other holds: 3 step/m);
          expect(r.code).toBe(0);
        } finally {
          other.kill();
        }
      }
    } finally {
      await d.stop();
    }
  });

  it("takes no release of another client's file for the program's, its opener gone before the release came", async () => {
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    const started = join(dir, 'gone-opener-started');
    const closes = join(dir, 'gone-opener-closes');
    const go = join(dir, 'gone-opener-go');
    const f = await scenario(
      'remote-gone-opener.yaml',
      'name: gone opener\ntimeline:\n  - wait: { opened: echo0, timeout: 20s }\n  - expect: { event: { type: released, device: echo0 }, count: 0 }\n',
    );
    // Another client opens echo0 before the run, hands its file to a child and exits: the child closes it later, and the release names the opener, gone by then.
    const opener = 'import os,sys,time\nfd = os.open(sys.argv[1], os.O_RDWR)\nif os.fork() == 0:\n  for i in range(3): os.dup2(os.open(os.devnull, os.O_RDWR), i)\n  while not os.path.exists(sys.argv[2]): time.sleep(0.02)\n  os.close(fd); os._exit(0)\nprint("open", flush=True)';
    const other = new Interactive('python3', ['-c', opener, d.dev('echo0'), closes]);
    try {
      expect(await other.line()).toBe('open');
      await other.exited; // reaped: its pid names no process now
      // The program says it started, waits for GO, then opens echo0 and holds it: it never closes a file.
      const running = cdevemu(['run', '--socket', d.socket, f, '--', 'sh', '-c', `touch ${started}; until [ -e ${go} ]; do sleep 0.02; done; exec 3<${d.dev('echo0')}; exec sleep 30`]);
      await until(() => existsSync(started), 20_000, 'the program to start');
      writeFileSync(closes, '');
      await until(async () => (await d.client.listDevices()).some((x) => x.name === 'echo0' && x.holders.length === 0), 20_000, "the release of the other client's file");
      writeFileSync(go, '');
      const r = await running;
      expect(r.stdout, r.stderr).toMatch(/ok {4}expect event \{"type":"released","device":"echo0"\}: count == 0/);
      expect(r.code).toBe(0);
    } finally {
      writeFileSync(closes, ''); // the child's, if the test failed before
      other.kill();
      await d.stop();
    }
  });

  /** A model whose read never returns and ignores its signal: the unplug's drain gives up on it (a stuck handler). */
  const stuckRead = `export default { name: 'stuckread', stream: true, create: () => ({}), read: () => new Promise(() => {}) };\n`;
  it.each([
    { what: 'a read asleep on an unplugged rtc (one opener at a time)', model: 'rtc', unplug: 'unplug: rs1' },
    { what: 'a read stuck in a device the run unplugs', model: 'stuckread', unplug: 'unplug: { device: rs1, drainTimeoutMs: 200 }' },
  ])("judges noStuck on the program's calls: another client's $what is not the program's hang", async ({ model, unplug }) => {
    const own = join(dir, `${model}-model.mjs`);
    if (model === 'stuckread') await writeFile(own, stuckRead);
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start({ args: model === 'stuckread' ? ['--model', own] : [] });
    const go = join(dir, `other-${model}-go`);
    const f = await scenario(
      `remote-other-${model}.yaml`,
      `name: other ${model}\ndevices: [{ model: ${model}, name: rs1 }, { model: echo, name: hold1 }]\ntimeline:\n  - wait: { opened: hold1, timeout: 20s }\n  - ${unplug}\n  - unplug: hold1\n  - expect: { noStuck: true }\n`,
    );
    let other: Interactive | null = null;
    try {
      // The program holds hold1 open (it reads nothing), once another client is in a read of rs1.
      const running = cdevemu(['run', '--socket', d.socket, f, '--', 'sh', '-c', `until [ -e ${go} ]; do sleep 0.02; done; exec 3<${d.dev('hold1')}; exec sleep 30`]);
      await until(async () => (await d.client.listDevices()).some((x) => x.name === 'hold1'), 20_000, 'the run plugging its devices');
      other = new Interactive('python3', ['-c', 'import os,sys,time\nfd = os.open(sys.argv[1], os.O_RDONLY)\ntry: os.read(fd, 8)\nexcept OSError: pass\ntime.sleep(60)', d.dev('rs1')]);
      await until(async () => (await d.client.listDevices()).some((x) => x.name === 'rs1' && x.inFlight.some((c) => c.op === 'read')), 20_000, "the other client's read");
      writeFileSync(go, '');
      const r = await running;
      expect(r.stdout, r.stderr).toMatch(/ok {4}expect no stuck handlers/);
      expect(r.code).toBe(0);
    } finally {
      other?.kill();
      await d.stop();
    }
  });

  it('exits 3 when no daemon answers on the socket', async () => {
    const f = await scenario('none.yaml', 'timeline: [{ expect: { running: true } }]\n');
    const r = await cdevemu(['run', '--socket', join(dir, 'nobody.sock'), f]);
    expect(r.code).toBe(3);
  });
});

/**
 * A scenario plays the device side of shared memory: a python3 program maps
 * uio0's map0 and waits for a command that the scenario stores with
 * region_write, answers in the map (read back through region_read on the
 * program's own control socket), then waits for the irq; unplug revokes the
 * map, and the program's next touch of it dies of SIGBUS.
 */
const sharedMemoryProgram = `import http.client, json, mmap, os, signal, socket, sys, time
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(os.environ["CDEVEMU_SOCKET"])
def action(name, arg):
    c = Unix("cdevemu"); c.request("POST", "/v1/devices/uio0/actions/" + name, body=json.dumps({"arg": arg}), headers={"content-type": "application/json"})
    return json.loads(c.getresponse().read())["result"]
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096, mmap.MAP_SHARED)
deadline = time.time() + 10
while m[0] != 0x5a:
    if time.time() > deadline: sys.exit(3)
    time.sleep(0.001)
m[64:68] = b"\\xa5\\x01\\x02\\x03"
print("model sees", action("region_read", {"region": 0, "offset": 64, "length": 4})["hex"], flush=True)
os.read(fd, 4)
print("irq", flush=True)
# Python cannot catch a fault in its own loop: touch the map in a child, until the touch kills it.
while True:
    pid = os.fork()
    if pid == 0:
        m[0]; os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        print(signal.Signals(os.WTERMSIG(status)).name, flush=True); sys.exit(0)
    time.sleep(0.01)
`;

describe('shared memory', () => {
  it('a scenario stores a command in map0, the program answers in the map, unplug ends it with SIGBUS', async () => {
    await writeFile(join(dir, 'prog.py'), sharedMemoryProgram);
    // The child's SIGBUS is the point: as root, where the run sees it, the scenario says so (README, "What a scenario checks").
    const crashExpected = runsAsRoot ? '  - expect: { event: { type: process_crashed, comm: python3 }, count: 1, fields: { signal: SIGBUS } }\n' : '';
    const file = await scenario(
      'shared.yaml',
      `name: shared memory
devices:
  - { model: uio, name: uio0 }
program:
  command: [python3, ./prog.py, "{mount}/dev/uio0"]
timeline:
  - wait: { opened: uio0, timeout: 10s }
  - action: { device: uio0, action: region_write, arg: { region: 0, offset: 0, hex: "5a" } }
  - action: { device: uio0, action: irq }
  - wait: { read: uio0 }
  - unplug: uio0
  - expect: { exit: 0, within: 5s }
  - expect: { device: uio0, lateReleases: 1 }
${crashExpected}`,
    );
    const r = await cdevemu(['run', file], { timeoutMs: 60_000 });
    expect(r.stdout, r.stderr).toMatch(/^PASS /m);
    expect(r.stdout).toContain('model sees a5010203');
    expect(r.stdout).toContain('irq');
    expect(r.stdout).toContain('SIGBUS');
    expect(r.code).toBe(0);
    expect(cdevemuMounts()).toEqual([]);
  });
});

describe('tcmu', () => {
  // Here, not in a file of its own: every test of this file checks that no
  // cdevemu-run mount is left, so another file's run must not overlap them.
  it('a scenario runs a verified workload on the C consumer, unplugs under load, and the consumer lets go', async () => {
    const disk = join(dir, 'tcmu.img');
    await writeFile(disk, Buffer.alloc(1 << 20));
    const bin = await cClient('tcmu_consumer');
    const file = await scenario(
      'tcmu.yaml',
      `name: tcmu consumer under load loses nothing at unplug
devices:
  - model: tcmu
    name: uio0
    options: { cfgstring: ${JSON.stringify(disk)}, devSize: 1048576, cmdAreaSize: 65536, dataAreaSize: 1048576 }
program:
  command: [${JSON.stringify(bin)}, "{mount}", uio0]
timeline:
  - wait: { opened: uio0, timeout: 5s }
  - action: { device: uio0, action: workload_start, arg: { depth: 32, maxCommands: 400, chunks: 64 } }
  - wait: { event: { type: tcmu_workload_done, device: uio0, completed: 400, verifyErrors: 0 }, timeout: 30s }
  - action: { device: uio0, action: workload_start, arg: { depth: 32, chunks: 64 } }
  - unplug: uio0
  - wait: { event: { type: tcmu_removed, device: uio0, lost: 0, verifyErrors: 0, doubleEnds: 0 }, timeout: 5s }
  - expect: { released: uio0, within: 5s }
  - expect: { exit: 0, within: 5s }
  - expect: { noStuck: true }
`,
    );
    const r = await cdevemu(['run', file], { timeoutMs: 60_000 });
    expect(r.stdout).toMatch(/ok {4}wait event \{"type":"tcmu_removed"/);
    // Whichever of its read() or kick write() meets the unplug first fails: EIO, or EINVAL (uio_write()).
    expect(r.stdout).toMatch(/read errno EIO|kick errno EINVAL/);
    expect(r.stdout, r.stderr).toMatch(/^PASS /m);
    expect(r.code).toBe(0);
    expect(cdevemuMounts()).toEqual([]);
  });
});
