/**
 * The HTML report's page (src/scenario/html-report.ts) from a run's
 * result, without a browser: the parts test/scenario/report.test.ts's real
 * run does not reach. A passed run has no failure section; a program's
 * terminal colours and control characters are dropped from its lines; a
 * table longer than MAX_ROWS shows its first and last halves and says how
 * many rows it left out, so a chatty program cannot make the page
 * unbounded, and its last lines (where a failure shows) are kept.
 */
import { describe, expect, it } from 'vitest';
import { SourceDocument } from '../../src/config/index.js';
import { htmlReport, MAX_ROWS } from '../../src/scenario/html-report.js';
import type { ScenarioResult } from '../../src/scenario/runner.js';
import { readScenario } from '../../src/scenario/schema.js';
import type { TracedLine } from '../../src/scenario/trace.js';
import { byClass, descendants, parseHtml } from '../helpers/markup.js';

const scenario = readScenario(
  SourceDocument.parse(
    'name: chatty\ndevices: [{ model: echo, name: e0 }]\ntimeline:\n  - wait: { opened: e0 }\n  - expect: { exit: 0 }\n',
    's.yaml',
  ),
  '/srv',
);

function result(output: TracedLine[]): ScenarioResult {
  return {
    name: 'chatty',
    file: 's.yaml',
    passed: true,
    steps: [
      { title: 'wait opened e0', line: 4, status: 'passed', atMs: 20, durationMs: 15 },
      { title: 'expect program exit 0 within 10000ms', line: 5, status: 'passed', atMs: 900, durationMs: 880 },
    ],
    program: { code: 0, signal: null },
    durationMs: 910,
    trace: {
      startedAt: Date.UTC(2026, 11, 4, 12),
      programs: [{ n: 1, command: ['chatty'], pid: 42, startMs: 1, endMs: 890, exit: { code: 0, signal: null } }],
      output,
      events: [
        { type: 'opened', device: 'e0', generation: 1, at: Date.UTC(2026, 11, 4, 12) + 10, pid: 42, comm: 'chatty', file: 1, flags: 2 },
        // A model's own event may carry a bigint (an LBA, an address): shown as its digits, as the control API sends it.
        { type: 'completed', device: 'e0', generation: 1, at: Date.UTC(2026, 11, 4, 12) + 20, lba: 2n ** 64n - 1n },
      ],
    },
  };
}

const page = async (output: TracedLine[]) =>
  parseHtml(
    htmlReport({ scenario, result: result(output), verdict: 'PASS chatty: 2 step(s) in 0.91s', mountpoint: '/mnt', version: '0.1.0' }),
  );
const lines = async (output: TracedLine[]): Promise<string[]> =>
  byClass(
    descendants(await page(output)).find((e) => e.attrs.id === 'output')!,
    'text',
  ).map((e) => e.text);

describe('the HTML report', () => {
  it('of a passed run: the PASS line, every step ok, the expectation held, no failure section', async () => {
    const all = descendants(await page([{ atMs: 5, program: 1, stream: 'out', text: 'hello' }]));
    expect(all.filter((e) => e.attrs.id === 'verdict').map((e) => [e.attrs.class, e.text])).toEqual([
      ['pass', 'PASS chatty: 2 step(s) in 0.91s'],
    ]);
    expect(all.some((e) => e.attrs.id === 'failure')).toBe(false);
    expect(
      byClass(all[0]!, 'outcome')
        .filter((e) => e.tag === 'td')
        .map((e) => e.text),
    ).toEqual(['ok', 'ok']);
    expect(all.find((e) => e.attrs.id === 'expectations')!.text).toContain('1 expectation(s): 1 held, 0 failed, 0 not reached');
    expect(all.find((e) => e.attrs.id === 'program')!.text).toContain('instance 1, pid 42: chatty, 0.001s to 0.890s: exited with code 0');
    const events = descendants(all.find((e) => e.attrs.id === 'events')!)
      .filter((e) => e.tag === 'tr')
      .map((row) => row.children.map((c) => c.text));
    expect(events.slice(1)).toEqual([
      ['0.010s', 'e0', '1', 'opened', '{"pid":42,"comm":"chatty","file":1,"flags":2}'],
      ['0.020s', 'e0', '1', 'completed', '{"lba":"18446744073709551615"}'],
    ]);
  });

  it("drops a program's terminal colours and control characters, and keeps the rest of the line", async () => {
    expect(
      await lines([{ atMs: 5, program: 1, stream: 'err', text: '\u001b[1;31mERROR\u001b[0m: bad\u0007 \u0000byte\tand tab' }]),
    ).toEqual(['ERROR: bad byte\tand tab']);
  });

  it(`shows the first and last ${MAX_ROWS / 2} of a longer table, saying how many rows it left out`, { timeout: 90_000 }, async () => {
    const many = Array.from({ length: MAX_ROWS + 123 }, (_, i): TracedLine => ({ atMs: i, program: 1, stream: 'out', text: `line ${i}` }));
    const all = descendants(await page(many));
    const shown = byClass(
      all.find((e) => e.attrs.id === 'output')!,
      'text',
    ).map((e) => e.text);
    expect(shown).toHaveLength(MAX_ROWS);
    expect(shown[0]).toBe('line 0');
    expect(shown[MAX_ROWS / 2 - 1]).toBe(`line ${MAX_ROWS / 2 - 1}`);
    expect(shown[MAX_ROWS / 2]).toBe(`line ${MAX_ROWS / 2 + 123}`);
    expect(shown.at(-1)).toBe(`line ${MAX_ROWS + 122}`);
    expect(byClass(all[0]!, 'elided').map((e) => e.text)).toEqual([
      `123 more rows left out here (the first and last ${MAX_ROWS / 2} are shown)`,
    ]);
    expect(all.find((e) => e.attrs.id === 'output')!.children[0]!.text).toBe(`Program output (${MAX_ROWS + 123} lines)`);
  });
});
