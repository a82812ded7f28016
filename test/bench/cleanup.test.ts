/**
 * The bench end to end, on one short workload (open+close, one repetition
 * of 0.5 s): its three servers (the C server on one thread and on
 * libfuse's multithreaded loop, and cdevemu) each get a column, the ratio
 * names the C server it is against, and every way the run ends (a good
 * end, SIGINT, a server that dies) leaves nothing behind: no mount, no
 * process, no work directory, and no lock file for cdevemu's mountpoint
 * (src/fuse/mountpoint-lock.ts; a daemon that is SIGKILLed leaves it).
 * The good end also writes the chart of its ratios beside its JSON.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { lazyUnmount } from '../daemon/harness.js';
import { runsAsRoot } from '../helpers/as-user.js';
import { Interactive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { dumpDom } from '../helpers/browser.js';
import { byClass, parseHtml, parseXml } from '../helpers/markup.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BENCH = [join(repo, 'dist', 'bench', 'run.js'), '--quick', '--only', '4', '--reps', '1'];
/** Building the clients and the C server, starting three servers, 2 s idle at each end: well under this on a loaded machine. */
const RUN_MS = 120_000;
/** Where the daemon keeps its mountpoint lock files: root's, or this user's (src/fuse/mountpoint-lock.ts lockDirectory). */
const LOCK_DIR = runsAsRoot ? '/run/cdevemu' : join(tmpdir(), `cdevemu-${process.getuid!()}`);

const workDirs = new Set<string>();
/** Where the good end writes its JSON, and so its chart. */
const outDir = mkdtempSync(join(tmpdir(), 'cdevemu-bench-out-'));

/** The bench's work directory, from its "servers: C pid N on DIR/c, ..." line. */
function workDirOf(serversLine: string): string {
  const m = /on (\/tmp\/cdevemu-bench-[^/\s]+)\//.exec(serversLine);
  if (!m) throw new Error(`no work directory in ${JSON.stringify(serversLine)}`);
  workDirs.add(m[1]!);
  return m[1]!;
}

const pidOf = (serversLine: string, name: string): number => Number(new RegExp(`${name} pid (\\d+)`).exec(serversLine)?.[1]);

const mountsUnder = (dir: string): string[] =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(dir + '/'));

/** Processes whose command line names `dir`: the bench's servers and clients. */
function processesNaming(dir: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(dir)) pids.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Lock files naming a mountpoint in `dir` (the holder writes its pid, then the mountpoint's real path). */
function lockFilesNaming(dir: string): string[] {
  let files: string[];
  try {
    files = readdirSync(LOCK_DIR).filter((f) => f.endsWith('.lock'));
  } catch {
    return [];
  }
  return files.filter((f) => {
    try {
      return readFileSync(join(LOCK_DIR, f), 'utf8').includes(dir + '/');
    } catch {
      return false;
    }
  });
}

const dirExists = (dir: string): boolean => readdirSync('/tmp').includes(dir.slice('/tmp/'.length));

/** What the run left; processes get a moment, since the bench's last SIGKILLs may still be landing. */
async function leftovers(dir: string): Promise<{ mounts: string[]; processes: number[]; dir: boolean; locks: string[] }> {
  await until(() => processesNaming(dir).length === 0, 5000, 'no process naming the work directory').catch(() => {});
  return { mounts: mountsUnder(dir), processes: processesNaming(dir), dir: dirExists(dir), locks: lockFilesNaming(dir) };
}
const NOTHING = { mounts: [], processes: [], dir: false, locks: [] };

// A failing test must not leave what it found: the same clean-up the bench should have done.
afterAll(async () => {
  rmSync(outDir, { recursive: true, force: true });
  for (const dir of workDirs) {
    for (const pid of processesNaming(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    for (const mp of mountsUnder(dir).reverse()) await lazyUnmount(mp);
    await run('rm', ['-rf', dir]);
    for (const f of lockFilesNaming(dir)) await run('rm', ['-f', join(LOCK_DIR, f)]);
  }
});

/** Starts the bench; resolves with it and its "servers:" line once its servers are up. */
async function startBench(): Promise<{ bench: Interactive; servers: string }> {
  // Its chart (if it gets that far) goes to the test's directory, not the checkout's bench/out.
  const bench = new Interactive(process.execPath, [...BENCH, '--svg', join(outDir, 'other.svg')]);
  let line: string;
  do line = await bench.line(RUN_MS);
  while (!line.startsWith('servers:'));
  workDirOf(line);
  return { bench, servers: line };
}

describe('npm run bench', () => {
  it('gives each of its three servers a column, names the better C server, charts the ratios, and leaves nothing at a good end', { timeout: RUN_MS + 10_000 }, async () => {
    const json = join(outDir, 'run.json');
    const r = await run(process.execPath, [...BENCH, '--json', json], { timeoutMs: RUN_MS });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const servers = lines.find((l) => l.startsWith('servers:')) ?? '';
    const dir = workDirOf(servers);
    expect(servers).toMatch(/C pid \d+ on \S+\/c, C-mt pid \d+ on \S+\/c-mt, cdevemu pid \d+ on \S+\/cdevemu/);

    // The table's cells, cut at the columns of its rule line (numbers are right-aligned, blank cells are blank).
    const at = lines.findIndex((l) => l.startsWith('workload'));
    const spans = [...lines[at + 1]!.matchAll(/-+/g)].map((m) => [m.index, m.index + m[0].length] as const);
    const cells = (l: string): string[] => spans.map(([a, b]) => l.slice(a, b).trim());
    expect(cells(lines[at]!)).toEqual(['workload', 'metric', 'kernel', 'C (1 thread)', 'C (mt)', 'cdevemu', 'cdevemu/C', 'vs C', 'target']);
    // Every row of the workload has a figure in all three server columns, a ratio, and the C server it is against.
    for (const metric of ['open+close/s', 'server CPU µs/op', 'ops per server CPU-second', 'server busy % of a CPU', 'server peak RSS MiB']) {
      const row = lines.slice(at + 2).map(cells).find((c) => c[1] === metric);
      expect(row, metric).toBeDefined();
      const [, , , c1, cmt, emu, ratio, vs] = row!;
      for (const cell of [c1, cmt, emu]) expect(cell, metric).toMatch(/^[\d,.]+$/);
      expect(ratio, metric).toMatch(/^\d+\.\d+$/);
      expect(['1 thread', 'mt'], metric).toContain(vs);
    }

    // The chart, beside the JSON: a bar for each ratio of the table, with its value.
    const svgFile = join(outDir, 'run.svg');
    expect(r.stdout).toContain(`SVG chart of the ratios written to ${svgFile}`);
    const svg = await parseXml(readFileSync(svgFile, 'utf8'));
    const bars = byClass(svg, 'bar');
    // The table's rows with a ratio ("2.14", or "2.14 (1.90-2.30)"), up to its closing rule; remarks have none.
    const end = lines.indexOf(lines[at + 1]!, at + 2);
    const rows = lines.slice(at + 2, end).map(cells).filter((c) => /^\d+\.\d+( \([\d.]+-[\d.]+\))?$/.test(c[6]!));
    expect(rows.length).toBeGreaterThanOrEqual(5);
    expect(bars.map((b) => b.attrs['data-metric'])).toEqual(rows.map((c) => c[1]));
    expect(bars.map((b) => Number(b.attrs['data-ratio']).toFixed(Number(b.attrs['data-ratio']) >= 10 ? 1 : 2))).toEqual(rows.map((c) => c[6]!.split(' ')[0]));
    expect(new Set(bars.map((b) => b.attrs['data-workload']))).toEqual(new Set(['open+close', 'server memory']));
    // A browser opens it as an image with those bars (and no parsererror, which it shows for XML it cannot read).
    const dom = await dumpDom(svgFile);
    expect(dom).not.toContain('parsererror');
    expect(byClass(await parseHtml(dom), 'bar').map((b) => b.attrs['data-metric'])).toEqual(rows.map((c) => c[1]));
    expect(await leftovers(dir)).toEqual(NOTHING);
  });

  it('leaves nothing when interrupted with SIGINT during a workload', { timeout: RUN_MS + 10_000 }, async () => {
    const { bench, servers } = await startBench();
    const dir = workDirOf(servers);
    await until(() => bench.stderr.includes('4: open+close ...'), RUN_MS, 'the workload to start');
    bench.kill('SIGINT');
    expect(await bench.exited).toEqual({ code: 130, signal: null });
    expect(bench.stderr).toContain('bench: SIGINT, cleaning up');
    expect(await leftovers(dir)).toEqual(NOTHING);
  });

  it('fails, and leaves nothing, when a server dies during the run', { timeout: RUN_MS + 10_000 }, async () => {
    const { bench, servers } = await startBench();
    const dir = workDirOf(servers);
    const mt = pidOf(servers, 'C-mt');
    expect(mt).toBeGreaterThan(0);
    await until(() => bench.stderr.includes('4: open+close ...'), RUN_MS, 'the workload to start');
    process.kill(mt, 'SIGKILL');
    expect(await bench.exited).toEqual({ code: 1, signal: null });
    expect(bench.stderr).toContain('FAILED');
    expect(await leftovers(dir)).toEqual(NOTHING);
  });
});
