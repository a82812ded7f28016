/**
 * The bench's results and their presentation: a plain-text table for
 * stdout, and the same figures as JSON.
 */

export type Better = 'higher' | 'lower';

/** What a round-trip client (pingpong.c, ringpong.c) prints: CLOCK_MONOTONIC ns and nearest-rank percentiles. */
export interface PingOut {
  ops: number;
  start: number;
  end: number;
  p50_ns: number;
  p99_ns: number;
  max_ns: number;
  capped: boolean;
}

/** One figure measured on the emulated device and on its reference. */
export interface Metric {
  name: string;
  unit: string;
  better: Better;
  emulated: number;
  reference: number;
  /** emulated / reference. */
  ratio: number;
  /** An absolute goal for the emulated figure. */
  target?: { min: number; text: string };
  met?: boolean;
}

export interface WorkloadResult {
  id: string;
  title: string;
  /** What the reference is. */
  reference: string;
  metrics: Metric[];
  /** Raw client output and side measurements (daemon CPU, errno seen...). */
  details: Record<string, unknown>;
  /** Free-text remarks printed under the workload (e.g. "errno EIO x100"). */
  remarks: string[];
  error?: string;
}

export function metric(
  name: string,
  unit: string,
  better: Better,
  emulated: number,
  reference: number,
  target?: { min: number; text: string },
): Metric {
  const m: Metric = { name, unit, better, emulated, reference, ratio: reference > 0 ? emulated / reference : NaN };
  if (target) {
    m.target = target;
    m.met = emulated >= target.min;
  }
  return m;
}

/** 3 significant digits, thousands grouped, no exponent for the ranges we print. */
export function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(3);
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return '-';
  if (r >= 100) return r.toFixed(0);
  if (r >= 10) return r.toFixed(1);
  if (r >= 1) return r.toFixed(2);
  if (r >= 0.01) return r.toFixed(3);
  return r.toPrecision(2);
}

function pad(s: string, w: number, right = false): string {
  return right ? s.padStart(w) : s.padEnd(w);
}

export function renderTable(results: WorkloadResult[], notes: string[]): string {
  const header = ['workload', 'metric', 'emulated', 'reference', 'ratio', 'target'];
  const rows: string[][] = [];
  const remarkAfter = new Map<number, string[]>();
  for (const r of results) {
    if (r.error) {
      rows.push([r.title, 'FAILED', '', '', '', '']);
      remarkAfter.set(rows.length - 1, [`error: ${r.error.split('\n')[0]}`]);
      continue;
    }
    r.metrics.forEach((m, i) => {
      const target = m.target ? `${m.met ? 'met' : 'MISSED'} (${m.target.text})` : '';
      rows.push([i === 0 ? r.title : '', m.name, fmtNum(m.emulated), fmtNum(m.reference), fmtRatio(m.ratio), target]);
    });
    const rem = [`reference: ${r.reference}`, ...r.remarks];
    remarkAfter.set(rows.length - 1, rem);
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const numeric = [false, false, true, true, true, false];
  const line = (cells: string[]): string =>
    cells.map((c, i) => pad(c, widths[i]!, numeric[i])).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out: string[] = [line(header), rule];
  rows.forEach((row, i) => {
    out.push(line(row));
    for (const rem of remarkAfter.get(i) ?? []) out.push(`${' '.repeat(widths[0]! + 2)}  ${rem}`);
    if (remarkAfter.has(i) && i !== rows.length - 1) out.push('');
  });
  out.push(rule);
  out.push('Notes:');
  for (const n of notes) out.push(`  - ${n}`);
  return out.join('\n');
}
