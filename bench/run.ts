/**
 * cdevemu benchmark suite.
 *
 *   npm run bench                         # full volumes (1 GiB per stream)
 *   node dist/bench/run.js --quick        # 1/16 of the volumes, a smoke run
 *   node dist/bench/run.js --json FILE    # also write the figures as JSON
 *   node dist/bench/run.js --only 1,3,6   # a subset of the workloads
 *   node dist/bench/run.js --spin-micros 0  # the transport's idle spin (default: the emulator's)
 *
 * Every workload runs on an emulated device and on a reference in the same
 * run, and is reported as emulated/reference with both absolute figures.
 *
 * This process serves the FUSE mount on its main thread: it must never touch
 * the mount itself (a synchronous call would deadlock, an asynchronous one
 * would compete with the requests it measures). All I/O on the mount is done
 * by the C clients in bench/clients/, started with an asynchronous spawn.
 * The mount is removed on every exit path: normal end, failure, SIGINT/SIGTERM.
 */
import { mkdtemp, readFile, rmdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Emulator } from '../src/emulator.js';
import { buildClients, killChildren, LineClient, run, runJson } from './clients.js';
import { metric, renderTable, type Metric, type PingOut, type WorkloadResult } from './report.js';
import { findMount } from '../src/fuse/mount.js';
import { benchRingModel, ringWorkload } from './ring.js';

// ---------------------------------------------------------------- options

interface Options {
  quick: boolean;
  json: string | null;
  only: Set<number> | null;
  spinMicros: number | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, json: null, only: null, spinMicros: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') o.quick = true;
    else if (a === '--json') {
      const f = argv[++i];
      if (!f) usage('--json needs a file name');
      o.json = resolve(f);
    } else if (a === '--only') {
      const list = argv[++i];
      if (!list) usage('--only needs a list, e.g. 1,3,6');
      o.only = new Set(list.split(',').map((s) => Number(s)));
      if ([...o.only].some((n) => !Number.isInteger(n) || n < 1 || n > 7)) usage(`bad --only ${list}`);
    } else if (a === '--spin-micros') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) usage('--spin-micros needs a whole number of microseconds');
      o.spinMicros = v;
    } else if (a === '--help' || a === '-h') usage(null);
    else usage(`unknown argument ${a}`);
  }
  return o;
}

function usage(err: string | null): never {
  const text = 'usage: node dist/bench/run.js [--quick] [--json FILE] [--only 1,2,...,7] [--spin-micros N]';
  if (err) {
    console.error(`${err}\n${text}`);
    process.exit(2);
  }
  console.log(text);
  process.exit(0);
}

const opts = parseArgs(process.argv.slice(2));
const SCALE = opts.quick ? 16 : 1;
const GiB = 1 << 30;
const KiB = 1024;
const MiB = 1 << 20;

/** Volumes at full scale; --quick divides them by 16. */
const V = {
  seqBytes: GiB / SCALE,
  parallelBytes: GiB / SCALE, // in total, split over the readers
  parallelReaders: 4,
  pingpongTrips: Math.round(50_000 / SCALE),
  pingpongWarmup: Math.max(100, Math.round(2000 / SCALE)),
  openClose: Math.round(50_000 / SCALE),
  unplugReaders: [1, 100, 1000],
};
/** Per-client time cap: a client stops early (and says so) rather than blow the run's time budget. */
const CAP_MS = opts.quick ? 5_000 : 40_000;
/** Wall-clock limit for any one client process (killed after it). */
const KILL_MS = CAP_MS + 60_000;

const TARGETS = {
  small: { min: 20_000, text: '>= 20,000 ops/s' },
  bigRead: { min: 4, text: '>= 4 GB/s' },
  pingpong: { min: 10_000, text: '>= 10,000 rt/s' },
};

// ----------------------------------------------------------------- set-up

const benchDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');
const log = pino({ level: 'warn' }, pino.destination(2));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let emulator: Emulator | null = null;
let mountDir: string | null = null;
let cleaning: Promise<void> | null = null;

/** Idempotent: kills our clients, stops the emulator, makes sure nothing is mounted, removes the directory. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    killChildren();
    if (emulator) {
      try {
        const stopped = await Promise.race([
          emulator.stop({ releaseTimeoutMs: 2000 }),
          new Promise<null>((r) => setTimeout(() => r(null), 20_000).unref()),
        ]);
        if (!stopped) console.error('bench: emulator stop did not finish in 20 s; unmounting lazily');
        else if (stopped.unreleased.length) log.warn({ unreleased: stopped.unreleased }, 'files still open at stop');
      } catch (err) {
        console.error('bench: emulator stop failed:', err);
      }
    }
    if (mountDir) {
      if (await isMounted(mountDir)) {
        await run('umount', ['-l', mountDir], 10_000, true).catch((err) => console.error('bench: umount:', err));
      }
      if (await isMounted(mountDir)) console.error(`bench: ${mountDir} is still mounted`);
      else await rmdir(mountDir).catch((err) => console.error(`bench: rmdir ${mountDir}:`, err));
    }
  })();
  return cleaning;
}

const isMounted = async (dir: string): Promise<boolean> => (await findMount(dir)) !== null;

function bail(why: string, code: number): void {
  if (cleaning) {
    console.error(`bench: ${why} while cleaning up; still cleaning up`);
    return;
  }
  console.error(`\nbench: ${why}, cleaning up`);
  void cleanup().finally(() => process.exit(code));
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => bail(sig, 130));
process.on('uncaughtException', (err) => {
  console.error('bench: uncaught exception:', err);
  bail('uncaught exception', 1);
});
process.on('unhandledRejection', (err) => {
  console.error('bench: unhandled rejection:', err);
  bail('unhandled rejection', 1);
});

// ------------------------------------------------------------ measurement

type Bins = Record<string, string>;

interface SeqOut {
  ops: number;
  bytes: number;
  start: number;
  end: number;
  capped: boolean;
}
interface BlockOut {
  n: number;
  t0: number;
  first: number;
  last: number;
  eof: number;
  data: number;
  errnos: Record<string, number>;
}

const secs = (o: { start: number; end: number }): number => (o.end - o.start) / 1e9;

/** Runs fn, reporting the bench process's CPU use (the daemon's, for emulated runs) as % of one core. */
async function withCpu<T>(fn: () => Promise<T>): Promise<{ value: T; cpuPct: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const c = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  return { value, cpuPct: Math.round(((c.user + c.system) / 1000 / wall) * 100) };
}

const sizeName = (n: number): string => (n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`);
const volName = (n: number): string => (n >= GiB ? `${n / GiB} GiB` : `${n / MiB} MiB`);

function cappedRemark(which: string, o: { capped: boolean }): string[] {
  return o.capped ? [`${which} hit the ${CAP_MS / 1000} s cap: figures are over the part done`] : [];
}

async function seqWorkload(
  bins: Bins,
  id: string,
  mode: 'read' | 'write',
  chunk: number,
  emuPath: string,
  refPath: string,
): Promise<WorkloadResult> {
  const args = (path: string): string[] => [mode, path, String(chunk), String(V.seqBytes), '0', String(CAP_MS)];
  const ref = await runJson<SeqOut>(bins.seqio!, args(refPath), KILL_MS);
  const emu = await withCpu(() => runJson<SeqOut>(bins.seqio!, args(emuPath), KILL_MS));
  const e = emu.value;
  const ops = (o: SeqOut): number => o.ops / secs(o);
  const gbs = (o: SeqOut): number => o.bytes / secs(o) / 1e9;
  const metrics: Metric[] = [
    metric('ops/s', 'ops/s', 'higher', ops(e), ops(ref), chunk === 4 * KiB ? TARGETS.small : undefined),
    metric('GB/s', 'GB/s', 'higher', gbs(e), gbs(ref), mode === 'read' && chunk === MiB ? TARGETS.bigRead : undefined),
  ];
  return {
    id,
    title: `seq ${mode} ${sizeName(chunk)} x ${volName(V.seqBytes)}`,
    reference: refPath,
    metrics,
    details: { emulated: e, reference: ref, daemonCpuPct: emu.cpuPct },
    remarks: [`daemon CPU ${emu.cpuPct}% of a core`, ...cappedRemark('emulated', e), ...cappedRemark('reference', ref)],
  };
}

async function pingpongWorkloads(bins: Bins, echoPath: string): Promise<WorkloadResult[]> {
  const tail = [String(V.pingpongTrips), String(V.pingpongWarmup), String(CAP_MS)];
  const same = await runJson<PingOut>(bins.pingpong!, ['pipepair', 'same', ...tail], KILL_MS);
  const split = await runJson<PingOut>(bins.pingpong!, ['pipepair', 'split', ...tail], KILL_MS);
  const self = await runJson<PingOut>(bins.pingpong!, ['selfpipe', ...tail], KILL_MS);
  const emu = await withCpu(() => runJson<PingOut>(bins.pingpong!, ['device', echoPath, ...tail], KILL_MS));
  const e = emu.value;
  const rate = (o: PingOut): number => o.ops / secs(o);
  const figures = (ref: PingOut, primary = false): Metric[] => [
    metric('round trips/s', 'rt/s', 'higher', rate(e), rate(ref), primary ? TARGETS.pingpong : undefined),
    metric('p50 latency µs', 'µs', 'lower', e.p50_ns / 1000, ref.p50_ns / 1000),
    metric('p99 latency µs', 'µs', 'lower', e.p99_ns / 1000, ref.p99_ns / 1000),
  ];
  const title = `echo ping-pong 64 B x ${e.ops.toLocaleString('en-US')}`;
  return [
    {
      id: '3',
      title,
      reference: 'pipe pair between two processes pinned to ONE CPU: the cheapest process-to-process round trip (2 context switches)',
      metrics: figures(same, true),
      details: { emulated: e, reference: same, daemonCpuPct: emu.cpuPct },
      remarks: [`daemon CPU ${emu.cpuPct}% of a core; emulated max latency ${(e.max_ns / 1000).toFixed(0)} µs`, ...cappedRemark('emulated', e)],
    },
    {
      id: '3b',
      title: '  vs pipe pair on 2 CPUs',
      reference: 'the same pipe pair pinned to TWO CPUs: every message also wakes the other CPU, as a daemon on another core must',
      metrics: figures(split),
      details: { emulated: e, reference: split },
      remarks: [],
    },
    {
      id: '3c',
      title: '  vs in-kernel pipe',
      reference: 'one process writes 64 B into a pipe and reads them back: what an in-kernel echo device costs (no context switch)',
      metrics: figures(self),
      details: { emulated: e, reference: self },
      remarks: [],
    },
  ];
}

async function openCloseWorkload(bins: Bins, emuPath: string): Promise<WorkloadResult> {
  const args = (p: string): string[] => [p, String(V.openClose), String(CAP_MS)];
  const ref = await runJson<SeqOut>(bins.openclose!, args('/dev/null'), KILL_MS);
  const emu = await withCpu(() => runJson<SeqOut>(bins.openclose!, args(emuPath), KILL_MS));
  const e = emu.value;
  const rate = (o: SeqOut): number => o.ops / secs(o);
  return {
    id: '4',
    title: `open+close x ${V.openClose.toLocaleString('en-US')}`,
    reference: '/dev/null',
    metrics: [metric('open+close/s', 'ops/s', 'higher', rate(e), rate(ref))],
    details: { emulated: e, reference: ref, daemonCpuPct: emu.cpuPct },
    remarks: [`daemon CPU ${emu.cpuPct}% of a core`, ...cappedRemark('emulated', e), ...cappedRemark('reference', ref)],
  };
}

/** N readers started together (a CLOCK_MONOTONIC barrier); aggregate = all ops / (last end - first start). */
async function parallel(bins: Bins, path: string): Promise<{ ops: number; bytes: number; seconds: number; capped: boolean; each: SeqOut[] }> {
  const n = V.parallelReaders;
  const startAt = process.hrtime.bigint() + 300_000_000n; // after every reader has been spawned and opened
  const each = await Promise.all(
    Array.from({ length: n }, () =>
      runJson<SeqOut>(bins.seqio!, ['read', path, String(4 * KiB), String(V.parallelBytes / n), String(startAt), String(CAP_MS)], KILL_MS),
    ),
  );
  const start = Math.min(...each.map((o) => o.start));
  const end = Math.max(...each.map((o) => o.end));
  return {
    ops: each.reduce((s, o) => s + o.ops, 0),
    bytes: each.reduce((s, o) => s + o.bytes, 0),
    seconds: (end - start) / 1e9,
    capped: each.some((o) => o.capped),
    each,
  };
}

async function parallelWorkload(bins: Bins, emuPath: string): Promise<WorkloadResult> {
  const ref = await parallel(bins, '/dev/zero');
  const emu = await withCpu(() => parallel(bins, emuPath));
  const e = emu.value;
  const rate = (o: { ops: number; seconds: number }): number => o.ops / o.seconds;
  const gbs = (o: { bytes: number; seconds: number }): number => o.bytes / o.seconds / 1e9;
  return {
    id: '5',
    title: `${V.parallelReaders} parallel readers 4 KiB x ${volName(V.parallelBytes)}`,
    reference: '/dev/zero',
    metrics: [
      metric('aggregate ops/s', 'ops/s', 'higher', rate(e), rate(ref)),
      metric('aggregate GB/s', 'GB/s', 'higher', gbs(e), gbs(ref)),
    ],
    details: { emulated: e, reference: ref, daemonCpuPct: emu.cpuPct },
    remarks: [`daemon CPU ${emu.cpuPct}% of a core`, ...cappedRemark('emulated', e), ...cappedRemark('reference', ref)],
  };
}

function errnoText(o: BlockOut): string {
  const parts = Object.entries(o.errnos).map(([k, v]) => `${k} x${v}`);
  if (o.eof) parts.push(`EOF x${o.eof}`);
  if (o.data) parts.push(`data x${o.data}`);
  return parts.join(', ') || '-';
}

async function unplugOne(bins: Bins, emu: Emulator, n: number): Promise<WorkloadResult> {
  const ref = await runJson<BlockOut>(bins.blockers!, ['pipe', String(n)], KILL_MS);

  const name = `echo-unplug-${n}`;
  await emu.devices.plug({ model: 'echo', name });
  const client = new LineClient(bins.blockers!, ['device', join(emu.mountpoint, 'dev', name), String(n)]);
  let wakeMs: number;
  let firstMs: number;
  let out: BlockOut;
  let report: Awaited<ReturnType<typeof emu.devices.unplug>>;
  let resolvedMs: number;
  let t0 = 0n;
  try {
    const ready = await client.line(60_000);
    if (ready !== 'ready') throw new Error(`blockers said ${JSON.stringify(ready)}`);
    // Every thread is inside read(); wait until every READ has also reached the model.
    const deadline = Date.now() + 30_000;
    while ((emu.devices.get(name)?.counters.inFlight ?? 0) < n) {
      if (Date.now() > deadline) throw new Error(`only ${emu.devices.get(name)?.counters.inFlight} of ${n} reads reached the device`);
      await sleep(5);
    }
    t0 = process.hrtime.bigint();
    const unplugging = emu.devices.unplug(name, { drainTimeoutMs: 5000 });
    report = await unplugging;
    resolvedMs = Number(process.hrtime.bigint() - t0) / 1e6;
    out = JSON.parse(await client.line(60_000)) as BlockOut;
    wakeMs = Number(BigInt(out.last) - t0) / 1e6;
    firstMs = Number(BigInt(out.first) - t0) / 1e6;
    const exit = await client.exited;
    if (exit.code !== 0) throw new Error(`blockers exited ${exit.code ?? exit.signal}: ${exit.stderr}`);
  } finally {
    client.kill();
  }
  const refMs = (ref.last - ref.t0) / 1e6;
  const errnoOk = out.errnos.EIO === n;
  return {
    id: `6.${n}`,
    title: `unplug, ${n} blocked reader${n === 1 ? '' : 's'}`,
    reference: `${n} thread${n === 1 ? '' : 's'} blocked in read() on a pipe, woken by closing its write end`,
    metrics: [metric('ms to all woken', 'ms', 'lower', wakeMs, refMs)],
    details: {
      emulated: { ...out, t0: Number(t0), allWokenMs: wakeMs, firstWokenMs: firstMs, unplugResolvedMs: resolvedMs, report },
      reference: { ...ref, allWokenMs: refMs, firstWokenMs: (ref.first - ref.t0) / 1e6 },
    },
    remarks: [
      `emulated readers got: ${errnoText(out)}${errnoOk ? '' : '  <-- expected EIO for all'}; reference: ${errnoText(ref)}`,
      `first reader woke after ${firstMs.toFixed(2)} ms; unplug() resolved after ${resolvedMs.toFixed(2)} ms (drain ${report.drainedInMs} ms, ${report.stuck.length} stuck)`,
    ],
  };
}

// ------------------------------------------------------------------- main

async function systemInfo(): Promise<{ cpu: string; cores: number; kernel: string; node: string; loadAtStart: string }> {
  const c = cpus();
  const kernel = (await readFile('/proc/sys/kernel/osrelease', 'utf8')).trim();
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ')[0] ?? '?';
  return { cpu: c[0]?.model ?? '?', cores: c.length, kernel, node: process.version, loadAtStart: load };
}

async function main(): Promise<number> {
  const began = performance.now();
  const want = (n: number): boolean => !opts.only || opts.only.has(n);
  const bins = await buildClients(benchDir);

  mountDir = await mkdtemp('/tmp/cdevemu-bench-');
  emulator = await Emulator.start({
    mountpoint: mountDir,
    logger: log,
    models: [benchRingModel],
    ...(opts.spinMicros !== undefined ? { spinMicros: opts.spinMicros } : {}),
  });
  const emu = emulator;
  const dev = (name: string): string => join(mountDir!, 'dev', name);
  await emu.devices.plug({ model: 'zero', name: 'zero' });
  await emu.devices.plug({ model: 'null', name: 'null' });
  await emu.devices.plug({ model: 'echo', name: 'echo' });

  const info = await systemInfo();
  console.log(
    `cdevemu bench (${opts.quick ? 'quick: 1/16 volumes' : 'full volumes'}) on ${info.cores}x ${info.cpu}, Linux ${info.kernel}, Node ${info.node}; load average ${info.loadAtStart} at start`,
  );
  if (Number(info.loadAtStart) > info.cores) {
    console.log(`WARNING: load average ${info.loadAtStart} exceeds the ${info.cores} cores: other work is running and will depress the figures`);
  }
  const spin = opts.spinMicros !== undefined ? `; transport spin ${opts.spinMicros} µs` : '';
  console.log(`mount ${mountDir}; clients in ${join(benchDir, 'bin')}${spin}\n`);

  const results: WorkloadResult[] = [];
  const step = async (label: string, fn: () => Promise<WorkloadResult | WorkloadResult[]>, id: string): Promise<void> => {
    if (cleaning) return; // interrupted: no more workloads
    const t = performance.now();
    process.stderr.write(`  ${label} ... `);
    try {
      const r = await fn();
      results.push(...(Array.isArray(r) ? r : [r]));
      process.stderr.write(`${((performance.now() - t) / 1000).toFixed(1)} s\n`);
    } catch (err) {
      if (cleaning) {
        process.stderr.write('interrupted\n');
        return;
      }
      process.stderr.write('FAILED\n');
      console.error(err);
      results.push({ id, title: label, reference: '', metrics: [], details: {}, remarks: [], error: String((err as Error).message ?? err) });
    }
  };

  for (const chunk of [4 * KiB, 64 * KiB, MiB]) {
    if (want(1)) await step(`1: seq read ${sizeName(chunk)}`, () => seqWorkload(bins, `1.${sizeName(chunk).replace(' ', '')}`, 'read', chunk, dev('zero'), '/dev/zero'), '1');
  }
  for (const chunk of [4 * KiB, 64 * KiB, MiB]) {
    if (want(2)) await step(`2: seq write ${sizeName(chunk)}`, () => seqWorkload(bins, `2.${sizeName(chunk).replace(' ', '')}`, 'write', chunk, dev('null'), '/dev/null'), '2');
  }
  if (want(3)) await step('3: echo ping-pong', () => pingpongWorkloads(bins, dev('echo')), '3');
  if (want(4)) await step('4: open+close', () => openCloseWorkload(bins, dev('null')), '4');
  if (want(5)) await step('5: parallel readers', () => parallelWorkload(bins, dev('zero')), '5');
  for (const n of V.unplugReaders) {
    if (want(6)) await step(`6: unplug with ${n} blocked readers`, () => unplugOne(bins, emu, n), `6.${n}`);
  }
  if (want(7)) {
    const ring = { bin: bins.ringpong!, trips: V.pingpongTrips, warmup: V.pingpongWarmup, capMs: CAP_MS, killMs: KILL_MS, runJson };
    await step('7: mapped ring ping-pong', () => ringWorkload(emu, ring), '7');
  }
  const elapsed = (performance.now() - began) / 1000;

  const notes = [
    'ratio = emulated / reference, both measured in this run. Throughput: higher is better (1 = parity with the kernel). Latency/time: lower is better (ratio = times slower).',
    `targets for the emulated device: 4 KiB read and write ${TARGETS.small.text}; 1 MiB reads ${TARGETS.bigRead.text}; echo ping-pong ${TARGETS.pingpong.text}.`,
    'GB = 10^9 bytes. Client times cover only the I/O loop (not exec or open). Figures are single runs: on a shared 2-vCPU VM the emulated figures vary by 10-50% from run to run with vCPU placement and other load (see the load average in the header).',
    'ping-pong: one round trip = write(64 B) + read(64 B) on one O_RDWR descriptor of MOUNT/dev/echo (the emulated client is not pinned); percentiles are nearest-rank over every timed round trip. The pipe-pair references are pinned because unpinned the scheduler picks one or two CPUs at random and the figure is bimodal (cross-CPU wake-ups cost ~10x more on this VM).',
    'unplug: time from the DeviceManager.unplug() call to the return of the LAST blocked read(), both on CLOCK_MONOTONIC; readers are all inside read() and every READ has reached the device before the unplug.',
    `"daemon CPU" is this process's CPU time (it serves the mount) over the emulated run, in % of one core (main thread + /dev/fuse reader thread, so it can exceed 100%); ${info.cores} cores in total, shared with the clients.`,
    `total bench time ${elapsed.toFixed(0)} s.`,
  ];
  if (cleaning) notes.unshift('INTERRUPTED: only the workloads that finished are shown.');
  console.log(renderTable(results, notes));

  if (opts.json) {
    const doc = {
      when: new Date().toISOString(),
      mode: opts.quick ? 'quick' : 'full',
      spinMicros: opts.spinMicros ?? 'default',
      system: info,
      volumes: V,
      capMs: CAP_MS,
      targets: TARGETS,
      elapsedSeconds: elapsed,
      results,
    };
    await writeFile(opts.json, JSON.stringify(doc, null, 2) + '\n');
    console.log(`\nJSON written to ${opts.json}`);
  }
  return results.some((r) => r.error) ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error('bench failed:', err);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
