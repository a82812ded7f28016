/**
 * POST /v1/events/{stream}/sync on a real daemon: a program opens and
 * closes a node 2,000 times and exits; the sync asked for right after
 * reaches the stream behind every one of its 4,000 events, so that a
 * verdict taken at the mark (`cdevemu run --socket` at its end) judges
 * them all. The mark is not an event; a stream that is not open, or a
 * token that is not one, is refused.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiError } from '../../src/control/client.js';
import type { DeviceEvent } from '../../src/core/index.js';
import { python } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { Daemon } from './harness.js';

let d: Daemon;
beforeAll(async () => {
  d = await Daemon.start();
});
afterAll(() => d.stop());

it('marks the stream behind every event recorded before the request', async () => {
  const ac = new AbortController();
  const events: DeviceEvent[] = [];
  const seenAtMark = new Map<string, number>();
  let opened!: (stream: number) => void;
  const stream = new Promise<number>((r) => (opened = r));
  const reading = (async () => {
    for await (const e of d.client.events({ signal: ac.signal, onOpen: (id) => opened(id), onSynced: (token) => seenAtMark.set(token, events.length) })) {
      events.push(e);
    }
  })();
  try {
    const id = await stream;
    const CYCLES = 2000;
    const r = await python(`import os,sys\nfor i in range(${CYCLES}): os.close(os.open(sys.argv[1], os.O_RDONLY))`, [d.dev('null')], { timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    await d.client.syncEvents(id, 'after-the-program');
    await until(() => seenAtMark.has('after-the-program'), 30_000, 'the sync mark');
    const mine = events.slice(0, seenAtMark.get('after-the-program')).filter((e) => e.device === 'null' && (e.type === 'opened' || e.type === 'released'));
    expect(mine).toHaveLength(2 * CYCLES);
    expect(events.some((e) => (e.type as string) === 'stream_synced')).toBe(false);

    await expect(d.client.syncEvents(id + 1000, 'x')).rejects.toMatchObject({ status: 404, code: 'not_found' });
    await expect(d.client.syncEvents(id, '')).rejects.toBeInstanceOf(ApiError);
    await expect(d.client.syncEvents(id, 'x'.repeat(65))).rejects.toMatchObject({ status: 400 });
  } finally {
    ac.abort();
    await reading.catch(() => {});
  }
});
