/**
 * The echo model's pipe semantics on a real mount, where its wake-ups follow
 * fs/pipe.c: a read wakes only when it makes room in a full pipe
 * (pipe_read()'s was_full), a write when the pipe was empty or has ever
 * been polled (pipe_write()'s was_empty || poll_usage). Each test is a
 * wake-up that rule must not lose.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { python, pythonInteractive, type Interactive } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';

let t: TestEmulator;
const clients: Interactive[] = [];
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
});
afterAll(async () => {
  for (const c of clients) c.kill();
  await t.emu.stop({ releaseTimeoutMs: 0 });
});

let seq = 0;
const plug = async (capacity: number) => {
  const inst = await t.emu.devices.plug({ model: 'echo', name: `echo${seq++}`, options: { capacity } });
  return { inst, path: t.path(`dev/${inst.name}`) };
};

const client = (source: string, args: string[]): Interactive => {
  const c = pythonInteractive(source, args);
  clients.push(c);
  return c;
};

/** Waits until the device has a call of `op` in flight: the client is blocked in it. */
const blockedIn = (inst: { inFlight: { op: string }[] }, op: string): Promise<void> =>
  until(() => inst.inFlight.some((h) => h.op === op), 10_000, `a ${op} blocked on the device`);

describe('echo', () => {
  it('a writer blocked on a full pipe is woken by the read that makes room, and writes what fits', async () => {
    const d = await plug(8);
    const writer = client(
      `import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY)
print(os.write(fd, b"12345678"))
print(os.write(fd, b"abcdefgh"))`,
      [d.path],
    );
    expect(await writer.line()).toBe('8');
    await blockedIn(d.inst, 'write');
    const read = (n: number) => python(`import os,sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint(os.read(fd, ${n}).decode())`, [d.path]);
    expect((await read(3)).stdout).toBe('123\n');
    expect(await writer.line()).toBe('3');
    expect((await writer.exited).code).toBe(0);
    expect((await read(100)).stdout).toBe('45678abc\n');
  });

  it('poll for POLLOUT on a full pipe wakes on a read', async () => {
    const d = await plug(4);
    const poller = client(
      `import os,sys,select
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"full")
p = select.poll(); p.register(fd, select.POLLOUT)
print("ready" if not p.poll(0) else "writable")
print(p.poll(-1)[0][1] & select.POLLOUT)`,
      [d.path],
    );
    expect(await poller.line()).toBe('ready');
    await until(() => d.inst.counters.polls >= 2, 10_000, 'the poller waiting');
    await python('import os,sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nos.read(fd, 1)', [d.path]);
    expect(await poller.line()).toBe('4');
  });

  it('a reader blocked on an empty pipe is woken by a write', async () => {
    const d = await plug(64);
    const reader = client('import os,sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint(os.read(fd, 64).decode())', [d.path]);
    await blockedIn(d.inst, 'read');
    await python('import os,sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\nos.write(fd, b"hello")', [d.path]);
    expect(await reader.line()).toBe('hello');
  });

  it('edge-triggered epoll gets an event for every write, the pipe empty or not', async () => {
    const d = await plug(64);
    const out = await python(
      `import os,sys,select
r = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
w = os.open(sys.argv[1], os.O_WRONLY)
ep = select.epoll(); ep.register(r, select.EPOLLIN | select.EPOLLET)
for chunk in (b"a", b"b", b"c"):
    os.write(w, chunk)
    print(len(ep.poll(10)))
print(os.read(r, 64).decode())`,
      [d.path],
    );
    expect(out.stdout).toBe('1\n1\n1\nabc\n');
  });
});
