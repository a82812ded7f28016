/**
 * The library API a user's test code calls: startEmulator() on a temporary
 * mount, a program under test as a child process, released() as the leak
 * check.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HeldOpenError, startEmulator, type EmulatorHandle } from '../src/index.js';
import { python, pythonInteractive, run } from './helpers/proc.js';
import { repoRoot } from './helpers/cli.js';
import { findMount } from '../src/fuse/mount.js';
import { testLogger, testRoot } from './helpers/mount.js';

let emu: EmulatorHandle;
beforeAll(async () => {
  emu = await startEmulator({ logger: testLogger() });
});
afterAll(() => emu.stop({ releaseTimeoutMs: 0 }));

it('plugs, faults, unplugs and reports a program that keeps the device open', async () => {
  await emu.plug('echo', 'echo%d');
  const rule = emu.fault({ device: 'echo0', op: 'write', nth: 2, action: 'fail', errno: 'EPIPE' });
  const writes = await python(
    `import os,sys,errno
for data in (b"a", b"b"):
    fd = os.open(sys.argv[1], os.O_WRONLY)
    try: print(os.write(fd, data))
    except OSError as e: print(errno.errorcode[e.errno])
    os.close(fd)`,
    [emu.path('dev/echo0')],
  );
  expect(writes.stdout.split('\n')).toEqual(['1', 'EPIPE', '']);
  expect(emu.counters('echo0')).toMatchObject({ writes: 2, faults: 1 });
  expect(emu.removeFault(rule.id)).toBe(true);

  const leaky = pythonInteractive(`import os,sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint("open")\nsys.stdin.readline()`, [emu.path('dev/echo0')]);
  expect(await leaky.line()).toBe('open');
  await emu.unplug('echo0');
  const err = await emu.released('echo0', { within: 200 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(HeldOpenError);
  expect((err as HeldOpenError).holders.map((h) => h.pid)).toEqual([leaky.pid]);
  expect((err as HeldOpenError).message).toMatch(/pid \d+ \(python3\)/);

  leaky.send('bye');
  await emu.released('echo0', { within: 2000 });
  await emu.waitEvent((e) => e.device === 'echo0' && e.type === 'freed');
  expect(emu.events({ device: 'echo0' }).map((e) => e.type)).toContain('late_released');
});

it('removes the temporary mountpoint it made on stop', async () => {
  const other = await startEmulator({ logger: testLogger() });
  const dir = other.mountpoint;
  expect((await findMount(dir))?.fstype).toBe('fuse.cdevemu');
  await other.stop();
  expect(await findMount(dir)).toBeNull();
  expect(await readFile(dir).catch((e: NodeJS.ErrnoException) => e.code)).toBe('ENOENT');
});

it('refuses, with the reason, to serve from a worker thread, and mounts nothing', async () => {
  // Node delivers no signals to a worker's listeners, and the channel waits for SIGIO.
  const src = `const { Worker } = require('node:worker_threads');
const w = new Worker("import('${repoRoot}/dist/src/index.js').then((m) => m.startEmulator()).then(() => console.log('started'), (e) => console.log('refused: ' + e.message));", { eval: true });
w.on('exit', () => process.exit(0));`;
  const tmp = await mkdtemp(join(testRoot(), 'worker-'));
  const r = await run(process.execPath, ['-e', src], { timeoutMs: 20_000, env: { ...process.env, TMPDIR: tmp } });
  expect(r.stdout, r.stderr).toMatch(/^refused: cdevemu serves FUSE from the main thread only \(it waits for requests with SIGIO\)/);
  expect(await readdir(tmp)).toEqual([]); // the temporary mountpoint was removed
  expect(await readFile('/proc/mounts', 'utf8')).not.toContain(tmp);
});
