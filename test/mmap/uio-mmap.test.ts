/**
 * Shared memory through FUSE passthrough on a real mount, with real
 * programs: a C client (test/clients/mapper.c, which catches SIGBUS and
 * reports si_code) and python3's mmap. The model side is played through
 * the region_read / region_write actions and the model's own views.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/api.js';
import { pageSize } from '../../src/sys/ffi.js';
import { procReads } from '../../src/sys/procmaps.js';

const PAGE_SIZE = pageSize();
import { cClient } from '../helpers/cc.js';
import { pyMapper } from '../helpers/py-mapper.js';
import { testRoot } from '../helpers/mount.js';
import { Interactive, run } from '../helpers/proc.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { pollingModel } from '../fixtures/polling-model.js';
import { until } from '../helpers/wait.js';

const BUS_ADRERR = 2;
const EIO = 5;
const EINVAL = 22;
const ENODEV = 19;

let t: TestEmulator;
let mapperBin: string;
beforeAll(async () => {
  [t, mapperBin] = await Promise.all([startTestEmulator([pollingModel], 1000), cClient('mapper')]);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

/** A mapper process holding `path` open (opened by a thread that has exited, with `-t`). */
async function mapper(path: string, flags: string[] = []): Promise<Interactive> {
  const p = new Interactive(mapperBin, [...flags, path]);
  expect(await p.line()).toBe('open');
  return p;
}
const op = async (p: Interactive, line: string): Promise<string> => {
  p.send(line);
  return p.line();
};

/**
 * Has mapper `c` close its descriptor while it maps `d`, and checks the
 * file is not released: RELEASE came and the mappings were looked at
 * twice (every 50 ms, by the mapper's process), or the file was let go.
 */
async function closeMapped(c: Interactive, d: { name: string; inst: { generation: number } }): Promise<void> {
  const looked = procReads.maps;
  procReads.mapsOf = new Set();
  try {
    expect(await op(c, 'close')).toBe('ok');
    const released = () => t.eventTypes(d.name, d.inst.generation).includes('released');
    await until(() => procReads.maps >= looked + 2 || released());
    expect(released()).toBe(false);
    expect([...procReads.mapsOf]).toContain(c.child.pid);
  } finally {
    procReads.mapsOf = null;
  }
}

const plugUio = async (options: Record<string, unknown> = {}) => {
  const inst = await t.emu.devices.plug({ model: 'uio', name: 'uio%d', options });
  return { inst, name: inst.name, path: t.path(`dev/${inst.name}`) };
};

describe('mmap of uio maps', () => {
  it('program and model share map0 with no read/write in between; two programs see each other; irq read/write still work', async () => {
    const d = await plugUio({ mapSize: 2 * PAGE_SIZE });
    const c = await mapper(d.path);
    expect(await op(c, `map 0 0 ${2 * PAGE_SIZE}`)).toBe('ok');
    // model -> program
    await t.emu.devices.action(d.name, 'region_write', { region: 0, offset: 100, hex: 'cafebabe' });
    expect(await op(c, 'peek 0 100 4')).toBe('ok cafebabe');
    // program -> model, in the second page too
    expect(await op(c, `poke 0 ${PAGE_SIZE + 8} 0102`)).toBe('ok');
    expect(Buffer.from(d.inst.regions[0]!.bytes.subarray(PAGE_SIZE + 8, PAGE_SIZE + 10)).toString('hex')).toBe('0102');
    // a second program (python3) maps the same region
    const py = pyMapper(d.path, 2 * PAGE_SIZE);
    expect(await py.line()).toBe('mapped');
    py.send('peek 100 4');
    expect(await py.line()).toBe('ok cafebabe');
    py.send('poke 200 aabbccdd');
    expect(await py.line()).toBe('ok');
    expect(await op(c, 'peek 0 200 4')).toBe('ok aabbccdd');
    expect(await d.inst.mappings()).toBe(2); // one per program, as /proc/PID/maps lists them
    // the uio protocol on the same fd, while mapped
    await t.emu.devices.action(d.name, 'irq');
    expect(await op(c, 'read4')).toBe('ok 1');
    expect(await op(c, 'write4 1')).toBe('ok');
    expect(await op(c, 'write4 0')).toBe('ok');
    await t.emu.devices.action(d.name, 'irq'); // masked: held
    expect(await op(c, 'write4 1')).toBe('ok'); // enable delivers it
    expect(await op(c, 'read4')).toBe('ok 2');
    expect(d.inst.regions[0]!.data.getUint32(200, false)).toBe(0xaabbccdd);
    py.kill();
    c.kill();
    await until(() => d.inst.holders.length === 0);
  });

  it('revoke: after unplug the next touch is SIGBUS (BUS_ADRERR), also for a map made later; read EIO, write EINVAL (uio_write()); freed after the last close', async () => {
    const d = await plugUio();
    const c = await mapper(d.path);
    expect(await op(c, `map 0 0 ${PAGE_SIZE}`)).toBe('ok');
    expect(await op(c, 'poke 0 0 11')).toBe('ok');
    await t.emu.devices.unplug(d.name);
    const revoked = t.events.find((e) => e.type === 'regions_revoked' && e.device === d.name && e.generation === d.inst.generation);
    expect(revoked).toMatchObject({ revoked: ['map0'], kept: 0, mappings: 1 });
    expect(d.inst.regions[0]!.state).toBe('revoked');
    expect(await op(c, 'peek 0 0 1')).toBe(`sigbus ${BUS_ADRERR}`);
    expect(await op(c, 'poke 0 0 22')).toBe(`sigbus ${BUS_ADRERR}`);
    expect(await op(c, `map 1 0 ${PAGE_SIZE}`)).toBe('ok');
    expect(await op(c, 'peek 1 0 1')).toBe(`sigbus ${BUS_ADRERR}`);
    expect(await op(c, 'read4')).toBe(`err ${EIO}`);
    expect(await op(c, 'write4 1')).toBe(`err ${EINVAL}`);
    expect(d.inst.lifecycle).toBe('gone');
    expect(await op(c, 'close')).toBe('ok');
    // Its maps hold the file, as uio's do: released, and the device freed, at the last munmap.
    expect(await op(c, 'unmap 0')).toBe('ok');
    expect(await op(c, 'peek 1 0 1')).toBe(`sigbus ${BUS_ADRERR}`);
    expect(d.inst.holders).toHaveLength(1);
    expect(await op(c, 'unmap 1')).toBe('ok');
    await until(() => d.inst.lifecycle === 'freed');
    expect(t.eventTypes(d.name, d.inst.generation).filter((e) => e === 'late_released')).toHaveLength(1);
    c.kill();
  });

  it('keep: the map stays usable after unplug and after free; a new device under the name gets fresh zeroed pages', async () => {
    const d = await plugUio({ maps: [{ size: PAGE_SIZE, onUnplug: 'keep' }] });
    const name = d.name;
    const c = await mapper(d.path);
    expect(await op(c, `map 0 0 ${PAGE_SIZE}`)).toBe('ok');
    await t.emu.devices.action(name, 'region_write', { region: 0, offset: 0, hex: '5a5a' });
    await t.emu.devices.unplug(name);
    expect(await op(c, 'peek 0 0 2')).toBe('ok 5a5a');
    expect(await op(c, 'poke 0 2 77')).toBe('ok');
    // A second map of the same pages, kept: the first one's munmap releases nothing while it lives.
    expect(await op(c, `map 1 0 ${PAGE_SIZE}`)).toBe('ok');
    expect(await op(c, 'close')).toBe('ok');
    expect(await op(c, 'unmap 0')).toBe('ok');
    expect(d.inst.holders).toHaveLength(1);
    expect(await op(c, 'peek 1 0 3')).toBe('ok 5a5a77');
    // The same name again: new memory, and the old program's pages are untouched by it.
    const again = await t.emu.devices.plug({ model: 'uio', name, options: { maps: [{ size: PAGE_SIZE, onUnplug: 'keep' }] } });
    const c2 = await mapper(d.path);
    expect(await op(c2, `map 0 0 ${PAGE_SIZE}`)).toBe('ok');
    expect(await op(c2, 'peek 0 0 4')).toBe('ok 00000000');
    expect(await op(c2, 'poke 0 0 99')).toBe('ok');
    expect(await op(c, 'poke 1 3 88')).toBe('ok');
    expect(await op(c, 'peek 1 0 4')).toBe('ok 5a5a7788');
    expect(again.generation).toBe(d.inst.generation + 1);
    // The old generation goes at the munmap of its last map: late, and its pages are still the program's until then.
    expect(d.inst.lifecycle).toBe('gone');
    expect(await op(c, 'unmap 1')).toBe('ok');
    await until(() => d.inst.lifecycle === 'freed');
    expect(t.eventTypes(name, d.inst.generation).filter((e) => e === 'late_released')).toHaveLength(1);
    c.kill();
    c2.kill();
  });

  it.each([
    ['the map holds the file after close(), as uio\'s does: released at the munmap, though passthrough sends RELEASE at close()', []],
    ['a map made by the process of a thread that opened the node and exited holds the file, as the vma does: released at the munmap', ['-t']],
  ])('%s', async (_title, flags) => {
    const d = await plugUio();
    const c = await mapper(d.path, flags);
    expect(await op(c, `map 0 0 ${PAGE_SIZE}`)).toBe('ok');
    await closeMapped(c, d);
    await t.emu.devices.action(d.name, 'region_write', { region: 0, offset: 0, hex: '42' });
    expect(await op(c, 'peek 0 0 1')).toBe('ok 42');
    expect(d.inst.holders).toHaveLength(1);
    expect(await op(c, 'unmap 0')).toBe('ok');
    await t.waitEvent((e) => e.type === 'released' && e.device === d.name && e.generation === d.inst.generation);
    expect(d.inst.holders).toEqual([]);
    c.kill();
  });

  it('a map kept after close() and through unplug makes the release late (late_released) at its munmap, and the device is freed then', async () => {
    const d = await plugUio({ maps: [{ size: PAGE_SIZE, onUnplug: 'keep' }] });
    const c = await mapper(d.path);
    expect(await op(c, `map 0 0 ${PAGE_SIZE}`)).toBe('ok');
    expect(await op(c, 'close')).toBe('ok');
    await t.emu.devices.unplug(d.name);
    expect(d.inst.lifecycle).toBe('gone');
    expect(d.inst.holders).toHaveLength(1);
    expect(await op(c, 'unmap 0')).toBe('ok');
    await until(() => d.inst.lifecycle === 'freed');
    expect(t.eventTypes(d.name, d.inst.generation).filter((e) => e === 'late_released' || e === 'released')).toEqual(['late_released']);
    c.kill();
  });

  it('maps/mapN in sysfs; a map at offset N * pagesize maps region N', async () => {
    const d = await plugUio({ maps: [{ size: 64, name: 'regs' }, { size: 3 * PAGE_SIZE }] });
    expect(t.events.find((e) => e.type === 'plugged' && e.device === d.name && e.generation === d.inst.generation)).toMatchObject({
      regions: [
        { name: 'map0', size: 64, offset: 0, onUnplug: 'revoke' },
        { name: 'map1', size: 3 * PAGE_SIZE, offset: PAGE_SIZE, onUnplug: 'revoke' },
      ],
    });
    const sys = t.path(`sys/class/uio/${d.name}/maps`);
    const attrs = await run('sh', ['-c', `cd ${sys} && cat map0/name map0/size map0/addr map0/offset map1/name map1/size`]);
    expect(attrs.stdout).toBe(`regs\n0x0000000000000040\n0x0000000000000000\n0x0\n\n0x${(3 * PAGE_SIZE).toString(16).padStart(16, '0')}\n`);
    const c = await mapper(d.path);
    expect(await op(c, 'map 0 0 64')).toBe('ok');
    expect(await op(c, `map 1 1 ${3 * PAGE_SIZE}`)).toBe('ok');
    await t.emu.devices.action(d.name, 'region_write', { region: 1, offset: 2 * PAGE_SIZE, hex: 'ee' });
    await t.emu.devices.action(d.name, 'region_write', { region: 'map0', offset: 0, hex: 'dd' });
    expect(await op(c, `peek 1 ${2 * PAGE_SIZE} 1`)).toBe('ok ee');
    expect(await op(c, 'peek 0 0 1')).toBe('ok dd');
    c.kill();
  });

  it('offsets and sizes past the regions: the kernel maps the backing file without uio_mmap checks, so a touch past the last region is SIGBUS, not EINVAL', async () => {
    const d = await plugUio();
    const c = await mapper(d.path);
    // uio_mmap would refuse both with EINVAL; shmem_mmap does not look at offset or length.
    expect(await op(c, `map 0 1 ${PAGE_SIZE}`)).toBe('ok');
    expect(await op(c, 'peek 0 0 1')).toBe(`sigbus ${BUS_ADRERR}`);
    expect(await op(c, `map 1 0 ${2 * PAGE_SIZE}`)).toBe('ok');
    expect(await op(c, 'peek 1 0 1')).toBe('ok 00');
    expect(await op(c, `peek 1 ${PAGE_SIZE} 1`)).toBe(`sigbus ${BUS_ADRERR}`);
    // What mmap(2) itself refuses still fails EINVAL.
    expect(await op(c, 'map 2 0 0')).toBe(`err ${EINVAL}`);
    c.kill();
  });

  it('refuses maps it cannot lay out or read, naming them', async () => {
    const plug = (options: unknown) => t.emu.devices.plug({ model: 'uio', name: 'uio%d', options });
    await expect(plug({ maps: [{ size: 2 * PAGE_SIZE }, { size: 1 }] })).rejects.toThrow(/option maps\[0\]\.size \(region map0\): 8192 bytes; every region but the last must fit in one page/);
    await expect(plug({ maps: [{ size: 1 }], mapSize: 1 })).rejects.toThrow(/either maps or mapSize/);
    await expect(plug({ maps: [{ size: 1, onUnplug: 'later' }] })).rejects.toThrow(/maps\[0\]\.onUnplug/);
    await expect(plug({ maps: Array.from({ length: 6 }, () => ({ size: 1 })) })).rejects.toThrow(/^uio: option maps must be an array of 1 to 5 items, each an object, got \[/);
  });

  it("a model that needs the very pages (regionSync 'shared') plugs, and a program sees its stores with no read or write between", async () => {
    const inst = await t.emu.devices.plug({ model: pollingModel.name, name: 'poller%d' });
    const c = await mapper(t.path(`dev/${inst.name}`));
    expect(await op(c, `map 0 0 ${PAGE_SIZE}`)).toBe('ok');
    inst.regions[0]!.bytes[0] = 0x42;
    expect(await op(c, 'waitne 0 0 00')).toBe('ok 42');
    c.kill();
  });

  it('mmap of a node without regions fails ENODEV', async () => {
    const inst = await t.emu.devices.plug({ model: 'echo', name: 'echo%d' });
    const c = await mapper(t.path(`dev/${inst.name}`));
    expect(await op(c, `map 0 0 ${PAGE_SIZE}`)).toBe(`err ${ENODEV}`);
    c.kill();
  });
});

describe('without passthrough', () => {
  it('says once how regions are mapped instead (through the page cache), and a uio node maps and serves read/write/irq', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const api = await startEmulator({
      mountpoint: await mkdtemp(join(testRoot(), 'nopt-')),
      logger: pino({ level: 'info' }, sink),
      passthrough: false,
    });
    try {
      const inst = await api.emulator.devices.plug({ model: 'uio', name: 'uio0' });
      const c = await mapper(api.path('dev/uio0'));
      expect(await op(c, `map 0 0 ${PAGE_SIZE}`)).toBe('ok');
      await api.emulator.devices.action('uio0', 'region_write', { region: 0, offset: 0, hex: '2a' });
      expect(await op(c, 'peek 0 0 1')).toBe('ok 2a');
      await api.emulator.devices.action('uio0', 'irq');
      expect(await op(c, 'read4')).toBe('ok 1');
      expect(await op(c, 'write4 1')).toBe('ok');
      c.kill();
      await until(() => inst.holders.length === 0);
      const how = lines.map((l) => JSON.parse(l) as { msg: string }).filter((l) => l.msg.startsWith('mmap of device regions'));
      expect(how).toHaveLength(1);
      expect(how[0]!.msg).toMatch(/^mmap of device regions through the page cache.*\(FUSE passthrough disabled by option\)$/);
    } finally {
      await api.stop({ releaseTimeoutMs: 0 });
    }
  });
});
