/**
 * GET /v1/models and the schema checks behind it, through the real HTTP
 * server with curl: every model with its options and actions as the
 * daemon checks them, an unknown model answered with what exists, and an
 * option or action argument out of its range answered 400 bad_request
 * naming the field, the value and the range (not a model bug).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { builtinModels } from '../../src/models/index.js';
import { run } from '../helpers/proc.js';
import { startServer } from './server.js';

let s: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  s = await startServer();
  for (const m of builtinModels) s.core.mgr.registerModel(m);
});
afterAll(() => s.close());

async function curl(
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> & { error: string; code: string } }> {
  const data = body === undefined ? [] : ['-d', JSON.stringify(body)];
  const r = await run('curl', ['-sS', '-w', '\n%{http_code}', '--unix-socket', s.socket, ...data, `http://cdevemu${path}`]);
  expect(r.code, r.stderr).toBe(0);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)), json: JSON.parse(r.stdout.slice(0, i)) };
}

it('lists every model with its options and actions', async () => {
  const r = await run('curl', ['-sS', '--unix-socket', s.socket, 'http://cdevemu/v1/models']);
  const models = JSON.parse(r.stdout) as {
    name: string;
    description: string;
    options: unknown[] | null;
    actions: { name: string; args: unknown[] | null }[];
  }[];
  expect(models.map((m) => m.name)).toEqual(builtinModels.map((m) => m.name));
  for (const m of models) {
    expect(m.description, m.name).not.toBe('');
    expect(m.options, m.name).not.toBeNull();
    for (const a of m.actions) expect(a.args, `${m.name} ${a.name}`).not.toBeNull();
  }
  const echo = models.find((m) => m.name === 'echo')!;
  expect(echo.options).toContainEqual(expect.objectContaining({ name: 'capacity', type: 'integer', min: 1, default: 65536 }));
  const submit = models.find((m) => m.name === 'tcmu')!.actions.find((a) => a.name === 'submit')!;
  expect(submit.args).toContainEqual(
    expect.objectContaining({ name: 'allocationLength', type: 'integer', min: 0, max: 65535, default: 96 }),
  );
  // A model with regions has the region actions.
  expect(models.find((m) => m.name === 'uio')!.actions.map((a) => a.name)).toEqual(
    expect.arrayContaining(['irq', 'region_read', 'region_write']),
  );
});

it('shows one model, and answers 404 listing the models for an unknown one', async () => {
  const one = await curl('/v1/models/tcmu');
  expect(one.status).toBe(200);
  expect(one.json.name).toBe('tcmu');
  expect(await s.core.client.getModel('tcmu')).toEqual(one.json);
  expect(await s.core.client.listModels()).toContainEqual(one.json);

  const none = await curl('/v1/models/tcum');
  expect(none.status).toBe(404);
  expect(none.json.code).toBe('not_found');
  expect(none.json.error).toContain('no model named "tcum" (did you mean tcmu?)');
  expect(none.json.error).toContain('models: null, zero, full, echo, uio');
});

it('refuses an unknown model, option or action with what exists and a suggestion', async () => {
  const model = await curl('/v1/devices', { model: 'ecoh', name: 'e0' });
  expect(model).toMatchObject({ status: 400, json: { code: 'unknown_model' } });
  expect(model.json.error).toContain('(did you mean echo?)');

  const option = await curl('/v1/devices', { model: 'echo', name: 'e0', options: { capacty: 10 } });
  expect(option).toMatchObject({
    status: 400,
    json: { code: 'bad_request', error: 'echo: option capacty is unknown (did you mean capacity?); known: capacity' },
  });

  const range = await curl('/v1/devices', { model: 'echo', name: 'e0', options: { capacity: 0 } });
  expect(range).toMatchObject({ status: 400, json: { code: 'bad_request' } });
  expect(range.json.error).toMatch(/^echo: option capacity must be an integer from 1 to \d+, got 0$/);

  expect((await curl('/v1/devices', { model: 'tcmu', name: 'tcmu0' })).status).toBe(201);
  const action = await curl('/v1/devices/tcmu0/actions/stauts', {});
  expect(action).toMatchObject({ status: 404, json: { code: 'not_found' } });
  expect(action.json.error).toMatch(/model tcmu has no action "stauts" \(did you mean status\?\); actions: submit, tmr, /);
  expect(s.core.logger.errors).toEqual([]);
});

it('answers a tcmu allocationLength over 65535 with 400 bad_request, not a model bug', async () => {
  const r = await curl('/v1/devices/tcmu0/actions/submit', { arg: { op: 'inquiry', allocationLength: 70000 } });
  expect(r).toMatchObject({
    status: 400,
    json: { code: 'bad_request', error: 'tcmu: action submit: argument allocationLength must be an integer from 0 to 65535, got 70000' },
  });
  const type = await curl('/v1/devices/tcmu0/actions/submit', { arg: { op: 'read', lba: '0' } });
  expect(type).toMatchObject({
    status: 400,
    json: { code: 'bad_request', error: 'tcmu: action submit: argument lba must be an integer from 0 to 9007199254740991, got "0"' },
  });
  const op = await curl('/v1/devices/tcmu0/actions/submit', { arg: { op: 'format' } });
  expect(op.json.error).toBe(
    'tcmu: action submit: argument op must be one of "tur", "inquiry", "read_capacity10", "read_capacity16", "read", "write", "raw", got "format"',
  );
  expect(s.core.logger.errors).toEqual([]);
  expect(s.core.mgr.get('tcmu0')!.counters.actions).toBe(0);
});
