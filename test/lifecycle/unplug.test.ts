/**
 * Hot-unplug on a real mount with real client processes (issue 3): the
 * uio late_release contract, the unplug barrier, deferred free, replug.
 * Counters are read from the core and from an instrumented model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLLERR, POLLHUP } from '../../src/devio.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { python, pythonInteractive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { probeModel, type ProbeRegistry, type ProbeStats } from '../fixtures/probe-model.js';

const registry: ProbeRegistry = new Map();
let t: TestEmulator;
let seq = 0;

beforeAll(async () => {
  t = await startTestEmulator([probeModel(registry)], 1000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

async function plugProbe(options: Record<string, unknown> = {}): Promise<{ name: string; path: string; stats: () => ProbeStats }> {
  const name = `probe${seq++}`;
  const inst = await t.emu.devices.plug({ model: 'probe', name, options });
  return { name, path: t.path(`dev/${name}`), stats: () => registry.get(`${name}#${inst.generation}`)! };
}


/** A python client that opens PATH, says "open", then runs each stdin command. */
const holder = `import os,sys,errno,select
fd = os.open(sys.argv[1], os.O_RDWR)
print("open")
for line in sys.stdin:
    cmd = line.strip()
    try:
        if cmd == "read": os.read(fd, 10); print("ok")
        elif cmd == "write": os.write(fd, b"x"); print("ok")
        elif cmd == "poll":
            p = select.poll(); p.register(fd, select.POLLIN); print(p.poll(0)[0][1] if p.poll(0) else 0)
        elif cmd == "close": os.close(fd); print("closed")
    except OSError as e:
        print(errno.errorcode[e.errno])`;

describe('unplug with open files', () => {
  it('fails read and write with EIO on a held fd; close runs lateRelease once, then free; never release', async () => {
    const d = await plugProbe();
    const p = pythonInteractive(holder, [d.path]);
    expect(await p.line()).toBe('open');
    const report = await t.emu.devices.unplug(d.name);
    expect(report.stuck).toEqual([]);
    p.send('read');
    expect(await p.line()).toBe('EIO');
    p.send('write');
    expect(await p.line()).toBe('EIO');
    p.send('poll');
    expect(Number(await p.line())).toBe(POLLERR | POLLHUP);
    expect(d.stats().frees).toBe(0);
    p.send('close');
    expect(await p.line()).toBe('closed');
    await t.waitEvent((e) => e.device === d.name && e.type === 'freed');
    expect(d.stats()).toMatchObject({ opens: 1, releases: 0, lateReleases: 1, removes: 1, frees: 1, lateBeforeRemove: 0 });
    expect(d.stats().afterRemove).toEqual([]);
    expect(t.eventTypes(d.name, 1)).toEqual(['plugged', 'opened', 'unplug_started', 'drained', 'removed', 'late_released', 'freed']);
  });

  it('wakes a blocked reader and a blocked poller, with EIO and POLLERR|POLLHUP', async () => {
    const d = await plugProbe();
    const waiter = `import os,sys,select,errno
fd = os.open(sys.argv[1], os.O_RDWR)
print("ready", flush=True)
if sys.argv[2] == "read":
    try:
        os.read(fd, 10); r = "data"
    except OSError as e:
        r = errno.errorcode[e.errno]
else:
    p = select.poll(); p.register(fd, select.POLLIN)
    r = str(p.poll(10000)[0][1])
print(r)`;
    const reader = pythonInteractive(waiter, [d.path, 'read']);
    const poller = pythonInteractive(waiter, [d.path, 'poll']);
    expect(await reader.line()).toBe('ready');
    expect(await poller.line()).toBe('ready');
    // Both asleep: the read waits in the model, the poll was answered "nothing
    // yet" and the poller sleeps in the kernel until the wakeup notification.
    // (How fast they wake is measured by the benchmark, not here.)
    const inst = t.emu.devices.get(d.name)!;
    await until(() => inst.inFlight.some((h) => h.op === 'read') && inst.counters.polls >= 1, 10_000, 'reader and poller asleep');
    await t.emu.devices.unplug(d.name);
    expect(await reader.line()).toBe('EIO');
    expect(Number(await poller.line())).toBe(POLLERR | POLLHUP);
    await Promise.all([reader.exited, poller.exited]);
    await t.waitEvent((e) => e.device === d.name && e.type === 'freed');
    expect(d.stats().lateReleases).toBe(2);
  });
});

/** Writes "hello" once and prints the count or the errno. */
const writer = `import os,sys,errno
fd = os.open(sys.argv[1], os.O_RDWR)
print("writing", flush=True)
try:
    print(os.write(fd, b"hello"))
except OSError as e:
    print(errno.errorcode[e.errno])`;

/**
 * A write the test ends (the probe's writeGate): it runs until release(),
 * ignoring its signal as a stuck handler does, however slow the machine.
 * cancelled(): the unplug has aborted its signal, its last step before the
 * drain waits.
 */
function heldWrite(): { gate: (signal: AbortSignal) => Promise<void>; release: () => void; cancelled: () => boolean } {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let seen: AbortSignal | null = null;
  return {
    gate: (signal) => ((seen = signal), released),
    release: () => release(),
    cancelled: () => seen?.aborted === true,
  };
}

/** Until the device's write handler is running (the model waits in it). */
const writeInHandler = (name: string): Promise<void> =>
  until(() => t.emu.devices.get(name)!.inFlight.some((h) => h.op === 'write'), 10_000, 'write in the handler');

describe('the unplug barrier', () => {
  it('waits for a write in flight, and no model code runs after remove()', async () => {
    const write = heldWrite();
    const d = await plugProbe({ writeGate: write.gate });
    const w = pythonInteractive(writer, [d.path]);
    expect(await w.line()).toBe('writing');
    await writeInHandler(d.name);
    const unplugging = t.emu.devices.unplug(d.name, { drainTimeoutMs: 60_000 });
    // The write ends only after the unplug cancelled it: an unplug that did not
    // wait for it would have run remove() by then (the steps after the cancel
    // take no timer turn), and the write's end would come after remove().
    await until(write.cancelled, 10_000, 'the unplug cancelling the write');
    write.release();
    const report = await unplugging;
    expect(report.stuck).toEqual([]);
    // The write finished inside the barrier (before remove(), or afterRemove
    // would list its end), so its client got its count.
    expect(await w.line()).toBe('5');
    await w.exited;
    await t.waitEvent((e) => e.device === d.name && e.type === 'freed');
    expect(d.stats().afterRemove).toEqual([]);
    expect(d.stats().removes).toBe(1);
  });

  it('reports a handler that ignores its signal as stuck after drainTimeoutMs; its client gets EIO', async () => {
    const write = heldWrite();
    const d = await plugProbe({ writeGate: write.gate });
    const w = pythonInteractive(writer, [d.path]);
    expect(await w.line()).toBe('writing');
    await writeInHandler(d.name);
    const report = await t.emu.devices.unplug(d.name, { drainTimeoutMs: 200 });
    expect(report.stuck).toHaveLength(1);
    expect(report.stuck[0]).toMatchObject({ op: 'write', pid: w.pid });
    expect(await w.line()).toBe('EIO');
    expect(t.eventTypes(d.name, 1)).toContain('stuck');
    await w.exited;
    // The stuck handler holds the instance until it finishes; its result is dropped and the instance is then freed.
    expect(d.stats().frees).toBe(0);
    write.release();
    await t.waitEvent((e) => e.device === d.name && e.type === 'freed', 5000);
    expect(d.stats().frees).toBe(1);
  });
});

describe('open file descriptions', () => {
  it('counts dup() and fork() as one open file description: one lateRelease', async () => {
    const d = await plugProbe();
    const p = pythonInteractive(
      `import os,sys,time
fd = os.open(sys.argv[1], os.O_RDWR)
fd2 = os.dup(fd)
pid = os.fork()
if pid: print("ready", flush=True)
sys.stdin.readline() if pid else time.sleep(0.5)
os.close(fd); os.close(fd2)
if pid: os.waitpid(pid, 0); print("done", flush=True)`,
      [d.path],
    );
    expect(await p.line()).toBe('ready');
    await t.emu.devices.unplug(d.name);
    p.send('go');
    expect(await p.line()).toBe('done');
    await t.waitEvent((e) => e.device === d.name && e.type === 'freed');
    expect(d.stats()).toMatchObject({ opens: 1, releases: 0, lateReleases: 1, frees: 1 });
  });

  it('runs lateRelease for a client killed with SIGKILL while holding the fd', async () => {
    const d = await plugProbe();
    const p = pythonInteractive(holder, [d.path]);
    expect(await p.line()).toBe('open');
    await t.emu.devices.unplug(d.name);
    p.kill('SIGKILL');
    await p.exited;
    await t.waitEvent((e) => e.device === d.name && e.type === 'freed');
    expect(d.stats()).toMatchObject({ lateReleases: 1, frees: 1, releases: 0 });
  });

  it('calls release (not lateRelease) for a close before unplug', async () => {
    const d = await plugProbe();
    const r = await run('sh', ['-c', `printf x > ${d.path}`]);
    expect(r.code).toBe(0);
    await until(() => d.stats().releases === 1);
    await t.emu.devices.unplug(d.name);
    await t.waitEvent((e) => e.device === d.name && e.type === 'freed');
    expect(d.stats()).toMatchObject({ opens: 1, releases: 1, lateReleases: 0, frees: 1 });
  });
});

describe('replug', () => {
  it('serves generation 2 to new opens while generation 1 waits for its last close', async () => {
    const d = await plugProbe();
    const old = pythonInteractive(holder, [d.path]);
    expect(await old.line()).toBe('open');
    await t.emu.devices.unplug(d.name);
    const gen2 = await t.emu.devices.replug(d.name);
    expect(gen2.generation).toBe(2);
    expect(gen2.name).toBe(d.name);
    // New opens reach generation 2 under the same name.
    const w = await python(`import os,sys\nfd=os.open(sys.argv[1], os.O_RDWR); os.write(fd, b"g2"); print(os.read(fd, 10).decode())`, [d.path]);
    expect(w.stdout.trim()).toBe('g2');
    // The old fd still fails.
    old.send('read');
    expect(await old.line()).toBe('EIO');
    const states = t.emu.devices.list().filter((i) => i.name === d.name).map((i) => [i.generation, i.lifecycle]);
    expect(states).toEqual([[1, 'gone'], [2, 'live']]);
    old.send('close');
    expect(await old.line()).toBe('closed');
    await t.waitEvent((e) => e.device === d.name && e.generation === 1 && e.type === 'freed');
    expect(registry.get(`${d.name}#1`)).toMatchObject({ frees: 1, lateReleases: 1 });
    expect(registry.get(`${d.name}#2`)).toMatchObject({ frees: 0, opens: 1, releases: 1 });
    expect(t.emu.devices.get(d.name)?.generation).toBe(2);
  });

  it('gives name%d the lowest free number', async () => {
    const a = await t.emu.devices.plug({ model: 'probe', name: 'pn%d' });
    const b = await t.emu.devices.plug({ model: 'probe', name: 'pn%d' });
    expect([a.name, b.name]).toEqual(['pn0', 'pn1']);
    await t.emu.devices.unplug('pn0');
    const c = await t.emu.devices.plug({ model: 'probe', name: 'pn%d' });
    expect(c.name).toBe('pn0');
    expect((await run('ls', [t.path('dev')])).stdout.split('\n')).toEqual(expect.arrayContaining(['pn0', 'pn1']));
  });
});

describe('races', () => {
  const ROUNDS = 6;
  it('an open racing unplug either opens the live device or fails ENOENT/ENODEV, never hangs', async () => {
    const outcomes = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      const d = await plugProbe();
      // Four threads open and close in a loop until an open fails; the
      // unplug lands at a different point of their loops each round.
      const openers = pythonInteractive(
        `import os, sys, errno, threading
out = []
def loop():
    for _ in range(1000000):
        try:
            os.close(os.open(sys.argv[1], os.O_RDWR))
        except OSError as e:
            out.append(errno.errorcode[e.errno]); return
threads = [threading.Thread(target=loop) for _ in range(4)]
for th in threads: th.start()
print('running')
for th in threads: th.join()
print(' '.join(out))`,
        [d.path],
      );
      expect(await openers.line()).toBe('running');
      await new Promise((r) => setTimeout(r, round * 5)); // where in the loops the unplug lands, not a wait
      await t.emu.devices.unplug(d.name);
      for (const e of (await openers.line()).split(' ')) outcomes.set(e, (outcomes.get(e) ?? 0) + 1);
      expect(await openers.exited).toEqual({ code: 0, signal: null });
      await t.waitEvent((e) => e.device === d.name && e.type === 'freed');
      const s = d.stats();
      expect(s.opens).toBe(s.releases + s.lateReleases);
    }
    for (const k of outcomes.keys()) expect(['ENOENT', 'ENODEV']).toContain(k);
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(4 * ROUNDS);
  }, 120_000); // a python start-up per round, which a loaded machine can make slow
});
