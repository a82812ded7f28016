import { fstatSync, readSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DeviceEvent, DeviceModel } from '../../src/core/index.js';
import { F_SEAL_GROW, F_SEAL_SHRINK, getSeals, pageSize } from '../../src/sys/ffi.js';

const PAGE_SIZE = pageSize();
import { openNode, setup } from './helpers.js';

/** A model with a one-page register region and a larger 'revoke' data region; create() writes a signature. */
function sharedModel(regions: DeviceModel<null>['regions']): DeviceModel<null> {
  return {
    name: 'shared',
    regions,
    create(inst) {
      inst.regions[0]!.data.setUint32(0, 0xc0ffee, true);
      return null;
    },
  };
}

describe('regions', () => {
  it('lays region N at offset N * page size of one memfd the model sees through its views', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(sharedModel(() => [{ name: 'regs', size: 64 }, { size: 3 * PAGE_SIZE, onUnplug: 'revoke' }]));
    const inst = await mgr.plug({ model: 'shared', name: 's0' });
    expect(inst.regions.map((r) => [r.name, r.offset, r.size, r.onUnplug])).toEqual([
      ['regs', 0, 64, 'revoke'],
      ['map1', PAGE_SIZE, 3 * PAGE_SIZE, 'revoke'],
    ]);
    const f = await openNode(publisher, 's0');
    const fd = f.backingFd!;
    expect(fstatSync(fd).size).toBe(4 * PAGE_SIZE);
    const sig = Buffer.alloc(4);
    readSync(fd, sig, 0, 4, 0);
    expect(sig.readUInt32LE(0)).toBe(0xc0ffee);
    writeSync(fd, Buffer.from('hi'), 0, 2, PAGE_SIZE + 10);
    expect(Buffer.from(inst.regions[1]!.bytes.subarray(10, 12)).toString()).toBe('hi');
    expect(await mgr.action('s0', 'region_read', { region: 'map1', offset: 10, length: 2 })).toEqual({ hex: '6869' });
    expect(await mgr.action('s0', 'region_write', { region: 0, offset: 4, hex: 'abcd' })).toEqual({ written: 2 });
    readSync(fd, sig, 0, 2, 4);
    expect(sig.subarray(0, 2).toString('hex')).toBe('abcd');
    await expect(mgr.action('s0', 'region_read', { region: 1, offset: 3 * PAGE_SIZE - 1, length: 2 })).rejects.toMatchObject({ code: 'EINVAL' });
    await f.release();
  });

  it('revokes by cutting and sealing the backing file at unplug; the model keeps a private copy until free drops it', async () => {
    const { mgr, publisher } = setup();
    const events: DeviceEvent[] = [];
    mgr.events.on('event', (e) => events.push(e));
    mgr.registerModel(sharedModel(() => [{ size: 16, onUnplug: 'keep' }, { size: 100 }]));
    const inst = await mgr.plug({ model: 'shared', name: 's0' });
    const f = await openNode(publisher, 's0');
    const fd = f.backingFd!;
    const data = inst.regions[1]!.bytes;
    data[0] = 42;
    await mgr.unplug('s0');
    // Cut from the first 'revoke' region on; the 'keep' region stays in the file.
    expect(fstatSync(fd).size).toBe(PAGE_SIZE);
    expect(getSeals(fd) & (F_SEAL_GROW | F_SEAL_SHRINK)).toBe(F_SEAL_GROW | F_SEAL_SHRINK);
    expect(data[0]).toBe(42); // the emulator's own view never faults
    expect(events.find((e) => e.type === 'regions_revoked')).toMatchObject({ revoked: ['map1'], kept: 1, mappings: 0 });
    const types = events.map((e) => e.type);
    expect(types.indexOf('regions_revoked')).toBeGreaterThan(types.indexOf('unplug_started'));
    expect(types.indexOf('regions_revoked')).toBeLessThan(types.indexOf('removed'));
    await f.release();
    expect(inst.lifecycle).toBe('freed');
    expect(() => inst.regions[0]!.bytes).toThrow(/freed device/);
  });

  it('refuses specs it cannot lay out, naming the region', async () => {
    const { mgr } = setup();
    mgr.registerModel({ ...sharedModel(() => [{ size: PAGE_SIZE + 1 }, { size: 1 }]), name: 'big' });
    mgr.registerModel({ ...sharedModel(() => [{ size: 1 }, { size: 1, onUnplug: 'keep' }]), name: 'order' });
    mgr.registerModel({ ...sharedModel(() => [{ size: 0 }]), name: 'empty' });
    await expect(mgr.plug({ model: 'big', name: 'b' })).rejects.toThrow(/map0: 4097 bytes; every region but the last must fit in one page/);
    await expect(mgr.plug({ model: 'order', name: 'o' })).rejects.toThrow(/put 'keep' regions first/);
    await expect(mgr.plug({ model: 'empty', name: 'e' })).rejects.toThrow(/size must be a positive integer/);
    expect(mgr.list()).toEqual([]);
  });
});
