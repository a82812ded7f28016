/**
 * `cdevemu run --report FILE.html` end to end: a real run (its own
 * emulator, a python3 program on the uio node that keeps it open past the
 * unplug) fails an expectation, and the report it writes, opened in a
 * real headless Chromium, shows the run: the FAIL line, every step with
 * its outcome, the failure message, the events, the program's output. The
 * program prints markup meant to run a script and to forge a PASS, and
 * names itself with markup (its comm goes into events and the leak
 * report): the browser's DOM holds all of it as text, no element of it.
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpDom } from '../helpers/browser.js';
import { cdevemu } from '../helpers/cli.js';
import { byClass, descendants, parseHtml, type Element } from '../helpers/markup.js';
import { testRoot } from '../helpers/mount.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(testRoot(), 'report-'));
  // `cdevemu run` mounts under tmpdir(): here, so that the check below sees this file's mounts only.
  process.env.TMPDIR = dir;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the program prints: markup that would run a script, or forge the verdict, if it were not escaped. */
const SCRIPT = `<script>document.body.setAttribute('data-ran', 'script' + '!')</script>`;
const IMG = `<img src=x onerror="document.body.setAttribute('data-ran', 'img' + '!')">`;
const FORGED = `</td></tr></table><h1 id="verdict" class="pass">PASS forged</h1>`;
/** Its comm (PR_SET_NAME, at most 15 bytes): in the opened event and the leak report. */
const COMM = '<i>evil</i>';

const PROGRAM = `
import ctypes, os, signal, struct, sys
ctypes.CDLL(None).prctl(15, ${JSON.stringify(COMM)}.encode(), 0, 0, 0)  # PR_SET_NAME
print(${JSON.stringify(SCRIPT)}, flush=True)
print(${JSON.stringify(IMG)}, file=sys.stderr, flush=True)
print(${JSON.stringify(FORGED)}, flush=True)
fd = os.open(sys.argv[1], os.O_RDWR)
print("irq count %d" % struct.unpack("I", os.read(fd, 4))[0], flush=True)
try:
    os.read(fd, 4)
except OSError as e:
    print("after unplug: " + e.strerror, flush=True)
signal.pause()  # holds the fd: the leak the scenario finds
`;

const SCENARIO = `name: report <b>demo</b> & "co"
devices:
  - { model: uio, name: uio0 }
timeline:
  - wait: { opened: uio0, timeout: 10s }
  - action: { device: uio0, action: irq }
  - wait: { read: uio0 }
  - unplug: uio0
  - expect: { released: uio0, within: 1s }
  - expect: { exit: 0, within: 2s }
`;
const TITLES = [
  'wait opened uio0',
  'action uio0 irq',
  'wait read uio0',
  'unplug uio0',
  'expect uio0 released within 1000ms',
  'expect program exit 0 within 2000ms',
];

const cell = (row: Element, cls: string): string => byClass(row, cls)[0]?.text ?? '';

describe('cdevemu run --report', () => {
  it(
    'writes a page that a browser shows as the run: the FAIL line, the steps, the events and the output, all as text',
    { timeout: 180_000 },
    async () => {
      const file = join(dir, 'scenario.yaml');
      const prog = join(dir, 'holder.py');
      const report = join(dir, 'run.html');
      await writeFile(file, SCENARIO);
      await writeFile(prog, PROGRAM);
      const r = await cdevemu(['run', '--report', report, file, '--', 'python3', prog, '{mount}/dev/uio0'], { timeoutMs: 60_000 });
      expect(r.code, r.stdout + r.stderr).toBe(1);
      const verdict = r.stdout.split('\n').find((l) => l.startsWith('FAIL '));
      expect(verdict).toBe(`FAIL report <b>demo</b> & "co": expect uio0 released within 1000ms (${file}:9)`);
      const pid = Number(/pid (\d+) \(<i>evil<\/i>\) holds fd/.exec(r.stdout)?.[1]);
      expect(pid).toBeGreaterThan(0);

      // The page as the browser built it, after load.
      const dom = await parseHtml(await dumpDom(report));
      const all = descendants(dom);

      // Nothing the program printed became an element, and nothing of it ran.
      expect(all.filter((e) => ['script', 'img', 'i', 'b'].includes(e.tag)).map((e) => e.tag)).toEqual([]);
      const body = all.find((e) => e.tag === 'body')!;
      expect(body.attrs['data-ran']).toBeUndefined();

      // The verdict: one, the run's own.
      const verdicts = all.filter((e) => e.attrs.id === 'verdict');
      expect(verdicts.map((e) => [e.tag, e.attrs.class, e.text])).toEqual([['h1', 'fail', verdict]]);
      expect(all.find((e) => e.tag === 'title')?.text).toBe(verdict);

      // Every step, in order, with its outcome; the failed one with its message naming the holder.
      const steps = all.find((e) => e.attrs.id === 'steps')!;
      const rows = descendants(steps).filter((e) => e.tag === 'tr' && e.attrs.class);
      expect(
        rows.map((row) => [row.attrs.class, cell(row, 'title').slice(0, TITLES[rows.indexOf(row)]!.length), cell(row, 'outcome')]),
      ).toEqual(TITLES.map((t, i) => [i < 4 ? 'passed' : i === 4 ? 'failed' : 'skipped', t, i < 4 ? 'ok' : i === 4 ? 'FAIL' : 'not run']));
      const message = `uio0 was not released within 1000 ms:\n  pid ${pid} (${COMM}) holds fd`;
      expect(cell(rows[4]!, 'title')).toContain(message);
      expect(
        byClass(
          all.find((e) => e.attrs.id === 'failure')!,
          'message',
        )[0]!.text,
      ).toContain(message);

      // The expectations: one failed, one not reached.
      const expectations = all.find((e) => e.attrs.id === 'expectations')!;
      expect(expectations.text).toContain('2 expectation(s): 0 held, 1 failed, 1 not reached');

      // The events, the program's comm among them as text.
      const events = descendants(all.find((e) => e.attrs.id === 'events')!)
        .filter((e) => e.tag === 'tr')
        .map((row) => row.children.map((c) => c.text));
      const types = events.slice(1).map((c) => c[3]);
      for (const t of ['plugged', 'opened', 'action', 'unplug_started', 'removed']) expect(types).toContain(t);
      const opened = events.find((c) => c[3] === 'opened')!;
      expect(opened.slice(1, 3)).toEqual(['uio0', '1']);
      expect(JSON.parse(opened[4]!)).toMatchObject({ pid, comm: COMM });

      // The program's output, line by line, each markup line as its text.
      const output = descendants(all.find((e) => e.attrs.id === 'output')!)
        .filter((e) => e.tag === 'tr' && e.attrs.class)
        .map((row) => [row.children[2]!.text, cell(row, 'text')]);
      expect(output).toEqual(
        expect.arrayContaining([
          ['stdout', SCRIPT],
          ['stderr', IMG],
          ['stdout', FORGED],
          ['stdout', 'irq count 1'],
          ['stdout', 'after unplug: Input/output error'],
        ]),
      );

      // The timeline: a bar per step run, the failed one marked, a lane for the device.
      const svg = all.find((e) => e.tag === 'svg')!;
      expect(byClass(svg, 'step').map((e) => e.attrs.class)).toEqual([
        'step passed',
        'step passed',
        'step passed',
        'step passed',
        'step failed',
      ]);
      expect(byClass(svg, 'lane').map((e) => e.text)).toEqual(['steps', 'device uio0', 'program']);
      expect(byClass(svg, 'event').length).toBe(events.length - 1);

      // The file itself needs nothing from outside: no script, no request.
      const html = readFileSync(report, 'utf8');
      expect(html).not.toMatch(/<(script|link|img|iframe|object|embed)\b|url\(|@import/i);
      expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`);
    },
  );

  it('is written for a run that fails a check of its own after the timeline, which it shows with its message', async () => {
    const report = join(dir, 'at-end.html');
    // Every step passes; the rule never fires (the program opens nothing): the run fails at its end.
    const r = await cdevemu(['run', '--report', report, '--device', 'e0=echo', '--fault', 'device=e0,op=read,action=fail,errno=EIO', '--expect', 'exit:0', '--', 'true'], {
      timeoutMs: 60_000,
    });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toBe('');
    const verdict = r.stdout.split('\n').find((l) => l.startsWith('FAIL '));
    expect(verdict).toBe('FAIL true: every fault rule fired');
    const all = descendants(await parseHtml(readFileSync(report, 'utf8')));
    expect(all.find((e) => e.attrs.id === 'verdict')?.attrs.class).toBe('fail');
    const rows = descendants(all.find((e) => e.attrs.id === 'steps')!).filter((e) => e.tag === 'tr' && e.attrs.class);
    expect(rows.map((row) => [row.attrs.class, row.children[3]!.text, cell(row, 'outcome')])).toEqual([
      ['passed', 'expectation', 'ok'],
      ['failed', 'end of run', 'FAIL'],
    ]);
    expect(cell(rows[1]!, 'title')).toMatch(/^every fault rule fired.*never fired: f1 \(e0 read/s);
    expect(byClass(all.find((e) => e.attrs.id === 'failure')!, 'message')[0]!.text).toMatch(/never fired: f1/);
    expect(all.find((e) => e.attrs.id === 'expectations')!.text).toContain('2 expectation(s): 1 held, 1 failed, 0 not reached');
  });
});
