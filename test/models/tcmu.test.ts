/**
 * tcmu on a real mount, driven by the initiator (actions) and served by a
 * real TCMU consumer in C (test/clients/tcmu_consumer.c: libtcmu's ring
 * walk over <linux/target_core_user.h>, backed by a file): data integrity,
 * capacity, sense, ring wrap with PAD entries, out-of-order completion,
 * back-pressure when the data area is full, cmd_time_out, and unplug under
 * a 32-deep workload.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TcmuState } from '../../src/models/tcmu/model.js';
import { pattern } from '../../src/models/tcmu/workload.js';
import { cClient } from '../helpers/cc.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { testRoot } from '../helpers/mount.js';
import { Interactive, python, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';

let t: TestEmulator;
let bin: string;
let dir: string;
beforeAll(async () => {
  t = await startTestEmulator([], 2000);
  bin = await cClient('tcmu_consumer');
  dir = await mkdtemp(join(testRoot(), 'tcmu-'));
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

interface Result {
  cmdId: number;
  outcome: string;
  status: number;
  sense: { key: number; asc: number; ascq: number; format: string } | null;
  dataHex: string;
  capacity?: { blocks: number; blockSize: number };
}

/** An event of this device generation (names like uio0 are reused by later devices). */
const mine = (d: { name: string; inst: { generation: number } }, e: { device: string; generation: number }) =>
  e.device === d.name && e.generation === d.inst.generation;

let files = 0;
/** A tcmu device over a fresh backing file, and the consumer serving it. */
async function device(options: Record<string, unknown>, consumerFlags: string[] = [], devSize = 1 << 20, reuse?: string) {
  const file = reuse ?? join(dir, `disk${files++}.img`);
  if (!reuse) await writeFile(file, Buffer.alloc(devSize));
  const inst = await t.emu.devices.plug({ model: 'tcmu', name: 'uio%d', options: { cfgstring: file, devSize, ...options } });
  const consumer = new Interactive(bin, [t.api.mountpoint, inst.name, ...consumerFlags]);
  const ready = await consumer.line();
  expect(ready).toMatch(/^ready /);
  const submit = (arg: Record<string, unknown>) => t.emu.devices.action(inst.name, 'submit', arg) as Promise<Result>;
  const state = () => inst.state as TcmuState;
  return { inst, name: inst.name, file, consumer, submit, state, ready };
}

describe('tcmu with a C consumer', () => {
  it('serves TUR, INQUIRY, READ CAPACITY(10/16), WRITE then READ back (10 and 16), and 05/21/00 for a READ past the end', async () => {
    const d = await device({ cmdAreaSize: 65536, dataAreaSize: 1 << 20 });
    expect(await d.submit({ op: 'tur' })).toMatchObject({ outcome: 'completed', status: 0, sense: null });
    const inq = await d.submit({ op: 'inquiry' });
    expect(Buffer.from(inq.dataHex, 'hex').subarray(8, 32).toString()).toBe('LIO-ORG TCMU device     ');
    expect((await d.submit({ op: 'read_capacity10' })).capacity).toMatchObject({ blocks: 2048, blockSize: 512 });
    expect((await d.submit({ op: 'read_capacity16' })).capacity).toMatchObject({ blocks: 2048, blockSize: 512 });

    const data = pattern(7, 1, 8 * 512);
    expect(await d.submit({ op: 'write', lba: 100, data: data.toString('hex') })).toMatchObject({ outcome: 'completed', status: 0 });
    expect((await d.submit({ op: 'read', lba: 100, blocks: 8 })).dataHex).toBe(data.toString('hex'));
    expect((await d.submit({ op: 'read', lba: 100, blocks: 8, cdb16: true })).dataHex).toBe(data.toString('hex'));
    // The consumer really wrote the file, where LBA 100 says.
    expect((await readFile(d.file)).subarray(100 * 512, 108 * 512).equals(data)).toBe(true);

    const past = await d.submit({ op: 'read', lba: 2047, blocks: 2 });
    expect(past).toMatchObject({ outcome: 'completed', status: 2, sense: { format: 'fixed', key: 5, asc: 0x21, ascq: 0 }, dataHex: '' });
    expect((await d.submit({ op: 'raw', cdb: 'a0000000000000000000000000000000', dataInLength: 16 })).sense).toMatchObject({ key: 5, asc: 0x20 });
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('maps the kernel default layout: an 8 MiB command area (ring 8 MiB - 128) and a 1 GiB data area', async () => {
    const d = await device({});
    expect(d.ready).toBe(`ready ${d.name} 0 cdevemu size=${1 << 20} block=512 map=${8 * (1 << 20) + (1 << 30)} ring=${8 * (1 << 20) - 128}`);
    expect(await d.submit({ op: 'tur' })).toMatchObject({ outcome: 'completed', status: 0 });
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('wraps a 4 KiB ring many times with PAD entries, and queues what does not fit', async () => {
    const d = await device({ cmdAreaSize: 4096, dataAreaSize: 1 << 20 });
    const want = pattern(1, 1, 512);
    expect((await d.submit({ op: 'write', lba: 5, data: want.toString('hex') })).status).toBe(0);
    // TUR entries are 120 bytes, one-block READs 128: they never tile the
    // 3968-byte ring, so entries hit its end and a PAD fills the gap.
    const rounds = 3;
    for (let r = 0; r < rounds; r++) {
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => d.submit(i % 2 ? { op: 'tur' } : { op: 'read', lba: 5, blocks: 1 })),
      );
      for (const [i, res] of results.entries()) {
        expect(res).toMatchObject({ outcome: 'completed', status: 0 });
        if (i % 2 === 0) expect(res.dataHex).toBe(want.toString('hex'));
      }
    }
    const s = d.state().ring.stats;
    expect(s.pads).toBeGreaterThan(0);
    // 60 commands at once are more than the ring holds (at most 33 TURs): the rest waited.
    expect(s.maxQfull).toBeGreaterThan(0);
    expect(s).toMatchObject({ inflight: 0, qfull: 0, broken: false, doubleEnds: 0 });
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('takes completions out of order (responses written at cmd_tail carry other cmd_ids)', async () => {
    const d = await device({ cmdAreaSize: 65536, dataAreaSize: 1 << 20 }, ['--ooo', '--batch', '8']);
    const blocks = Array.from({ length: 8 }, (_, i) => pattern(i, 3, 512));
    // Fill 8 LBAs in one batch of writes, then read them in one batch: the
    // consumer answers each batch in reverse order.
    const writes = await Promise.all(blocks.map((b, i) => d.submit({ op: 'write', lba: i * 3, data: b.toString('hex') })));
    expect(writes.map((w) => w.status)).toEqual(Array(8).fill(0));
    const order: number[] = [];
    const reads = await Promise.all(
      blocks.map((_, i) =>
        d.submit({ op: 'read', lba: i * 3, blocks: 1 }).then((r) => {
          order.push(i);
          return r;
        }),
      ),
    );
    for (const [i, r] of reads.entries()) expect(r.dataHex).toBe(blocks[i]!.toString('hex'));
    expect(order).toEqual([7, 6, 5, 4, 3, 2, 1, 0]);
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('holds commands back while the data area is full and queues them in order (ring-full back-pressure)', async () => {
    // 8 data blocks of 4 KiB; 24 one-block (4 KiB) READs at once; the consumer completes 8 at a time.
    const d = await device({ cmdAreaSize: 65536, dataAreaSize: 8 * 4096, hwBlockSize: 4096 }, ['--batch', '8']);
    const blocks = Array.from({ length: 24 }, (_, i) => pattern(i, 9, 4096));
    await writeFile(d.file, Buffer.concat(blocks));
    const results = await Promise.all(blocks.map((_, i) => d.submit({ op: 'read', lba: i, blocks: 1 })));
    for (const [i, r] of results.entries()) expect(r.dataHex).toBe(blocks[i]!.toString('hex'));
    expect(d.state().ring.stats).toMatchObject({ maxQfull: 16, qfull: 0, inflight: 0, freeDataBlocks: 8 });
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('unplug ends commands in the ring with CHECK CONDITION and commands waiting for room with BUSY; waiting submit actions fail ENODEV', async () => {
    const d = await device({ cmdAreaSize: 65536, dataAreaSize: 8 * 4096, hwBlockSize: 4096 }, ['--stall-after', '0']);
    const submits = Array.from({ length: 12 }, (_, i) => d.submit({ op: 'read', lba: i, blocks: 1 }).catch((e: Error) => e));
    await until(() => d.state().ring.stats.inflight === 8 && d.state().ring.stats.qfull === 4, 5000, '8 in the ring, 4 waiting');
    const removed = t.waitEvent((e) => mine(d, e) && e.type === 'tcmu_removed');
    await t.emu.devices.unplug(d.name);
    const ev = (await removed) as unknown as { endedByRemoval: number; commands: { ended: { where: string; status: number }[] } };
    expect(ev.endedByRemoval).toBe(12);
    expect(ev.commands.ended.filter((c) => c.where === 'qfull' && c.status === 8)).toHaveLength(4);
    expect(ev.commands.ended.filter((c) => c.where === 'ring' && c.status === 2)).toHaveLength(8);
    // An action the unplug ends finds the device gone, as an open would.
    for (const r of await Promise.all(submits)) expect(r).toMatchObject({ code: 'ENODEV' });
    await d.consumer.exited;
  });

  it('times out a command the consumer never completes: CHECK CONDITION 02/08/00 and a tcmu_cmd_timeout event; later commands still complete', async () => {
    const d = await device({ cmdAreaSize: 65536, dataAreaSize: 1 << 20, cmdTimeOutMs: 300 }, ['--hold-opcode', '00']);
    const timedOut = t.waitEvent((e) => mine(d, e) && e.type === 'tcmu_cmd_timeout');
    const held = await d.submit({ op: 'tur' });
    expect(held).toMatchObject({ outcome: 'timed_out', status: 2, sense: { key: 2, asc: 0x08, ascq: 0 } });
    expect(await timedOut).toMatchObject({ cmdId: held.cmdId, opcode: 0, where: 'ring' });
    // The expired entry stays in the ring; the consumer completes past it (OOOC).
    expect(await d.submit({ op: 'read_capacity10' })).toMatchObject({ outcome: 'completed', status: 0 });
    expect(d.state().ring.stats).toMatchObject({ expired: 1, inflight: 0, doubleEnds: 0 });
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('a ring entry with a length userspace corrupted (bit 31 set) breaks the ring with a reason, fails new commands, and unplug still ends them all', async () => {
    // No consumer: the test plays userspace, writing the mailbox and ring itself.
    const inst = await t.emu.devices.plug({ model: 'tcmu', name: 'uio%d', options: { cfgstring: join(dir, 'broken.img'), devSize: 1 << 20, cmdAreaSize: 65536, dataAreaSize: 1 << 20 } });
    const d = { name: inst.name, inst };
    const state = inst.state as TcmuState;
    const held = t.emu.devices.action(inst.name, 'submit', { op: 'tur' }).catch((e: Error) => e);
    await until(() => state.ring.stats.inflight === 1, 5000, 'TUR in the ring');
    const map = Buffer.from(inst.regions[0]!.bytes.buffer, inst.regions[0]!.bytes.byteOffset, 128 + 64);
    map.writeUInt32LE(0xfffffc01, 128); // the entry's len_op: TCMU_OP_CMD with a length of 2^32 - 1024
    map.writeUInt32LE(120, 64); // cmd_tail past it (where the entry as written ends)
    const broken = t.waitEvent((e) => mine(d, e) && e.type === 'tcmu_ring_broken');
    // The kick: tcmu_irqcontrol(), a 4-byte write to the uio node.
    const kick = await python(`import os,sys\nfd = os.open(sys.argv[1], os.O_RDWR)\nos.write(fd, (1).to_bytes(4, "little"))\nos.close(fd)`, [t.path(`dev/${inst.name}`)]);
    expect(kick.code, kick.stderr).toBe(0);
    expect(await broken).toMatchObject({ reason: 'entry at 0 has len_op 0xfffffc01, written as 0x79' });
    expect(state.ring.stats).toMatchObject({ broken: true, inflight: 1 });
    expect(await t.emu.devices.action(inst.name, 'submit', { op: 'tur' })).toMatchObject({ outcome: 'rejected', status: 2 });
    const removed = t.waitEvent((e) => mine(d, e) && e.type === 'tcmu_removed');
    await t.emu.devices.unplug(inst.name);
    expect(await removed).toMatchObject({ endedByRemoval: 1, doubleEnds: 0 });
    expect(await held).toMatchObject({ code: 'ENODEV' }); // an action the unplug ends
  });

  it('takes a cmd_time_out beyond a Node timer (2^32-1 s), shows it as written, and does not fire it at once', async () => {
    const d = await device({ cmdAreaSize: 65536, dataAreaSize: 1 << 20, cmdTimeOutMs: 4294967295 * 1000 }, ['--hold-opcode', '00']);
    const cfg = t.path('sys/kernel/config/target/core/user_0/cdevemu');
    expect((await run('bash', ['-c', `cat ${cfg}/attrib/cmd_time_out`])).stdout).toBe('4294967295\n');
    const held = d.submit({ op: 'tur' });
    await until(() => d.state().ring.stats.inflight + d.state().ring.stats.expired === 1, 5000, 'TUR in the ring');
    // A timer past 2^31-1 ms would have fired after 1 ms: the TUR must still be in flight for reset_ring to end it.
    expect((await run('bash', ['-c', `echo 2 > ${cfg}/action/reset_ring`])).code).toBe(0);
    expect(await held).toMatchObject({ outcome: 'reset' });
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('an initiator that aborts a command on its own timeout: ABORT TASK through the ring (tmr_notification), TASK ABORTED once cmd_time_out ends what the consumer holds', async () => {
    const d = await device({ cmdAreaSize: 65536, dataAreaSize: 1 << 20, cmdTimeOutMs: 1000, tmrNotification: true }, ['--hold-opcode', '00']);
    const tmrDone = t.waitEvent((e) => mine(d, e) && e.type === 'tcmu_tmr_done');
    const r = (await d.submit({ op: 'tur', abortAfterMs: 100 })) as Result & { abort?: unknown };
    expect(r).toMatchObject({ outcome: 'aborted', status: 0x40, statusName: 'TASK ABORTED' });
    expect(r.abort).toEqual({ function: 'abort_task', inRing: [r.cmdId], fromQfull: 0, notified: true });
    expect(await tmrDone).toMatchObject({ function: 'abort_task' });
    // The consumer skips the TMR entry as libtcmu does: the device serves on.
    expect(await d.submit({ op: 'read', lba: 0, blocks: 1 })).toMatchObject({ outcome: 'completed', status: 0 });
    expect(d.state().ring.stats).toMatchObject({ broken: false, doubleEnds: 0 });
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('takes write data from a file or base64 (2 MiB in one WRITE, past what hex in a JSON body holds), and exports what the workload acknowledged for an image check', async () => {
    const size = 4 << 20;
    const d = await device({ cmdAreaSize: 65536, dataAreaSize: 4 << 20 }, [], size);
    const big = Buffer.alloc(2 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i * 2654435761 >>> 0, i);
    const src = join(dir, 'big.bin');
    await writeFile(src, big);
    expect(await d.submit({ op: 'write', lba: 0, dataFile: src })).toMatchObject({ outcome: 'completed', status: 0 });
    expect((await readFile(d.file)).subarray(0, big.length).equals(big)).toBe(true);
    const small = big.subarray(0, 600 * 1024);
    expect(await d.submit({ op: 'write', lba: 4096, dataBase64: small.toString('base64') })).toMatchObject({ status: 0 });
    expect((await readFile(d.file)).subarray(4096 * 512, 4096 * 512 + small.length).equals(small)).toBe(true);
    await expect(d.submit({ op: 'write', lba: 0, data: '00', dataFile: src })).rejects.toMatchObject({ code: 'EINVAL' });

    // The workload's record against the image: every acknowledged chunk holds its write's pattern.
    const done = t.waitEvent((e) => mine(d, e) && e.type === 'tcmu_workload_done');
    await t.emu.devices.action(d.name, 'workload_start', { depth: 16, chunks: 64, maxCommands: 400, readPercent: 30 });
    await done;
    const out = join(dir, 'acked.jsonl');
    expect(await t.emu.devices.action(d.name, 'workload_export', { path: out })).toMatchObject({ chunks: 64, path: out });
    const image = await readFile(d.file);
    const records = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { lba: number; blocks: number; state: string; sha256?: string });
    const acked = records.filter((r) => r.state === 'acked');
    expect(acked.length).toBeGreaterThan(30);
    for (const r of acked) {
      const bytes = image.subarray(r.lba * 512, (r.lba + r.blocks) * 512);
      expect(createHash('sha256').update(bytes).digest('hex'), `chunk at LBA ${r.lba}`).toBe(r.sha256);
    }
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('block_dev and reset_ring written from a shell act on the ring as tcmu_block_dev / tcmu_reset_ring', async () => {
    const d = await device({ cmdAreaSize: 65536, dataAreaSize: 1 << 20 }, ['--hold-opcode', '00']);
    const cfg = t.path('sys/kernel/config/target/core/user_0/cdevemu');
    const held = d.submit({ op: 'tur' });
    await until(() => d.state().ring.stats.inflight === 1, 5000, 'TUR in the ring');
    expect((await run('bash', ['-c', `echo 1 > ${cfg}/action/block_dev`])).code).toBe(0);
    // Blocked: a new command is answered BUSY at once; the one in the ring stays.
    expect(await d.submit({ op: 'read_capacity10' })).toMatchObject({ outcome: 'busy', status: 8 });
    expect(d.state().ring.stats.inflight).toBe(1);
    // reset_ring 2: the ring's commands fail CHECK CONDITION, head and tail go to 0.
    expect((await run('bash', ['-c', `echo 2 > ${cfg}/action/reset_ring`])).code).toBe(0);
    expect(await held).toMatchObject({ outcome: 'reset', status: 2, sense: { key: 2, asc: 0x08 } });
    expect(d.state().ring.stats).toMatchObject({ inflight: 0, head: 0, tail: 0 });
    // Each write is recorded, in order, as a consumer's reopen would be.
    const recorded = t.api.events({ device: d.name, generation: d.inst.generation }).filter((e) => e.type === 'tcmu_block_dev' || e.type === 'tcmu_reset_ring');
    expect(recorded).toMatchObject([
      { type: 'tcmu_block_dev', blocked: true },
      { type: 'tcmu_reset_ring', level: 2, failed: 1 },
    ]);
    await t.emu.devices.unplug(d.name);
    await d.consumer.exited;
  });

  it('a workload resumed on the next device of the same backstore finds every write acknowledged before the unplug, and catches a corrupted store', async () => {
    const opts = { cmdAreaSize: 65536, dataAreaSize: 1 << 20, dev: 'resumed' };
    const done = (d: { name: string; inst: { generation: number } }) =>
      t.waitEvent((e) => mine(d, e) && e.type === 'tcmu_workload_done', 30_000) as unknown as Promise<Record<string, number>>;
    const d1 = await device(opts);
    const first = done(d1);
    await t.emu.devices.action(d1.name, 'workload_start', { depth: 16, readPercent: 30, chunks: 32, maxCommands: 300 });
    expect(await first).toMatchObject({ completed: 300, verifyErrors: 0 });
    expect((await first).acknowledgedWrites).toBeGreaterThan(32);
    await t.emu.devices.unplug(d1.name);
    await d1.consumer.exited;

    // A new device on the same backing file, a new consumer: reads only.
    const d2 = await device(opts, [], 1 << 20, d1.file);
    const second = done(d2);
    expect(await t.emu.devices.action(d2.name, 'workload_start', { resume: true, readPercent: 100, maxCommands: 200 })).toMatchObject({ resumed: true, chunks: 32 });
    const r2 = await second;
    expect(r2).toMatchObject({ completed: 200, verifyErrors: 0, writes: 0 });
    expect(r2.verifiedReads).toBeGreaterThan(100);
    await t.emu.devices.unplug(d2.name);
    await d2.consumer.exited;

    // The check can fail: with the store overwritten, the acknowledged content is gone.
    await writeFile(d1.file, Buffer.alloc(1 << 20, 0xff));
    const d3 = await device(opts, [], 1 << 20, d1.file);
    const third = done(d3);
    await t.emu.devices.action(d3.name, 'workload_start', { resume: true, readPercent: 100, maxCommands: 100 });
    const r3 = await third;
    expect(r3.verifyErrors).toBeGreaterThan(0);
    expect(r3.verifiedReads).toBe(0);
    await t.emu.devices.unplug(d3.name);
    await d3.consumer.exited;
  });

  it('unplug with 32 commands in flight under the workload: every command accounted for, POLLERR and EIO for the consumer, freed after it closes', async () => {
    const d = await device({ cmdAreaSize: 1 << 20, dataAreaSize: 1 << 20 }, ['--stall-after', '300']);
    await t.emu.devices.action(d.name, 'workload_start', { depth: 32, readPercent: 50, blocksPerCommand: 8, chunks: 64 });
    expect(await d.consumer.line(30_000)).toMatch(/^(served|stalled)/);
    // Wait until the consumer stopped completing and 32 commands sit in the ring.
    await until(() => d.state().ring.stats.inflight === 32 && d.state().workload!.report().submitted === 332, 30_000, '32 in flight');
    const before = d.state().workload!.report();
    expect(before).toMatchObject({ completed: 300, outstanding: 32, verifyErrors: 0 });
    expect(before.verifiedReads).toBeGreaterThan(0);

    const removed = t.waitEvent((e) => mine(d, e) && e.type === 'tcmu_removed');
    const freed = t.waitEvent((e) => mine(d, e) && e.type === 'freed', 30_000);
    await t.emu.devices.unplug(d.name);
    const ev = (await removed) as unknown as {
      commands: { ended: { where: string; status: number }[] };
      workload: Record<string, number>;
      workloadAtRemoval: { outcome: string; status: number }[];
      doubleEnds: number;
    };
    expect(ev.commands.ended).toHaveLength(32);
    expect(ev.commands.ended.every((c) => c.where === 'ring' && c.status === 2)).toBe(true);
    expect(ev.workloadAtRemoval).toHaveLength(32);
    expect(ev.workloadAtRemoval.every((c) => c.outcome === 'removed' && c.status === 2)).toBe(true);
    expect(ev.workload).toMatchObject({ submitted: 332, completed: 300, failed: 32, timedOut: 0, outstanding: 0, lost: 0, verifyErrors: 0 });
    expect(ev.doubleEnds).toBe(0);

    // The consumer sees the unplug poll mask, read() fails EIO, it closes: then the device is freed.
    const lines: string[] = [];
    for (let l = await d.consumer.line(); ; l = await d.consumer.line()) {
      lines.push(l);
      if (l.startsWith('read ')) break;
    }
    expect(lines.find((l) => l.startsWith('pollerr'))).toMatch(/^pollerr 0x(19|18|1d|1c)$/);
    expect(lines.at(-1)).toBe('read errno EIO');
    expect(await d.consumer.exited).toMatchObject({ code: 0 });
    await freed;
    const types = t.eventTypes(d.name, d.inst.generation);
    expect(types.indexOf('late_released')).toBeLessThan(types.indexOf('freed'));
    expect(types.indexOf('tcmu_removed')).toBeLessThan(types.indexOf('removed'));
  });
});
