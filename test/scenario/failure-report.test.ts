/**
 * What a failed `wait` reports (src/scenario/runner.ts, threads.ts), at
 * its bounds: a program of many threads is named up to 16 of them, a
 * thread on a CPU by its state alone, and a device whose status action
 * never answers holds the report up 2 s at most, not until the scenario's
 * timeout. Real processes, a target with no mount; no root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { SourceDocument } from '../../src/config/index.js';
import { readScenario, runScenario } from '../../src/scenario/index.js';
import { describeWhereThreadsAre, liveThreads } from '../../src/scenario/threads.js';
import { targetWithoutDevices } from '../helpers/scenario-target.js';
import { until } from '../helpers/wait.js';

let child: ChildProcess | null = null;
let dir = '';
afterEach(() => {
  if (child?.pid && child.exitCode === null) child.kill('SIGKILL');
  child = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

it('names at most 16 threads of a program, each with its state and where it sleeps, and says how many more there were', async () => {
  // 20 threads waiting on an Event, and the main thread joining them: 21.
  const program = 'import threading\ne = threading.Event()\nts = [threading.Thread(target=e.wait) for _ in range(20)]\nfor t in ts: t.start()\nfor t in ts: t.join()';
  child = spawn('python3', ['-c', program], { stdio: 'ignore' });
  const pid = child.pid!;
  await until(() => readdirSync(`/proc/${pid}/task`).length === 21, 20_000, 'the 21 threads started');
  // Every thread asleep: a thread still starting may be running, with no wchan.
  await until(() => liveThreads(pid)?.every((t) => t.state === 'S') ?? false, 20_000, 'every thread asleep');
  const report = describeWhereThreadsAre(pid)!;
  const parts = report.split('; ');
  expect(parts.pop()).toBe('and 5 more');
  expect(parts).toHaveLength(16);
  for (const p of parts) expect(p).toMatch(/^tid \d+ \(python3\) S in \w+/);
  child.kill('SIGKILL');
  await until(() => liveThreads(pid) === null, 20_000, 'the program gone');
  expect(describeWhereThreadsAre(pid)).toBeNull();
});

it('gives a thread on a CPU its state alone: its wchan reads "0", which names no function', async () => {
  // A busy loop never sleeps: runnable from start to end, so its wchan stays "0".
  child = spawn('/bin/sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
  const pid = child.pid!;
  // Its name once exec'd: before, the forked child runs under its parent's.
  await until(() => liveThreads(pid)?.some((t) => t.comm === 'sh' && t.state === 'R') ?? false, 20_000, 'the loop running');
  expect(describeWhereThreadsAre(pid)).toBe(`tid ${pid} (sh) R`);
});

it("a device's status that never answers holds a failed wait's report up 2 s at most, not until the scenario's timeout", async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdevemu-report-'));
  mkdirSync(join(dir, 'stage'));
  mkdirSync(join(dir, 'tmp'));
  const text = ['name: report', 'timeout: 15s', 'program: { command: [sleep, "60"] }', 'timeline:', '  - wait: { event: { type: fault_fired, device: d0 }, timeout: 200ms }'].join('\n');
  let asked = 0;
  const target = targetWithoutDevices(join(dir, 'mnt'), (_device, action) => {
    if (action === 'status') asked++;
    return new Promise(() => {}); // a model that never answers
  });
  const out: string[] = [];
  const r = await runScenario(readScenario(SourceDocument.parse(text, 'report.yaml'), dir), {
    target,
    stageDir: join(dir, 'stage'),
    tmpDir: join(dir, 'tmp'),
    out: (line) => out.push(line),
  });
  expect(r.passed).toBe(false);
  expect(asked).toBe(1);
  // The wait's own failure, with no status line and the program's thread; not the scenario's timeout.
  const failed = r.steps.find((s) => s.status === 'failed')!;
  expect(failed.message, out.join('\n')).toMatch(/^event \{"type":"fault_fired","device":"d0"\} did not happen within 200 ms: [^\n]*\nprogram threads then: tid \d+ \(sleep\) S in \w+$/);
});
