/**
 * `cdevemu record` (the built CLI) with real programs on real devices, and
 * the traces it writes replayed through `cdevemu run --device
 * NAME=replay:...` where the device is not there:
 *
 * - the real gpsd on a pty from /dev/ptmx that a python3 child feeds NMEA
 *   from its master side; replayed to gpsd with the pty gone, its
 *   `gpspipe -w` client gets the same fix;
 * - rngtest on the real /dev/hwrng (bound over it in the program's
 *   namespace, record's default); replayed, rngtest reads the same bits
 *   and reports the same counts, and the captured sysfs is on the mount.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDeviceTrace } from '../../src/models/record/device-trace.js';
import { DEFAULT_FIX, nmeaBurst } from '../../src/models/tty/nmea.js';
import { cdevemu } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';
import { pythonInteractive } from '../helpers/proc.js';

/**
 * A raw pty whose master side sends the bursts of argv[1] ('|'-separated)
 * in a loop, one every 0.1 s once the one before was read (FIONREAD on the
 * slave): nothing piles up before gpsd opens it, so gpsd's fixes come one
 * burst at a time, as from a receiver, not all at its first read.
 */
const FEEDER = `import os, sys, tty, select, fcntl, termios, struct
bursts = open(sys.argv[1]).read().split('|')
m, s = os.openpty(); tty.setraw(s); os.set_blocking(m, False)
print(os.ttyname(s), flush=True)
i = 0
while True:
    r, _, _ = select.select([m, 0], [], [], 0.1)
    if 0 in r and not sys.stdin.readline(): break
    if m in r: os.read(m, 4096)
    if struct.unpack('i', fcntl.ioctl(s, termios.FIONREAD, b'0000'))[0] == 0:
        os.write(m, bursts[i % len(bursts)].encode()); i += 1
`;

/**
 * gpsd (-n: it opens the device at once) on $3, clients on 127.0.0.1:$1;
 * a gpspipe -w client's reports go to a file until $4 of them have a 3D
 * fix and a position, which are printed. gpspipe is then killed: piped into
 * `grep -m`, it would outlive grep until its next report, and a replay whose
 * data has ended sends none.
 */
const FIXES = `port=$1; ctl=$2; device=$3; n=$4; out=$5; fix='"class":"TPV".*"mode":3.*"lat":'
gpsd -N -n -S "$port" -F "$ctl" "$device" &
until gpspipe -w -n 1 "127.0.0.1:$port" >/dev/null 2>&1; do sleep 0.1; done
gpspipe -w -n 500 "127.0.0.1:$port" > "$out" & pipe=$!
until [ "$(grep -c "$fix" "$out")" -ge "$n" ]; do kill -0 $pipe 2>/dev/null || break; sleep 0.1; done
kill $pipe 2>/dev/null
grep -m "$n" "$fix" "$out"`;

const gpsdCommand = (node: string, fixes: number): string[] => ['--', 'sh', '-c', FIXES, 'sh', '{port}', '{tmp}/gpsd.sock', `{mount}/dev/${node}`, String(fixes), '{tmp}/gpspipe.out'];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(testRoot(), 'record-'));
});

/** The TPV a first-fix.sh client printed. */
function tpv(out: string): { lat: number; lon: number; mode: number } {
  const line = /\| (\{"class":"TPV".*\})/.exec(out)?.[1];
  expect(line, out).toBeDefined();
  return JSON.parse(line!) as { lat: number; lon: number; mode: number };
}

describe('cdevemu record', { timeout: 120_000 }, () => {
  it('gpsd on a pty fed NMEA: recorded, then replayed with no pty, gpspipe sees the same fix', async () => {
    const fix = { ...DEFAULT_FIX, lat: 51.4779, lon: -0.0015, alt: 46 };
    const base = Date.UTC(2026, 0, 1, 12, 0, 0);
    const nmea = join(dir, 'nmea.txt');
    await writeFile(nmea, Array.from({ length: 300 }, (_, i) => nmeaBurst(fix, new Date(base + i * 1000))).join('|'));
    const trace = join(dir, 'gps.jsonl');
    const feeder = pythonInteractive(FEEDER, [nmea]);
    let recorded;
    try {
      const pts = await feeder.line();
      expect(pts).toMatch(/^\/dev\/pts\/\d+$/);
      const r = await cdevemu(['record', '--device', pts, '--name', 'gps0', '--out', trace, ...gpsdCommand('gps0', 20)], { timeoutMs: 90_000 });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      recorded = tpv(r.stdout);
    } finally {
      feeder.child.stdin!.end();
      feeder.kill();
      await feeder.exited;
    }
    expect(recorded).toMatchObject({ mode: 3, lat: 51.4779, lon: -0.0015 });
    const { header, entries } = parseDeviceTrace(readFileSync(trace, 'utf8'), trace);
    expect(header).toMatchObject({ name: 'gps0', rdev: expect.stringMatching(/^136:\d+$/) as unknown });
    // gpsd's termios went through the caller's memory: TCGETS answered, TCSETS taken.
    expect(entries.some((e) => e.op === 'ioctl' && e.cmd === 0x5401 && e.out)).toBe(true);
    expect(entries.some((e) => e.op === 'ioctl' && e.cmd === 0x5402 && e.in)).toBe(true);
    expect(entries.some((e) => e.op === 'read' && Buffer.from(e.data ?? '', 'hex').toString().includes('$GPGGA'))).toBe(true);

    // The pty is gone; the trace alone plays the device, at a quarter of its recorded pace: the
    // recording went on for 20 fixes after its client connected, so the replay's client, connecting
    // as soon after gpsd's start as the recording's did, has 80 fixes' time to come before the data
    // ends: slack for a client that comes late on a loaded machine.
    const options = JSON.stringify({ trace, speed: 0.25 });
    const r = await cdevemu(['run', '--device', `gps0=replay:${options}`, '--expect', 'exit:0:60s', ...gpsdCommand('gps0', 1)], { timeoutMs: 90_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const replayed = tpv(r.stdout);
    expect({ lat: replayed.lat, lon: replayed.lon, mode: replayed.mode }).toEqual({ lat: recorded.lat, lon: recorded.lon, mode: recorded.mode });
  });

  it('/dev/hwrng read by rngtest: recorded, then replayed, rngtest reports the same', async () => {
    const trace = join(dir, 'hwrng.jsonl');
    const rngtest = ['--', 'sh', '-c', 'rngtest -c 8 < /dev/hwrng'];
    const rec = await cdevemu(['record', '--device', '/dev/hwrng', '--out', trace, ...rngtest], { timeoutMs: 90_000 });
    const counts = (out: string): string[] => out.match(/(bits received from input|FIPS 140-2 successes|FIPS 140-2 failures): \d+/g) ?? [];
    expect(counts(rec.stdout), rec.stdout + rec.stderr).toHaveLength(3);
    expect(counts(rec.stdout)[0]).toBe('bits received from input: 160032');
    const { header, entries } = parseDeviceTrace(readFileSync(trace, 'utf8'), trace);
    const current = readFileSync('/sys/class/misc/hw_random/rng_current', 'utf8');
    expect(header).toMatchObject({ device: '/dev/hwrng', rdev: '10:183', name: 'hwrng' });
    expect(header.sysfs['sys/class/misc/hw_random/rng_current']).toBe(current);
    expect(entries.filter((e) => e.op === 'read').length).toBeGreaterThan(0);

    const options = JSON.stringify({ trace, speed: 0 });
    const shown = ['--', 'sh', '-c', 'rngtest -c 8 < /dev/hwrng; s=$?; cat {mount}/sys/class/misc/hw_random/rng_current; exit $s'];
    const rep = await cdevemu(['run', '--device', `hwrng=replay:${options}`, '--bind', '/dev/hwrng=dev/hwrng', '--expect', `exit:${rec.code === 0 ? 0 : 1}:60s`, ...shown], {
      timeoutMs: 90_000,
    });
    expect(rep.code, rep.stdout + rep.stderr).toBe(0);
    expect(counts(rep.stdout)).toEqual(counts(rec.stdout));
    expect(rep.stdout).toContain(`| ${current.trim()}`);
  });

  it('refuses what is not a character device, and a trace it cannot write, with the reason (exit 2)', async () => {
    const notDev = await cdevemu(['record', '--device', '/etc/hostname', '--out', join(dir, 'x.jsonl'), '--', 'true']);
    expect(notDev.code).toBe(2);
    expect(notDev.stderr).toContain('record: device /etc/hostname is not a character device node');
    const noDir = await cdevemu(['record', '--device', '/dev/null', '--out', join(dir, 'missing', 'x.jsonl'), '--', 'true']);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain('record: cannot write the trace');
    const full = await cdevemu(['record', '--device', '/dev/null', '--out', '/dev/full', '--', 'true']);
    expect(full.code).toBe(2);
    expect(full.stderr).toContain('record: cannot write the trace /dev/full: ENOSPC');
  });

  it('fails when the program never opened the device: the trace records nothing', async () => {
    const r = await cdevemu(['record', '--device', '/dev/null', '--out', join(dir, 'none.jsonl'), '--', 'true']);
    expect(r.stdout).toMatch(/the program exited with code 0 before an open of null\n/);
    expect(r.stdout).toMatch(/^FAIL record \/dev\/null: true: wait opened null \(--expect opened:null\)$/m);
    expect(r.code).toBe(1);
  });

  it('fails the run when the trace stops being written (a full file system), though the program exited 0', async () => {
    const small = await mkdtemp(join(dir, 'small-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', small]);
    try {
      const r = await cdevemu(['record', '--device', '/dev/zero', '--out', join(small, 't.jsonl'), '--', 'sh', '-c', 'head -c 200000 /dev/zero >/dev/null']);
      expect(r.stdout).toMatch(/trace_failed on zero \(generation 1\): \{"trace":"[^"]*t\.jsonl","error":"ENOSPC: /);
      expect(r.stdout).toMatch(/^FAIL record \/dev\/zero: .*: no device saw a failure$/m);
      expect(r.code).toBe(1);
    } finally {
      execFileSync('umount', [small]);
    }
  });
});
