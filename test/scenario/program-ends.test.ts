/**
 * How the program under test ended, where the scenario did not judge it
 * (src/scenario/program-ends.ts): a program that never started, or one
 * that crashed, fails the run though every step about the devices held.
 * The CLI as a child process, its own emulator, real programs.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cdevemu } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';

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
