/**
 * A real daemon under event-stream subscribers that never read: curl
 * processes whose output pipe nobody reads (so curl stops reading the
 * socket), while a program opens and closes a device node 40,000 times
 * (80,000 events). The daemon drops them once each holds its limit, each
 * is told so by its stream's last line, a subscriber that reads gets every
 * event, and the daemon's RSS grows by a bounded amount, not by a copy of
 * the stream per stalled subscriber.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_QUEUED_BYTES } from '../../src/control/event-stream.js';
import { python, pythonInteractive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { Daemon, EventRecorder } from './harness.js';

const STALLED = 8;
const CYCLES = 40_000;
/** Cycles per batch of the subscribed flood: ~440 KB of events (~220 bytes a cycle), well under MAX_QUEUED_BYTES. */
const BATCH = 2000;

let d: Daemon;
const curls: ChildProcess[] = [];
beforeAll(async () => {
  d = await Daemon.start();
});
afterAll(async () => {
  for (const c of curls) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await d.stop();
});

async function rssMiB(pid: number): Promise<number> {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

async function metric(name: string): Promise<number> {
  const r = await run('curl', ['-sS', '--unix-socket', d.socket, 'http://cdevemu/metrics']);
  const line = r.stdout.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

/** Scrapes until the metric reaches `want`. */
async function metricReaches(name: string, want: number, timeoutMs = 30_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; (await metric(name)) !== want; ) {
    if (Date.now() > end) throw new Error(`${name} did not reach ${want} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const openClose = (n: number) =>
  python(`import os,sys\nfor i in range(${n}): os.close(os.open(sys.argv[1], os.O_RDONLY))`, [d.dev('null')], { timeoutMs: 180_000 });

/** Opens and closes argv[1] argv[2] times, in batches of argv[3], waiting for a line on stdin after each. */
const BATCHED = `
import os, sys
path, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for done in range(batch, n + 1, batch):
    for i in range(batch): os.close(os.open(path, os.O_RDONLY))
    print(done, flush=True)
    sys.stdin.readline()
`;

it('drops stalled curl subscribers with a last line saying so; RSS stays bounded; a reading subscriber gets every event', async () => {
  // The daemon's own growth from the opens, before any subscriber.
  expect((await openClose(CYCLES)).code).toBe(0);
  const before = await rssMiB(d.pid);

  for (let i = 0; i < STALLED; i++) {
    // stdout is a pipe nobody reads until the end: once it fills, curl stops reading the socket.
    curls.push(spawn('curl', ['-sS', '-N', '--unix-socket', d.socket, 'http://cdevemu/v1/events'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  }
  const reader = new EventRecorder(d.client);
  await metricReaches('cdevemu_event_subscribers', STALLED + 1);

  // Each batch starts once the reader has every event of the last, so the
  // daemon never holds more than a batch for it: however long a loaded
  // machine leaves the reader's process unscheduled, it is not dropped with
  // the stalled subscribers, which fall behind by the whole flood.
  const opened = (): number => reader.events.filter((e) => e.device === 'null' && e.type === 'opened').length;
  const flood = pythonInteractive(BATCHED, [d.dev('null'), String(CYCLES), String(BATCH)]);
  for (let done = BATCH; done <= CYCLES; done += BATCH) {
    expect(await flood.line(60_000)).toBe(String(done));
    await until(() => opened() >= done, 30_000, `the reader's ${done} opened events`);
    flood.send('');
  }
  expect(await flood.exited).toEqual({ code: 0, signal: null });
  const after = await rssMiB(d.pid);

  await metricReaches('cdevemu_event_subscribers_dropped_total', STALLED);
  // Before the fix each stalled subscriber kept its whole backlog, at ~3.7 bytes of RSS per byte queued
  // (~270 MiB here). Now each holds at most MAX_QUEUED_BYTES, and the lines are shared.
  expect(after - before).toBeLessThan(STALLED * 4 * (MAX_QUEUED_BYTES / 2 ** 20) + 16);

  // The reader got both events of every cycle.
  expect(opened()).toBe(CYCLES);
  await reader.stop();

  // Each stalled curl, reading again, gets what was queued and then the notice, and the stream ends.
  const outputs = await Promise.all(
    curls.map(
      (c) =>
        new Promise<string>((resolve) => {
          let text = '';
          c.stdout!.setEncoding('utf8');
          c.stdout!.on('data', (s: string) => (text += s));
          c.once('close', () => resolve(text));
        }),
    ),
  );
  for (const out of outputs) {
    const lines = out.trim().split('\n');
    expect(lines.length).toBeGreaterThan(1);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ type: 'subscriber_dropped', limitBytes: MAX_QUEUED_BYTES });
    expect(JSON.parse(lines.at(-2)!)).toMatchObject({ device: 'null' });
  }
  expect(curls.map((c) => c.exitCode)).toEqual(curls.map(() => 0));
  await metricReaches('cdevemu_event_subscribers', 0);
});
