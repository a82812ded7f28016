/**
 * Shared mappings without FUSE passthrough (what a daemon without
 * CAP_SYS_ADMIN in the initial user namespace gets; here as root with
 * passthrough disabled, the same path): the node is mapped MAP_SHARED
 * through the page cache of its FUSE inode (FUSE_DIRECT_IO_ALLOW_MMAP),
 * and the device's regions and the programs' pages are kept in step at the
 * protocol's synchronisation points (docs/models.md#shared-memory-mmap):
 * the interrupt read (what the model wrote is in the program's pages
 * before read() returns) and the kick (what the program stored is in the
 * model's bytes before its write handler runs). Real programs: python3's
 * mmap, test/clients/mapper.c (which reports SIGBUS and its si_code), and
 * the C TCMU consumer.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/api.js';
import { benchRingModel } from '../../bench/peer/ring-model.js';
import type { DeviceModel } from '../../src/core/index.js';
import { Errno } from '../../src/errno.js';
import { pageSize } from '../../src/sys/ffi.js';
import { pollingModel } from '../fixtures/polling-model.js';
import { cClient } from '../helpers/cc.js';
import { pyMapper } from '../helpers/py-mapper.js';
import { testLogger, testRoot } from '../helpers/mount.js';
import { Interactive, python, pythonInteractive } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';

const PAGE = pageSize();
const BUS_ADRERR = 2;
const EIO = 5;
const EINVAL = 22;

/**
 * A kick-and-interrupt device of two pages, like a tcmu ring: the bench's
 * ring model (uio's interrupt count on read()), whose write() (the kick)
 * answers a 64-byte command at `cmdAt` at `cmdAt + 64`, complemented, and
 * raises the interrupt. `stream` as the model asks.
 */
function ringModel(name: string, stream: boolean, cmdAt: number): DeviceModel<{ count: number }> {
  return {
    ...benchRingModel,
    name,
    stream,
    regions: () => [{ name: 'ring', size: 2 * PAGE }],
    write(file, data) {
      if (data.length !== 4) throw new Errno('EINVAL');
      const ring = file.instance.regions[0]!.bytes;
      for (let i = 0; i < 64; i++) ring[cmdAt + 64 + i] = ~ring[cmdAt + i]! & 0xff;
      file.instance.state.count++;
      file.instance.wq.wake();
      return 4;
    },
  };
}

let emu: EmulatorHandle;
let mapperBin: string;
let consumerBin: string;
beforeAll(async () => {
  [mapperBin, consumerBin] = await Promise.all([cClient('mapper'), cClient('tcmu_consumer')]);
  emu = await startEmulator({
    mountpoint: await mkdtemp(join(testRoot(), 'pagecache-')),
    logger: testLogger(),
    passthrough: false,
    drainTimeoutMs: 2000,
    models: [ringModel('ring-stream', true, 0), ringModel('ring-pos', false, PAGE + 128), pollingModel],
  });
});
afterAll(() => emu.stop({ releaseTimeoutMs: 0 }));

const ask = async (p: Interactive, line: string): Promise<string> => {
  p.send(line);
  return p.line();
};
const hexAt = (bytes: Uint8Array, at: number, n: number): string => Buffer.from(bytes.subarray(at, at + n)).toString('hex');

describe('uio map0 through the page cache (python3 mmap)', () => {
  it('the model writes, the program sees it once its interrupt read returns; the program writes, the model has it when the kick arrives', async () => {
    const inst = await emu.plug('uio', 'uio%d', { mapSize: 2 * PAGE });
    const map = inst.regions[0]!.bytes;
    const py = pyMapper(emu.path(`dev/${inst.name}`), 2 * PAGE);
    expect(await py.line()).toBe('mapped');
    expect(await ask(py, 'peek 8 4')).toBe('ok 00000000');
    expect(await ask(py, `peek ${PAGE + 4} 4`)).toBe('ok 00000000');

    // Model -> program. The program maps a copy (its page cache): what the
    // model stores reaches it at the interrupt, not before.
    map.set([0xca, 0xfe, 0xba, 0xbe], 8);
    map.set([0x01, 0x02, 0x03, 0x04], PAGE + 4);
    expect(await ask(py, `peek ${PAGE + 4} 4`)).toBe('ok 00000000');
    expect(await emu.action(inst.name, 'irq')).toEqual({ count: 1, delivered: true });
    expect(await ask(py, 'irq')).toBe('ok 1');
    expect(await ask(py, 'peek 8 4')).toBe('ok cafebabe');
    expect(await ask(py, `peek ${PAGE + 4} 4`)).toBe('ok 01020304');

    // Program -> model, on both pages: page 0 comes back with the kernel's
    // writeback before the kick, page 1 is retrieved at the kick.
    expect(await ask(py, 'poke 16 11223344')).toBe('ok');
    expect(await ask(py, `poke ${PAGE + 200} aabbccdd`)).toBe('ok');
    expect(hexAt(map, PAGE + 200, 4)).toBe('00000000');
    expect(await ask(py, 'kick')).toBe('ok 4');
    expect(hexAt(map, 16, 4)).toBe('11223344');
    expect(hexAt(map, PAGE + 200, 4)).toBe('aabbccdd');
    // Bytes the program did not touch keep what the model wrote.
    expect(hexAt(map, 8, 4)).toBe('cafebabe');

    // region_write (a scenario playing the device) is pushed at once; region_read pulls first.
    await emu.action(inst.name, 'region_write', { region: 0, offset: PAGE + 300, hex: '5a5a' });
    expect(await ask(py, `peek ${PAGE + 300} 2`)).toBe('ok 5a5a');
    expect(await ask(py, `poke ${PAGE + 400} 77`)).toBe('ok');
    expect(await emu.action(inst.name, 'region_read', { region: 0, offset: PAGE + 400, length: 1 })).toEqual({ hex: '77' });
    py.kill();
    await until(() => inst.holders.length === 0);
  });

  it.each([
    ['ring-stream', 'a stream node: every write() drops page 0, which the program faults back in'],
    ['ring-pos', 'a node with a file position: the command lives in page 1, which stays cached'],
  ])('%s: 200 kick/interrupt round trips, each answer right (%s)', async (model) => {
    const inst = await emu.plug(model, `${model}%d`);
    const cmdAt = model === 'ring-stream' ? 0 : PAGE + 128;
    const py = pythonInteractive(
      `import mmap,os,sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, ${2 * PAGE}, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
at = ${cmdAt}
bad = 0
for i in range(200):
    cmd = (i.to_bytes(8, "little") * 8)
    m[at:at+64] = cmd
    os.write(fd, b"\\1\\0\\0\\0")
    os.read(fd, 4)
    if m[at+64:at+128] != bytes(~b & 0xff for b in cmd): bad += 1
print("bad", bad, flush=True)`,
      [emu.path(`dev/${inst.name}`)],
    );
    expect(await py.line()).toBe('bad 0');
    await py.exited;
    await until(() => inst.holders.length === 0);
  });

  it("a page read of a mapped node is served from its regions, never by its read(), though both come at offset 0", async () => {
    const inst = await emu.plug('uio', 'uio%d', { mapSize: PAGE });
    inst.regions[0]!.bytes.set([1, 2, 3, 4]);
    const py = pyMapper(emu.path(`dev/${inst.name}`), PAGE);
    expect(await py.line()).toBe('mapped');
    expect(await ask(py, 'peek 0 4')).toBe('ok 01020304');
    // uio's read() takes exactly 4 bytes and answers the interrupt count:
    // a 4096-byte page read reaching it would have failed EINVAL (SIGBUS).
    expect(inst.counters.reads).toBe(0);
    py.kill();
    await until(() => inst.holders.length === 0);
  });
});

/** A mapper process holding `path` open. */
async function mapper(path: string): Promise<Interactive> {
  const p = new Interactive(mapperBin, [path]);
  expect(await p.line()).toBe('open');
  return p;
}

it("a model that needs the very pages (regionSync 'shared') is refused at plug, saying why and how to get them", async () => {
  await expect(emu.plug('poller', 'poller0')).rejects.toThrow(
    "poller: programs must map the very pages of its regions (regionSync 'shared'), which takes FUSE passthrough: FUSE passthrough disabled by option; run the daemon as root, outside a user namespace, without --no-passthrough",
  );
  expect(emu.emulator.devices.list().map((i) => i.name)).not.toContain('poller0');
});

describe('unplug of a page-cache mapping', () => {
  it('revoke: every touch after unplug is SIGBUS (BUS_ADRERR), a map made later too; read EIO, write EINVAL (uio_write()); RELEASE once unmapped and closed', async () => {
    const inst = await emu.plug('uio', 'uio%d', { mapSize: 2 * PAGE });
    const c = await mapper(emu.path(`dev/${inst.name}`));
    expect(await ask(c, `map 0 0 ${2 * PAGE}`)).toBe('ok');
    expect(await ask(c, 'poke 0 0 11')).toBe('ok'); // dirty, never written back
    expect(await ask(c, `peek 0 ${PAGE} 1`)).toBe('ok 00'); // clean
    await emu.unplug(inst.name);
    expect(emu.events({ device: inst.name, generation: inst.generation }).find((e) => e.type === 'regions_revoked')).toMatchObject({
      revoked: ['map0'],
      mappings: 1,
    });
    expect(await ask(c, 'peek 0 0 1')).toBe(`sigbus ${BUS_ADRERR}`);
    expect(await ask(c, `peek 0 ${PAGE} 1`)).toBe(`sigbus ${BUS_ADRERR}`);
    expect(await ask(c, 'poke 0 8 22')).toBe(`sigbus ${BUS_ADRERR}`);
    expect(await ask(c, 'peek 0 0 1')).toBe(`sigbus ${BUS_ADRERR}`); // a second touch too
    expect(await ask(c, 'read4')).toBe(`err ${EIO}`);
    expect(await ask(c, 'write4 1')).toBe(`err ${EINVAL}`);
    expect(await ask(c, `map 1 0 ${PAGE}`)).toBe('ok');
    expect(await ask(c, 'peek 1 0 1')).toBe(`sigbus ${BUS_ADRERR}`);
    // The mappings hold the file: close() alone releases nothing (a
    // mapping of the page cache keeps the FUSE file, unlike passthrough's).
    expect(await ask(c, 'close')).toBe('ok');
    expect(await ask(c, 'unmap 1')).toBe('ok');
    expect(inst.holders).toHaveLength(1);
    expect(await ask(c, 'unmap 0')).toBe('ok');
    await until(() => inst.lifecycle === 'freed');
    expect(emu.events({ device: inst.name, generation: inst.generation }).filter((e) => e.type === 'late_released')).toHaveLength(1);
    c.kill();
  });

  it('keep: the map stays readable and writable after unplug, until munmap', async () => {
    const inst = await emu.plug('uio', 'uio%d', { maps: [{ size: PAGE, onUnplug: 'keep' }] });
    const c = await mapper(emu.path(`dev/${inst.name}`));
    expect(await ask(c, `map 0 0 ${PAGE}`)).toBe('ok');
    await emu.action(inst.name, 'region_write', { region: 0, offset: 0, hex: '5a5a' });
    expect(await ask(c, 'peek 0 0 2')).toBe('ok 5a5a');
    await emu.unplug(inst.name);
    expect(await ask(c, 'peek 0 0 2')).toBe('ok 5a5a');
    expect(await ask(c, 'poke 0 2 77')).toBe('ok');
    expect(await ask(c, 'peek 0 0 3')).toBe('ok 5a5a77');
    expect(await ask(c, 'close')).toBe('ok');
    expect(await ask(c, 'unmap 0')).toBe('ok');
    await until(() => inst.lifecycle === 'freed');
    c.kill();
  });
});

describe('tcmu through the page cache (the C consumer)', () => {
  it('a 16-deep workload of verified writes and reads: the ring, its completions and the data blocks cross in both directions', async () => {
    const dir = await mkdtemp(join(testRoot(), 'tcmu-pc-'));
    const file = join(dir, 'disk.img');
    const devSize = 1 << 20;
    await writeFile(file, Buffer.alloc(devSize));
    const inst = await emu.plug('tcmu', 'uio%d', { cfgstring: file, devSize, cmdAreaSize: 65536, dataAreaSize: 1 << 20 });
    const consumer = new Interactive(consumerBin, [emu.mountpoint, inst.name]);
    expect(await consumer.line()).toMatch(/^ready /);
    await emu.action(inst.name, 'workload_start', { depth: 16, readPercent: 50, blocksPerCommand: 8, maxCommands: 400, seed: 3 });
    const done = await emu.waitEvent((e) => e.device === inst.name && e.type === 'tcmu_workload_done', 60_000);
    expect(done).toMatchObject({ completed: 400, failed: 0, verifyErrors: 0, lost: 0 });
    expect((done as unknown as { verifiedReads: number }).verifiedReads).toBeGreaterThan(0);
    await emu.unplug(inst.name);
    await consumer.exited;
  });

  it('a write of action/reset_ring returns once the reset head and tail are in the page cache, as libtcmu reads cmd_tail right after its reopen', async () => {
    const dir = await mkdtemp(join(testRoot(), 'tcmu-reset-'));
    const file = join(dir, 'disk.img');
    await writeFile(file, Buffer.alloc(1 << 20));
    const inst = await emu.plug('tcmu', 'uio%d', { cfgstring: file, devSize: 1 << 20, cmdAreaSize: 65536, dataAreaSize: 1 << 20 });
    // The program stands in for a consumer: it moves cmd_tail (struct
    // tcmu_mailbox offset 64) in its mapping, resets the ring through
    // configfs and reads cmd_tail at once, as libtcmu's device_add() does
    // after reset_ring and mmap. The kernel has reset the mailbox before
    // the write returns; here the reset's STORE must be in by then.
    const r = await python(
      `import glob,mmap,os,struct,sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, int(sys.argv[2]), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
[cfg] = glob.glob(sys.argv[3] + "/sys/kernel/config/target/core/user_*/*/action/reset_ring")
stale = 0
for _ in range(200):
    struct.pack_into("<I", m, 64, 64)
    c = os.open(cfg, os.O_WRONLY)
    os.write(c, b"1")
    if struct.unpack_from("<I", m, 64)[0] != 0: stale += 1
    os.close(c)
print(stale)`,
      [emu.path(`dev/${inst.name}`), String(inst.regions[0]!.size), emu.mountpoint],
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0\n');
    await emu.unplug(inst.name);
  });
});
