/**
 * A `signal: SIGSTOP` step ends only once every thread of the program is
 * stopped (src/scenario/stopped.ts): the scenario runner with a real
 * program whose threads cannot all stop at once (test/clients/slow_to_stop.c:
 * one spins, under a name with ") T (" in it, and one waits in vfork() for
 * a child the test lets go). Before, the step ended as soon as kill(2)
 * returned, with that thread still running on. The program needs no
 * device: the target has none, as a scenario without devices. No mount,
 * no root.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SourceDocument } from '../../src/config/index.js';
import { readScenario, runScenario, type ScenarioResult } from '../../src/scenario/index.js';
import { unstoppedThreads } from '../../src/scenario/stopped.js';
import { readStat } from '../../src/sys/procstat.js';
import { cClient } from '../helpers/cc.js';
import { targetWithoutDevices } from '../helpers/scenario-target.js';
import { until } from '../helpers/wait.js';

interface Thread {
  tid: number;
  comm: string;
  state: string;
}

/** slow_to_stop's threads by name, sorted. */
const NAMES = ['in vfork', 'sleeper (s)', 'sleeper (s)', 'sleeper (s)', 'sleeper (s)', 'slow_to_stop', 'spin) T (x'];
const equalNames = (ts: Thread[]): boolean => ts.map((t) => t.comm).sort().join('\0') === NAMES.join('\0');

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

/** A run of slow_to_stop under a scenario: its pid once started, the lines printed so far, and the outcome. */
interface Run {
  pid: () => number;
  out: string[];
  fifo: string;
  done: Promise<ScenarioResult>;
}

/**
 * Starts a run of `timeline` (YAML lines) with slow_to_stop as the
 * program. The target's one action, `ready`, waits until the program's
 * vfork thread is in vfork(). `onLine` sees each line the run prints, as
 * it prints it.
 */
async function start(timeline: string[], onLine: (line: string, pid: number) => void = () => {}): Promise<Run> {
  dir = mkdtempSync(join(tmpdir(), 'cdevemu-stopped-'));
  const fifo = join(dir, 'release');
  execFileSync('mkfifo', [fifo]);
  mkdirSync(join(dir, 'stage'));
  mkdirSync(join(dir, 'tmp'));
  const bin = await cClient('slow_to_stop');
  const text = ['name: stop', `program: { command: [${bin}, ${fifo}] }`, 'timeline:', ...timeline.map((l) => `  - ${l}`)].join('\n');
  const scenario = readScenario(SourceDocument.parse(text, 'stop.yaml'), dir);
  let pid = 0;
  const target = targetWithoutDevices(join(dir, 'mnt'), async (_device, action) => {
    if (action !== 'ready') throw new Error(`no action ${action}`);
    // Every thread named (each names itself once it runs: a SIGSTOP before would catch it under slow_to_stop's name), the vfork one in vfork().
    const ready = (): boolean => {
      const ts = threads(pid);
      return equalNames(ts) && ts.some((t) => t.comm === 'in vfork' && t.state === 'D');
    };
    await until(ready, 20_000, 'the program\'s threads named, one in vfork()');
    return {};
  });
  const out: string[] = [];
  const done = runScenario(scenario, {
    target,
    stageDir: join(dir, 'stage'),
    tmpDir: join(dir, 'tmp'),
    out: (line) => {
      pid ||= Number(/started .* \(pid (\d+)\)/.exec(line)?.[1] ?? 0);
      out.push(line);
      onLine(line, pid);
    },
  });
  return { pid: () => pid, out, fifo, done };
}

/** Every thread of `pid`: tid, name and state. */
function threads(pid: number): Thread[] {
  if (!pid) return [];
  const dir = `/proc/${pid}/task`;
  let tids: string[];
  try {
    tids = readdirSync(dir);
  } catch {
    return [];
  }
  return tids.flatMap((tid) => {
    const s = readStat(`${dir}/${tid}/stat`);
    return s ? [{ tid: Number(tid), comm: s.comm, state: s.state }] : [];
  });
}

/**
 * Lets the vfork child exit: it blocks opening the FIFO for reading, and a
 * writer's open ends that. Its parent thread is in vfork() from the fork
 * on, so the child may not have reached its open yet: until it has, a
 * non-blocking open for writing fails ENXIO (fifo(7)), and is tried again.
 */
async function release(fifo: string): Promise<void> {
  await until(
    () => {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENXIO') return false;
        throw err;
      }
    },
    20_000,
    'the vfork child opening the FIFO',
  );
}

describe('signal: SIGSTOP', { timeout: 60_000 }, () => {
  it('ends once every thread is stopped, one that could not stop at once included', async () => {
    let atStep: Thread[] | null = null;
    const r = await start(['action: { device: p, action: ready }', 'signal: { signal: SIGSTOP, timeout: 40s }', 'expect: { running: true }'], (line, pid) => {
      // The process the moment the step says it is done.
      if (line.includes('ok    signal SIGSTOP')) atStep = threads(pid);
    });
    // The signal is out once the other threads have stopped; the vfork
    // thread cannot, so the step must still be waiting.
    const othersStopped = (): boolean => {
      const ts = threads(r.pid());
      return ts.length === NAMES.length && ts.every((t) => (t.comm === 'in vfork' ? t.state === 'D' : t.state === 'T'));
    };
    await until(othersStopped, 20_000, 'every thread but the vfork one stopped');
    expect(atStep, r.out.join('\n')).toBeNull();
    expect(unstoppedThreads(r.pid())).toEqual([{ tid: expect.any(Number), comm: 'in vfork', state: 'D' }]);
    await release(r.fifo);
    const result = await r.done;
    expect(result.passed, r.out.join('\n')).toBe(true);
    expect(atStep, r.out.join('\n')).not.toBeNull();
    const seen: Thread[] = atStep!;
    expect(seen.map((t) => t.comm).sort()).toEqual(NAMES);
    expect(seen.filter((t) => t.state !== 'T')).toEqual([]);
  });

  it('fails at its timeout naming each thread not stopped and its state; the program is still ended', async () => {
    const r = await start(['action: { device: p, action: ready }', 'signal: { signal: SIGSTOP, timeout: 3s }', 'expect: { running: true }']);
    const pid = await r.done.then(() => r.pid());
    const failed = (await r.done).steps.find((s) => s.status === 'failed');
    expect(failed?.title, r.out.join('\n')).toBe('signal SIGSTOP to the program');
    // Only the vfork thread: the spinner, whose name holds ") T (", has stopped and is not listed.
    expect(failed?.message).toMatch(new RegExp(`^the stop of every thread of the program \\(pid ${pid}\\) did not happen within 3000 ms: still not stopped: tid \\d+ \\(in vfork\\) in state D$`));
    expect((await r.done).steps.at(-1)).toMatchObject({ title: 'expect program still running', status: 'skipped' });
    expect(threads(pid)).toEqual([]);
  });

  it('fails as soon as the program exits while it waits', async () => {
    const r = await start(['action: { device: p, action: ready }', 'signal: { signal: SIGSTOP, timeout: 40s }', 'expect: { running: true }']);
    await until(() => threads(r.pid()).filter((t) => t.state === 'T').length === NAMES.length - 1, 20_000, 'every thread but the vfork one stopped');
    process.kill(r.pid(), 'SIGKILL');
    const result = await r.done;
    const failed = result.steps.find((s) => s.status === 'failed');
    expect(failed, r.out.join('\n')).toMatchObject({ title: 'signal SIGSTOP to the program' });
    expect(failed?.message).toMatch(/^the program was killed by SIGKILL before the stop of every thread of the program/);
  });
});
