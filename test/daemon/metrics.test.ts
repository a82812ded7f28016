/**
 * GET /metrics on a real daemon, scraped with curl over its socket, while
 * real client processes open, write, read and hold its device nodes: the
 * samples follow that I/O, a fault's firing, an unplug with a file still
 * open and its late release.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/proc.js';
import { Holder } from '../models/holder.js';
import { Daemon } from './harness.js';

let d: Daemon;
beforeAll(async () => {
  d = await Daemon.start();
});
afterAll(() => d.stop());

async function scrape(): Promise<string> {
  const r = await run('curl', ['-sS', '--fail', '--unix-socket', d.socket, 'http://cdevemu/metrics']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/** The sample's value, or undefined when the series is absent. */
function value(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Scrapes until `pred` holds (a RELEASE reaches the daemon after the client's close returns). */
async function scrapeUntil(pred: (text: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = await scrape();
    if (pred(text)) return text;
    if (Date.now() > end) throw new Error(`metrics: ${what} not seen within ${timeoutMs} ms; last scrape:\n${text}`);
  }
}

const echo1 = '{device="echo0",model="echo",generation="1"}';
const zero1 = '{device="zero",model="zero",generation="1"}';

describe('GET /metrics on a running daemon', () => {
  it('has HELP and TYPE lines and the daemon gauges', async () => {
    const text = await scrape();
    expect(text).toMatch(/^# HELP cdevemu_device_opens_total \S/m);
    expect(text).toMatch(/^# TYPE cdevemu_device_opens_total counter$/m);
    expect(text).toMatch(/^# TYPE cdevemu_device_in_flight gauge$/m);
    expect(value(text, 'cdevemu_devices')).toBe((await d.client.status()).devices);
    expect(value(text, 'cdevemu_uptime_seconds')).toBeGreaterThan(0);
    expect(value(text, 'cdevemu_device_opens_total', echo1)).toBe(0);
  });

  it('counts opens, releases and bytes of real client I/O', async () => {
    const w = await run('sh', ['-c', `printf hello > ${d.dev('echo0')}`]);
    expect(w.code, w.stderr).toBe(0);
    const r = await run('head', ['-c', '5', d.dev('echo0')]);
    expect(r.stdout).toBe('hello');
    const text = await scrapeUntil((t) => value(t, 'cdevemu_device_releases_total', echo1) === 2, 'two releases of echo0');
    expect(value(text, 'cdevemu_device_opens_total', echo1)).toBe(2);
    expect(value(text, 'cdevemu_device_bytes_written_total', echo1)).toBe(5);
    expect(value(text, 'cdevemu_device_bytes_read_total', echo1)).toBe(5);
    expect(value(text, 'cdevemu_device_writes_total', echo1)).toBeGreaterThanOrEqual(1);
    expect(value(text, 'cdevemu_device_open_files', echo1)).toBe(0);
  });

  it('counts a fault that fired and the error it caused', async () => {
    const add = await d.cli(['fault', 'add', 'device=zero', 'op=read', 'nth=1', 'action=fail', 'errno=EIO']);
    expect(add.code, add.stderr).toBe(0);
    const r = await run('head', ['-c', '1', d.dev('zero')]);
    expect(r.code).not.toBe(0);
    const text = await scrape();
    expect(value(text, 'cdevemu_device_faults_fired_total', zero1)).toBe(1);
    expect(value(text, 'cdevemu_device_errors_total', zero1)).toBeGreaterThanOrEqual(1);
  });

  it('keeps an unplugged generation held open as its own series beside the new one, until its last close', async () => {
    const holder = await Holder.open(d.dev('echo0'));
    try {
      const replug = await d.cli(['replug', 'echo0']);
      expect(replug.code, replug.stderr).toBe(0);
      const held = await scrape();
      expect(value(held, 'cdevemu_device_live', echo1)).toBe(0);
      expect(value(held, 'cdevemu_device_open_files', echo1)).toBe(1);
      expect(value(held, 'cdevemu_device_live', echo1.replace('generation="1"', 'generation="2"'))).toBe(1);
      expect(await holder.op('close')).toBe('ok');
      await scrapeUntil((t) => value(t, 'cdevemu_device_opens_total', echo1) === undefined, 'echo0 generation 1 freed');
    } finally {
      holder.proc.kill();
    }
  });
});
