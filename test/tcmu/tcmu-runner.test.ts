/**
 * The real, unmodified tcmu-runner (Debian's 1.5.4, handler_qcow on a raw
 * image) against emulated tcmu devices, in the private mount namespace of
 * the tcmu preset (src/tcmu/preset.ts), with the netlink shim preloaded.
 * The emulator's initiator sends SCSI commands through the ring; the data
 * is checked in the raw image files tcmu-runner writes.
 *
 * uio0 is plugged before tcmu-runner starts (found by its /dev scan), uio1
 * while it runs (announced with ADDED_DEVICE over the emulated TCM-USER
 * family); uio1 is then removed in the kernel's order under a workload.
 */
import { mkdtemp, open as openFile, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/api.js';
import type { DeviceEvent } from '../../src/core/events.js';
import { bindCommand } from '../../src/scenario/bind.js';
import { prepareTcmu, type TcmuSetup } from '../../src/tcmu/preset.js';
import { Interactive, run } from '../helpers/proc.js';
import { errnoName } from '../../src/errno.js';
import { testLogger, testRoot } from '../helpers/mount.js';
import { mkdir } from 'node:fs/promises';

const BLOCK = 512;
const DEV_SIZE = 8 * 1024 * 1024;
/** Small rings: the whole map is 1 MiB of commands + 2 MiB of data. */
const RING = { cmdAreaSize: 1 << 20, dataAreaSize: 2 << 20 };

interface Submitted {
  outcome: string;
  status: number;
  statusName: string;
  sense: { key: number; asc: number; ascq: number } | null;
  dataHex: string;
  capacity?: { lastLba: number; blockSize: number; blocks: number };
}

let dir: string;
let emu: EmulatorHandle;
let setup: TcmuSetup;
let runner: Interactive;
const events: DeviceEvent[] = [];

function waitEvent(pred: (e: DeviceEvent) => boolean, timeoutMs = 15_000): Promise<DeviceEvent> {
  return emu.waitEvent(pred, timeoutMs);
}

async function image(name: string): Promise<string> {
  const p = join(dir, name);
  await (await openFile(p, 'w')).close();
  await truncate(p, DEV_SIZE);
  return p;
}

/** python3 -c: writes argv[2] to argv[1] in one write(2); prints ok or the errno's name. */
const WRITE_ERRNO = `import os,sys,errno
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, sys.argv[2].encode()); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])`;

function plugTcmu(path: string, dev: string): Promise<unknown> {
  return emu.plug('tcmu', 'uio%d', { subtype: 'qcow', cfgstring: path, dev, devSize: DEV_SIZE, ...RING });
}

const submit = (device: string, arg: Record<string, unknown>): Promise<Submitted> => emu.action(device, 'submit', arg) as Promise<Submitted>;

async function imageBytes(path: string, lba: number, blocks: number): Promise<Buffer> {
  return (await readFile(path)).subarray(lba * BLOCK, (lba + blocks) * BLOCK);
}

function pattern(seed: number, blocks: number): Buffer {
  const b = Buffer.alloc(blocks * BLOCK);
  for (let i = 0; i < b.length; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

/**
 * TEST UNIT READY until it is not BUSY, as the SCSI midlayer retries BUSY:
 * tcmu-runner opens a device it finds at start-up with the device blocked
 * (device_add() with reopen: block_dev 1, reset_ring, open, block_dev 0).
 */
async function ready(device: string): Promise<Submitted> {
  const end = Date.now() + 10_000;
  for (;;) {
    const r = await submit(device, { op: 'tur' });
    if (r.statusName !== 'BUSY' || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** TUR, INQUIRY, READ CAPACITY, WRITE then READ checked in the image, and an out-of-range READ. */
async function serves(device: string, img: string): Promise<void> {
  expect((await ready(device)).statusName).toBe('GOOD');
  const inq = await submit(device, { op: 'inquiry' });
  expect(inq.statusName).toBe('GOOD');
  // Standard INQUIRY data from tcmu-runner's tcmu_emulate_std_inquiry(): direct-access device, vendor LIO-ORG.
  expect(Buffer.from(inq.dataHex, 'hex')[0]! & 0x1f).toBe(0);
  expect(Buffer.from(inq.dataHex, 'hex').subarray(8, 16).toString('latin1')).toBe('LIO-ORG ');
  const cap = await submit(device, { op: 'read_capacity10' });
  expect(cap.statusName).toBe('GOOD');
  expect(cap.capacity).toEqual({ lastLba: DEV_SIZE / BLOCK - 1, blockSize: BLOCK, blocks: DEV_SIZE / BLOCK });

  const data = pattern(device.length + 3, 4);
  const w = await submit(device, { op: 'write', lba: 100, blocks: 4, data: data.toString('hex') });
  expect(w.statusName).toBe('GOOD');
  expect(await imageBytes(img, 100, 4)).toEqual(data);
  const r = await submit(device, { op: 'read', lba: 101, blocks: 2 });
  expect(r.statusName).toBe('GOOD');
  expect(Buffer.from(r.dataHex, 'hex')).toEqual(data.subarray(BLOCK, 3 * BLOCK));

  // Past the last LBA: CHECK CONDITION, ILLEGAL REQUEST, LBA OUT OF RANGE (05/21/00).
  const oor = await submit(device, { op: 'read', lba: DEV_SIZE / BLOCK, blocks: 1 });
  expect(oor.statusName).toBe('CHECK CONDITION');
  expect(oor.sense).toMatchObject({ key: 0x05, asc: 0x21, ascq: 0x00 });
}

let imgA: string;
let imgB: string;

beforeAll(async () => {
  dir = await mkdtemp(join(testRoot(), 'tcmu-runner-'));
  emu = await startEmulator({ mountpoint: join(dir, 'mnt'), logger: testLogger() });
  emu.emulator.devices.events.on('event', (e) => events.push(e));
  imgA = await image('a.img');
  imgB = await image('b.img');
  await plugTcmu(imgA, 'disk_a');
  setup = await prepareTcmu(emu, join(dir, 'preset'), testLogger());
  await mkdir(join(dir, 'ns'));
  const argv = bindCommand(setup.binds, join(dir, 'ns'), ['tcmu-runner']);
  runner = new Interactive(argv[0]!, argv.slice(1), { ...process.env, ...setup.env });
  setup.started(runner.pid);
  await waitEvent((e) => e.type === 'opened' && e.device === 'uio0');
});

afterAll(async () => {
  runner?.child.kill('SIGKILL');
  await runner?.exited;
  await setup?.close();
  await emu?.stop({ releaseTimeoutMs: 0 });
});

describe('tcmu-runner against emulated tcmu devices', () => {
  it('serves a device it found at start-up in /dev', async () => {
    expect(events.find((e) => e.type === 'opened' && e.device === 'uio0')?.comm).toMatch(/tcmu-runner|cmdproc/);
    await serves('uio0', imgA);
  });

  it('registers over netlink and serves a device hot-added while it runs', async () => {
    expect(setup.netlink.consumerPorts).toHaveLength(1);
    await plugTcmu(imgB, 'disk_b');
    // plug() resolves after ADDED_DEVICE_DONE: tcmu-runner has opened and mapped uio1.
    const done = events.find((e) => e.type === 'netlink_done' && e.device === 'uio1');
    expect(done).toMatchObject({ cmd: 'ADDED_DEVICE_DONE', status: 0 });
    expect(events.some((e) => e.type === 'opened' && e.device === 'uio1')).toBe(true);
    await serves("uio1", imgB);
  });

  it('answers a configfs reconfiguration (attrib/dev_size) with RECONFIG_DEVICE_DONE, whose status the write returns', async () => {
    const attrib = emu.path('sys/kernel/config/target/core/user_0/disk_b/attrib');
    const w = await run('python3', ['-c', WRITE_ERRNO, `${attrib}/dev_size`, String(2 * DEV_SIZE)]);
    const done = events.find((e) => e.device === 'uio1' && e.type === 'netlink_done' && e.cmd === 'RECONFIG_DEVICE_DONE');
    expect(done, w.stdout + w.stderr).toBeDefined();
    const status = done!.status as number;
    const size = (await run('cat', [`${attrib}/dev_size`])).stdout;
    // tcmu-runner 1.5.4's qcow handler has no reconfig: -EOPNOTSUPP (dev_reconfig()).
    expect(w.stdout).toBe(status === 0 ? 'ok\n' : `${errnoName(-status)}\n`);
    expect(size).toBe(`${status === 0 ? 2 * DEV_SIZE : DEV_SIZE}\n`);
    await serves('uio1', imgB);
  });

  it('removes a device in the kernel order under a workload: DONE, fd closed before free, every acknowledged write on disk', async () => {
    await emu.action('uio1', 'workload_start', { depth: 8, chunks: 64, blocksPerCommand: 8, seed: 7 });
    const progress = async (): Promise<number> => ((await emu.action('uio1', 'workload_status')) as { submitted: number }).submitted;
    while ((await progress()) < 32) await new Promise((r) => setTimeout(r, 20));
    // Writes of our own above the workload's chunks, racing the removal.
    const writes = Array.from({ length: 24 }, (_, i) => {
      const lba = 4096 + i * 8;
      const data = pattern(i + 100, 8);
      return submit('uio1', { op: 'write', lba, blocks: 8, data: data.toString('hex') }).then(
        (r) => ({ lba, data, good: r.statusName === 'GOOD' }),
        () => ({ lba, data, good: false }),
      );
    });
    const report = await emu.unplug('uio1');
    expect(report.stuck).toEqual([]);
    const results = await Promise.all(writes);

    const gen = emu.instance('uio1')?.generation ?? 1;
    const mine = events.filter((e) => e.device === 'uio1' && e.generation === gen).map((e) => e.type);
    // REMOVED_DEVICE went out and was answered before the uio device went away;
    // tcmu-runner closed its fd then (released, not late_released), so free followed removal at once.
    const removedDone = events.find((e) => e.device === 'uio1' && e.type === 'netlink_done' && e.cmd === 'REMOVED_DEVICE_DONE');
    expect(removedDone, JSON.stringify(events.filter((e) => e.device === "uio1" && !["opened", "action"].includes(e.type)).slice(3))).toMatchObject({ status: 0 });
    const order = ['netlink_done', 'unplug_started', 'removed', 'freed'];
    const at = order.map((t) => mine.lastIndexOf(t));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(mine.lastIndexOf('released')).toBeLessThan(mine.indexOf('unplug_started'));
    expect(mine).not.toContain('late_released');
    expect(mine).not.toContain('netlink_timeout');
    expect(emu.instance('uio1')).toBeUndefined(); // freed: nothing holds it

    const removed = events.find((e) => e.device === 'uio1' && e.type === 'tcmu_removed') as DeviceEvent & {
      workload: { lost: number; verifyErrors: number; acknowledgedWrites: number };
    };
    expect(removed.workload.lost).toBe(0);
    expect(removed.workload.verifyErrors).toBe(0);
    expect(removed.workload.acknowledgedWrites).toBeGreaterThan(0);

    const acknowledged = results.filter((r) => r.good);
    for (const w of acknowledged) expect(await imageBytes(imgB, w.lba, 8)).toEqual(w.data);

    // tcmu-runner is still serving the other device.
    expect((await submit('uio0', { op: 'tur' })).statusName).toBe('GOOD');
  });
});
