/**
 * GET /metrics through the real HTTP server, scraped with curl over the Unix
 * socket: the exposition format's HELP/TYPE lines, labels, escaping, and
 * values that follow the device's counters. (test/daemon/metrics.test.ts
 * scrapes a real daemon after real client I/O on a mount.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { escapeLabelValue } from '../../src/control/metrics.js';
import { run } from '../helpers/proc.js';
import { call, io, openNode, pipeModel } from '../core/helpers.js';
import { startServer } from './server.js';

let s: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  s = await startServer();
});
afterAll(() => s.close());

async function scrape(): Promise<{ type: string; body: string }> {
  const r = await run('curl', ['-sS', '-D', '-', '--unix-socket', s.socket, 'http://cdevemu/metrics']);
  expect(r.code, r.stderr).toBe(0);
  const [head, body] = r.stdout.split('\r\n\r\n') as [string, string];
  return { type: /^content-type: (.*)$/im.exec(head)?.[1]?.trim() ?? '', body };
}

const sample = (body: string, name: string, labels: string): number | undefined => {
  const line = body.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

it('escapes backslash, double quote and newline in label values', () => {
  expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
});

it('answers the text format, with labels per device generation and values that follow its I/O', async () => {
  s.core.mgr.registerModel(pipeModel({ name: 'pi"pe\\1' }));
  await s.core.mgr.plug({ model: 'pi"pe\\1', name: 'p0' });
  const labels = '{device="p0",model="pi\\"pe\\\\1",generation="1"}';

  const before = await scrape();
  expect(before.type).toBe('text/plain; version=0.0.4; charset=utf-8');
  for (const family of ['cdevemu_device_opens_total', 'cdevemu_devices', 'cdevemu_uptime_seconds']) {
    expect(before.body).toMatch(new RegExp(`^# HELP ${family} \\S`, 'm'));
    expect(before.body).toMatch(new RegExp(`^# TYPE ${family} (counter|gauge)$`, 'm'));
  }
  expect(sample(before.body, 'cdevemu_devices', '')).toBe(1);
  expect(sample(before.body, 'cdevemu_device_opens_total', labels)).toBe(0);

  const file = await openNode(s.core.publisher, 'p0');
  await call(() => file.write!(Buffer.from('hello'), io()));
  const during = await scrape();
  expect(sample(during.body, 'cdevemu_device_opens_total', labels)).toBe(1);
  expect(sample(during.body, 'cdevemu_device_bytes_written_total', labels)).toBe(5);
  expect(sample(during.body, 'cdevemu_device_open_files', labels)).toBe(1);

  await s.core.mgr.unplug('p0');
  await file.release();
  const after = await scrape();
  // The generation was freed at its last close: its series is gone.
  expect(sample(after.body, 'cdevemu_device_opens_total', labels)).toBeUndefined();
  expect(sample(after.body, 'cdevemu_devices', '')).toBe(0);
});
