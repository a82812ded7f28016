/**
 * A whole emulator (node tree + lifecycle core + faults + models) on a real
 * mount under the test root, through the public startEmulator() API, and
 * stopped when the test file ends.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/api.js';
import type { AnyDeviceModel } from '../../src/core/index.js';
import type { DeviceEvent } from '../../src/core/events.js';
import type { Emulator } from '../../src/emulator.js';
import { testLogger, testRoot } from './mount.js';

const running = new Set<EmulatorHandle>();
afterAll(async () => {
  await Promise.all([...running].map((h) => h.stop({ releaseTimeoutMs: 0 })));
});

export interface TestEmulator {
  api: EmulatorHandle;
  emu: Emulator;
  path(rel: string): string;
  /** Every event since start, in order (a live array). */
  events: DeviceEvent[];
  /** Event types of one device generation, in order. */
  eventTypes(device: string, generation: number): string[];
  waitEvent(pred: (e: DeviceEvent) => boolean, timeoutMs?: number): Promise<DeviceEvent>;
}

export async function startTestEmulator(models: ReadonlyArray<AnyDeviceModel> = [], drainTimeoutMs?: number): Promise<TestEmulator> {
  const api = await startEmulator({
    mountpoint: await mkdtemp(join(testRoot(), 'emu-')),
    logger: testLogger(),
    models,
    ...(drainTimeoutMs !== undefined ? { drainTimeoutMs } : {}),
  });
  running.add(api);
  const events: DeviceEvent[] = [];
  api.emulator.devices.events.on('event', (e) => events.push(e));
  return {
    api,
    emu: api.emulator,
    path: (rel) => api.path(rel),
    events,
    eventTypes: (device, generation) => api.events({ device, generation }).map((e) => e.type),
    waitEvent: (pred, timeoutMs) => api.waitEvent(pred, timeoutMs),
  };
}
