/**
 * The bench's SVG chart (bench/chart.ts) from a set of figures: well-formed
 * XML, one bar per figure with a ratio, on the side of the 1.0x line its
 * ratio is, as long as its inverse's on the other side (log scale),
 * coloured by whether cdevemu is ahead, labelled with the workload, the
 * metric, the ratio and what it is against; a failed workload is named
 * under it; text from the run is escaped.
 */
import { describe, expect, it } from 'vitest';
import { chartRows, ratioChartSvg } from '../../bench/chart.js';
import { spread, type Figure, type WorkloadResult } from '../../bench/report.js';
import { byClass, descendants, parseXml, type Element } from '../helpers/markup.js';

const fig = (name: string, unit: string, better: Figure['better'], ratios: number[], against: Figure['against']): Figure => ({
  name,
  unit,
  better,
  servers: {},
  ...(against ? { against } : {}),
  ratio: spread(ratios),
});

const workload = (title: string, figures: Figure[], error?: string): WorkloadResult => ({
  id: title,
  title,
  reference: '',
  figures,
  remarks: [],
  runs: [],
  ...(error ? { error } : {}),
});

const RESULTS: WorkloadResult[] = [
  workload('open+close', [
    fig('open+close/s', '', 'higher', [1.5, 2, 2.5], 'C-mt'),
    fig('server CPU', 'µs/op', 'lower', [1.5], 'C'),
    fig('server busy', '% of a CPU', 'lower', [NaN], 'C'), // no ratio: no bar
  ]),
  workload('seq read 1 MiB <big> & "wide"', [
    fig('ops/s', '', 'higher', [0.4, 0.5, 0.6], 'C'),
    fig('server peak RSS', 'MiB', 'lower', [30], 'C'),
  ]),
  workload('mapped ring', [fig('round trips/s', '', 'higher', [0.9], 'kernel')]),
  workload('4 parallel readers', [], 'client exited 1:\u0007 <stderr>\nsecond line'),
];

const num = (e: Element, a: string): number => Number(e.attrs[a]);

describe('bench chart', () => {
  it('has a bar for each figure with a ratio, on its side of the 1.0x line, coloured by who is ahead', async () => {
    const svg = await parseXml(ratioChartSvg(RESULTS, 'quick run, 1 x 0.5 s'));
    expect(svg.tag).toBe('svg');
    const bars = byClass(svg, 'bar');
    expect(bars.map((b) => [b.attrs['data-workload'], b.attrs['data-metric'], Number(b.attrs['data-ratio'])])).toEqual([
      ['open+close', 'open+close/s', 2],
      ['open+close', 'server CPU µs/op', 1.5],
      ['seq read 1 MiB <big> & "wide"', 'ops/s', 0.5],
      ['seq read 1 MiB <big> & "wide"', 'server peak RSS MiB', 30],
      ['mapped ring', 'round trips/s', 0.9],
    ]);
    // Ahead: a higher rate, or a lower cost; behind otherwise.
    expect(bars.map((b) => b.attrs.class)).toEqual(['bar ahead', 'bar behind', 'bar behind', 'bar behind', 'bar behind']);

    const [one] = byClass(svg, 'one');
    const at = num(one!, 'x1');
    const [twice, cpu, half, rss, ring] = bars as [Element, Element, Element, Element, Element];
    const left = (b: Element): number => num(b, 'x');
    const right = (b: Element): number => num(b, 'x') + num(b, 'width');
    for (const b of [twice, cpu, rss]) expect(left(b)).toBeCloseTo(at, 0); // from the line to the right
    for (const b of [half, ring]) expect(right(b)).toBeCloseTo(at, 0); // from the line to the left
    expect(num(twice, 'width')).toBeCloseTo(num(half, 'width'), 0); // 2x and 1/2x: the same length
    expect(num(rss, 'width')).toBeGreaterThan(4 * num(twice, 'width')); // 30x: past 2^4 of the 2x bar's 2^1

    // The ticks are whole powers of two around every bar and range: 1/4x (the 0.4 minimum) to 32x.
    expect(
      byClass(svg, 'tick')
        .filter((e) => e.tag === 'text')
        .map((e) => e.text),
    ).toEqual(['1/4x', '1/2x', '1x', '2x', '4x', '8x', '16x', '32x']);
    // Ranges only where repetitions differ.
    expect(byClass(svg, 'range')).toHaveLength(2);
  });

  it('labels each bar with its workload, metric, ratio and divisor, and names a failed workload', async () => {
    const svg = await parseXml(ratioChartSvg(RESULTS, 'quick run, 1 x 0.5 s'));
    expect(byClass(svg, 'label').map((e) => e.text)).toEqual([
      'open+close: open+close/s',
      'server CPU µs/op',
      'seq read 1 MiB <big> & "wide": ops/s',
      'server peak RSS MiB',
      'mapped ring: round trips/s',
    ]);
    expect(byClass(svg, 'value').map((e) => e.text)).toEqual([
      '2.00x vs C mt',
      '1.50x vs C 1 thread',
      '0.50x vs C 1 thread',
      '30.0x vs C 1 thread',
      '0.90x vs kernel',
    ]);
    expect(byClass(svg, 'failed').map((e) => e.text)).toEqual(['FAILED 4 parallel readers: client exited 1: <stderr>']);
    expect(descendants(svg).some((e) => e.tag === 'text' && e.text === 'quick run, 1 x 0.5 s')).toBe(true);
  });

  it('draws an empty scale for a run with no ratio at all', async () => {
    const only = [workload('4 parallel readers', [], 'killed')];
    expect(chartRows(only)).toEqual([]);
    const svg = await parseXml(ratioChartSvg(only, 'interrupted'));
    expect(byClass(svg, 'bar')).toEqual([]);
    expect(
      byClass(svg, 'tick')
        .filter((e) => e.tag === 'text')
        .map((e) => e.text),
    ).toEqual(['1/2x', '1x', '2x']);
    expect(byClass(svg, 'failed').map((e) => e.text)).toEqual(['FAILED 4 parallel readers: killed']);
  });
});
