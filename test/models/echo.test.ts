/**
 * The echo model's pipe semantics on a real mount, where its wake-ups follow
 * fs/pipe.c: a read wakes only when it makes room in a full pipe
 * (pipe_read()'s was_full), a write when the pipe was empty or has ever
 * been polled (pipe_write()'s was_empty || poll_usage). Each test is a
 * wake-up that rule must not lose.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { python, pythonInteractive, run, type Interactive } from '../helpers/proc.js';
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

/** Waits until the device has `count` calls of `op` in flight: their clients are blocked in them. */
const blockedIn = (inst: { inFlight: { op: string }[] }, op: string, count = 1): Promise<void> =>
  until(() => inst.inFlight.filter((h) => h.op === op).length >= count, 10_000, `${count} ${op} blocked on the device`);

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

  it('an in-flight read names the thread blocked in it, not the thread that opened the file', async () => {
    const d = await plug(8);
    const reader = client(
      `import os,sys,threading
box = {}
def opener(): box['fd'] = os.open(sys.argv[1], os.O_RDONLY); box['tid'] = threading.get_native_id()
t = threading.Thread(target=opener); t.start(); t.join()
print(os.getpid(), box['tid'])
print(len(os.read(box['fd'], 1)))`,
      [d.path],
    );
    const [pid, opener] = (await reader.line()).split(' ').map(Number) as [number, number];
    await blockedIn(d.inst, 'read');
    expect(opener).not.toBe(pid);
    expect(d.inst.holders.map((h) => h.pid)).toEqual([opener]);
    expect(d.inst.inFlight.map(({ op, pid, comm }) => ({ op, pid, comm }))).toEqual([{ op: 'read', pid, comm: 'python3' }]);
    await run('sh', ['-c', `printf x > ${d.path}`]);
    expect(await reader.line()).toBe('1');
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

  it("keeps a blocked writer's data intact while other requests are served, then reads into its buffer again", async () => {
    // A WRITE whose handler waits holds the buffer its request was read
    // into (the data is a view of it), so the channel reads the next
    // requests elsewhere; once the write is done the buffer is given back
    // for reuse (src/fuse/channel.ts). Data overwritten before then, or a
    // buffer never given back, fails this. Two devices: FUSE lets one
    // write at a time into an inode (fuse_direct_write_iter takes the
    // inode lock), so a second writer of the same one would wait in the kernel.
    const pipes = [await plug(4), await plug(4)];
    const fill = (path: string) => python('import os,sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\nos.write(fd, b"0000")', [path]);
    const writeAll = `import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY)
data = sys.argv[2].encode() * 8
while data:
    data = data[os.write(fd, data):]`;
    const readAll = (path: string) =>
      python('import os,sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nout = b""\nwhile len(out) < 12: out += os.read(fd, 64)\nprint(out.decode())', [path]);
    /** A writer blocked on each full pipe, other clients' requests served meanwhile, then everything read. */
    const round = async (marks: readonly string[]): Promise<void> => {
      for (const p of pipes) await fill(p.path);
      const writers = pipes.map((p, i) => client(writeAll, [p.path, marks[i]!]));
      for (const p of pipes) await blockedIn(p.inst, 'write');
      for (let i = 0; i < 3; i++) expect((await run('stat', ['-c', '%s', pipes[0]!.path])).code).toBe(0);
      const outs = await Promise.all(pipes.map((p) => readAll(p.path)));
      for (const w of writers) expect((await w.exited).code).toBe(0);
      expect(outs.map((o) => o.stdout)).toEqual(marks.map((m) => `0000${m.repeat(8)}\n`));
    };
    await round(['1', '2']);
    const buffers = t.emu.server.channelStats.readBuffers;
    await round(['3', '4']);
    // The second round's blocked writes were read into the buffers the first round's gave back.
    expect(t.emu.server.channelStats.readBuffers).toBe(buffers);
  });
});
