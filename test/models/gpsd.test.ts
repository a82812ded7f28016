/**
 * The real gpsd (Debian's 3.22) and gpspipe on an emulated USB GPS, through
 * the gpsd example scenarios and `cdevemu run` (the built CLI): it gets a
 * fix; pulled out with nobody to tell it (and nothing to wake it after
 * its client's WATCH), it keeps the port open, tells its client nothing
 * and never opens the new port; told by a udev stand-in (gpsdctl), it
 * lets go, tells its client and follows the new port. Each run has its own
 * port ({port}) and node path, so two suites at once do not meet.
 * docs/case-study-gpsd.md explains each outcome.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freeTcpPort } from '../../src/scenario/free-port.js';
import { runsAsRoot, withSbin } from '../helpers/as-user.js';
import { cClient } from '../helpers/cc.js';
import { cdevemu, repoRoot } from '../helpers/cli.js';
import { Interactive } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { Daemon, scratch, testRoot } from '../daemon/harness.js';

const scenario = (name: string): string => join(repoRoot, 'examples', 'scenarios', `gpsd-${name}.yaml`);

interface Run {
  code: number | null;
  out: string;
  /** The program's pid, from the run's "started" line. */
  pid: number;
  /** Wall-clock time (ms) once the run had ended. */
  endedAt: number;
}

async function runScenario(name: string, env?: NodeJS.ProcessEnv): Promise<Run> {
  const r = await cdevemu(['run', scenario(name)], { timeoutMs: 120_000, ...(env ? { env: { ...process.env, ...env } } : {}) });
  const endedAt = Date.now();
  const pid = Number(/started .* \(pid (\d+)\)/.exec(r.stdout)?.[1]);
  expect(pid, r.stdout + r.stderr).toBeGreaterThan(0);
  // The run stops the program and everything it started (gpsd, gpspipe, the hotplug stand-in).
  expect(existsSync(`/proc/${pid}`)).toBe(false);
  return { code: r.code, out: r.stdout, pid, endedAt };
}

/** The program's relayed output lines ("| ...") after the step line that contains `step`. */
function clientLinesAfter(out: string, step: string): string[] {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => l.includes(step));
  expect(at, out).toBeGreaterThanOrEqual(0);
  return lines.slice(at + 1).filter((l) => l.trim().startsWith('| client:')).map((l) => l.trim().slice(2));
}

/**
 * What the client of a gpsd that stopped reading its device at `step` gets after it: no DEVICE
 * line, and no fix the receiver sent after the step. The run ends `windowMs` or more after the
 * step, so such a fix would be timed within `windowMs` of the end. Fixes sent before the step may
 * still come after it, as many as a loaded machine delays: the client is in curl from its first
 * fix until the status action that the step waits for.
 */
function expectSilence(r: Run, step: string, windowMs: number): void {
  const lines = clientLinesAfter(r.out, step);
  expect(lines.filter((l) => l.startsWith('client: DEVICE'))).toEqual([]);
  for (const tpv of lines.filter((l) => l.startsWith('client: TPV'))) {
    expect(Date.parse(/ at (\S+)$/.exec(tpv)?.[1] ?? ''), tpv).toBeLessThanOrEqual(r.endedAt - windowMs);
  }
}

// A run waits up to 15 s for what must not happen; on a loaded machine gpsd's start takes its time too.
describe('gpsd on the emulated GPS', { timeout: 150_000 }, () => {
  it('gets a fix: gpspipe sees a 3D TPV at the position the model reports', async () => {
    const r = await runScenario('fix');
    expect(r.code, r.out).toBe(0);
    const mount = / on (\S+), control socket /.exec(r.out)?.[1];
    const tpv = /\| (\{"class":"TPV".*\})/.exec(r.out)?.[1];
    expect(tpv, r.out).toBeDefined();
    expect(JSON.parse(tpv!)).toMatchObject({ device: `${mount}/dev/ttyUSB0`, mode: 3, lat: 51.4779, lon: -0.0015 });
    expect(r.out).toMatch(/^PASS /m);
  });

  it('unplugged with nobody to tell it: keeps the removed port open and tells its client nothing (fails)', async () => {
    const r = await runScenario('unplug');
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain('FAIL  expect ttyUSB0 released within 5000ms');
    expect(r.out).toMatch(/pid \d+ \(gpsd\) holds fd \d+ \(\S+\/dev\/ttyUSB0 \(deleted\)\) on generation 1/);
    // In the 5 s after the unplug its client is told nothing (no DEVICE "activated":0), and the
    // reports stop.
    expectSilence(r, 'ok    unplug ttyUSB0', 5000);
  });

  // gpsd started by root drops to user gpsd before it reopens the port, so root's daemon mounts with
  // allow_other; an ordinary user's gpsd keeps the user's ids, which the user's own mount lets in.
  describe('on a mount gpsd may reopen (root: allow_other, since gpsd drops root; a user: its own mount)', () => {
    let d: Daemon;
    beforeAll(async () => {
      // gpsd reopens the node as user gpsd: the directories above the mount let others through (not list).
      const dir = await scratch('gpsd');
      for (const through of [testRoot(), dir]) await chmod(through, 0o711);
      const allowOther = runsAsRoot ? ['--allow-other'] : [];
      d = await Daemon.start({ dir, args: [...allowOther, '--config', join(repoRoot, 'examples', 'gpsd', 'empty.yaml')] });
      const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === d.mount);
      expect(line).toMatch(runsAsRoot ? / fuse\.cdevemu \S*allow_other/ : new RegExp(` fuse\\.cdevemu \\S*user_id=${process.getuid!()},`));
    });
    afterAll(() => d.stop());
    // A scenario leaves what it plugged on a daemon it did not start: each starts from none.
    afterEach(async () => {
      for (const dev of await d.client.listDevices()) if (dev.state === 'live') await d.client.unplug(dev.name);
    });

    it('told by udev (gpsdctl): lets go, tells its client, and follows the new port', async () => {
      const r = await runScenario('hotplug', { CDEVEMU_SOCKET: d.socket });
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain('ok    expect ttyUSB0 released within 5000ms');
      expect(r.out).toContain('ok    wait opened ttyUSB0 x2');
      // The client stays connected: told the device went, then that it came back, then fixes again.
      const after = clientLinesAfter(r.out, 'ok    wait event {"type":"action"');
      const node = `${d.mount}/dev/ttyUSB0`;
      const gone = after.indexOf(`client: DEVICE ${node} activated 0`);
      const back = after.findIndex((l, i) => i > gone && l.startsWith(`client: DEVICE ${node} activated 20`));
      expect(gone, after.join('\n')).toBeGreaterThanOrEqual(0);
      expect(back, after.join('\n')).toBeGreaterThan(gone);
      expect(after.slice(back + 1)).toEqual([
        expect.stringMatching(/^client: TPV mode 3 lat 48\.117300000 lon 11\.516666667 at \S+Z$/),
        'client: a fix again after the device came back',
      ]);
      expect(r.out).toContain('ok    expect program exit 0');
    });

    it('replugged with nobody to tell it: never opens the new port (fails)', async () => {
      const r = await runScenario('replug', { CDEVEMU_SOCKET: d.socket });
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain('FAIL  wait opened ttyUSB0 x2');
      expect(r.out).toContain('2 opens of ttyUSB0 did not happen within 15000 ms (1 seen)');
      expectSilence(r, 'ok    replug ttyUSB0', 15_000);
    });

    // What the replug scenario rules out: a client that wakes gpsd after the pull. gpsd then polls
    // the port again only if time() is past the repoll time it noted at the 0-byte read, which it
    // computes in float: the read's time rounded to a multiple of 128 s (time() pinned here, so the
    // run's wall clock cannot decide). Past it, the next 0-byte read closes the port, and the client's
    // WATCH opens the path again: the new port.
    const MULTIPLE = 1_796_000_000; // 128 * 14_031_250, in 2026
    it.each([
      ['1 s past a multiple of 128 s: rounded down, gpsd closes the old port and opens the new one', MULTIPLE + 1, true],
      ['1 s short of a multiple of 128 s: rounded up, gpsd keeps the old port and never opens the new one', MULTIPLE + 127, false],
    ])('woken by a client after the pull, time() pinned %s', async (_what, pinned, reopens) => {
      const [shim, port] = await Promise.all([cClient('pinned_time', [], { shared: true }), freeTcpPort()]);
      const first = await d.client.plug({ model: 'tty', name: 'ttyUSB0', options: { source: 'nmea', baud: 9600 } });
      const node = `${d.mount}/dev/ttyUSB0`;
      // -D 6 logs the 0-byte read ("will be repolled") on stderr.
      const env = { ...withSbin(), LD_PRELOAD: shim, PINNED_TIME: String(pinned) };
      const gpsd = new Interactive('gpsd', ['-N', '-n', '-D', '6', '-S', String(port), '-F', join(d.dir, `gpsd-${port}.sock`), node], env);
      try {
        await until(async () => (await d.client.getDevice('ttyUSB0')).counters.reads >= 20, 30_000, 'gpsd reading the port');
        // gpsd's 0-byte read may come before the replug answers.
        const seen = gpsd.stderr.length;
        await d.client.replug('ttyUSB0');
        await until(() => gpsd.stderr.includes(`${node} will be repolled`, seen), 30_000, "gpsd's 0-byte read of the hung-up port");
        const client = new Interactive('gpspipe', ['-w', `127.0.0.1:${port}`]);
        try {
          // gpsd answers the WATCH after it has polled its devices and run the command (awaken()).
          while (!(await client.line(30_000)).includes('"class":"WATCH"'));
          const held = async (generation: number): Promise<string[]> =>
            (await d.client.getDevice('ttyUSB0', { generation })).holders.map((h) => h.comm);
          if (reopens) {
            expect(await held(first.generation + 1)).toEqual(['gpsd']);
            // Closed without telling its clients: gpsd_deactivate(), not deactivate_device().
            await until(async () => (await d.client.listDevices()).every((v) => v.generation !== first.generation), 30_000, 'the old port freed');
            expect(gpsd.stderr.slice(seen)).toContain('reawakened after zero-length read');
          } else {
            expect(await held(first.generation + 1)).toEqual([]);
            expect(await held(first.generation)).toEqual(['gpsd']);
            expect(gpsd.stderr.slice(seen)).not.toContain('reawakened');
          }
        } finally {
          client.kill();
        }
      } finally {
        gpsd.kill('SIGTERM');
        await gpsd.exited;
      }
    });
  });
});
