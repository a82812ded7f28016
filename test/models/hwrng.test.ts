/**
 * hwrng model on a real mount: rngtest passes FIPS 140-2 on its output and
 * fails with a read error when the device is unplugged mid-run; reads are
 * answered in full; a seed makes the stream reproducible; opens are
 * read-only; every op after unplug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLLIN } from '../../src/devio.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { Interactive, python, run } from '../helpers/proc.js';
import { Holder, O_RDONLY } from './holder.js';
import { until } from '../helpers/wait.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

let seq = 0;
const plug = async (options: Record<string, unknown> = {}) => {
  const inst = await t.emu.devices.plug({ model: 'hwrng', name: `hwrng${seq++}`, options });
  return { inst, name: inst.name, path: t.path(`dev/${inst.name}`) };
};

/** Reads N bytes in one read(2) (crossing FUSE's 128 KiB chunks when large) and prints count and sha256. */
const reader = `import os,sys,hashlib
fd = os.open(sys.argv[1], os.O_RDONLY)
for n in sys.argv[2:]:
    b = os.read(fd, int(n)); print(len(b), hashlib.sha256(b).hexdigest())`;

describe('hwrng', () => {
  it('rngtest -c 5 reports 5 FIPS 140-2 successes', async () => {
    // Seeded, so the run is reproducible (random bytes fail a FIPS block about once in 1250).
    const d = await plug({ seed: 'rngtest' });
    const r = await run('sh', ['-c', 'exec rngtest -c 5 < "$1"', 'sh', d.path]);
    expect(r.stderr).toMatch(/FIPS 140-2 successes: 5\b/);
    expect(r.stderr).toMatch(/FIPS 140-2 failures: 0\b/);
    expect(r.code).toBe(0);
  });

  it('rngtest fails with a read error when the device is unplugged mid-run', async () => {
    const d = await plug();
    const p = new Interactive('sh', ['-c', 'exec rngtest -c 100000000 < "$1"', 'sh', d.path]);
    await until(() => d.inst.counters.reads > 0, 10_000, 'rngtest reading'); // unplugged mid-run, not before it opened
    await t.emu.devices.unplug(d.name);
    const exit = await p.exited;
    expect(exit.code).not.toBe(0);
    expect(p.stderr).toContain('error reading input: No such device');
  });

  it('answers every read in full, and a seed gives the same bytes however the reads are split', async () => {
    const a = await plug({ seed: 42 });
    const b = await plug({ seed: '42' });
    const c = await plug({ seed: 7 });
    const one = await python(reader, [a.path, '300000']);
    const split = await python(`import os,sys,hashlib
fd = os.open(sys.argv[1], os.O_RDONLY)
b = b"".join(os.read(fd, n) for n in (1, 99999, 200000)); print(len(b), hashlib.sha256(b).hexdigest())`, [b.path]);
    const other = await python(reader, [c.path, '300000']);
    expect(one.stdout).toMatch(/^300000 [0-9a-f]{64}\n$/);
    expect(split.stdout).toBe(one.stdout);
    expect(other.stdout).not.toBe(one.stdout);
    const unseeded = await plug();
    const u = await python(reader, [unseeded.path, '4096', '4096']);
    const [x, y] = u.stdout.trim().split('\n');
    expect(x).toMatch(/^4096 /);
    expect(x).not.toBe(y);
    expect((await run('cat', [t.path(`sys/class/misc/${a.name}/rng_current`)])).stdout).toBe('cdevemu\n');
    await expect(t.emu.devices.plug({ model: 'hwrng', name: 'hwrngx', options: { seed: true } })).rejects.toThrow(/seed must be a string/);
  });

  it('opens read-only only: O_WRONLY, O_RDWR and access mode 3 fail EINVAL (rng_dev_open)', async () => {
    const d = await plug();
    const r = await python(
      `import os,sys,errno
for flags in (os.O_WRONLY, os.O_RDWR, 3, os.O_RDONLY):
    try:
        os.close(os.open(sys.argv[1], flags)); print(flags, "ok")
    except OSError as e:
        print(flags, errno.errorcode[e.errno])`,
      [d.path],
    );
    expect(r.stdout).toBe('1 EINVAL\n2 EINVAL\n3 EINVAL\n0 ok\n');
    expect(d.inst.counters.opens).toBe(1);
  });

  it('after unplug: read fails ENODEV, ioctl ENOTTY as always (no ioctl), poll stays the VFS default (the misc device outlives its rng)', async () => {
    const d = await plug();
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op('read 4')).toMatch(/^ok [0-9a-f]{8}$/);
    await t.emu.devices.unplug(d.name);
    expect(await h.op('read 4')).toBe('ENODEV');
    await h.close();
    const d2 = await plug();
    const h2 = await Holder.open(d2.path, O_RDONLY);
    await t.emu.devices.unplug(d2.name);
    expect(await h2.op('ioctl 0x80045200 4')).toBe('ENOTTY');
    expect(await h2.op(`poll ${POLLIN} 0`)).toBe(`ok ${POLLIN}`);
    await h2.close();
    await t.waitEvent((e) => e.device === d2.name && e.generation === d2.inst.generation && e.type === 'freed');
    expect(d2.inst.counters.lateReleases).toBe(1);
  });
});
