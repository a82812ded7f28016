/**
 * GET /v1/events under subscribers that stop reading, through the real
 * HTTP server on a Unix socket: a raw socket that never reads is dropped
 * once its socket holds MAX_QUEUED_BYTES unsent, and is told so by the
 * stream's last line; what the streams hold stays bounded all along
 * (cdevemu_event_queued_bytes); a subscriber that reads keeps getting every
 * event; the typed client reports a drop as an error; beyond
 * MAX_SUBSCRIBERS streams the answer is 503. (test/daemon/event-streams.test.ts
 * measures the daemon's RSS under stalled curl clients.)
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EventStreamDroppedError } from '../../src/control/client.js';
import { MAX_QUEUED_BYTES, MAX_SUBSCRIBERS } from '../../src/control/event-stream.js';
import type { DeviceEvent } from '../../src/control/protocol.js';
import { run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { startServer } from './server.js';

let s: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  s = await startServer();
});
afterAll(() => s.close());

let seq = 0;
/** Records `n` events, one event-loop turn per 100 (as requests arrive), each numbered. */
async function burst(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    s.core.mgr.events.record({ type: 'tick', device: 'd0', generation: 1, at: Date.now(), n: seq++, pad: 'x'.repeat(64) });
    if (i % 100 === 99) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setImmediate(r));
}

async function metric(name: string): Promise<number> {
  const r = await run('curl', ['-sS', '--unix-socket', s.socket, 'http://cdevemu/metrics']);
  const line = r.stdout.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

/** A raw HTTP subscriber that reads nothing until told to: what it got, once resumed, is in `text`. */
class Stalled {
  readonly sock: Socket;
  text = '';
  readonly ended: Promise<void>;

  constructor(path: string) {
    this.sock = connect(s.socket);
    this.sock.on('connect', () => this.sock.write(`GET ${path} HTTP/1.1\r\nHost: cdevemu\r\n\r\n`));
    this.sock.pause();
    this.ended = new Promise((resolve) => this.sock.once('close', () => resolve()));
    this.sock.on('error', () => {});
  }

  resume(): void {
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d: string) => (this.text += d));
    this.sock.resume();
  }

  /** The body's NDJSON lines, with the chunked framing taken out. */
  lines(): string[] {
    const body = this.text.slice(this.text.indexOf('\r\n\r\n') + 4);
    let out = '';
    for (let at = 0; ; ) {
      const eol = body.indexOf('\r\n', at);
      const size = parseInt(body.slice(at, eol), 16);
      if (!(size > 0)) break;
      out += body.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
    return out.split('\n').filter(Boolean);
  }
}

it('drops subscribers that stop reading, tells them so, bounds what they hold, and keeps the others going', async () => {
  const stalled = [new Stalled('/v1/events'), new Stalled('/v1/events'), new Stalled('/v1/events')];
  const reader: DeviceEvent[] = [];
  const ac = new AbortController();
  const reading = (async () => {
    for await (const e of s.core.client.events({ signal: ac.signal })) reader.push(e);
  })();
  await until(() => s.server.streamStats().subscribers === 4, 10_000, 'four subscribers');

  const first = seq;
  let most = 0;
  while (s.server.streamStats().dropped < stalled.length) {
    await burst(1000);
    most = Math.max(most, await metric('cdevemu_event_queued_bytes'));
  }
  // Each held at most the limit plus one turn's batch (100 events) before it was dropped.
  expect(most).toBeLessThanOrEqual(stalled.length * (MAX_QUEUED_BYTES + 100 * 200));
  expect(await metric('cdevemu_event_subscribers_dropped_total')).toBe(stalled.length);

  // The reader got every event, and goes on getting them after the drop.
  await burst(10);
  await until(() => reader.length === seq - first, 10_000, `the reader's ${seq - first} events`);
  expect(reader.map((e) => e.n)).toEqual([...Array(seq - first).keys()].map((i) => first + i));

  // A stalled one that reads again gets what was queued, in order, then the notice, then the end.
  for (const st of stalled) st.resume();
  await Promise.all(stalled.map((st) => st.ended));
  for (const st of stalled) {
    const lines = st.lines();
    const notice = JSON.parse(lines.pop()!) as Record<string, unknown>;
    expect(notice).toMatchObject({ type: 'subscriber_dropped', limitBytes: MAX_QUEUED_BYTES });
    expect(notice.queuedBytes).toBeGreaterThan(MAX_QUEUED_BYTES);
    expect(notice.error).toMatch(/fell \d+ bytes behind \(limit 1048576\) and was dropped/);
    const got = lines.map((l) => (JSON.parse(l) as DeviceEvent).n);
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual([...Array(got.length).keys()].map((i) => first + i));
  }
  await until(() => s.server.streamStats().subscribers === 1, 10_000, 'the dropped streams closed');
  expect(await metric('cdevemu_event_subscribers')).toBe(1);
  ac.abort();
  await reading;
  await until(() => s.server.streamStats().subscribers === 0, 10_000, 'the reader gone');
});

it('ends the typed client with EventStreamDroppedError when it falls behind', async () => {
  const it = s.core.client.events()[Symbol.asyncIterator]();
  const firstEvent = it.next(); // the generator connects on its first pull
  await until(() => s.server.streamStats().subscribers === 1, 10_000, 'the subscriber');
  const dropped = s.server.streamStats().dropped;
  await burst(1);
  expect((await firstEvent).done).toBe(false);
  // Not pulled: the client's socket stops reading once Node's buffers fill.
  while (s.server.streamStats().dropped === dropped) await burst(1000);
  let err: unknown;
  try {
    while (!(await it.next()).done);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(EventStreamDroppedError);
  expect((err as Error).message).toMatch(/^the daemon dropped the event stream: this subscriber fell \d+ bytes behind/);
});

it(`answers 503 too_many_subscribers beyond ${MAX_SUBSCRIBERS} streams`, async () => {
  const open = Array.from({ length: MAX_SUBSCRIBERS }, () => new Stalled('/v1/events'));
  try {
    await until(() => s.server.streamStats().subscribers === MAX_SUBSCRIBERS, 20_000, `${MAX_SUBSCRIBERS} subscribers`);
    const r = await run('curl', ['-sS', '-D', '-', '--unix-socket', s.socket, 'http://cdevemu/v1/events']);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 503 /);
    expect(r.stdout).toMatch(/^retry-after: 1\r$/im);
    const body = JSON.parse(r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4)) as { code: string; error: string };
    expect(body).toEqual({ code: 'too_many_subscribers', error: `${MAX_SUBSCRIBERS} event streams are open, the most the daemon serves; close one and retry` });
  } finally {
    for (const st of open) st.sock.destroy();
  }
  await until(() => s.server.streamStats().subscribers === 0, 10_000, 'the streams closed');
  const again = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-m', '1', '--unix-socket', s.socket, 'http://cdevemu/v1/events']);
  expect(again.stdout).toBe('200');
});
