/**
 * cdevemu benchmark suite: cdevemu against libfuse3 servers in C, side by
 * side in one run.
 *
 *   npm run bench                           # 3 repetitions of 2 s runs
 *   npm run bench -- --quick                # 3 repetitions of 0.5 s runs
 *   node dist/bench/run.js --json FILE      # also write every figure as JSON (and the chart beside it)
 *   node dist/bench/run.js --svg FILE       # the chart of the ratios there (default bench/out/ratios.svg)
 *   node dist/bench/run.js --only 1,3,6     # a subset of the workloads (1-8)
 *
 * Every workload runs against the kernel's own device (/dev/zero, /dev/null,
 * a pipe), two C servers (bench/peer/devserver.c on libfuse's
 * single-threaded loop and, with --mt, on its default multithreaded loop)
 * and the cdevemu daemon, three times, in an order that lets a C server
 * and cdevemu take turns going first (runOrder), so that all see the same
 * machine; the table gives the median and spread of each, and the median
 * of the cdevemu/C ratios of runs done next to each other, C being the
 * better of the two C servers in that workload (betterC). Workload 7
 * (mapped ring) has no C counterpart: libfuse3's peer has no mapped
 * region, so its ratio is against the kernel reference (a pipe pair),
 * which then alternates with cdevemu the same way. It runs twice: on the
 * daemon, whose region is mapped through FUSE passthrough, and on a second
 * one started with --no-passthrough, whose region is mapped through the
 * page cache as it is for a daemon without CAP_SYS_ADMIN.
 *
 * The servers are child processes (servers.ts): their CPU time and memory
 * are read from procfs around each run (procstat.ts). All I/O is done by the
 * C clients in bench/clients/. Mounts are removed on every exit path:
 * normal end, failure, SIGINT/SIGTERM/SIGHUP.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allowedCpus, pinnedCommand, withPinned } from './affinity.js';
import { IDLE_CHECK_MS } from '../daemon/idle-gc.js';
import { ratioChartSvg } from './chart.js';
import { buildClients, killChildren, LineClient, runJson } from './clients.js';
import { benchRingModel } from './peer/ring-model.js';
import { CPU_TICK_MICROS, cpuMicros, memory, resetPeak } from './procstat.js';
import { judge, renderTable, spread, type Better, type Figure, type Spread, type Target, type WorkloadResult } from './report.js';
import { C_SERVERS, startCdevemu, startFloor, startPeer, unmountLeft, type CdevemuServer, type CServerName, type Server, type ServerName } from './servers.js';

// ---------------------------------------------------------------- options

interface Options {
  quick: boolean;
  json: string | null;
  /** Where the chart of the ratios goes (chart.ts); see chartFile(). */
  svg: string | null;
  only: Set<number> | null;
  reps: number;
  floor: boolean;
}

const LAST_WORKLOAD = 8;

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: process.env.CDEVEMU_BENCH_QUICK === '1', json: null, svg: null, only: null, reps: 3, floor: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') o.quick = true;
    else if (a === '--json') {
      const f = argv[++i];
      if (!f) usage('--json needs a file name');
      o.json = resolve(f);
    } else if (a === '--svg') {
      const f = argv[++i];
      if (!f) usage('--svg needs a file name');
      o.svg = resolve(f);
    } else if (a === '--only') {
      const list = argv[++i];
      if (!list) usage('--only needs a list, e.g. 1,3,6');
      o.only = new Set(list.split(',').map((s) => Number(s)));
      if ([...o.only].some((n) => !Number.isInteger(n) || n < 1 || n > LAST_WORKLOAD)) usage(`bad --only ${list}`);
    } else if (a === '--reps') {
      o.reps = Number(argv[++i]);
      if (!Number.isInteger(o.reps) || o.reps < 1) usage('--reps needs a positive whole number');
    } else if (a === '--floor') o.floor = true;
    else if (a === '--help' || a === '-h') usage(null);
    else usage(`unknown argument ${a}`);
  }
  return o;
}

function usage(err: string | null): never {
  const text = `usage: node dist/bench/run.js [--quick] [--json FILE] [--svg FILE] [--only 1,2,...,${LAST_WORKLOAD}] [--reps N] [--floor]  (CDEVEMU_BENCH_QUICK=1 = --quick)`;
  if (err) {
    console.error(`${err}\n${text}`);
    process.exit(2);
  }
  console.log(text);
  process.exit(0);
}

const opts = parseArgs(process.argv.slice(2));
const KiB = 1024;
const MiB = 1 << 20;

/** How long one timed run lasts; every client stops at it (volumes are set so as never to run out first). */
const RUN_MS = opts.quick ? 500 : 2000;
/** Wall-clock limit for any one client process (killed after it). */
const KILL_MS = RUN_MS + 60_000;
const ENDLESS = String(2 ** 50); // bytes or operations: more than any run gets through
const WARMUP_TRIPS = opts.quick ? 200 : 1000;
const PARALLEL_READERS = 4;
const UNPLUG_READERS = [1, 100, 1000];
/**
 * When idle memory is read, after start-up and after the last workload:
 * once cdevemu's idle collection has had its chance. It runs at the first
 * check (every IDLE_CHECK_MS) that finds a whole interval idle, so up to
 * two intervals after the last work; read at 2 s, the figure fell before
 * or after it by chance (77.8 and 82.6 MiB in two runs of one build).
 */
const IDLE_READ_MS = 2 * IDLE_CHECK_MS + 1000;

const T = {
  ratio: (bound: number, better: Better): Target => ({ on: 'ratio', bound, text: `${better === 'higher' ? '>=' : '<='} ${bound}x C` }),
  abs: (bound: number, unit: string): Target => ({ on: 'cdevemu', bound, text: `<= ${bound} ${unit}` }),
};
const PEAK_RSS_MIB = 90;
const IDLE_RSS_MIB = 50;
const UNPLUG_MS = 50;

// ----------------------------------------------------------------- set-up

const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const benchDir = join(repoDir, 'bench');

/**
 * The chart goes where --svg says; else beside the --json file (out.json:
 * out.svg), so one run's figures and picture stay together; else to
 * bench/out/ratios.svg (git-ignored), the last run's.
 */
function chartFile(o: Options): string {
  return o.svg ?? (o.json ? o.json.replace(/(\.json)?$/, '.svg') : join(benchDir, 'out', 'ratios.svg'));
}
const cli = join(repoDir, 'dist', 'daemon', 'cli.js');
/** The model module of workload 7, loaded into the daemon with --model. */
const ringModel = join(repoDir, 'dist', 'bench', 'peer', 'ring-model.js');
const RING_DEVICE = 'bench-ring';

let workDir: string | null = null;
const servers: Server[] = [];
let cleaning: Promise<void> | null = null;

/**
 * Idempotent: kills our clients, so that nothing holds a mount; stops the
 * servers with SIGTERM, on which each unmounts and exits as it does for a
 * user (cdevemu also lets go of its mountpoint's lock file); kills what is
 * left (a server still starting up), unmounts what such a one mounted, and
 * removes the directory.
 */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    killChildren(new Set(servers.map((s) => s.pid)));
    await Promise.all(servers.map((s) => s.stop().catch((err) => console.error(`bench: stopping ${s.name}:`, err))));
    killChildren();
    if (workDir) {
      await unmountLeft(workDir).catch((err) => console.error(`bench: unmounting under ${workDir}:`, err));
      await rm(workDir, { recursive: true, force: true }).catch((err) => console.error(`bench: rm ${workDir}:`, err));
    }
  })();
  return cleaning;
}

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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------ measurement

type Bins = Record<string, string>;

interface SeqOut {
  ops: number;
  bytes: number;
  start: number;
  end: number;
}
interface PingOut {
  ops: number;
  start: number;
  end: number;
  p50_ns: number;
  p99_ns: number;
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

/** A run's figures, by metric name. */
type Values = Record<string, number>;
interface ClientRun {
  values: Values;
  /** Client operations, the divisor of the server's CPU time. */
  ops: number;
  raw: unknown;
}

interface MetricSpec {
  key: string;
  unit: string;
  better: Better;
  target?: Target;
}

interface Workload {
  num: number;
  id: string;
  title: string;
  reference: string;
  metrics: MetricSpec[];
  kernel: () => Promise<ClientRun>;
  server: (s: Server) => Promise<ClientRun>;
  remarks?: string[];
  /**
   * A device cdevemu plugs over its control socket for this workload only
   * (and unplugs after it). Such a workload runs on cdevemu alone, the C
   * peer having no such device: its ratio is against the kernel reference.
   */
  plug?: { model: string; name: string };
}

const secs = (o: { start: number; end: number }): number => (o.end - o.start) / 1e9;
const CPU = 'server CPU';
const OPS_PER_CPU = 'ops per server CPU-second';
const BUSY = 'server busy';
const PEAK = 'server peak RSS';

/** One run against a server, with its CPU time per client operation and its peak RSS during the run. */
async function onServer(s: Server, w: Workload): Promise<{ values: Values; raw: unknown }> {
  await resetPeak(s.pid);
  const cpu0 = await cpuMicros(s.pid);
  const t0 = performance.now();
  const r = await w.server(s);
  const wallMicros = (performance.now() - t0) * 1000;
  const cpu = (await cpuMicros(s.pid)) - cpu0;
  const mem = await memory(s.pid);
  const values = {
    ...r.values,
    [CPU]: cpu / r.ops,
    // Infinite (and left out of the medians) in a run shorter than a clock tick of CPU.
    [OPS_PER_CPU]: r.ops / (cpu / 1e6),
    [BUSY]: (100 * cpu) / wallMicros,
    [PEAK]: mem.peakKiB / 1024,
  };
  return { values, raw: { client: r.raw, serverCpuMicros: cpu, ops: r.ops, memory: mem } };
}

async function runWorkload(w: Workload, cs: readonly Server[], emu: CdevemuServer, floor: Server | null): Promise<WorkloadResult> {
  if (w.plug) await emu.control.plug(w.plug);
  try {
    return await repeatWorkload(w, (rep) => (w.plug ? [emu] : runOrder(rep, cs, emu, floor)));
  } finally {
    if (w.plug) await emu.control.unplug(w.plug.name);
  }
}

/**
 * The servers' order in repetition `rep`: a C server goes first in even
 * repetitions and cdevemu in odd ones (the even order reversed), and the
 * two C servers swap places every second repetition; over three
 * repetitions: C, C-mt, cdevemu / cdevemu, C-mt, C / C-mt, C, cdevemu. The
 * floor runs next to cdevemu.
 */
function runOrder(rep: number, cs: readonly Server[], emu: Server, floor: Server | null): Server[] {
  const order = [...((rep >> 1) % 2 ? [...cs].reverse() : cs), ...(floor ? [floor] : []), emu];
  return rep % 2 ? order.reverse() : order;
}

type Column = 'kernel' | ServerName;

const column = (vs: Values[], key: string): Spread | undefined => (vs.some((v) => key in v) ? spread(vs.map((v) => v[key]!)) : undefined);

/** Whether median `x` is better than median `y`: a figure beats a missing one. */
const beats = (x: number, y: number, better: Better): boolean => Number.isFinite(x) && (!Number.isFinite(y) || (better === 'higher' ? x > y : x < y));

/**
 * The C server of `ran` with the better `figure` (the single-threaded one
 * on a tie); 'kernel' when none ran (a device only cdevemu has).
 */
function betterC(ran: readonly CServerName[], figure: (n: CServerName) => number, better: Better): CServerName | 'kernel' {
  return ran.reduce<CServerName | 'kernel'>((best, n) => (best === 'kernel' || beats(figure(n), figure(best), better) ? n : best), 'kernel');
}

async function repeatWorkload(w: Workload, orderOf: (rep: number) => Server[]): Promise<WorkloadResult> {
  const runs: unknown[] = [];
  const per: Record<Column, Values[]> = { kernel: [], C: [], 'C-mt': [], cdevemu: [], floor: [] };
  for (let rep = 0; rep < opts.reps; rep++) {
    const rec: Record<string, unknown> = { rep };
    const kernel = async (): Promise<void> => {
      const k = await w.kernel();
      per.kernel.push(k.values);
      rec.kernel = k.raw;
    };
    const on = orderOf(rep);
    const order = on.map((s) => async (): Promise<void> => {
      const r = await onServer(s, w);
      per[s.name].push(r.values);
      rec[s.name] = r.raw;
    });
    // On cdevemu alone (a device only it has), the ratio is against the kernel reference, which then alternates with cdevemu as C does.
    if (on.every((s) => s.name === 'cdevemu') && rep % 2) order.push(kernel);
    else order.unshift(kernel);
    for (const step of order) await step();
    runs.push(rec);
  }
  const allMetrics: MetricSpec[] = [
    ...w.metrics,
    { key: CPU, unit: 'µs/op', better: 'lower', ...(w.id === '1.4KiB' || w.id === '2.4KiB' ? { target: T.ratio(2, 'lower') } : {}) },
    { key: OPS_PER_CPU, unit: '', better: 'higher' },
    { key: BUSY, unit: '% of a CPU', better: 'lower' },
    { key: PEAK, unit: 'MiB', better: 'lower', target: T.abs(PEAK_RSS_MIB, 'MiB') },
  ];
  // The better C server of the workload, on its first metric (its rate); the CPU-per-op rows take the better one per CPU instead.
  const ran = C_SERVERS.filter((n) => per[n].length > 0);
  const median = (key: string) => (n: CServerName): number => column(per[n], key)?.median ?? NaN;
  const byRate = betterC(ran, median(w.metrics[0]!.key), w.metrics[0]!.better);
  const byCpu = betterC(ran, median(CPU), 'lower');
  const figures = allMetrics.map((m): Figure => {
    const against = m.key === CPU || m.key === OPS_PER_CPU ? byCpu : byRate;
    const divisor = per[against];
    const ratioOf = (vs: Values[]): Spread => spread(vs.map((v, i) => v[m.key]! / divisor[i]![m.key]!));
    const f: Figure = { name: m.key, unit: m.unit, better: m.better, servers: {}, against, ratio: ratioOf(per.cdevemu) };
    const k = column(per.kernel, m.key);
    if (k) f.kernel = k;
    for (const name of [...C_SERVERS, 'cdevemu', 'floor'] as const) {
      const col = column(per[name], m.key);
      if (col) f.servers[name] = col;
    }
    if (per.floor.length) f.floorRatio = ratioOf(per.floor);
    if (m.target) f.target = m.target;
    return judge(f);
  });
  return { id: w.id, title: w.title, reference: w.reference, figures, remarks: w.remarks ?? [], runs };
}

const sizeName = (n: number): string => (n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`);

function seqWorkload(bins: Bins, num: 1 | 2, chunk: number): Workload {
  const mode = num === 1 ? 'read' : 'write';
  const node = num === 1 ? 'zero' : 'null';
  const once = async (path: string): Promise<ClientRun> => {
    const o = await runJson<SeqOut>(bins.seqio!, [mode, path, String(chunk), ENDLESS, '0', String(RUN_MS)], KILL_MS);
    return { values: { 'ops/s': o.ops / secs(o), 'MB/s': o.bytes / secs(o) / 1e6 }, ops: o.ops, raw: o };
  };
  return {
    num,
    id: `${num}.${sizeName(chunk).replace(' ', '')}`,
    title: `seq ${mode} ${sizeName(chunk)}`,
    reference: `/dev/${node}`,
    metrics: [
      { key: 'ops/s', unit: '', better: 'higher', target: T.ratio(0.9, 'higher') },
      { key: 'MB/s', unit: '', better: 'higher' },
    ],
    kernel: () => once(`/dev/${node}`),
    server: (s) => once(s.dev(node)),
  };
}

// The ping-pong clients keep every latency (4 bytes each): a bound they never reach in RUN_MS.
const PING_TAIL = [String(5_000_000), String(WARMUP_TRIPS), String(RUN_MS)];
const pingValues = (o: PingOut): ClientRun => ({
  values: { 'round trips/s': o.ops / secs(o), p50: o.p50_ns / 1000, p99: o.p99_ns / 1000 },
  ops: o.ops,
  raw: o,
});

interface PingSpec {
  num: number;
  title: string;
  reference: string;
  /** The client (it prints PingOut) and its arguments before PING_TAIL, on the kernel reference and on a server's device. */
  bin: string;
  kernelArgs: string[];
  device: string;
  targets?: { rate: Target; p99: Target };
  remarks: string[];
  plug?: Workload['plug'];
  /** Workload 8: the server's threads on cpus[0], the client on cpus[0] (same) or cpus[1] (split). */
  pin?: { cpus: readonly number[]; client: 0 | 1; id: string };
}

/** A round-trip workload: rate and nearest-rank latencies of one client run on the kernel reference and on each server. */
function pingWorkload(p: PingSpec): Workload {
  const once = async (args: string[], cpu?: number): Promise<ClientRun> => {
    const [cmd, argv] = cpu === undefined ? [p.bin, [...args, ...PING_TAIL]] : pinnedCommand(cpu, p.bin, [...args, ...PING_TAIL]);
    return pingValues(await runJson<PingOut>(cmd, argv, KILL_MS));
  };
  const pin = p.pin;
  return {
    num: p.num,
    id: pin ? `${p.num}.${pin.id}` : String(p.num),
    title: p.title,
    reference: p.reference,
    metrics: [
      { key: 'round trips/s', unit: '', better: 'higher', ...(p.targets ? { target: p.targets.rate } : {}) },
      { key: 'p50', unit: 'µs', better: 'lower' },
      { key: 'p99', unit: 'µs', better: 'lower', ...(p.targets ? { target: p.targets.p99 } : {}) },
    ],
    kernel: () => once(p.kernelArgs),
    server: (s) =>
      pin
        ? withPinned(s.pid, pin.cpus[0]!, () => once(['device', s.dev(p.device)], pin.cpus[pin.client]))
        : once(['device', s.dev(p.device)]),
    remarks: p.remarks,
    ...(p.plug ? { plug: p.plug } : {}),
  };
}

const pingpongWorkload = (bins: Bins): Workload =>
  pingWorkload({
    num: 3,
    title: 'echo ping-pong 64 B',
    reference: 'a pipe pair between two processes pinned to one CPU (2 context switches a round trip)',
    bin: bins.pingpong!,
    kernelArgs: ['pipepair', 'same'],
    device: 'echo',
    targets: { rate: T.ratio(0.8, 'higher'), p99: T.ratio(1.5, 'lower') },
    remarks: ['one op = write(64 B) + read(64 B) on one O_RDWR descriptor: two requests to the server'],
  });

/**
 * Workload 3 pinned, in the two placements the scheduler otherwise picks
 * between at random (bench/affinity.ts): server and client on one CPU,
 * where a round trip costs the code on both sides and two context
 * switches, and on two CPUs, where it costs two cross-CPU wake-ups. The
 * references are the pipe pair pinned the same way.
 */
const pinnedPingpongWorkloads = (bins: Bins, cpus: readonly number[]): Workload[] =>
  (['same', 'split'] as const).map((placement) =>
    pingWorkload({
      num: 8,
      title: `echo ping-pong 64 B, ${placement === 'same' ? 'one CPU' : 'two CPUs'}`,
      reference: `the pipe pair, pinned ${placement === 'same' ? 'to one CPU' : 'to two CPUs'}`,
      bin: bins.pingpong!,
      kernelArgs: ['pipepair', placement],
      device: 'echo',
      remarks: [
        placement === 'same'
          ? `every server thread and the client pinned to CPU ${cpus[0]}: the cost of the code on both sides, no wake-up of an idle CPU`
          : `every server thread pinned to CPU ${cpus[0]}, the client to CPU ${cpus[1]}: each request and each reply wakes the other CPU`,
      ],
      pin: { cpus, client: placement === 'same' ? 0 : 1, id: placement },
    }),
  );

/**
 * A tcmu-style ring round trip through a mapped device region
 * (bench/peer/ring-model.ts): the 64-byte command and answer live in a
 * MAP_SHARED mapping; only the 4-byte kick (write) and interrupt (read)
 * are FUSE requests. The reference is the same protocol over a pipe pair.
 */
const ringWorkload = (bins: Bins, pageCache: boolean): Workload => ({
  ...pingWorkload({
    num: 7,
    title: pageCache ? 'mapped ring ping-pong 64 B, page cache' : 'mapped ring ping-pong 64 B',
    reference: 'the same 64-byte command/answer protocol over a pipe pair to a forked child, both pinned to one CPU',
    bin: bins.ringpong!,
    kernelArgs: ['pipepair'],
    device: RING_DEVICE,
    remarks: [
      'no C column: the libfuse3 peers have no mapped region; cdevemu/C here is cdevemu / the kernel pipe pair (run alternately with cdevemu)',
      pageCache
        ? 'one op = command stored in the map, write(4 B) kick, read(4 B) irq, answer read from the map; a daemon started with --no-passthrough (as without CAP_SYS_ADMIN): the map is the page cache of the FUSE file, pulled in at the kick (a writeback, or FUSE_NOTIFY_RETRIEVE) and pushed to before the irq read is answered (FUSE_NOTIFY_STORE)'
        : 'one op = command stored in the map, write(4 B) kick, read(4 B) irq, answer read from the map (FUSE passthrough mmap of a memfd)',
    ],
    plug: { model: benchRingModel.name, name: RING_DEVICE },
  }),
  ...(pageCache ? { id: '7.pagecache' } : {}),
});

/** Workload 7 through the page cache against through passthrough: the ratio of their rates, each the median of its runs. */
function pageCacheRemark(passthrough: WorkloadResult | undefined, pageCache: WorkloadResult): string | null {
  const rate = (r: WorkloadResult | undefined): number | undefined => r?.figures.find((f) => f.name === 'round trips/s')?.servers.cdevemu?.median;
  const pt = rate(passthrough);
  const pc = rate(pageCache);
  return pt && pc ? `round trips/s through the page cache / through passthrough (workload 7): ${(pc / pt).toFixed(2)}` : null;
}

function openCloseWorkload(bins: Bins): Workload {
  const once = async (path: string): Promise<ClientRun> => {
    const o = await runJson<SeqOut>(bins.openclose!, [path, ENDLESS, String(RUN_MS)], KILL_MS);
    return { values: { 'open+close/s': o.ops / secs(o) }, ops: o.ops, raw: o };
  };
  return {
    num: 4,
    id: '4',
    title: 'open+close',
    reference: '/dev/null',
    metrics: [{ key: 'open+close/s', unit: '', better: 'higher', target: T.ratio(0.8, 'higher') }],
    kernel: () => once('/dev/null'),
    server: (s) => once(s.dev('null')),
  };
}

/** N readers started together (a CLOCK_MONOTONIC barrier); aggregate = all ops / (last end - first start). */
function parallelWorkload(bins: Bins): Workload {
  const once = async (path: string): Promise<ClientRun> => {
    const startAt = process.hrtime.bigint() + 300_000_000n; // after every reader has been spawned and opened
    const args = ['read', path, String(4 * KiB), ENDLESS, String(startAt), String(RUN_MS)];
    const each = await Promise.all(Array.from({ length: PARALLEL_READERS }, () => runJson<SeqOut>(bins.seqio!, args, KILL_MS)));
    const ops = each.reduce((n, o) => n + o.ops, 0);
    const bytes = each.reduce((n, o) => n + o.bytes, 0);
    const s = (Math.max(...each.map((o) => o.end)) - Math.min(...each.map((o) => o.start))) / 1e9;
    return { values: { 'aggregate ops/s': ops / s, 'aggregate MB/s': bytes / s / 1e6 }, ops, raw: each };
  };
  return {
    num: 5,
    id: '5',
    title: `${PARALLEL_READERS} parallel readers 4 KiB`,
    reference: '/dev/zero',
    metrics: [
      { key: 'aggregate ops/s', unit: '', better: 'higher', target: T.ratio(0.9, 'higher') },
      { key: 'aggregate MB/s', unit: '', better: 'higher' },
    ],
    kernel: () => once('/dev/zero'),
    server: (s) => once(s.dev('zero')),
  };
}

function errnoText(o: BlockOut): string {
  const parts = Object.entries(o.errnos).map(([k, v]) => `${k} x${v}`);
  if (o.eof) parts.push(`EOF x${o.eof}`);
  if (o.data) parts.push(`data x${o.data}`);
  return parts.join(', ') || '-';
}

/**
 * Unplug with n readers blocked: from the moment the bench sends the unplug
 * request on the control socket to the return of the LAST blocked read()
 * (CLOCK_MONOTONIC in both). cdevemu only: the C server has no unplug.
 */
async function unplugOnce(bins: Bins, emu: CdevemuServer, n: number, rep: number): Promise<{ ms: number; raw: unknown; errnos: string; ok: boolean }> {
  const name = `echo-unplug-${n}-${rep}`;
  await emu.control.plug({ model: 'echo', name });
  const client = new LineClient(bins.blockers!, ['device', emu.dev(name), String(n)]);
  try {
    const ready = await client.line(60_000);
    if (ready !== 'ready') throw new Error(`blockers said ${JSON.stringify(ready)}`);
    // Every thread is inside read(); wait until every READ has also reached the model.
    const deadline = Date.now() + 30_000;
    while ((await emu.control.getDevice(name)).counters.inFlight < n) {
      if (Date.now() > deadline) throw new Error(`not all ${n} reads reached the device in 30 s`);
      await sleep(5);
    }
    const t0 = process.hrtime.bigint();
    const report = await emu.control.unplug(name, { drainTimeoutMs: 5000 });
    const resolvedMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const out = JSON.parse(await client.line(60_000)) as BlockOut;
    const exit = await client.exited;
    if (exit.code !== 0) throw new Error(`blockers exited ${exit.code ?? exit.signal}: ${exit.stderr}`);
    const ms = Number(BigInt(out.last) - t0) / 1e6;
    return { ms, raw: { ...out, t0: Number(t0), allWokenMs: ms, unplugResolvedMs: resolvedMs, report }, errnos: errnoText(out), ok: out.errnos.EIO === n };
  } finally {
    client.kill();
  }
}

async function unplugWorkload(bins: Bins, emu: CdevemuServer, n: number): Promise<WorkloadResult> {
  const runs: unknown[] = [];
  const ms: number[] = [];
  const refMs: number[] = [];
  const seen = new Set<string>();
  let allEio = true;
  for (let rep = 0; rep < opts.reps; rep++) {
    const ref = await runJson<BlockOut>(bins.blockers!, ['pipe', String(n)], KILL_MS);
    refMs.push((ref.last - ref.t0) / 1e6);
    const r = await unplugOnce(bins, emu, n, rep);
    ms.push(r.ms);
    seen.add(r.errnos);
    allEio &&= r.ok;
    runs.push({ rep, kernel: ref, cdevemu: r.raw });
  }
  const f: Figure = { name: 'ms to all woken', unit: '', better: 'lower', kernel: spread(refMs), servers: { cdevemu: spread(ms) } };
  if (n === 1000) f.target = T.abs(UNPLUG_MS, 'ms');
  return {
    id: `6.${n}`,
    title: `unplug, ${n} blocked reader${n === 1 ? '' : 's'}`,
    reference: `${n} thread${n === 1 ? '' : 's'} blocked in read() on a pipe, woken by closing its write end`,
    figures: [judge(f)],
    remarks: [`cdevemu's readers got: ${[...seen].join(' / ')}${allEio ? '' : '  <-- expected EIO for all'}; timed from the unplug request on the control socket`],
    runs,
  };
}

// ------------------------------------------------------------------- main

async function systemInfo(): Promise<{ cpu: string; cores: number; kernel: string; node: string; libfuse: string; loadAtStart: string }> {
  const c = cpus();
  const kernel = (await readFile('/proc/sys/kernel/osrelease', 'utf8')).trim();
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ')[0] ?? '?';
  const { run } = await import('./clients.js');
  const libfuse = (await run('pkg-config', ['--modversion', 'fuse3'], 30_000)).stdout.trim();
  return { cpu: c[0]?.model ?? '?', cores: c.length, kernel, node: process.version, libfuse, loadAtStart: load };
}

interface Idle {
  rssMiB: number;
  /** VmHWM at that moment: the peak of start-up (or since the last run). */
  peakMiB: number;
  anonMiB: number;
  fileMiB: number;
}
async function idle(s: Server): Promise<Idle> {
  const m = await memory(s.pid);
  return { rssMiB: m.rssKiB / 1024, peakMiB: m.peakKiB / 1024, anonMiB: m.anonKiB / 1024, fileMiB: m.fileKiB / 1024 };
}

function memoryResult(start: Record<string, Idle>, end: Record<string, Idle>, results: WorkloadResult[]): WorkloadResult {
  const names = [...C_SERVERS, 'cdevemu'] as const;
  const peakOf = (name: ServerName): number =>
    Math.max(
      start[name]!.peakMiB,
      // VmHWM since the last reset: covers the unplug workloads, which are not reset
      end[name]!.peakMiB,
      ...results.flatMap((r) => r.figures.filter((f) => f.name === PEAK).flatMap((f) => f.servers[name]?.values ?? [])),
    );
  // One value per server; the ratio is against the C server that uses less.
  const fig = (name: string, of: (n: ServerName) => number, target?: Target): Figure => {
    const servers = Object.fromEntries(names.map((n) => [n, spread([of(n)])]));
    const against = betterC(C_SERVERS, of, 'lower') as CServerName;
    return judge({ name, unit: 'MiB', better: 'lower', servers, against, ratio: spread([of('cdevemu') / of(against)]), ...(target ? { target } : {}) });
  };
  return {
    id: 'mem',
    title: 'server memory',
    reference: '',
    figures: [
      fig('idle RSS at start', (n) => start[n]!.rssMiB, T.abs(IDLE_RSS_MIB, 'MiB')),
      fig('  of it anonymous', (n) => start[n]!.anonMiB),
      fig('  of it mapped files', (n) => start[n]!.fileMiB),
      fig('idle RSS at end', (n) => end[n]!.rssMiB, T.abs(IDLE_RSS_MIB, 'MiB')),
      fig('peak RSS, whole bench', peakOf, T.abs(PEAK_RSS_MIB, 'MiB')),
    ],
    remarks: [
      `VmRSS ${IDLE_READ_MS / 1000} s after start-up and ${IDLE_READ_MS / 1000} s after the last workload, once cdevemu's idle collection has run; peak = largest VmHWM over start-up and every run`,
      "anonymous = RssAnon, the process's private memory; mapped files = RssFile, pages of its executable and libraries, shared with every process that maps them (for cdevemu, mostly the node binary)",
    ],
    runs: [{ start, end }],
  };
}

async function main(): Promise<number> {
  const began = performance.now();
  const want = (n: number): boolean => !opts.only || opts.only.has(n);
  const bins = await buildClients(benchDir);
  const info = await systemInfo();

  workDir = await mkdtemp('/tmp/cdevemu-bench-');
  const cs: Server[] = [];
  for (const name of C_SERVERS) {
    cs.push(await startPeer(workDir, bins.devserver!, name));
    servers.push(cs.at(-1)!);
  }
  const emu = await startCdevemu(workDir, cli, [ringModel]);
  servers.push(emu);
  const floor = opts.floor ? await startFloor(workDir, join(repoDir, 'dist', 'bench', 'peer', 'floor.js'), cli) : null;
  if (floor) servers.push(floor);
  // Workload 7 again, its region mapped through the page cache.
  const emuNoPassthrough = want(7) ? await startCdevemu(workDir, cli, [ringModel], { passthrough: false }) : null;
  if (emuNoPassthrough) servers.push(emuNoPassthrough);

  console.log(
    `cdevemu bench (${opts.reps} x ${RUN_MS / 1000} s runs${opts.quick ? ', quick' : ''}) on ${info.cores}x ${info.cpu}, Linux ${info.kernel}, Node ${info.node}, libfuse ${info.libfuse}; load average ${info.loadAtStart} at start`,
  );
  if (Number(info.loadAtStart) > info.cores) {
    console.log(`WARNING: load average ${info.loadAtStart} exceeds the ${info.cores} cores: other work is running; trust the same-run ratios, not the absolute figures`);
  }
  console.log(`servers: ${servers.map((s) => `${s.name} pid ${s.pid} on ${s.mountpoint}`).join(', ')}\n`);

  const idleNow = async (): Promise<Record<string, Idle>> => Object.fromEntries(await Promise.all([...cs, emu].map(async (s) => [s.name, await idle(s)] as const)));
  await sleep(IDLE_READ_MS);
  const idleStart = await idleNow();

  const results: WorkloadResult[] = [];
  const step = async (label: string, fn: () => Promise<WorkloadResult>, id: string): Promise<void> => {
    if (cleaning) return; // interrupted: no more workloads
    const t = performance.now();
    process.stderr.write(`  ${label} ... `);
    try {
      results.push(await fn());
      process.stderr.write(`${((performance.now() - t) / 1000).toFixed(1)} s\n`);
    } catch (err) {
      if (cleaning) {
        process.stderr.write('interrupted\n');
        return;
      }
      process.stderr.write('FAILED\n');
      console.error(err);
      results.push({ id, title: label, reference: '', figures: [], remarks: [], runs: [], error: String((err as Error).message ?? err) });
    }
  };

  const workloads: Workload[] = [
    ...[4 * KiB, 64 * KiB, MiB].map((chunk) => seqWorkload(bins, 1, chunk)),
    ...[4 * KiB, 64 * KiB, MiB].map((chunk) => seqWorkload(bins, 2, chunk)),
    pingpongWorkload(bins),
    openCloseWorkload(bins),
    parallelWorkload(bins),
  ];
  for (const w of workloads) if (want(w.num)) await step(`${w.num}: ${w.title}`, () => runWorkload(w, cs, emu, floor), w.id);
  for (const n of UNPLUG_READERS) if (want(6)) await step(`6: unplug with ${n} blocked readers`, () => unplugWorkload(bins, emu, n), `6.${n}`);
  if (want(7)) {
    const ring = ringWorkload(bins, false);
    await step(`7: ${ring.title}`, () => runWorkload(ring, cs, emu, floor), ring.id);
    const viaPageCache = ringWorkload(bins, true);
    const passthroughResult = results[results.length - 1];
    await step(`7: ${viaPageCache.title}`, () => runWorkload(viaPageCache, cs, emuNoPassthrough!, null), viaPageCache.id);
    const last = results[results.length - 1]!;
    const remark = last.id === '7.pagecache' ? pageCacheRemark(passthroughResult?.id === '7' ? passthroughResult : undefined, last) : null;
    if (remark) last.remarks.push(remark);
  }
  if (want(8)) {
    const allowed = await allowedCpus();
    if (allowed.length < 2) process.stderr.write('  8: skipped: the pinned ping-pong needs two CPUs\n');
    else for (const w of pinnedPingpongWorkloads(bins, allowed)) await step(`8: ${w.title}`, () => runWorkload(w, cs, emu, floor), w.id);
  }

  // A step of its own, so that a server that died during the run fails this row, not the table.
  await step('server memory', async () => {
    await sleep(IDLE_READ_MS);
    return memoryResult(idleStart, await idleNow(), results);
  }, 'mem');
  const elapsed = (performance.now() - began) / 1000;

  const notes = [
    `every workload: ${opts.reps} repetitions of a ${RUN_MS / 1000} s run on each of kernel, C (1 thread), C (mt) and cdevemu; a C server goes first in even repetitions and cdevemu in odd ones, the two C servers swapping places every second repetition (C, C mt, cdevemu / cdevemu, C mt, C / C mt, C, cdevemu). Columns give the median ±half the min-max range.`,
    'cdevemu/C is the median (min-max) of the ratios of runs done in the same repetition, C being the better of the two C servers in the workload, named under "vs C": the one with the better median rate (the first metric) for every row but server CPU µs/op and ops per server CPU-second, which are against the one with the lower median CPU per op; in server memory, the one that uses less on each row.',
    'higher is better for rates, lower for latency, CPU and memory; a ratio below 1 on a rate means cdevemu is slower than C, above 1 on latency/CPU/memory means it costs more.',
    `server CPU = utime+stime of the server process (all threads) over the run, per client operation (resolution ${CPU_TICK_MICROS / 1000} ms per run); ops per server CPU-second = client operations over that CPU time; server busy = the same CPU time over the run's wall time (cdevemu busy-polls up to 20 µs after each request: --busy-poll); peak RSS = VmHWM over the run (reset before it through clear_refs).`,
    "C = bench/peer/devserver.c, libfuse3 low-level: 1 thread = fuse_session_loop, mt = fuse_session_loop_mt with libfuse's defaults (clone_fd off, up to 10 workers, idle ones kept); cdevemu = the daemon as users run it (`cdevemu daemon`, plus `--model` for workload 7's device). All serve MOUNT/dev/{zero,null,echo} direct_io, nonseekable, 1 MiB max_read/max_write.",
    'ping-pong percentiles are nearest-rank over every timed round trip; the kernel pipe pair is pinned to one CPU (unpinned it is bimodal).',
    'GB and MB = 10^9 and 10^6 bytes. Client times cover only the I/O loop (not exec or open).',
    `total bench time ${elapsed.toFixed(0)} s.`,
  ];
  if (cleaning) notes.unshift('INTERRUPTED: only the workloads that finished are shown.');
  console.log(renderTable(results, notes));

  if (opts.json) {
    const doc = { when: new Date().toISOString(), mode: opts.quick ? 'quick' : 'full', runMs: RUN_MS, reps: opts.reps, system: info, elapsedSeconds: elapsed, results };
    await writeFile(opts.json, JSON.stringify(doc, null, 2) + '\n');
    console.log(`\nJSON written to ${opts.json}`);
  }
  const chart = chartFile(opts);
  const run = `${opts.quick ? 'quick' : 'full'} run, ${opts.reps} x ${RUN_MS / 1000} s, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${info.cores}x ${info.cpu}, load average ${info.loadAtStart} at start${cleaning ? '; INTERRUPTED: only the workloads that finished' : ''}`;
  await mkdir(dirname(chart), { recursive: true });
  await writeFile(chart, ratioChartSvg(results, run));
  console.log(`${opts.json ? '' : '\n'}SVG chart of the ratios written to ${chart}`);
  return results.some((r) => r.error) ? 1 : 0;
}

let code: number;
try {
  code = await main();
} catch (err) {
  console.error('bench failed:', err);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
