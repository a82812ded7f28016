/**
 * Issue 3's stress run: 32 client processes loop open/write/poll/read/close
 * on one device while it is unplugged and replugged 200 times. Afterwards
 * every generation must have been freed, each close must have been a
 * release before its generation's unplug or a lateRelease after it, and no
 * model code may have run on a removed instance.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeviceEvent } from '../../src/core/events.js';
import { cClient } from '../helpers/cc.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { Interactive } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { probeModel, type ProbeRegistry } from '../fixtures/probe-model.js';

const CLIENTS = 32;
const CYCLES = 200;
const registry: ProbeRegistry = new Map();
let t: TestEmulator;

beforeAll(async () => {
  t = await startTestEmulator([probeModel(registry)], 2000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

it(`survives ${CYCLES} unplug/replug cycles under ${CLIENTS} looping clients`, async () => {
  const bin = await cClient('stress');
  const openedGenerations = new Set<number>();
  t.emu.devices.events.on('event', (e) => {
    if (e.device === 'stress' && e.type === 'opened') openedGenerations.add(e.generation);
  });
  let generation = (await t.emu.devices.plug({ model: 'probe', name: 'stress' })).generation;
  const clients = Array.from({ length: CLIENTS }, () => new Interactive(bin, [t.path('dev/stress')]));
  for (const c of clients) expect(await c.line()).toBe('started');

  const t0 = performance.now();
  let stuck = 0;
  for (let i = 0; i < CYCLES; i++) {
    // Unplug with files of this generation open, or opened a moment ago.
    await until(() => openedGenerations.has(generation), 10_000, `a client opening generation ${generation}`);
    const report = await t.emu.devices.unplug('stress');
    stuck += report.stuck.length;
    generation = (await t.emu.devices.replug('stress')).generation;
  }
  const cycleMs = performance.now() - t0;

  for (const c of clients) c.kill('SIGTERM');
  const totals = { opens: 0, closes: 0, openfail: 0, ioerr: 0, other: 0 };
  for (const c of clients) {
    const f = (await c.line()).split(' ');
    for (let k = 0; k < f.length; k += 2) totals[f[k] as keyof typeof totals] += Number(f[k + 1]);
    expect((await c.exited).code).toBe(0);
  }
  await t.emu.devices.unplug('stress');
  // Every generation, the last included, reaches freed once its files are closed.
  await t.waitEvent((e) => e.type === 'freed' && e.generation === CYCLES + 1, 10_000);

  expect(stuck).toBe(0);
  expect(totals.other).toBe(0);
  expect(t.emu.devices.list().filter((i) => i.name === 'stress')).toEqual([]);

  const byGen = new Map<number, DeviceEvent[]>();
  for (const e of t.events) if (e.device === 'stress') byGen.set(e.generation, [...(byGen.get(e.generation) ?? []), e]);
  expect(byGen.size).toBe(CYCLES + 1);
  let opened = 0;
  let late = 0;
  let early = 0;
  for (const [gen, evs] of byGen) {
    const types = evs.map((e) => e.type);
    const unplugAt = types.indexOf('unplug_started');
    const count = (ty: string): number => types.filter((x) => x === ty).length;
    // A close before unplug is a release, after it a lateRelease; never the other way round.
    expect(types.slice(0, unplugAt)).not.toContain('late_released');
    expect(types.slice(unplugAt)).not.toContain('released');
    expect(count('opened')).toBe(count('released') + count('late_released'));
    expect(count('freed')).toBe(1);
    expect(types.at(-1)).toBe('freed');
    const s = registry.get(`stress#${gen}`)!;
    expect(s).toMatchObject({ lateReleases: count('late_released'), releases: count('released'), removes: 1, frees: 1, lateBeforeRemove: 0 });
    expect(s.afterRemove).toEqual([]);
    opened += count('opened');
    late += count('late_released');
    early += count('released');
  }
  // The clients' successful opens are exactly the files the core saw.
  expect(opened).toBe(totals.opens);
  expect(totals.closes).toBe(totals.opens);
  expect(late).toBeGreaterThan(0);
  console.log(
    `stress: ${CYCLES} cycles in ${Math.round(cycleMs)} ms (${(cycleMs / CYCLES).toFixed(1)} ms/cycle), ` +
      `${CLIENTS} clients: ${totals.opens} opens, ${early} releases, ${late} lateReleases, ` +
      `${totals.openfail} refused opens, ${totals.ioerr} EIO on I/O`,
  );
}, 120_000);
