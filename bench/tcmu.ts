/**
 * TCMU ring benchmark: 4 KiB READ IOPS and 1 MiB WRITE throughput through
 * an emulated tcmu device, served by the C consumer of the tests
 * (test/clients/tcmu_consumer.c) from a backing file, beside the same
 * consumer doing the same I/O on the file directly (--direct-read /
 * --direct-write): the ratio is what the ring, the uio doorbells and the
 * initiator cost per command.
 *
 *   npm run build && node dist/bench/tcmu.js [--quick] [--json FILE]
 *
 * The initiator runs in this process and talks to the ring in memory; the
 * mount is touched only by the consumer, a child process.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startEmulator } from '../src/api.js';
import type { TcmuState } from '../src/models/tcmu/model.js';
import type { TcmuRing } from '../src/models/tcmu/ring.js';
import { read, SAM_STAT_GOOD, write } from '../src/models/tcmu/scsi.js';
import { killChildren, LineClient, run } from './clients.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonAt = args.indexOf('--json');
const jsonFile = jsonAt >= 0 ? resolve(args[jsonAt + 1] ?? 'tcmu-bench.json') : null;

const MiB = 1 << 20;
const BLOCK = 512;
const DEV_SIZE = 256 * MiB;
const READS = quick ? 20_000 : 200_000;
const WRITES = quick ? 200 : 2_000;

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `count` commands built by `make(i)`, `depth` of them outstanding; seconds from first submit to last end. */
async function drive(ring: TcmuRing, count: number, depth: number, make: (i: number) => Parameters<TcmuRing['submit']>[0]): Promise<number> {
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  const lane = async (): Promise<void> => {
    while (next < count) {
      const c = await ring.submit(make(next++));
      if (c.outcome !== 'completed' || c.status !== SAM_STAT_GOOD) failed++;
    }
  };
  await Promise.all(Array.from({ length: depth }, lane));
  if (failed) throw new Error(`${failed} of ${count} commands failed`);
  return (performance.now() - t0) / 1000;
}

async function direct(bin: string, mnt: string, uio: string, flag: string, count: number): Promise<number> {
  const r = await run(bin, [mnt, uio, flag, String(count)], 600_000);
  const m = /^direct \d+ ([\d.]+)$/m.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`direct run failed: ${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'cdevemu-tcmu-bench-'));
  const bin = join(work, 'tcmu_consumer');
  const cc = await run('gcc', ['-O2', '-Wall', '-Werror', '-o', bin, join(repo, 'test', 'clients', 'tcmu_consumer.c')], 120_000);
  if (cc.code !== 0) throw new Error(`gcc: ${cc.stderr}`);
  const file = join(work, 'disk.img');
  await writeFile(file, Buffer.alloc(DEV_SIZE));
  const mountpoint = join(work, 'mnt');
  await mkdir(mountpoint);
  const emu = await startEmulator({ mountpoint, logger: pino({ level: 'warn' }) });
  try {
    const inst = await emu.plug('tcmu', 'uio%d', { cfgstring: file, devSize: DEV_SIZE, cmdAreaSize: MiB, dataAreaSize: 64 * MiB });
    const ring = (inst.state as TcmuState).ring;
    const consumer = new LineClient(bin, [emu.mountpoint, inst.name, '--quiet']);
    const ready = await consumer.line(10_000);
    if (!ready.startsWith('ready')) throw new Error(`consumer: ${ready}`);

    const slots4k = DEV_SIZE / 4096;
    const readSecs = await drive(ring, READS, 32, (i) => read(((i * 7919) % slots4k) * 8, 8, BLOCK));
    const directReadSecs = await direct(bin, emu.mountpoint, inst.name, '--direct-read', READS);
    const slots1m = DEV_SIZE / MiB;
    const payload = Buffer.alloc(MiB, 0x5a);
    const writeSecs = await drive(ring, WRITES, 4, (i) => write(((i * 7919) % slots1m) * (MiB / BLOCK), payload, BLOCK));
    const directWriteSecs = await direct(bin, emu.mountpoint, inst.name, '--direct-write', WRITES);

    const rows = [
      { name: '4 KiB READ, depth 32', unit: 'IOPS', ring: READS / readSecs, direct: READS / directReadSecs },
      { name: '1 MiB WRITE, depth 4', unit: 'MiB/s', ring: WRITES / writeSecs, direct: WRITES / directWriteSecs },
    ];
    console.log('workload               unit    ring        direct      ring/direct');
    for (const r of rows) {
      console.log(`${r.name.padEnd(22)} ${r.unit.padEnd(7)} ${r.ring.toFixed(0).padStart(10)}  ${r.direct.toFixed(0).padStart(10)}  ${(r.ring / r.direct).toFixed(3)}`);
    }
    if (jsonFile) await writeFile(jsonFile, JSON.stringify({ quick, reads: READS, writes: WRITES, rows }, null, 2));
    await emu.unplug(inst.name);
    await consumer.exited;
  } finally {
    killChildren();
    await emu.stop({ releaseTimeoutMs: 1000 });
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  killChildren();
  process.exit(1);
});
