/**
 * The bench's ratios as a picture: an SVG bar chart, one bar per figure
 * that has a ratio (cdevemu over the row's better C server, or the kernel
 * reference where no C server runs the workload), on a log scale around a
 * 1.0x line, so 2x faster and 2x slower are bars of the same length on
 * either side. A bar is green when cdevemu comes out ahead on that figure
 * (a higher rate; a lower latency, CPU or memory) and red when behind; a
 * thin line spans the min-max of the repetitions' ratios. Self-contained
 * (no scripts, fonts or links), so it opens anywhere a CI job keeps it.
 */
import type { Figure, WorkloadResult } from './report.js';

/** One bar: a figure of a workload. */
export interface ChartRow {
  workload: string;
  metric: string;
  /** cdevemu / `against`: the median, and the range over the repetitions. */
  ratio: number;
  min: number;
  max: number;
  /** cdevemu comes out ahead on this figure. */
  ahead: boolean;
  against: string;
}

/** What a row's divisor is called in the chart, as in the table's "vs C" column. */
const AGAINST: Record<NonNullable<Figure['against']>, string> = { C: 'C 1 thread', 'C-mt': 'C mt', kernel: 'kernel' };

/** The figures with a ratio, in table order; a workload that failed has none (it is listed under the chart). */
export function chartRows(results: readonly WorkloadResult[]): ChartRow[] {
  return results.flatMap((r) =>
    r.figures.flatMap((f): ChartRow[] => {
      const s = f.ratio;
      if (!s || !Number.isFinite(s.median) || s.median <= 0 || !f.against) return [];
      const ahead = f.better === 'higher' ? s.median >= 1 : s.median <= 1;
      return [
        {
          workload: r.title,
          metric: `${f.name} ${f.unit}`.trim(),
          ratio: s.median,
          min: s.min,
          max: s.max,
          ahead,
          against: AGAINST[f.against],
        },
      ];
    }),
  );
}

/** Text for XML: markup escaped, and the control characters XML 1.0 forbids (an error message may hold them) dropped. */
const esc = (s: string): string =>
  s
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
    .replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);

/** "2.14x", "0.068x", "30.1x", "153x": enough digits to tell the bars apart. */
export function fmtRatio(r: number): string {
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}x`;
}

/** A "0.25x" tick for 2^-2: powers of two read as halvings and doublings. */
const tickLabel = (exp: number): string => (exp >= 0 ? `${2 ** exp}x` : `1/${2 ** -exp}x`);

const ROW = 20;
const FONT = 12;
/** Width of a character of the 12 px sans-serif labels, generously: the label column is sized from it. */
const CHAR = 7;
const PLOT = 420;
const VALUE = 140;

/**
 * The chart of `results`' ratios. `subtitle` says which run it is (mode,
 * date, machine). A workload that failed is named under the chart, so a
 * missing bar is never silent.
 */
export function ratioChartSvg(results: readonly WorkloadResult[], subtitle: string): string {
  const rows = chartRows(results);
  const failed = results.filter((r) => r.error);
  const label = (r: ChartRow, i: number): string =>
    i === 0 || rows[i - 1]!.workload !== r.workload ? `${r.workload}: ${r.metric}` : r.metric;
  const labelWidth = Math.max(160, ...rows.map((r, i) => label(r, i).length * CHAR)) + 16;
  // The scale: whole powers of two around every bar and whisker, at least 1/2x-2x.
  const values = rows.flatMap((r) => [r.ratio, r.min, r.max]).filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.min(-1, Math.floor(Math.log2(Math.min(...values, 1))));
  const hi = Math.max(1, Math.ceil(Math.log2(Math.max(...values, 1))));
  const x = (v: number): number => labelWidth + ((Math.log2(v) - lo) / (hi - lo)) * PLOT;
  const top = 64;
  const plotBottom = top + rows.length * ROW;
  const height = plotBottom + 40 + failed.length * ROW;
  const width = labelWidth + PLOT + VALUE;
  const one = x(1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="${FONT}">`,
    '<title>cdevemu / the better C server, per workload and metric</title>',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="8" y="20" font-size="15" font-weight="bold">cdevemu / the better C server, per workload and metric (log scale; 1.0x = the same)</text>`,
    `<text x="8" y="38" fill="#444444">${esc(subtitle)}</text>`,
    `<text x="8" y="54" fill="#444444">green: cdevemu ahead (higher rate, lower latency, CPU or memory); red: behind; line: min-max of the repetitions</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    const at = x(2 ** e).toFixed(1);
    out.push(`<line class="tick" x1="${at}" y1="${top}" x2="${at}" y2="${plotBottom}" stroke="#e0e0e0"/>`);
    out.push(`<text class="tick" x="${at}" y="${plotBottom + 16}" text-anchor="middle" fill="#444444">${tickLabel(e)}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * ROW;
    const mid = y + ROW / 2;
    const [a, b] = r.ratio >= 1 ? [one, x(r.ratio)] : [x(r.ratio), one];
    const colour = r.ahead ? '#2e7d32' : '#c62828';
    const first = i === 0 || rows[i - 1]!.workload !== r.workload;
    if (first && i > 0) out.push(`<line x1="8" y1="${y}" x2="${width - 8}" y2="${y}" stroke="#bdbdbd"/>`);
    out.push(
      `<text class="label" x="${labelWidth - 8}" y="${mid + FONT / 3}" text-anchor="end"${first ? ' font-weight="bold"' : ''}>${esc(label(r, i))}</text>`,
      `<rect class="bar ${r.ahead ? 'ahead' : 'behind'}" data-workload="${esc(r.workload)}" data-metric="${esc(r.metric)}" data-ratio="${r.ratio}" ` +
        `x="${a.toFixed(1)}" y="${y + 4}" width="${Math.max(1, b - a).toFixed(1)}" height="${ROW - 8}" fill="${colour}"/>`,
    );
    if (Number.isFinite(r.min) && Number.isFinite(r.max) && r.min > 0 && r.max > r.min) {
      out.push(
        `<line class="range" x1="${x(r.min).toFixed(1)}" y1="${mid}" x2="${x(r.max).toFixed(1)}" y2="${mid}" stroke="#212121" stroke-width="1.5"/>`,
      );
    }
    out.push(`<text class="value" x="${labelWidth + PLOT + 8}" y="${mid + FONT / 3}">${fmtRatio(r.ratio)} vs ${esc(r.against)}</text>`);
  });
  out.push(
    `<line class="one" x1="${one.toFixed(1)}" y1="${top - 4}" x2="${one.toFixed(1)}" y2="${plotBottom + 4}" stroke="#000000" stroke-width="1.5"/>`,
  );
  failed.forEach((r, i) => {
    out.push(
      `<text class="failed" x="8" y="${plotBottom + 40 + i * ROW}" fill="#c62828">FAILED ${esc(r.title)}: ${esc((r.error ?? '').split('\n')[0]!)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
