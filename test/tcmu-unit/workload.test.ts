/**
 * The tcmu workload's bookkeeping without a mount: its write patterns never
 * repeat, and what it acknowledged on a backstore is kept per emulator
 * (device manager), for `workload_start {resume: true}` there only.
 */
import { describe, expect, it } from 'vitest';
import { tcmuModel } from '../../src/models/tcmu/model.js';
import { pattern } from '../../src/models/tcmu/workload.js';
import { setup } from '../core/helpers.js';

const managerWith = (model: typeof tcmuModel) => {
  const m = setup();
  m.mgr.registerModel(model);
  return m;
};

const RING = { cmdAreaSize: 65536, dataAreaSize: 1 << 20, devSize: 1 << 20 };

describe('tcmu workload', () => {
  it('never repeats a write pattern: write 1 and write 1 + 2^20 (and 2^32 + 1) differ, and each 16-byte word of a chunk is its own', () => {
    const bytes = 8 * 4096;
    const one = pattern(3, 1, bytes);
    expect(one.equals(pattern(3, 1 + 2 ** 20, bytes))).toBe(false);
    expect(one.equals(pattern(3, 2 ** 32 + 1, bytes))).toBe(false);
    expect(one.equals(pattern(4, 1, bytes))).toBe(false);
    const words = new Set<string>();
    for (let i = 0; i < bytes; i += 16) words.add(one.subarray(i, i + 16).toString('hex'));
    expect(words.size).toBe(bytes / 16);
  });

  it('keeps the acknowledged content per emulator: a resume on another emulator finds none', async () => {
    const a = managerWith(tcmuModel);
    const b = managerWith(tcmuModel);
    for (const { mgr } of [a, b]) await mgr.plug({ model: 'tcmu', name: 'uio0', options: RING });
    await a.mgr.action('uio0', 'workload_start', { depth: 4, chunks: 8, maxCommands: 8 });
    await a.mgr.unplug('uio0', { drainTimeoutMs: 0 });
    await a.mgr.plug({ model: 'tcmu', name: 'uio0', options: RING });
    expect(await a.mgr.action('uio0', 'workload_start', { resume: true, depth: 1, chunks: 8 })).toMatchObject({ resumed: true });
    await expect(b.mgr.action('uio0', 'workload_start', { resume: true, depth: 1, chunks: 8 })).rejects.toMatchObject({ code: 'ENOENT' });
    for (const { mgr } of [a, b]) await mgr.unplug('uio0', { drainTimeoutMs: 0 });
  });
});
