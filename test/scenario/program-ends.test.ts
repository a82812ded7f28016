/**
 * How the program under test ended, where the scenario did not judge it
 * (src/scenario/program-ends.ts): a program that never started, or one
 * that crashed, fails the run though every step about the devices held;
 * so does a crash of any process it started, seen on the kernel's process
 * events (src/scenario/process-crashes.ts), which only root may listen
 * to: an ordinary user's run says so in a note.
 * The CLI as a child process, its own emulator, real programs.
 */
import { readFileSync } from 'node:fs';
import { chown, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cClient } from '../helpers/cc.js';
import { cdevemu, cliPath } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';
import { itUnless, needsRoot, UserWorld } from '../helpers/as-user.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(testRoot(), 'program-ends-'));
  process.env.TMPDIR = dir; // the run's mount is made here: the checks see this file's only
});

const cdevemuMounts = (): string[] =>
  readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes('fuse.cdevemu') && l.includes(`${dir}/cdevemu-run-`));

async function scenario(name: string, program: string, timeline: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `name: ${name}\ndevices: [{ model: uio, name: uio0 }]\nprogram: { command: [${program}] }\ntimeline:\n${timeline}`);
  return path;
}

/** Opens uio0, then, once the unplug has answered its read, dies by `signal` (sent to itself). */
const diesAtUnplug = (signal: string): string =>
  `python3, -c, "import os,signal,sys\\nfd = os.open(sys.argv[1], os.O_RDWR)\\ntry: os.read(fd, 4)\\nexcept OSError: os.kill(os.getpid(), signal.${signal})", "{mount}/dev/uio0"`;

const unplugged = '  - wait: { opened: uio0, timeout: 5s }\n  - unplug: uio0\n  - expect: { released: uio0, within: 5s }\n';

describe('how the program ended', () => {
  it('fails a run whose program never started, though every step held (nothing opened uio0: count 0 holds)', async () => {
    const f = await scenario('enoent.yaml', '/nonexistent/consumer, "{mount}/dev/uio0"', '  - unplug: uio0\n  - expect: { event: { type: opened, device: uio0 }, count: 0 }\n');
    const junit = join(dir, 'enoent.xml');
    const r = await cdevemu(['run', '--junit', junit, f]);
    expect(r.stdout).toMatch(/ok {4}expect event \{"type":"opened","device":"uio0"\}: count == 0/);
    expect(r.stdout).toMatch(/FAIL {2}the program ran and did not crash\n {11}the program never started: cannot start \/nonexistent\/consumer: spawn \/nonexistent\/consumer ENOENT: the scenario tested nothing/);
    expect(r.stdout).toMatch(/^FAIL enoent\.yaml: the program ran and did not crash$/m);
    expect(r.code).toBe(1);
    expect(readFileSync(junit, 'utf8')).toMatch(/failures="1"/);
    expect(cdevemuMounts()).toEqual([]);
  });

  it('fails a run whose program crashed (SIGSEGV) at the unplug, though its death released the device', async () => {
    const r = await cdevemu(['run', await scenario('segv.yaml', diesAtUnplug('SIGSEGV'), unplugged)]);
    expect(r.stdout).toMatch(/ok {4}expect uio0 released within 5000ms/);
    expect(r.stdout).toMatch(/the program \(pid \d+\) was killed by SIGSEGV, a signal the run did not send it: it crashed \(a scenario that expects this end says so: expect: \{ exit: SIGSEGV \}\)/);
    expect(r.stdout).toMatch(/^FAIL segv\.yaml: the program ran and did not crash$/m);
    expect(r.code).toBe(1);
  });

  it('fails a run whose program died of a SIGKILL the run did not send (the OOM killer\'s), though the run kills what it left with SIGKILL', async () => {
    const r = await cdevemu(['run', await scenario('sigkill.yaml', diesAtUnplug('SIGKILL'), unplugged)]);
    expect(r.stdout, r.stderr).toMatch(/ok {4}expect uio0 released within 5000ms/);
    expect(r.stdout).toMatch(/the program \(pid \d+\) was killed by SIGKILL, a signal the run did not send it: it crashed, or something else killed it/);
    expect(r.stdout).toMatch(/^FAIL sigkill\.yaml: the program ran and did not crash$/m);
    expect(r.code).toBe(1);
    // The same death of a first instance, then a `start` (which also kills what that one left).
    const again = await cdevemu(['run', await scenario('sigkill-restart.yaml', diesAtUnplug('SIGKILL'), `${unplugged}  - replug: uio0\n  - start: {}\n  - wait: { opened: uio0, timeout: 5s }\n`)]);
    expect(again.stdout, again.stderr).toMatch(/instance 1 of the program \(pid \d+\) was killed by SIGKILL, a signal the run did not send it/);
    expect(again.stdout).toMatch(/^FAIL sigkill-restart\.yaml: the program ran and did not crash$/m);
    expect(again.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });

  it('leaves the end to a scenario that expects it, and takes a death by a signal the run sent as no crash', async () => {
    const judged = await cdevemu(['run', await scenario('segv-expected.yaml', diesAtUnplug('SIGSEGV'), `${unplugged}  - expect: { exit: SIGSEGV, within: 5s }\n`)]);
    expect(judged.stdout, judged.stderr).toMatch(/^PASS segv-expected\.yaml: 4 step/m);
    expect(judged.code).toBe(0);
    const sent = await cdevemu([
      'run',
      await scenario('sigterm-sent.yaml', `sh, -c, "exec 3<{mount}/dev/uio0; exec sleep 30"`, '  - wait: { opened: uio0, timeout: 5s }\n  - signal: SIGTERM\n  - wait: { released: uio0, timeout: 5s }\n'),
    ]);
    expect(sent.stdout).toMatch(/program was killed by SIGTERM/);
    expect(sent.stdout, sent.stderr).toMatch(/^PASS sigterm-sent\.yaml: 3 step/m);
    expect(sent.code).toBe(0);
  });
});

/** Kills the python3 that runs it with `signal`, sent by itself. */
const selfKill = (signal: string): string => `python3 -c 'import os,signal; os.kill(os.getpid(), signal.${signal})'`;

/** The proc connector's events need CAP_NET_ADMIN in the initial user namespace: an ordinary user's run has none. */
const asRoot = itUnless(needsRoot('only root may listen to the kernel\'s process events'));

describe('a crash of a process the program started', () => {
  asRoot('fails a run whose program exits 0 after a child of it died of SIGSEGV, naming the child and the signal', async () => {
    const program = `sh, -c, "exec 3<{mount}/dev/uio0; ${selfKill('SIGSEGV')}; exit 0"`;
    const r = await cdevemu(['run', await scenario('child-segv.yaml', program, '  - wait: { opened: uio0, timeout: 5s }\n  - expect: { exit: 0, within: 10s }\n')]);
    expect(r.stdout, r.stderr).toMatch(/ok {4}expect program exit 0 within 10000ms/);
    expect(r.stdout).toMatch(/process crashed: pid \d+ \((python3|<exited before its name was read>)\), started by pid \d+ \(sh\), was killed by SIGSEGV/);
    expect(r.stdout).toMatch(/FAIL {2}no process the program started crashed\n {11}pid \d+ \((python3|<exited before its name was read>)\), started by pid \d+ \(sh\), was killed by SIGSEGV, a signal the run did not send: it crashed\n/);
    expect(r.stdout).toMatch(/^FAIL child-segv\.yaml: no process the program started crashed$/m);
    expect(r.stdout).not.toMatch(/note: crashes/);
    expect(r.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });

  asRoot('takes a child\'s abort(3) for the crash it is: SIGABRT, not its other name SIGIOT', async () => {
    const program = `sh, -c, "exec 3<{mount}/dev/uio0; python3 -c 'import os; os.abort()'; exit 0"`;
    const r = await cdevemu(['run', await scenario('child-abort.yaml', program, '  - expect: { exit: 0, within: 10s }\n')]);
    expect(r.stdout, r.stderr).toMatch(/FAIL {2}no process the program started crashed\n {11}pid \d+ \((python3|<exited before its name was read>)\), started by pid \d+ \(sh\), was killed by SIGABRT/);
    expect(r.stdout).toMatch(/^FAIL child-abort\.yaml: no process the program started crashed$/m);
    expect(r.code).toBe(1);
    const judged = await cdevemu([
      'run',
      await scenario('child-abort-expected.yaml', program, '  - expect: { exit: 0, within: 10s }\n  - expect: { event: { type: process_crashed }, count: 1, fields: { signal: SIGABRT } }\n'),
    ]);
    expect(judged.stdout, judged.stderr).toMatch(/^PASS child-abort-expected\.yaml: 2 step/m);
    expect(judged.code).toBe(0);
    expect(cdevemuMounts()).toEqual([]);
  });

  asRoot('leaves the crash to a scenario that expects it', async () => {
    const program = `sh, -c, "exec 3<{mount}/dev/uio0; ${selfKill('SIGSEGV')}; exit 0"`;
    const timeline = '  - expect: { exit: 0, within: 10s }\n  - expect: { event: { type: process_crashed }, count: 1, fields: { signal: SIGSEGV } }\n';
    const r = await cdevemu(['run', await scenario('child-segv-expected.yaml', program, timeline)]);
    expect(r.stdout, r.stderr).toMatch(/ok {4}expect event \{"type":"process_crashed"\}: count == 1; signal == "SIGSEGV"/);
    expect(r.stdout).toMatch(/^PASS child-segv-expected\.yaml: 2 step/m);
    expect(r.code).toBe(0);
  });

  asRoot('leaves to the scenario only the crashes its filters match: an expected abort, not another child\'s SIGSEGV', async () => {
    const program = `sh, -c, "exec 3<{mount}/dev/uio0; python3 -c 'import os; os.abort()'; ${selfKill('SIGSEGV')}; exit 0"`;
    const timeline = '  - expect: { exit: 0, within: 10s }\n  - expect: { event: { type: process_crashed, signal: SIGABRT }, count: 1 }\n';
    const r = await cdevemu(['run', await scenario('child-abort-and-segv.yaml', program, timeline)]);
    expect(r.stdout, r.stderr).toMatch(/ok {4}expect event \{"type":"process_crashed","signal":"SIGABRT"\}: count == 1/);
    expect(r.stdout).toMatch(/FAIL {2}no process the program started crashed\n {11}pid \d+ \([^)]+\), started by pid \d+ \(sh\), was killed by SIGSEGV, a signal the run did not send: it crashed\n {11}whatever/);
    expect(r.stdout).toMatch(/^FAIL child-abort-and-segv\.yaml: no process the program started crashed$/m);
    expect(r.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });

  asRoot('takes no normal exit, no SIGTERM from the program, and no signal the run sent for a crash; a SIGQUIT from the program is one', async () => {
    // A child exits 3, another is ended by the program with signal $2; then the program opens uio0 and
    // waits with one more child, which the stop's SIGQUIT (a crash signal, but the run's) ends.
    const script = await shellScript('children.sh', 'sh -c "exit 3"\nsleep 30 & kill -"$2" $!; wait\nsleep 31 &\nexec 3<"$1"\nexec sleep 30\n');
    const program = (signal: string): string => `sh, ${script}, "{mount}/dev/uio0", ${signal}`;
    const timeline = '  - wait: { opened: uio0, timeout: 5s }\n  - stop: { signal: SIGQUIT, timeout: 5s }\n  - expect: { exit: SIGQUIT }\n';
    const clean = await cdevemu(['run', await scenario('no-crash.yaml', program('TERM'), timeline)]);
    expect(clean.stdout, clean.stderr).toMatch(/stopped: SIGQUIT, then the program was killed by SIGQUIT/);
    expect(clean.stdout).not.toMatch(/process crashed|note: crashes/);
    expect(clean.stdout).toMatch(/^PASS no-crash\.yaml: 3 step/m);
    expect(clean.code).toBe(0);
    // The same with the program's own SIGQUIT to its child: the run was watching.
    const quit = await cdevemu(['run', await scenario('child-quit.yaml', program('QUIT'), timeline)]);
    // (sh until it has exec'd sleep.)
    expect(quit.stdout, quit.stderr).toMatch(/process crashed: pid \d+ \((sh|sleep)\), started by pid \d+ \(sh\), was killed by SIGQUIT/);
    expect(quit.stdout).toMatch(/^FAIL child-quit\.yaml: no process the program started crashed$/m);
    expect(quit.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });

  asRoot('catches a child that crashes after its main thread exited (pthread_exit), whose main thread\'s exit said 0', async () => {
    const client = await cClient('crash_after_main');
    const program = `sh, -c, "exec 3<{mount}/dev/uio0; ${client}; exit 0"`;
    const r = await cdevemu(['run', await scenario('crash-after-main.yaml', program, '  - wait: { opened: uio0, timeout: 5s }\n  - expect: { exit: 0, within: 10s }\n')]);
    expect(r.stdout, r.stderr).toMatch(/process crashed: pid \d+ \((crash_after_ma[^)]*|<exited before its name was read>)\), started by pid \d+ \(sh\), was killed by SIGSEGV/);
    expect(r.stdout).toMatch(/^FAIL crash-after-main\.yaml: no process the program started crashed$/m);
    expect(r.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });

  asRoot('catches a grandchild orphaned by a double fork, without the environment mark, that crashes while the program runs on', async () => {
    // A python3 without the environment mark (env -i: no CDEVEMU_PROGRAM_TREE) forks twice; the
    // grandchild waits until its parent has exited and it is reparented, says its pid, and dies of
    // SIGBUS. The program waits until it is gone, then opens uio0: the wait for that open orders the
    // crash before the run's end.
    const orphan = [
      'import os, signal, sys, time',
      'if os.fork() == 0:',
      '    mid = os.getpid()',
      '    if os.fork() == 0:',
      '        while os.getppid() == mid: time.sleep(0.01)',
      '        with open(sys.argv[1], "w") as f: f.write(str(os.getpid()))',
      '        os.kill(os.getpid(), signal.SIGBUS)',
      '    os._exit(0)',
      'os.wait()',
    ].join('\n');
    const py = join(dir, 'orphan.py');
    await writeFile(py, `${orphan}\n`);
    const script = await shellScript(
      'double-fork.sh',
      `env -i /usr/bin/python3 ${py} "$2/orphan"\nuntil [ -s "$2/orphan" ]; do sleep 0.01; done\nwhile kill -0 "$(cat "$2/orphan")" 2>/dev/null; do sleep 0.01; done\nexec 3<"$1"\nexec sleep 30\n`,
    );
    const program = `sh, ${script}, "{mount}/dev/uio0", "{tmp}"`;
    const r = await cdevemu(['run', await scenario('orphan-bus.yaml', program, '  - wait: { opened: uio0, timeout: 10s }\n  - expect: { running: true }\n')]);
    expect(r.stdout, r.stderr).toMatch(/process crashed: pid \d+ \(python3\), started by pid \d+ \(python3\), was killed by SIGBUS/);
    expect(r.stdout).toMatch(/^FAIL orphan-bus\.yaml: no process the program started crashed$/m);
    expect(r.code).toBe(1);
    expect(cdevemuMounts()).toEqual([]);
  });
});

/** A shell script in the test's directory; its path. */
async function shellScript(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('without the kernel\'s process events', () => {
  let world: UserWorld;
  beforeAll(async () => {
    // The user's directory outside the test root, which only root may enter (UserWorld makes it in TMPDIR, this file's root).
    const tmp = process.env.TMPDIR;
    delete process.env.TMPDIR;
    try {
      world = await UserWorld.open();
    } finally {
      process.env.TMPDIR = tmp;
    }
  });
  afterAll(async () => {
    await world?.close();
  });

  it('an ordinary user\'s run says in a note that crashes of the program\'s processes are not watched, and fails a step about them', async () => {
    const file = join(world.dir, 'user.yaml');
    const text = (timeline: string): string =>
      `name: user\ndevices: [{ model: uio, name: uio0 }]\nprogram: { command: [sh, -c, "exec 3<{mount}/dev/uio0; exit 0"] }\ntimeline:\n  - wait: { opened: uio0, timeout: 5s }\n${timeline}`;
    await writeFile(file, text('  - expect: { exit: 0, within: 10s }\n'));
    await chown(file, world.uid, world.gid);
    const r = await world.run([process.execPath, cliPath, 'run', file], { timeoutMs: 60_000 });
    expect(r.stdout, r.stderr).toMatch(/note: crashes of the processes the program started are not watched in this run: joining the process events group failed: EPERM/);
    expect(r.stdout).toMatch(/^PASS user: 2 step/m);
    expect(r.code).toBe(0);
    // A count of none would hold whatever crashed: the step fails.
    await writeFile(file, text('  - expect: { event: { type: process_crashed }, count: 0 }\n'));
    const judged = await world.run([process.execPath, cliPath, 'run', file], { timeoutMs: 60_000 });
    expect(judged.stdout, judged.stderr).toMatch(/FAIL {2}expect event \{"type":"process_crashed"\}: count == 0 .*\n {11}process_crashed events cannot be seen in this run: joining the process events group failed: EPERM/);
    expect(judged.code).toBe(1);
  });
});
