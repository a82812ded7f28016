/**
 * `cdevemu run --report FILE.html`: the run as one self-contained page a
 * CI job keeps as an artifact. The verdict and the failure message first,
 * then a timeline (an inline SVG: the steps, each device's events, each
 * instance of the program and its output, on one time axis), the
 * expectations, every step with its times and outcome, the events, and
 * what the program wrote.
 *
 * Everything in it that came from the program, its log files, the
 * events or the scenario file is untrusted text: it is escaped wherever it
 * goes (element text, attribute values, SVG titles), and the page allows
 * no script, no request and no embedded content at all (its
 * Content-Security-Policy), so a program that prints markup shows markup.
 */
import { toJson } from '../control/protocol.js';
import type { DeviceEvent } from '../core/events.js';
import { describeExit } from './program.js';
import type { ScenarioResult, StepResult } from './runner.js';
import type { Scenario, Step } from './schema.js';
import type { TracedLine } from './trace.js';

export interface ReportInput {
  scenario: Scenario;
  result: ScenarioResult;
  /** The line `cdevemu run` ends with: `PASS name: ...` or `FAIL name: step (file:line)`. */
  verdict: string;
  /** Where the devices were mounted. */
  mountpoint: string;
  /** cdevemu's version. */
  version: string;
}

/** Tables longer than this show their first and last halves, and say how many rows are left out between. */
export const MAX_ROWS = 5000;

/**
 * Text for HTML, in element content and in quoted attribute values: the
 * five markup characters as entities, terminal colour sequences and the
 * other C0 control characters (which HTML forbids) dropped. Takes any
 * value: an event from a daemon's stream (--socket) is JSON whose fields
 * need not have the types they should.
 */
export function esc(s: unknown): string {
  return (
    String(s)
      // eslint-disable-next-line no-control-regex -- CSI sequences (ESC [ ... final byte): a program's colours
      .replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, '')
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '')
      .replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!)
  );
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(3)}s`;

/** The first and last `max / 2` of `items`, and how many are left out between them. */
function elide<T>(items: readonly T[], max = MAX_ROWS): { head: readonly T[]; left: number; tail: readonly T[] } {
  if (items.length <= max) return { head: items, left: 0, tail: [] };
  const half = Math.floor(max / 2);
  return { head: items.slice(0, half), left: items.length - 2 * half, tail: items.slice(-half) };
}

/** A table of `items`, a row each (`row` gets the item's index in `items`), longer ones elided. */
function table<T>(columns: readonly string[], items: readonly T[], row: (item: T, i: number) => string): string {
  const { head, left, tail } = elide(items);
  const gap = left
    ? [
        `<tr class="elided"><td colspan="${columns.length}">${left} more rows left out here (the first and last ${head.length} are shown)</td></tr>`,
      ]
    : [];
  const body = [...head.map((it, i) => row(it, i)), ...gap, ...tail.map((it, i) => row(it, items.length - tail.length + i))];
  return `<table>\n<thead><tr>${columns.map((c) => `<th>${c}</th>`).join('')}</tr></thead>\n<tbody>\n${body.join('\n')}\n</tbody>\n</table>`;
}

const section = (id: string, heading: string, body: string): string => `<section id="${id}"><h2>${heading}</h2>\n${body}\n</section>`;

/** What a step is, for the report: an expectation, a wait, or an action on the devices or the program. */
function kindOf(step: Step): string {
  return step.kind === 'expect' ? 'expectation' : step.kind === 'wait' || step.kind === 'sleep' ? 'wait' : 'action';
}

/**
 * The kind of the result's step `i`: one of the file's timeline, or past
 * its end one the run added once the timeline was done (a background
 * unplug's end, a check of the run's own that failed: runner.ts), judged
 * as an expectation is.
 */
const AT_END = 'end of run';
function kindAt(input: ReportInput, i: number): string {
  const ts = input.scenario.timeline[i];
  return ts ? kindOf(ts.step) : AT_END;
}

const eventTime = (e: DeviceEvent, startedAt: number): number => e.at - startedAt;

/** An event's own fields beyond its identity, as compact JSON (as the control API sends them: a bigint as its digits). */
function details(e: DeviceEvent): string {
  const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !['type', 'device', 'generation', 'at'].includes(k)));
  return Object.keys(rest).length ? toJson(rest) : '';
}

/** Event types drawn in a colour of their own on the timeline (the rest are grey). */
const EVENT_CLASS: Record<string, string> = {
  opened: 'open',
  released: 'open',
  late_released: 'late',
  unplug_started: 'unplug',
  removed: 'unplug',
  stuck: 'bad',
  fault_fired: 'fault',
};

/** Axis steps of 1, 2 or 5 times a power of ten, about eight of them across `span`. */
function tickStep(span: number): number {
  const raw = span / 8;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
}

function timeline(input: ReportInput): string {
  const { result } = input;
  const { trace } = result;
  const t0 = trace.startedAt;
  const events = elide(trace.events);
  const shownEvents = [...events.head, ...events.tail];
  const output = elide(trace.output);
  const shownOutput = [...output.head, ...output.tail];
  const end = Math.max(
    result.durationMs,
    ...shownEvents.map((e) => eventTime(e, t0)),
    ...shownOutput.map((l) => l.atMs),
    ...trace.programs.map((p) => p.endMs ?? 0),
    1,
  );
  const devices = [...new Set(shownEvents.map((e) => e.device))];
  const LEFT = 150;
  const PLOT = 820;
  const LANE = 26;
  const width = LEFT + PLOT + 20;
  const x = (ms: number): number => LEFT + (Math.max(0, ms) / end) * PLOT;
  // The run's own events (run-events.ts) have no device: their lane is the program's processes'.
  const lanes = ['steps', ...devices.map((d) => (d === '' ? 'processes' : `device ${d}`)), 'program'];
  const laneY = (i: number): number => 10 + i * LANE;
  const axisY = laneY(lanes.length) + 6;
  const height = axisY + 24;
  const out: string[] = [
    `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="timeline of the run">`,
  ];
  lanes.forEach((name, i) => {
    out.push(`<text class="lane" x="${LEFT - 8}" y="${laneY(i) + LANE / 2 + 4}" text-anchor="end">${esc(name)}</text>`);
    out.push(`<line x1="${LEFT}" y1="${laneY(i) + LANE}" x2="${LEFT + PLOT}" y2="${laneY(i) + LANE}" class="rule"/>`);
  });
  const step = tickStep(end);
  for (let t = 0; t <= end + 1e-9; t += step) {
    out.push(`<line x1="${x(t).toFixed(1)}" y1="${laneY(0)}" x2="${x(t).toFixed(1)}" y2="${axisY}" class="grid"/>`);
    out.push(`<text class="axis" x="${x(t).toFixed(1)}" y="${axisY + 14}" text-anchor="middle">${secs(t)}</text>`);
  }
  result.steps.forEach((s, i) => {
    if (s.status === 'skipped') return;
    const a = x(s.atMs - s.durationMs);
    const w = Math.max(2, x(s.atMs) - a);
    out.push(
      `<rect class="step ${s.status}" x="${a.toFixed(1)}" y="${laneY(0) + 4}" width="${w.toFixed(1)}" height="${LANE - 8}">` +
        `<title>${esc(`${i + 1}. ${s.title}: ${s.status}, ${secs(s.atMs - s.durationMs)} to ${secs(s.atMs)}`)}</title></rect>`,
    );
  });
  for (const e of shownEvents) {
    const lane = 1 + devices.indexOf(e.device);
    const at = x(eventTime(e, t0));
    out.push(
      `<rect class="event ${EVENT_CLASS[e.type] ?? 'other'}" x="${(at - 1).toFixed(1)}" y="${laneY(lane) + 5}" width="2" height="${LANE - 10}">` +
        `<title>${esc(`${secs(eventTime(e, t0))} ${e.type} ${e.device} generation ${e.generation} ${details(e)}`)}</title></rect>`,
    );
  }
  const programLane = laneY(lanes.length - 1);
  for (const p of trace.programs) {
    const a = x(p.startMs);
    const w = Math.max(2, x(p.endMs ?? end) - a);
    const how = p.exit ? describeExit(p.exit) : 'still running at the end';
    out.push(
      `<rect class="program" x="${a.toFixed(1)}" y="${programLane + 4}" width="${w.toFixed(1)}" height="${LANE - 8}">` +
        `<title>${esc(`instance ${p.n} (pid ${p.pid ?? '?'}): ${p.command.join(' ')}; ${how}`)}</title></rect>`,
    );
  }
  for (const l of shownOutput) {
    out.push(`<rect class="line ${l.stream}" x="${(x(l.atMs) - 0.5).toFixed(1)}" y="${programLane + 8}" width="1" height="${LANE - 16}"/>`);
  }
  const failed = result.steps.find((s) => s.status === 'failed');
  if (failed) {
    const at = x(failed.atMs).toFixed(1);
    out.push(`<line class="failmark" x1="${at}" y1="${laneY(0)}" x2="${at}" y2="${axisY}"/>`);
  }
  out.push('</svg>');
  return out.join('\n');
}

function stepRow(s: StepResult, i: number, input: ReportInput): string {
  const kind = kindAt(input, i);
  const outcome = s.status === 'passed' ? 'ok' : s.status === 'failed' ? 'FAIL' : 'not run';
  const message = s.message ? `<pre class="message">${esc(s.message)}</pre>` : '';
  const times =
    s.status === 'skipped'
      ? '<td></td><td></td>'
      : `<td class="num">${secs(s.atMs - s.durationMs)}</td><td class="num">${secs(s.durationMs)}</td>`;
  return `<tr class="${s.status}"><td class="num">${i + 1}</td>${times}<td>${kind}</td><td class="title">${esc(s.title)}${message}</td><td class="num">${s.line ?? ''}</td><td class="outcome">${outcome}</td></tr>`;
}

function expectations(input: ReportInput): string {
  const expects = input.result.steps.map((s, i) => ({ s, i })).filter(({ i }) => ['expectation', AT_END].includes(kindAt(input, i)));
  if (expects.length === 0) return '<p>The scenario has no expectation: its verdict is that every step ran.</p>';
  const count = (st: StepResult['status']): number => expects.filter(({ s }) => s.status === st).length;
  const summary = `${expects.length} expectation(s): ${count('passed')} held, ${count('failed')} failed, ${count('skipped')} not reached`;
  const items = expects.map(({ s, i }) => {
    const how = s.status === 'passed' ? 'held' : s.status === 'failed' ? 'FAILED' : 'not reached (a step before it failed)';
    return `<li class="${s.status}"><span class="outcome">${how}</span> step ${i + 1}: ${esc(s.title)}${s.message ? `<pre class="message">${esc(s.message)}</pre>` : ''}</li>`;
  });
  return `<p>${summary}</p>\n<ul class="expectations">\n${items.join('\n')}\n</ul>`;
}

function eventRow(e: DeviceEvent, t0: number): string {
  return `<tr><td class="num">${secs(eventTime(e, t0))}</td><td>${esc(e.device)}</td><td class="num">${esc(e.generation)}</td><td>${esc(e.type)}</td><td class="mono">${esc(details(e))}</td></tr>`;
}

function lineRow(l: TracedLine): string {
  const stream = { out: 'stdout', err: 'stderr', log: 'log' }[l.stream];
  return `<tr class="${l.stream}"><td class="num">${secs(l.atMs)}</td><td class="num">${l.program}</td><td>${stream}</td><td class="mono text">${esc(l.text)}</td></tr>`;
}

function programs(input: ReportInput): string {
  const list = input.result.trace.programs;
  if (list.length === 0) return '<p>No program under test.</p>';
  const items = list.map((p) => {
    const how = p.exit ? describeExit(p.exit) : 'was still running at the end of the trace';
    const when = p.endMs !== null ? `, ${secs(p.startMs)} to ${secs(p.endMs)}` : `, from ${secs(p.startMs)}`;
    return `<li>instance ${p.n}, pid ${p.pid ?? '?'}: <code>${esc(p.command.join(' '))}</code>${when}: ${esc(how)}</li>`;
  });
  return `<ul>\n${items.join('\n')}\n</ul>`;
}

const STYLE = `
body { font: 14px/1.4 sans-serif; margin: 0 24px 48px; color: #212121; background: #fff; }
h1 { font-size: 20px; margin: 16px 0 4px; padding: 10px 14px; border-radius: 4px; color: #fff; }
h1.pass { background: #2e7d32; } h1.fail { background: #c62828; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid #bdbdbd; }
.meta { color: #444; margin: 4px 0; }
code, .mono, pre { font-family: monospace; font-size: 13px; }
pre.message { white-space: pre-wrap; margin: 4px 0; padding: 6px 8px; background: #ffebee; border-left: 3px solid #c62828; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 2px 8px; border-bottom: 1px solid #eee; }
th { background: #f5f5f5; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.text { white-space: pre-wrap; word-break: break-all; }
tr.failed td { background: #ffebee; } tr.skipped td { color: #9e9e9e; }
tr.passed td.outcome, li.passed .outcome { color: #2e7d32; font-weight: bold; }
tr.failed td.outcome, li.failed .outcome { color: #c62828; font-weight: bold; }
li.skipped { color: #9e9e9e; }
tr.err td.text { color: #b71c1c; } tr.log td.text { color: #4a148c; }
tr.elided td { text-align: center; color: #757575; font-style: italic; }
svg.timeline { max-width: 100%; height: auto; font: 11px sans-serif; }
svg .lane, svg .axis { fill: #424242; }
svg .rule { stroke: #e0e0e0; } svg .grid { stroke: #f0f0f0; }
svg .step.passed { fill: #66bb6a; } svg .step.failed { fill: #e53935; }
svg .event { fill: #9e9e9e; } svg .event.open { fill: #1e88e5; } svg .event.late { fill: #8e24aa; }
svg .event.unplug { fill: #e53935; } svg .event.bad { fill: #000; } svg .event.fault { fill: #fb8c00; }
svg .program { fill: #cfd8dc; } svg .line.out { fill: #455a64; } svg .line.err { fill: #c62828; } svg .line.log { fill: #6a1b9a; }
svg .failmark { stroke: #c62828; stroke-width: 2; stroke-dasharray: 4 3; }
.legend > span { display: inline-block; margin-right: 14px; }
.legend .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
`;

/** The report of one run, as a complete HTML document. */
export function htmlReport(input: ReportInput): string {
  const { scenario, result } = input;
  const { trace } = result;
  const failed = result.steps.find((s) => s.status === 'failed');
  const failure = failed
    ? section(
        'failure',
        'Failure',
        `<p>Step ${result.steps.indexOf(failed) + 1}, <strong>${esc(failed.title)}</strong>${failed.line !== null ? ` (${esc(`${scenario.file}:${failed.line}`)})` : ''}, at ${secs(failed.atMs)}:</p>` +
          `<pre class="message">${esc(failed.message ?? '')}</pre>`,
      )
    : '';
  const legend = [
    ['#66bb6a', 'step passed'],
    ['#e53935', 'step failed, unplug'],
    ['#1e88e5', 'open, release'],
    ['#8e24aa', 'late release'],
    ['#fb8c00', 'fault fired'],
    ['#000', 'stuck'],
    ['#9e9e9e', 'other event'],
    ['#cfd8dc', 'program running'],
    ['#455a64', 'stdout line'],
    ['#c62828', 'stderr line'],
  ]
    .map(([c, what]) => `<span><span class="swatch" style="background:${c}"></span>${what}</span>`)
    .join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(input.verdict)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1 id="verdict" class="${result.passed ? 'pass' : 'fail'}">${esc(input.verdict)}</h1>
<p class="meta">Scenario <code>${esc(scenario.file)}</code>, run ${esc(new Date(trace.startedAt).toISOString())} for ${secs(result.durationMs)} on <code>${esc(input.mountpoint)}</code>, cdevemu ${esc(input.version)}.</p>
${failure}
${section('timeline-section', 'Timeline', `<p class="legend">${legend}</p>\n${timeline(input)}`)}
${section('expectations', 'Expectations', expectations(input))}
${section(
  'steps',
  `Steps (${result.steps.length})`,
  table(['#', 'start', 'took', 'kind', 'step', 'line', 'outcome'], result.steps, (s, i) => stepRow(s, i, input)),
)}
${section('program', 'Program', programs(input))}
${section(
  'events',
  `Events (${trace.events.length})`,
  table(['time', 'device', 'gen', 'type', 'details'], trace.events, (e) => eventRow(e, trace.startedAt)),
)}
${section('output', `Program output (${trace.output.length} lines)`, table(['time', 'instance', 'stream', 'line'], trace.output, lineRow))}
</body>
</html>
`;
}
