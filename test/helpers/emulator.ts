/**
 * A whole emulator (node tree + lifecycle core + models) on a real mount
 * under the test root, stopped when the test file ends.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { DeviceModel } from '../../src/core/index.js';
import type { DeviceEvent } from '../../src/core/events.js';
import { Emulator } from '../../src/emulator.js';
import { testLogger, testRoot } from './mount.js';

const running = new Set<Emulator>();
afterAll(async () => {
  await Promise.all([...running].map((e) => e.stop({ releaseTimeoutMs: 0 })));
});

export interface TestEmulator {
  emu: Emulator;
  path(rel: string): string;
  /** Every event since start, in order. */
  events: DeviceEvent[];
  /** Events of one device/generation, by type. */
  eventTypes(device: string, generation: number): string[];
  /** Resolves when an event matching `pred` has been recorded (already or later). */
  waitEvent(pred: (e: DeviceEvent) => boolean, timeoutMs?: number): Promise<DeviceEvent>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- models are typed by their own state
export async function startTestEmulator(models: ReadonlyArray<DeviceModel<any>> = [], drainTimeoutMs?: number): Promise<TestEmulator> {
  const mountpoint = await mkdtemp(join(testRoot(), 'emu-'));
  const emu = await Emulator.start({
    mountpoint,
    logger: testLogger(),
    models,
    ...(drainTimeoutMs !== undefined ? { drainTimeoutMs } : {}),
  });
  running.add(emu);
  const events: DeviceEvent[] = [];
  emu.devices.events.on('event', (e) => events.push(e));
  return {
    emu,
    path: (rel) => join(mountpoint, rel),
    events,
    eventTypes: (device, generation) =>
      events.filter((e) => e.device === device && e.generation === generation).map((e) => e.type),
    waitEvent: (pred, timeoutMs = 10_000) => {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          emu.devices.events.off('event', on);
          reject(new Error(`event not seen within ${timeoutMs} ms`));
        }, timeoutMs);
        const on = (e: DeviceEvent): void => {
          if (!pred(e)) return;
          clearTimeout(timer);
          emu.devices.events.off('event', on);
          resolve(e);
        };
        emu.devices.events.on('event', on);
      });
    },
  };
}
