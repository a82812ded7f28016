/**
 * The daemon says what it does: one info line for each thing done through
 * the API (src/control/action-log.ts), read from the JSON logs of a real
 * daemon driven through the CLI, with a real holder (python3) of the
 * device it unplugs; and a start-up of a few lines before the hints, on a
 * terminal (script(1)) and in JSON, each device's own line at debug.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { shellWord as q } from '../helpers/as-user.js';
import { pythonInteractive, run, type Interactive } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { CLI, Daemon, eventually, HOLDER, scratch } from './harness.js';

interface LogLine {
  level: number;
  msg: string;
  api?: Record<string, unknown>;
  startup?: Record<string, unknown>;
}

const INFO = 30;
const WARN = 40;
const DEFAULT_DEVICES = 12;

/** The daemon's JSON log lines so far. */
const logOf = (d: Daemon): LogLine[] =>
  d.proc.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

/** The API lines logged after the first `skip`. */
const apiLines = (d: Daemon, skip = 0): LogLine[] =>
  logOf(d)
    .filter((l) => l.api)
    .slice(skip);

/** Runs a CLI command on `d`; it must succeed (exit 0) unless `code` says otherwise. */
async function cli(d: Daemon, args: string[], code = 0): Promise<void> {
  const r = await d.cli(args);
  expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(code);
}

/** Waits for the next API line after `seen` of them, and returns it: one command, one line. */
async function next(d: Daemon, seen: number): Promise<LogLine> {
  await until(() => apiLines(d).length > seen, 10_000, `API log line ${seen + 1}`);
  return apiLines(d)[seen]!;
}

describe('every action through the API gets one log line', () => {
  it('plug, action, fault add and rm, replug, unplug with its mode, a stuck handler, and files left open until their close', async () => {
    const dir = await scratch('actionlog');
    // A model whose read never returns and ignores its signal: a handler that an unplug finds stuck.
    await writeFile(
      join(dir, 'stuck.mjs'),
      `export default { name: 'stuckread', stream: true, create: () => ({}), read: () => new Promise(() => {}) };\n`,
    );
    await writeFile(join(dir, 'cfg.yaml'), 'models: [./stuck.mjs]\ndevices:\n  - { model: uio, name: uio0 }\n');
    const d = await Daemon.start({ dir, args: ['--config', join(dir, 'cfg.yaml')] });
    let holder: Interactive | null = null;
    let reader: Interactive | null = null;
    try {
      let n = apiLines(d).length;
      expect(n).toBe(0);

      await cli(d, ['plug', 'echo', 'echo1']);
      expect(await next(d, n++)).toMatchObject({
        level: INFO,
        msg: 'plugged echo1 (model echo, generation 1)',
        api: { action: 'plug', device: 'echo1', model: 'echo', generation: 1 },
      });

      await cli(d, ['action', 'uio0', 'irq']);
      expect(await next(d, n++)).toMatchObject({
        level: INFO,
        msg: 'action irq on uio0 (generation 1)',
        api: { action: 'action', device: 'uio0', name: 'irq' },
      });

      await cli(d, ['fault', 'add', 'device=echo1', 'op=read', 'nth=3', 'action=fail', 'errno=EIO']);
      expect(await next(d, n++)).toMatchObject({
        level: INFO,
        msg: 'fault f1 added: echo1 read nth=3 -> fail errno=EIO',
        api: { action: 'fault_add', rule: { id: 'f1', errno: 'EIO' } },
      });
      await cli(d, ['fault', 'add', 'device=uio0', 'op=write', 'action=delay', 'delayMs=5']);
      await cli(d, ['fault', 'rm', 'f1']);
      await next(d, n++);
      expect(await next(d, n++)).toMatchObject({
        level: INFO,
        msg: 'fault f1 removed: echo1 read nth=3 -> fail errno=EIO',
        api: { action: 'fault_remove' },
      });
      await cli(d, ['fault', 'rm', '--all']);
      expect(await next(d, n++)).toMatchObject({ msg: 'fault f2 removed: uio0 write always -> delay delayMs=5' });

      await cli(d, ['replug', 'uio0']);
      expect(await next(d, n++)).toMatchObject({
        level: INFO,
        msg: 'replugged uio0 (model uio): generation 1 unplugged, generation 2 plugged',
        api: { action: 'replug', generation: 2, unplugged: 1 },
      });

      // An unplug that finds a file open, and a --wait-release that finds the leak: the line names the holder...
      holder = pythonInteractive(HOLDER, [d.dev('echo1')]);
      expect(await holder.line()).toBe('open');
      await cli(d, ['unplug', 'echo1', '--wait-release', '0'], 1);
      const unplugged = await next(d, n++);
      expect(unplugged.msg).toMatch(
        new RegExp(
          `^unplugged echo1 \\(generation 1, orderly\\): drained in [\\d.]+ m?s; 1 file\\(s\\) still open: pid ${holder.pid} \\(python3\\)$`,
        ),
      );
      expect(unplugged).toMatchObject({
        level: INFO,
        api: { action: 'unplug', device: 'echo1', generation: 1, mode: 'orderly', stuck: 0, openFiles: 1 },
      });
      // ...and its close, when it comes, is said too.
      holder.send('');
      expect(await holder.line()).toBe('closed');
      const closed = await next(d, n++);
      expect(closed.msg).toMatch(
        /^echo1 \(generation 1\): every file closed, the last [\d.]+ m?s after the unplug answered \(1 late release\(s\) in all\)$/,
      );
      expect(closed.api).toMatchObject({ action: 'unplug', device: 'echo1', generation: 1, lateReleases: 1 });

      await cli(d, ['unplug', 'uio0', '--surprise']);
      const surprise = await next(d, n++);
      expect(surprise.msg).toMatch(/^unplugged uio0 \(generation 2, surprise\): drained in [\d.]+ m?s; no file open$/);
      expect(surprise).toMatchObject({ level: INFO, api: { mode: 'surprise', openFiles: 0 } });

      // A request refused does nothing, and says nothing at info.
      await cli(d, ['plug', 'nosuch', 'x0'], 2);
      await cli(d, ['unplug', 'nosuch'], 2);
      await cli(d, ['fault', 'rm', 'f9'], 2);
      await cli(d, ['ls']);
      expect(apiLines(d)).toHaveLength(n);

      // A handler still running when the drain gives up: a warning naming it after the unplug's line.
      await cli(d, ['plug', 'stuckread', 'stuck0']);
      await next(d, n++);
      reader = pythonInteractive('import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint("open", flush=True)\nos.read(fd, 1)\n', [
        d.dev('stuck0'),
      ]);
      expect(await reader.line()).toBe('open');
      await eventually(async () => expect((await d.client.getDevice('stuck0')).inFlight).toHaveLength(1));
      await cli(d, ['unplug', 'stuck0', '--drain-timeout', '100']);
      const line = await next(d, n++);
      expect(line.msg).toMatch(
        new RegExp(
          `^unplugged stuck0 \\(generation 1, orderly\\): drained in [\\d.]+ m?s; 1 handler\\(s\\) stuck; 1 file\\(s\\) still open: pid ${reader.pid} \\(python3\\)$`,
        ),
      );
      const stuck = await next(d, n++);
      expect(stuck.level).toBe(WARN);
      expect(stuck.msg).toMatch(
        new RegExp(
          `^stuck0 \\(generation 1\\): read by pid ${reader.pid} \\(python3\\) stuck: running for [\\d.]+ m?s when the unplug's drain gave up$`,
        ),
      );
      expect(stuck.api).toMatchObject({ action: 'unplug', device: 'stuck0', stuck: { op: 'read', pid: reader.pid, comm: 'python3' } });
    } finally {
      holder?.kill();
      reader?.kill();
      await d.stop();
    }
  });
});

describe('the start-up says what it plugged in one line, then the hints', () => {
  it('in JSON logs: the mount, one summary naming every device and its model, ready; each device at debug', async () => {
    const d = await Daemon.start();
    try {
      await until(() => d.proc.stderr.includes('"msg":"cdevemu daemon ready"'), 10_000, 'the ready line');
      const info = logOf(d).filter((l) => l.level >= INFO);
      expect(info.length, info.map((l) => l.msg).join('\n')).toBeLessThanOrEqual(4);
      const summary = info.find((l) => l.startup);
      expect(summary?.msg).toBe(
        `plugged ${DEFAULT_DEVICES} device(s): echo0 (echo), zero, null, full, uio0 (uio), event0 (evdev), rtc0 (rtc), watchdog0 (watchdog), hwrng, ttyUSB0 (tty), i2c-0 (i2c), spidev0.0 (spidev)`,
      );
      expect(summary?.startup?.plugged).toHaveLength(DEFAULT_DEVICES);
      expect(summary?.startup?.plugged).toContainEqual({ device: 'event0', model: 'evdev', generation: 1, nodePath: 'input/event0' });
    } finally {
      await d.stop();
    }
    const debug = await Daemon.start({ args: ['--log-level', 'debug'] });
    try {
      await until(() => debug.proc.stderr.includes('"msg":"cdevemu daemon ready"'), 10_000, 'the ready line');
      const each = logOf(debug).filter((l) => l.level < INFO && l.msg.startsWith('plugged '));
      expect(each.map((l) => l.msg)).toContain('plugged event0 (model evdev, generation 1) at dev/input/event0');
      expect(each).toHaveLength(DEFAULT_DEVICES);
    } finally {
      await debug.stop();
    }
  });

  it('on a terminal: a few lines, one a record, before "Try, from another shell:"', { timeout: 120_000 }, async () => {
    const dir = await scratch('pretty');
    const daemon = ['node', CLI, 'daemon', '--mount', join(dir, 'mnt'), '--socket', join(dir, 'ctl.sock')];
    // script(1) gives the daemon a terminal (pretty logs); it is stopped once it printed its hints
    // (or once it died): no bound of the shell's own, which a loaded machine's start-up outlasted.
    // The pattern is not the hint's text itself: script(1) heads the file with this very command.
    const shell = `${daemon.map(q).join(' ')} & pid=$!; while kill -0 $pid 2>/dev/null && ! grep -q 'Stop with Ctrl[-]C' ${q(join(dir, 'tty'))} 2>/dev/null; do sleep 0.1; done; kill -TERM $pid; wait $pid`;
    const r = await run('script', ['-qfec', shell, join(dir, 'tty')], { timeoutMs: 110_000 });
    expect(r.code, r.stdout).toBe(0);
    // eslint-disable-next-line no-control-regex -- colours are escape sequences
    const lines = r.stdout.replace(/\x1b\[[0-9;]*m/g, '').split('\r\n');
    const hints = lines.indexOf('Try, from another shell:');
    expect(hints, r.stdout).toBeGreaterThan(0);
    const before = lines.slice(0, hints);
    expect(before.length, before.join('\n')).toBeLessThanOrEqual(5);
    expect(before.filter((l) => /^\[[\d:.]+\] INFO: plugged /.test(l))).toEqual([
      expect.stringMatching(/INFO: plugged 12 device\(s\): echo0 \(echo\), zero, .*spidev0\.0 \(spidev\)$/),
    ]);
    expect(before.some((l) => l.includes('"startup"') || l.includes('"plugged"'))).toBe(false);
  });
});
