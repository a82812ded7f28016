/**
 * The real gpsd (Debian's 3.22) and gpspipe on an emulated USB GPS, through
 * the gpsd example scenarios and `cdevemu run` (the built CLI): it gets a
 * fix; pulled out with nobody to tell it, it keeps the port open, tells
 * its client nothing and never opens the new port; told by a udev
 * stand-in (gpsdctl), it lets go, tells its client and follows the new
 * port. docs/case-study-gpsd.md explains each outcome.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cdevemu, repoRoot } from '../helpers/cli.js';
import { Daemon } from '../daemon/harness.js';

const scenario = (name: string): string => join(repoRoot, 'examples', 'scenarios', `gpsd-${name}.yaml`);

interface Run {
  code: number | null;
  out: string;
  /** The program's pid, from the run's "started" line. */
  pid: number;
}

async function runScenario(name: string, env?: NodeJS.ProcessEnv): Promise<Run> {
  const r = await cdevemu(['run', scenario(name)], { timeoutMs: 120_000, ...(env ? { env: { ...process.env, ...env } } : {}) });
  const pid = Number(/started .* \(pid (\d+)\)/.exec(r.stdout)?.[1]);
  expect(pid, r.stdout + r.stderr).toBeGreaterThan(0);
  // The run stops the program and everything it started (gpsd, gpspipe, the hotplug stand-in).
  expect(existsSync(`/proc/${pid}`)).toBe(false);
  return { code: r.code, out: r.stdout, pid };
}

/** The program's relayed output lines ("| ...") after the step line that contains `step`. */
function clientLinesAfter(out: string, step: string): string[] {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => l.includes(step));
  expect(at, out).toBeGreaterThanOrEqual(0);
  return lines.slice(at + 1).filter((l) => l.trim().startsWith('| client:')).map((l) => l.trim().slice(2));
}

/** What a client of a gpsd that has stopped reading its device gets: no DEVICE line, at most the one TPV already on its way. */
function expectSilence(clientLines: string[]): void {
  expect(clientLines.filter((l) => l.startsWith('client: DEVICE'))).toEqual([]);
  expect(clientLines.filter((l) => l.startsWith('client: TPV')).length).toBeLessThanOrEqual(1);
}

describe('gpsd on the emulated GPS', () => {
  it('gets a fix: gpspipe sees a 3D TPV at the position the model reports', async () => {
    const r = await runScenario('fix');
    expect(r.code, r.out).toBe(0);
    const tpv = /\| (\{"class":"TPV".*\})/.exec(r.out)?.[1];
    expect(tpv, r.out).toBeDefined();
    expect(JSON.parse(tpv!)).toMatchObject({ device: '/dev/ttyUSB0', mode: 3, lat: 51.4779, lon: -0.0015 });
    expect(r.out).toMatch(/^PASS /m);
  });

  it('unplugged with nobody to tell it: keeps the removed port open and tells its client nothing (fails)', async () => {
    const r = await runScenario('unplug');
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain('FAIL  expect ttyUSB0 released within 5000ms');
    expect(r.out).toMatch(/pid \d+ \(gpsd\) holds an open file description on generation 1/);
    // In the 5 s after the unplug its client is told nothing (no DEVICE "activated":0), and the
    // reports stop (one may still be on its way from what gpsd read just before).
    expectSilence(clientLinesAfter(r.out, 'ok    unplug ttyUSB0'));
  });

  describe('on a mount gpsd may reopen once it has dropped root (allow_other)', () => {
    let d: Daemon;
    beforeAll(async () => {
      d = await Daemon.start({ args: ['--allow-other', '--config', join(repoRoot, 'examples', 'gpsd', 'empty.yaml')] });
      expect(readFileSync('/proc/mounts', 'utf8')).toMatch(new RegExp(`${d.mount} fuse\\.cdevemu \\S*allow_other`));
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
      const after = clientLinesAfter(r.out, 'ok    wait read ttyUSB0 x20');
      const gone = after.indexOf('client: DEVICE /dev/gps/ttyUSB0 activated 0');
      const back = after.findIndex((l, i) => i > gone && /^client: DEVICE \/dev\/gps\/ttyUSB0 activated 20\d\d-/.test(l));
      expect(gone, after.join('\n')).toBeGreaterThanOrEqual(0);
      expect(back, after.join('\n')).toBeGreaterThan(gone);
      expect(after.slice(back + 1)).toEqual(['client: TPV mode 3 lat 48.117300000 lon 11.516666667', 'client: a fix again after the device came back']);
      expect(r.out).toContain('ok    expect program exit 0');
    });

    it('replugged with nobody to tell it: never opens the new port (fails)', async () => {
      const r = await runScenario('replug', { CDEVEMU_SOCKET: d.socket });
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain('FAIL  wait opened ttyUSB0 x2');
      expect(r.out).toContain('an open of ttyUSB0 did not happen within 15000 ms');
      expectSilence(clientLinesAfter(r.out, 'ok    replug ttyUSB0'));
    });
  });
});
