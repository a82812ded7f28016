/**
 * Seeded fuzzing of what users hand the daemon: control API bodies, config
 * files and scenario files. Every input is made invalid in one known field
 * (or is not JSON at all), so every one must be refused: a 4xx whose
 * message names the field, or a ConfigError / exit 2 at `file:line: field`.
 * The daemon keeps serving throughout and nothing prints a stack trace.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readDaemonConfig } from '../../src/config/daemon.js';
import { ConfigError, SourceDocument } from '../../src/config/document.js';
import { seededRng, type Rng } from '../../src/faults/rng.js';
import { readScenario } from '../../src/scenario/schema.js';
import { run } from '../helpers/proc.js';
import { Daemon, cli, rawRequest, scratch } from './harness.js';

const SEED = Number(process.env.CDEVEMU_FUZZ_SEED ?? 9);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;

/** Values no field accepts as they are, plus the field-specific ones below. */
const JUNK: readonly unknown[] = [null, true, [], [1, 2], {}, { a: 1 }, '', 'x'.repeat(300), '\u0000', '\u{1F4A5}', -1, 1.5, 2 ** 53, Infinity];

/** A fault rule field and values it must refuse, on a rule that is valid without them. */
const RULE_FIELDS: ReadonlyArray<[string, readonly unknown[]]> = [
  ['action', ['explode', 5, null, '']],
  ['errno', ['ENOTREAL', 5, 'eio', '']],
  ['op', ['readx', ['read', 'bogus'], 7, {}]],
  ['device', ['', 'a b', 'x'.repeat(256), '../zero', 'dev/zero', 5, '*'.repeat(300), 'zero\n']],
  ['nth', [0, -1, 1.5, 'three', 2 ** 60, Infinity]],
  ['every', [0, -3, 0.5, 2 ** 60]],
  ['first', [0, 'all', 2 ** 60]],
  ['count', [0, -1, 2 ** 60]],
  ['delayMs', [-1, 2 ** 31, 1e12, 'soon', Infinity]],
  ['jitterMs', [-1, 2 ** 31]],
  ['afterMs', [-5, 2 ** 31, 'later']],
  ['pid', [-1, 2 ** 40, 'init']],
  ['probability', [2, -0.1, 'half', Infinity]],
  ['comm', ['x'.repeat(16), 5, {}]],
  ['ioctl', ['TCGETS', -1, 2 ** 33, 1.5]],
  ['id', ['a b', '', 'x'.repeat(65), {}, 'a/b']],
];

/** A valid rule for `field` to spoil: delay fields need action delay, errno needs fail. */
function baseRule(field: string): Record<string, unknown> {
  if (field === 'delayMs' || field === 'jitterMs') return { device: 'zero', op: 'read', action: 'delay', delayMs: 1 };
  return { device: 'zero', op: 'read', action: 'fail', errno: 'EIO' };
}

/** One rule invalid in one field (or with one unknown field). */
function badRule(rng: Rng): { rule: Record<string, unknown>; field: string } {
  if (rng() < 0.1) {
    const field = `zz${Math.floor(rng() * 1000)}`;
    return { rule: { ...baseRule(''), [field]: pick(rng, JUNK) }, field };
  }
  const [field, bad] = pick(rng, RULE_FIELDS);
  // Junk of the wrong type; a comm may be any short string, so it gets only its own.
  const junk = JUNK.filter((j) => typeof j !== 'number' || field === 'device');
  const value = rng() < 0.8 || field === 'comm' ? pick(rng, bad) : pick(rng, junk);
  return { rule: { ...baseRule(field), [field]: value }, field };
}

/** A plug body invalid in one field. */
function badPlug(rng: Rng): { body: Record<string, unknown>; field: string } {
  const cases: Array<() => { body: Record<string, unknown>; field: string }> = [
    () => ({ body: { model: pick(rng, ['', 5, null, 'nosuch', []]), name: 'fz0' }, field: 'model' }),
    () => ({ body: { model: 'zero', name: pick(rng, ['', 'a/b', 'x'.repeat(256), '%d%d', 5, '..', 'a b']) }, field: 'name' }),
    () => ({ body: { model: 'echo', name: 'fz0', options: { capacity: pick(rng, [-1, 0, 1.5, 'big']) } }, field: 'capacity' }),
    () => ({ body: { model: 'zero', name: 'fz0', options: pick(rng, ['str', [1], 5]) }, field: 'options' }),
    () => ({ body: { model: 'zero', name: 'fz0', colour: 'red' }, field: 'colour' }),
  ];
  return pick(rng, cases)();
}

/** Serialized as JSON, except numbers JSON cannot write (1e400 reads back as Infinity). */
const toJson = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (x === Infinity ? '__INF__' : x)).replace(/"__INF__"/g, '1e400');

describe('control API bodies', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it(`refuses every spoiled body with a 4xx naming the field, and keeps serving (seed ${SEED})`, async () => {
    const rng = seededRng(SEED);
    const N = 200;
    for (let i = 0; i < N; i++) {
      const kind = rng();
      let path: string;
      let text: string;
      let names: RegExp;
      if (kind < 0.45) {
        const { rule, field } = badRule(rng);
        [path, text, names] = ['/v1/faults', toJson(rule), new RegExp(`\\b${field}\\b`)];
      } else if (kind < 0.75) {
        const { body, field } = badPlug(rng);
        [path, text, names] = ['/v1/devices', toJson(body), new RegExp(`\\b${field}\\b`)];
      } else if (kind < 0.9) {
        const v = pick(rng, [-1, 'soon', Infinity, 2 ** 31, null, [], {}]);
        [path, text, names] = ['/v1/devices/zero/unplug', toJson({ drainTimeoutMs: v }), /\bdrainTimeoutMs\b/];
      } else {
        // Not an object, or not JSON at all.
        const raw = pick(rng, ['{"action":', '[1,2', 'nul', '{"a":1}}', '"just a string"', '[]', '42', '\u0000{}']);
        [path, text, names] = [pick(rng, ['/v1/faults', '/v1/devices']), raw, /malformed JSON body|request body|rule: expected an object/];
      }
      const r = await rawRequest(d.socket, 'POST', path, text);
      const what = `POST ${path} ${text.slice(0, 200)} -> ${r.status} ${JSON.stringify(r.json)}`;
      expect(r.status, what).toBeGreaterThanOrEqual(400);
      expect(r.status, what).toBeLessThan(500);
      expect(String(r.json.error), what).toMatch(names);
    }
    // Nothing got in, nothing got out, the devices still read.
    expect(await d.client.listFaults()).toEqual([]);
    expect((await d.client.listDevices()).map((x) => x.name)).not.toContain('fz0');
    expect((await d.client.getDevice('zero')).state).toBe('live');
    expect((await run('head', ['-c', '3', d.dev('zero')])).stdout).toBe('\0\0\0');
    expect(d.proc.stderr).not.toMatch(/"level":(50|60)/);
    expect(d.proc.stderr).not.toContain('"stack"');
  });
});

/** A config document invalid in one field: the YAML and the field path its error must name. */
function badConfig(rng: Rng): { doc: Record<string, unknown>; path: string } {
  const cases: Array<() => { doc: Record<string, unknown>; path: string }> = [
    () => ({ doc: { mountpoint: pick(rng, [5, '', 'a\u0000b', [], null]) }, path: 'mountpoint' }),
    () => ({ doc: { socket: pick(rng, [5, '', {}, 'a\u0000b']) }, path: 'socket' }),
    () => ({ doc: { allowOther: pick(rng, ['yes', 1, null]) }, path: 'allowOther' }),
    () => ({ doc: { drainTimeoutMs: pick(rng, [-1, Infinity, 2 ** 31, 'x', null, 1e300]) }, path: 'drainTimeoutMs' }),
    () => ({ doc: { logLevel: pick(rng, ['loud', 5, '']) }, path: 'logLevel' }),
    () => ({ doc: { models: pick(rng, ['x', [5], [''], {}]) }, path: 'models' }),
    () => ({ doc: { devices: [{ model: pick(rng, [5, '', null]), name: 'a' }] }, path: 'devices[0].model' }),
    () => ({ doc: { devices: [{ model: 'zero', name: pick(rng, ['a b', 'x'.repeat(256), '', 5, 'a/b', '%d%d']) }] }, path: 'devices[0].name' }),
    () => ({ doc: { devices: [{ model: 'zero', name: 'z' }, { model: 'full', name: 'z' }] }, path: 'devices[1].name' }),
    () => ({ doc: { devices: [{ model: 'zero', name: 'z', extra: 1 }] }, path: 'devices[0].extra' }),
    () => ({ doc: { devices: [{ model: 'zero', name: 'z', options: pick(rng, ['x', [1], 5]) }] }, path: 'devices[0].options' }),
    () => {
      const { rule, field } = badRule(rng);
      return { doc: { faults: [rule] }, path: `faults[0].${field}` };
    },
    () => ({ doc: { [`zz${Math.floor(rng() * 100)}`]: 1 }, path: 'zz' }),
  ];
  return pick(rng, cases)();
}

/** A scenario invalid in one field. */
function badScenario(rng: Rng): { doc: Record<string, unknown>; path: string } {
  const step = (s: Record<string, unknown>) => ({ doc: { timeline: [s] } });
  const cases: Array<() => { doc: Record<string, unknown>; path: string }> = [
    () => ({ doc: step({ sleep: pick(rng, [-1, 2 ** 31, '5 parsecs', '30d', null, Infinity, '999999999m']) }).doc, path: 'timeline[0].sleep' }),
    () => ({ doc: step({ wait: { opened: 'x', timeout: pick(rng, [-1, 2 ** 31, 'never']) } }).doc, path: 'timeline[0].wait.timeout' }),
    () => ({ doc: step({ wait: { opened: pick(rng, [5, '', null]) } }).doc, path: 'timeline[0].wait.opened' }),
    () => ({ doc: step({ unplug: { device: 'x', drainTimeoutMs: pick(rng, [-1, 2 ** 31, 'soon']) } }).doc, path: 'timeline[0].unplug.drainTimeoutMs' }),
    () => ({ doc: step({ expect: { exit: pick(rng, [-1, 1.5, 'zero']) } }).doc, path: 'timeline[0].expect.exit' }),
    () => ({ doc: step({ [`dance${Math.floor(rng() * 10)}`]: 3 }).doc, path: 'timeline[0].dance' }),
    () => {
      const { rule, field } = badRule(rng);
      return { doc: step({ fault: rule }).doc, path: `timeline[0].fault.${field}` };
    },
    () => {
      const { rule, field } = badRule(rng);
      return { doc: { faults: [rule], timeline: [] }, path: `faults[0].${field}` };
    },
    () => ({ doc: { devices: [{ model: 'zero', name: pick(rng, ['a b', 'x'.repeat(256), '']) }], timeline: [] }, path: 'devices[0].name' }),
    () => ({ doc: { timeout: pick(rng, [-1, 2 ** 31, 'long']), timeline: [] }, path: 'timeout' }),
  ];
  return pick(rng, cases)();
}

/** Parses `text` as `file` with `read`; returns the ConfigError it must throw. */
function refusal(text: string, read: (doc: SourceDocument) => unknown): ConfigError {
  let err: unknown;
  try {
    read(SourceDocument.parse(text, 'fz.yaml'));
  } catch (e) {
    err = e;
  }
  expect(err, `accepted:\n${text}`).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

const files: Array<[string, (rng: Rng) => { doc: Record<string, unknown>; path: string }, (doc: SourceDocument) => unknown, string[]]> = [
  ['config', badConfig, (doc) => readDaemonConfig(doc, '/nonexistent'), ['daemon', '--config']],
  ['scenario', badScenario, (doc) => readScenario(doc, '/nonexistent'), ['run']],
];

for (const [kind, spoil, read, command] of files) {
  describe(`${kind} files`, () => {
    it(`refuses every spoiled ${kind} at file:line: field (seed ${SEED})`, () => {
      const rng = seededRng(SEED + 1);
      for (let i = 0; i < 300; i++) {
        const { doc, path } = spoil(rng);
        const text = stringify(doc);
        const err = refusal(text, read);
        expect(err.message, text).toMatch(/^fz\.yaml:\d+: /);
        expect(err.field, `${err.message}\n${text}`).toContain(path);
      }
    });

    it(`the CLI exits 2 with that one line and no stack (seed ${SEED})`, async () => {
      const rng = seededRng(SEED + 2);
      const dir = await scratch(`fuzz-${kind}`);
      for (let i = 0; i < 3; i++) {
        const { doc } = spoil(rng);
        const text = stringify(doc);
        const expected = refusal(text, read).message;
        const file = join(dir, 'fz.yaml');
        await writeFile(file, text);
        const args = kind === 'config' ? [...command, file, '--mount', join(dir, 'mnt'), '--socket', join(dir, 'ctl.sock')] : [...command, file];
        const r = await cli(args, { env: { ...process.env }, timeoutMs: 20_000 });
        expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 2, signal: null });
        // The same message, with the path as given.
        expect(r.stderr).toBe(`cdevemu: ${expected.replace(/^fz\.yaml/, file)}\n`);
      }
    });
  });
}
