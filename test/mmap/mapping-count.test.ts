/**
 * Counting the mappings programs hold on a device's regions among 1,500
 * other processes (idle sleeps): the count is right for a program that
 * mapped and closed, for a child that inherited a mapping by fork(), and
 * for that child once its parent exited; GET /v1/devices reads the maps
 * of those processes only, not of every process on the host, and
 * concurrent requests share the reads (procReads counts them).
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeviceView } from '../../src/control/protocol.js';
import { ControlServer } from '../../src/control/server.js';
import { pageSize } from '../../src/sys/ffi.js';
import { procReads } from '../../src/sys/procmaps.js';
import { cClient } from '../helpers/cc.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { testLogger, testRoot } from '../helpers/mount.js';
import { Interactive, pythonInteractive, run } from '../helpers/proc.js';

const CROWD = 1500;

let t: TestEmulator;
let control: ControlServer;
let socket: string;
let crowd: Interactive;
/** Processes the python parent forked, killed by pid at the end. */
const forked: number[] = [];
/** The crowd's sleeps, killed by pid at the end. */
const crowdPids: number[] = [];
beforeAll(async () => {
  t = await startTestEmulator();
  socket = join(await mkdtemp(join(testRoot(), 'ctl-')), 'ctl.sock');
  control = await ControlServer.listen({ socketPath: socket, devices: t.emu.devices, faults: t.emu.faults, mountpoint: t.emu.mountpoint, version: 'test', logger: testLogger() });
  // Each sleep is killed by pid at the end, and dies with the shell that started it
  // (PR_SET_PDEATHSIG) if the test does not get there. The death signal alone let some
  // outlive the shell under load: set by setpriv after the fork, it came too late for them.
  crowd = new Interactive('bash', ['-c', `for i in $(seq ${CROWD}); do setpriv --pdeathsig KILL sleep 3600 & pids="$pids $!"; done; echo ready$pids; wait`]);
  const [ready, ...pids] = (await crowd.line(120_000)).split(' ');
  expect(ready).toBe('ready');
  crowdPids.push(...pids.map(Number));
  expect(crowdPids).toHaveLength(CROWD);
  // Starting 1,500 processes on a loaded 2-CPU machine took over the 30 s default: the hook is bounded by the crowd's own wait.
}, 150_000);
afterAll(async () => {
  for (const pid of [...forked, ...crowdPids]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  crowd?.kill();
  await control?.close();
  await t?.emu.stop({ releaseTimeoutMs: 0 });
});

/** GET /v1/devices with curl: the mapping count of each device. */
async function mappingsByName(): Promise<Record<string, number>> {
  const r = await run('curl', ['-sS', '--unix-socket', socket, 'http://cdevemu/v1/devices'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return Object.fromEntries((JSON.parse(r.stdout) as DeviceView[]).map((d) => [d.name, d.mappings]));
}

it('counts the mappings of openers and their children among 1,500 other processes, reading only their maps', async () => {
  expect((await readdir('/proc')).filter((d) => /^\d+$/.test(d)).length).toBeGreaterThan(CROWD);
  const devs = await Promise.all([0, 1, 2].map(() => t.emu.devices.plug({ model: 'uio', name: 'uio%d', options: { mapSize: pageSize() } })));
  const [uio0, uio1, uio2] = devs.map((d) => d.name) as [string, string, string];

  // A C program maps the region, then closes the descriptor: the mapping stays.
  const c = new Interactive(await cClient('mapper'), [t.path(`dev/${uio0}`)]);
  expect(await c.line()).toBe('open');
  c.send(`map 0 0 ${pageSize()}`);
  expect(await c.line()).toBe('ok');
  c.send('close');
  expect(await c.line()).toBe('ok');
  // python maps it, forks a child that inherits the mapping, and both close the descriptor.
  const py = pythonInteractive(
    `import mmap,os,signal,sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, int(sys.argv[2]), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
pid = os.fork()
if pid == 0:
    os.close(fd)
    null = os.open("/dev/null", os.O_RDWR)
    for n in (0, 1, 2): os.dup2(null, n)
    while True: signal.pause()
os.close(fd)
print("child", pid, flush=True)
sys.stdin.readline()`,
    [t.path(`dev/${uio0}`), String(pageSize())],
  );
  const child = Number((await py.line()).split(' ')[1]);
  forked.push(child);

  // One request reads the maps of those three processes, no other. (The
  // files the two closed wait for their mappings, reading the same maps
  // meanwhile: fops.ts release().)
  const trio = [c.pid, py.pid, child].sort();
  procReads.mapsOf = new Set();
  try {
    expect(await mappingsByName()).toEqual({ [uio0]: 3, [uio1]: 0, [uio2]: 0 });
    expect([...procReads.mapsOf].sort()).toEqual(trio);
  } finally {
    procReads.mapsOf = null;
  }

  // Twenty at once: still right, and at most those three reads each (they share the ones in flight).
  const twenty = { ...procReads };
  const answers = await Promise.all(Array.from({ length: 20 }, () => mappingsByName()));
  expect(answers).toEqual(answers.map(() => ({ [uio0]: 3, [uio1]: 0, [uio2]: 0 })));
  expect(procReads.maps - twenty.maps).toBeLessThanOrEqual(20 * 3);

  // The parent exits: its mapping goes, the child's stays counted though it is no opener's child any more.
  py.send('bye');
  await py.exited;
  expect(await mappingsByName()).toEqual({ [uio0]: 2, [uio1]: 0, [uio2]: 0 });
  process.kill(child, 'SIGKILL');
  c.kill();
  await c.exited;
  await expect.poll(async () => (await mappingsByName())[uio0], { timeout: 10_000 }).toBe(0);
});
