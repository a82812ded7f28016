/**
 * The bench's results and their presentation: medians and spreads over the
 * repetitions, a plain-text table for stdout, and the same figures as JSON.
 */

import type { CServerName, ServerName } from './servers.js';

export type Better = 'higher' | 'lower';

/** One figure over the repetitions. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Every repetition's value, in run order. */
  values: number[];
}

export function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, values };
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, values };
}

/** A goal for one figure: on the cdevemu/C ratio (C being the row's better C server), or on cdevemu's absolute value. */
export interface Target {
  on: 'ratio' | 'cdevemu';
  /** The figure must be at least (higher) or at most (lower) this. */
  bound: number;
  text: string;
}

/** One metric of a workload on the kernel reference and on each server. */
export interface Figure {
  name: string;
  unit: string;
  better: Better;
  kernel?: Spread;
  /** The C servers, cdevemu, and bench/peer/floor.ts with --floor: those that ran the workload. */
  servers: Partial<Record<ServerName, Spread>>;
  /** The divisor of the ratios: the row's better C server, or the kernel reference where no C server runs the workload. */
  against?: CServerName | 'kernel';
  /** cdevemu / `against` of the runs done next to each other, one per repetition. */
  ratio?: Spread;
  /** floor / `against`, the same way. */
  floorRatio?: Spread;
  target?: Target;
  met?: boolean;
}

export function judge(f: Figure): Figure {
  if (!f.target) return f;
  const v = f.target.on === 'ratio' ? f.ratio?.median : f.servers.cdevemu?.median;
  if (v === undefined || !Number.isFinite(v)) return f;
  // Throughput targets are minima; latency, CPU and memory targets are maxima.
  f.met = f.better === 'higher' ? v >= f.target.bound : v <= f.target.bound;
  return f;
}

export interface WorkloadResult {
  id: string;
  title: string;
  /** What the kernel column is. */
  reference: string;
  figures: Figure[];
  /** Free-text remarks printed under the workload. */
  remarks: string[];
  /** Raw client output and procfs readings of every run. */
  runs: unknown[];
  error?: string;
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

/** "median ±x%": x is half the min-max range, relative to the median. */
function fmtSpread(s: Spread | undefined): string {
  if (!s || !Number.isFinite(s.median)) return '';
  if (s.values.length < 2 || s.median === 0) return fmtNum(s.median);
  const pct = ((s.max - s.min) / 2 / Math.abs(s.median)) * 100;
  return `${fmtNum(s.median)} ±${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)}%`;
}

function fmtRatio(s: Spread | undefined): string {
  if (!s || !Number.isFinite(s.median)) return '';
  const r = (x: number): string => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
  return s.values.length < 2 ? r(s.median) : `${r(s.median)} (${r(s.min)}-${r(s.max)})`;
}

const AGAINST: Record<NonNullable<Figure['against']>, string> = { C: '1 thread', 'C-mt': 'mt', kernel: 'kernel' };

export function renderTable(results: WorkloadResult[], notes: string[]): string {
  const floor = results.some((r) => r.figures.some((f) => f.servers.floor));
  const header = ['workload', 'metric', 'kernel', 'C (1 thread)', 'C (mt)', 'cdevemu', 'cdevemu/C', 'vs C', 'target', ...(floor ? ['floor', 'floor/C'] : [])];
  const numeric = [false, false, true, true, true, true, true, false, false, true, true];
  const rows: string[][] = [];
  const remarkAfter = new Map<number, string[]>();
  for (const r of results) {
    if (r.error) {
      rows.push([r.title, 'FAILED', ...header.slice(2).map(() => '')]);
      remarkAfter.set(rows.length - 1, [`error: ${r.error.split('\n')[0]}`]);
      continue;
    }
    r.figures.forEach((f, i) => {
      const target = f.target ? `${f.met === undefined ? '?' : f.met ? 'met' : 'MISSED'} (${f.target.text})` : '';
      const ratio = fmtRatio(f.ratio);
      const on = f.servers;
      rows.push([
        i === 0 ? r.title : '',
        `${f.name} ${f.unit}`,
        fmtSpread(f.kernel),
        fmtSpread(on.C),
        fmtSpread(on['C-mt']),
        fmtSpread(on.cdevemu),
        ratio,
        f.against && ratio ? AGAINST[f.against] : '',
        target,
        ...(floor ? [fmtSpread(on.floor), fmtRatio(f.floorRatio)] : []),
      ]);
    });
    remarkAfter.set(rows.length - 1, [...(r.reference ? [`kernel: ${r.reference}`] : []), ...r.remarks]);
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out: string[] = [line(header), rule];
  rows.forEach((row, i) => {
    out.push(line(row));
    for (const rem of remarkAfter.get(i) ?? []) out.push(`${' '.repeat(widths[0]! + 2)}${rem}`);
    if (remarkAfter.has(i) && i !== rows.length - 1) out.push('');
  });
  out.push(rule);
  out.push('Notes:');
  for (const n of notes) out.push(`  - ${n}`);
  return out.join('\n');
}
