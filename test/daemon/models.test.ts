/**
 * `cdevemu models` against a real daemon: the table of every model, one
 * model's options and actions as the daemon checks them (--json equal to
 * GET /v1/models/{model} through curl), and an unknown model answered with
 * what exists and a suggestion, exit 2. A user model module declares its
 * options and actions the same way, and is checked the same way; one whose
 * declaration contradicts itself is not loaded.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { builtinModels } from '../../src/models/index.js';
import { run } from '../helpers/proc.js';
import { Daemon, scratch } from './harness.js';

let d: Daemon;
beforeAll(async () => {
  d = await Daemon.start();
});
afterAll(() => d.stop());

it('lists every model with its description and actions', async () => {
  const r = await d.cli(['models']);
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.split('\n');
  expect(lines[0]).toMatch(/^MODEL +DESCRIPTION +ACTIONS$/);
  for (const m of builtinModels)
    expect(
      lines.some((l) => l.startsWith(`${m.name} `) && l.includes(m.description!)),
      m.name,
    ).toBe(true);
  expect(lines.find((l) => l.startsWith('tcmu '))).toMatch(/ submit, tmr, .*region_read, region_write$/);
});

it('shows one model: options and action arguments with type, range and default, as GET /v1/models/{model} answers', async () => {
  const json = await d.cli(['models', 'tcmu', '--json']);
  expect(json.code, json.stderr).toBe(0);
  const viaCurl = await run('curl', ['-sS', '--unix-socket', d.socket, 'http://cdevemu/v1/models/tcmu']);
  expect(JSON.parse(json.stdout)).toEqual(JSON.parse(viaCurl.stdout));
  expect(JSON.parse(json.stdout)).toMatchObject({
    name: 'tcmu',
    options: expect.arrayContaining([
      expect.objectContaining({ name: 'hwBlockSize', type: 'integer', min: 512, max: 65536, default: 512 }),
    ]),
  });

  const text = await d.cli(['models', 'tcmu']);
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toMatch(/^ {2}hwBlockSize +integer +512\.\.65536 +512 +the block size/m);
  expect(text.stdout).toMatch(/^ {2}submit: one SCSI command/m);
  expect(text.stdout).toMatch(/^ {4}allocationLength +integer +0\.\.65535 +96 +inquiry: bytes of data in$/m);
  expect(text.stdout).toMatch(/^ {4}op +string +tur\|inquiry\|.*\|raw +\(required\)/m);
});

it('answers an unknown model with the models and a suggestion, exit 2', async () => {
  const r = await d.cli(['models', 'tcum']);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('no model named "tcum" (did you mean tcmu?); models: null, zero, full, echo, uio, evdev');
  const plug = await d.cli(['plug', 'tcum', 'x0']);
  expect(plug.code).toBe(2);
  expect(plug.stderr).toContain('(did you mean tcmu?)');
  const option = await d.cli(['plug', 'echo', 'e0', '--option', 'capacity=0']);
  expect(option.code).toBe(2);
  expect(option.stderr).toBe('cdevemu: echo: option capacity must be an integer from 1 to 1073741824, got 0 (bad_request)\n');
});

it("checks a user model's declared options and action arguments, and shows them; a self-contradicting schema is not loaded", async () => {
  const dir = await scratch('usermodels');
  const good = join(dir, 'lamp.mjs');
  await writeFile(
    good,
    `export default {
      name: 'lamp',
      description: 'a lamp',
      stream: true,
      options: { watts: { type: 'integer', min: 1, max: 100, default: 40, description: 'power' } },
      create: (_inst, options) => ({ watts: options.watts, on: false }),
      read: (file, size) => Buffer.from(String(file.instance.state.watts)).subarray(0, size),
      actions: {
        switch: { description: 'on or off', args: { on: { type: 'boolean', required: true, description: 'on' } }, run: (inst, a) => ({ on: (inst.state.on = a.on) }) },
      },
    };\n`,
  );
  const bad = join(dir, 'bad.mjs');
  await writeFile(
    bad,
    `export default { name: 'bad', options: { n: { type: 'integer', min: 1, default: 0, description: 'n' } }, create: () => null };\n`,
  );
  const u = await Daemon.start({ dir, args: ['--model', good, '--model', bad, '--log-level', 'warn'] });
  try {
    expect(u.proc.stderr).toMatch(
      /MODEL MODULE NOT LOADED: .*bad\.mjs: default export \(bad\): options: schema field n default must be an integer >= 1, got 0/,
    );
    const shown = await u.cli(['models', 'lamp']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^ {2}watts +integer +1\.\.100 +40 +power$/m);
    expect(shown.stdout).toMatch(/^ {4}on +boolean +- +\(required\) +on$/m);

    const refused = await u.cli(['plug', 'lamp', 'l0', '--option', 'watts=200']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe('cdevemu: lamp: option watts must be an integer from 1 to 100, got 200 (bad_request)\n');
    expect((await u.cli(['plug', 'lamp', 'l0'])).code).toBe(0);
    expect((await run('head', ['-c', '2', u.dev('l0')])).stdout).toBe('40');
    const sw = await u.cli(['action', 'l0', 'switch', '{"on": "yes"}']);
    expect(sw.code).toBe(2);
    expect(sw.stderr).toBe('cdevemu: lamp: action switch: argument on must be a boolean, got "yes" (bad_request)\n');
    expect(JSON.parse((await u.cli(['action', 'l0', 'switch', '{"on": true}'])).stdout)).toEqual({ on: true });
  } finally {
    await u.stop();
  }
});
