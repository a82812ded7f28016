/**
 * How the control API answers a plug the model refuses, through the real
 * HTTP server with curl: a region layout the options ask for is a bad
 * option (400 bad_request naming it), like an option out of the range its
 * schema declares; a layout a model declares by itself is a model bug
 * (500 probe_failed).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { uioModel } from '../../src/models/uio.js';
import { pageSize } from '../../src/sys/ffi.js';
import { run } from '../helpers/proc.js';
import { startServer } from './server.js';

let s: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  s = await startServer();
  s.core.mgr.registerModel(uioModel);
  s.core.mgr.registerModel({ name: 'buggy', regions: () => [{ size: pageSize() + 1 }, { size: 1 }], create: () => null });
});
afterAll(() => s.close());

async function plug(body: unknown): Promise<{ status: number; json: { error: string; code: string } }> {
  const r = await run('curl', ['-sS', '-w', '\n%{http_code}', '--unix-socket', s.socket, '-d', JSON.stringify(body), 'http://cdevemu/v1/devices']);
  expect(r.code, r.stderr).toBe(0);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)), json: JSON.parse(r.stdout.slice(0, i)) as { error: string; code: string } };
}

it('answers 400 bad_request naming the option when the options ask for a region layout that cannot be', async () => {
  const big = await plug({ model: 'uio', name: 'uio0', options: { maps: [{ size: 2 * pageSize() }, { size: 4096 }] } });
  expect(big.status).toBe(400);
  expect(big.json.code).toBe('bad_request');
  expect(big.json.error).toContain(`option maps[0].size (region map0): ${2 * pageSize()} bytes; every region but the last must fit in one page`);

  const order = await plug({ model: 'uio', name: 'uio0', options: { maps: [{ size: 64 }, { size: 64, onUnplug: 'keep' }] } });
  expect(order.status).toBe(400);
  expect(order.json.code).toBe('bad_request');
  expect(order.json.error).toContain(`option maps[1].onUnplug (region map1): 'keep' after region map0, which is 'revoke'; put 'keep' regions first`);

  // An option out of its declared range: refused before create(), naming the field, value and range.
  const bad = await plug({ model: 'uio', name: 'uio0', options: { maps: [{ size: 0 }] } });
  expect(bad).toMatchObject({ status: 400, json: { code: 'bad_request', error: 'uio: option maps[0].size must be an integer from 1 to 1073741824, got 0' } });
  expect(s.core.mgr.list()).toEqual([]);
  // None of them is logged as a model failure.
  expect(s.core.logger.errors).toEqual([]);
  // The name is still free.
  expect((await plug({ model: 'uio', name: 'uio0', options: { maps: [{ size: 64, onUnplug: 'keep' }, { size: 64 }] } })).status).toBe(201);
});

it('answers 500 probe_failed, and logs it, when a model declares a layout that cannot be by itself', async () => {
  const logged = s.core.logger.errors.length;
  const r = await plug({ model: 'buggy', name: 'b0' });
  expect(r.status).toBe(500);
  expect(r.json.code).toBe('probe_failed');
  expect(r.json.error).toContain('region map0: ');
  expect(s.core.logger.errors.slice(logged).map((e) => e.msg)).toEqual(['model regions refused']);
});
