/**
 * The library API a user's test code calls: startEmulator() on a temporary
 * mount, a program under test as a child process, released() as the leak
 * check.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
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
  // released() resolves at the close: the bound is for a slow machine.
  await emu.released('echo0', { within: 30_000 });
  await emu.waitEvent((e) => e.device === 'echo0' && e.type === 'freed');
  expect(emu.events({ device: 'echo0' }).map((e) => e.type)).toContain('late_released');
});

it("runs the README's library example as written, and it prints the freed device's counters", async () => {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const example = /## Library API[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(example).toContain("console.log(emu.counters('uio0')");
  // A project of the user's own, where 'cdevemu' resolves to this checkout's package.
  const project = await mkdtemp(join(testRoot(), 'readme-'));
  await mkdir(join(project, 'node_modules'));
  await symlink(repoRoot, join(project, 'node_modules', 'cdevemu'));
  await writeFile(join(project, 'example.mjs'), example!);
  const r = await run(process.execPath, ['example.mjs'], { cwd: project, timeoutMs: 30_000, env: { ...process.env, TMPDIR: project } });
  expect(r.code, r.stderr).toBe(0);
  // console.log(counters, events): the counters object first, with the irq action counted.
  expect(r.stdout).toMatch(/^\{\s*opens: 0,/);
  expect(r.stdout).toMatch(/actions: 1,/);
  expect(r.stdout).toContain("type: 'freed'");
});

it("keeps a freed device's counters readable until a new device is plugged under its name", async () => {
  const inst = await emu.plug('echo', 'kept0');
  await python(`import os,sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\nos.write(fd, b"abc")\nos.close(fd)`, [emu.path('dev/kept0')]);
  await emu.unplug('kept0');
  await emu.released('kept0', { within: 30_000 });
  await emu.waitEvent((e) => e.device === 'kept0' && e.type === 'freed');
  expect(inst.lifecycle).toBe('freed');
  expect(emu.instance('kept0')).toBeUndefined();
  const final = { opens: 1, releases: 1, writes: 1, bytesWritten: 3, inFlight: 0 };
  expect(emu.counters('kept0')).toMatchObject(final);
  expect(emu.counters('kept0', 1)).toMatchObject(final);
  expect(emu.counters('kept0', 2)).toBeUndefined();
  expect(emu.counters('never0')).toBeUndefined();
  // Reused: the name's counters are the new generation's.
  await emu.plug('echo', 'kept0');
  expect(emu.counters('kept0')).toMatchObject({ opens: 0, writes: 0, bytesWritten: 0 });
  expect(emu.counters('kept0', 1)).toBeUndefined();
  await emu.unplug('kept0');
});

it('refuses a leak check of a name or generation never plugged, even while the real one is held open', async () => {
  await emu.plug('echo', 'leak0');
  const leaky = pythonInteractive(`import os,sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint("open")\nsys.stdin.readline()`, [emu.path('dev/leak0')]);
  try {
    expect(await leaky.line()).toBe('open');
    await emu.unplug('leak0');
    // A misspelt name, or a generation that never was, would pass the check whatever the program holds.
    await expect(emu.released('leak1', { within: 0 })).rejects.toMatchObject({ kind: 'not_found', message: expect.stringContaining('leak1') });
    await expect(emu.released('leak0', { within: 0, generation: 2 })).rejects.toMatchObject({ kind: 'not_found', message: expect.stringContaining('leak0 generation 2') });
    await expect(emu.released('leak0', { within: 0, generation: 1 })).rejects.toBeInstanceOf(HeldOpenError);
    leaky.send('bye');
    await emu.released('leak0', { within: 30_000 });
    await emu.waitEvent((e) => e.device === 'leak0' && e.type === 'freed');
    // Freed: a generation that was, and is gone, holds nothing.
    await emu.released('leak0', { within: 0 });
    await emu.released('leak0', { within: 0, generation: 1 });
  } finally {
    leaky.kill();
  }
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
  // The temporary mountpoint was removed (a user's lock directory, $TMPDIR/cdevemu-UID, may stay: src/fuse/mountpoint-lock.ts).
  expect((await readdir(tmp)).filter((n) => !/^cdevemu-\d+$/.test(n))).toEqual([]);
  expect(await readFile('/proc/mounts', 'utf8')).not.toContain(tmp);
});
