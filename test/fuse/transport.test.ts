/**
 * The transport and node tree on a real FUSE mount, driven by real client
 * processes (dd, head, sh, python3, a C program). Device behaviour comes
 * from the small handlers in test/fixtures/devices.ts.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLLIN } from '../../src/devio.js';
import { abortConnection, findMount } from '../../src/fuse/mount.js';
import { cClient } from '../helpers/cc.js';
import { mountDeviceFs, type TestMount } from '../helpers/mount.js';
import { Interactive, python, pythonInteractive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import {
  brokenDevice,
  EchoDevice,
  pidDevice,
  registerDevice,
  REG_ARG,
  REG_GET,
  REG_SET,
  REG_XOR,
  zeroDevice,
} from '../fixtures/devices.js';

let m: TestMount;
let seq = 0;
/** Adds a fresh echo device so tests do not share state. */
function newEcho(): { dev: EchoDevice; path: string } {
  const dev = new EchoDevice();
  const name = `dev/echo${seq++}`;
  m.fs.tree.addDevice(name, dev);
  return { dev, path: m.path(name) };
}

beforeAll(async () => {
  m = await mountDeviceFs((fs) => {
    fs.tree.mkdirp('dev');
    fs.tree.addDevice('dev/zero', zeroDevice());
    fs.tree.addDevice('dev/pid', pidDevice());
    fs.tree.addDevice('dev/broken', brokenDevice());
    fs.tree.addAttribute('sys/class/misc/zero/name', { show: () => 'zero\n' });
  });
});
afterAll(() => m.close());

describe('reads and the node tree', () => {
  it('dd and head read zeros', async () => {
    const dd = await run('dd', [`if=${m.path('dev/zero')}`, 'of=/dev/null', 'bs=64k', 'count=64']);
    expect(dd.code).toBe(0);
    expect(dd.stderr).toMatch(/^64\+0 records in/m);
    expect(dd.stderr).toMatch(/4194304 bytes/);
    const sum = await run('sh', ['-c', `head -c 3000000 ${m.path('dev/zero')} | sha256sum`]);
    expect(sum.stdout.split(' ')[0]).toBe(createHash('sha256').update(Buffer.alloc(3_000_000)).digest('hex'));
  });

  it('lists directories and serves read-only attributes', async () => {
    const ls = await run('ls', [m.path('dev')]);
    expect(ls.stdout.split('\n')).toEqual(expect.arrayContaining(['zero', 'pid', 'broken']));
    const cat = await run('cat', [m.path('sys/class/misc/zero/name')]);
    expect(cat.stdout).toBe('zero\n');
    const w = await run('sh', ['-c', `echo x > ${m.path('sys/class/misc/zero/name')}`]);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/Permission denied/);
  });

  it('presents device nodes as regular files and honours chmod', async () => {
    const st = await run('stat', ['-c', '%F %a', m.path('dev/zero')]);
    expect(st.stdout.trim()).toBe('regular empty file 666');
    const { path } = newEcho();
    expect((await run('chmod', ['600', path])).code).toBe(0);
    expect((await run('stat', ['-c', '%a', path])).stdout.trim()).toBe('600');
  });

  it('refuses to create files (ENOSYS), never crashes', async () => {
    const t = await run('touch', [m.path('dev/newfile')]);
    expect(t.code).not.toBe(0);
    const z = await run('head', ['-c', '4', m.path('dev/zero')]);
    expect(z.stdout).toBe('\0\0\0\0');
  });
});

describe('blocking, poll and nonblocking I/O', () => {
  it('wakes a reader blocked in read() when another process writes', async () => {
    const { dev, path } = newEcho();
    const reader = pythonInteractive(
      `import os,sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print("ready")
print("got", os.read(fd, 100).decode())`,
      [path],
    );
    expect(await reader.line()).toBe('ready');
    await until(() => dev.calls.reads === 1, 10_000, 'the read at the handler');
    const w = await run('sh', ['-c', `printf hello > ${path}`]);
    expect(w.code).toBe(0);
    expect(await reader.line()).toBe('got hello');
  });

  // Each waits up to 10 s for POLLIN; data arrives once the poller has
  // registered and gone to sleep. A spinning poll would show up as many POLL
  // requests at the handler.
  const waiters: Record<string, string> = {
    poll: `p = select.poll(); p.register(fd, select.POLLIN); ev = p.poll(10000); mask = ev[0][1] if ev else 0`,
    select: `r, _, _ = select.select([fd], [], [], 10); mask = select.POLLIN if r else 0`,
    epoll: `e = select.epoll(); e.register(fd, select.EPOLLIN); ev = e.poll(10); mask = ev[0][1] if ev else 0`,
  };
  for (const [name, wait] of Object.entries(waiters)) {
    it(`${name}() sleeps until data arrives and is woken by FUSE_NOTIFY_POLL`, async () => {
      const { dev, path } = newEcho();
      const p = pythonInteractive(
        `import os,sys,select
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
print("ready")
${wait}
print(mask)`,
        [path],
      );
      expect(await p.line()).toBe('ready');
      await until(() => dev.calls.polls >= 1, 10_000, 'the poller registered');
      // Data arrives only now, so POLLIN can only come from the wakeup (the
      // poll's own timeout is 10 s).
      await run('sh', ['-c', `printf x > ${path}`]);
      expect(Number(await p.line()) & POLLIN).toBe(POLLIN);
      // One POLL to register, one after the wakeup (and the writer's
      // open/close in between); a busy loop would be thousands.
      expect(dev.calls.polls).toBeLessThanOrEqual(6);
    });
  }

  /** Opens PATH (then runs `setup`), reads once, prints the errno or "no error". */
  const readOnce = (path: string, openFlags: string, setup = '') =>
    python(
      `import os,sys,fcntl,errno
fd = os.open(sys.argv[1], ${openFlags})
${setup}
try:
    os.read(fd, 10); print("no error")
except OSError as e:
    print(errno.errorcode[e.errno])`,
      [path],
    );

  it('answers EAGAIN to an O_NONBLOCK read of an empty device', async () => {
    const { dev, path } = newEcho();
    expect((await readOnce(path, 'os.O_RDONLY | os.O_NONBLOCK')).stdout.trim()).toBe('EAGAIN');
    expect(dev.calls.reads).toBe(1);
  });

  it('sees O_NONBLOCK set by fcntl after open (flags travel with each READ)', async () => {
    const { path } = newEcho();
    const setNonblock = 'fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)';
    expect((await readOnce(path, 'os.O_RDONLY', setNonblock)).stdout.trim()).toBe('EAGAIN');
  });

  it('interrupts a blocked read with EINTR when the client gets SIGALRM', async () => {
    const { dev, path } = newEcho();
    const reader = new Interactive(await cClient('blocked_read'), [path]);
    expect(await reader.line()).toBe('ready');
    await until(() => dev.calls.reads === 1, 10_000, 'the read at the handler');
    reader.child.kill('SIGALRM');
    expect(await reader.line()).toBe('errno EINTR');
    expect((await reader.exited).code).toBe(0);
    await until(() => m.server.session.inFlight === 0, 10_000, 'no request in flight');
  });

  it('lets a client killed with SIGKILL mid-read go, and keeps serving', async () => {
    const { dev, path } = newEcho();
    const reader = pythonInteractive(
      `import os,sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print("ready")
os.read(fd, 10)`,
      [path],
    );
    expect(await reader.line()).toBe('ready');
    await until(() => dev.calls.reads === 1, 10_000, 'the read at the handler');
    reader.kill('SIGKILL');
    expect((await reader.exited).signal).toBe('SIGKILL');
    // The kernel interrupts the killed task's request; nothing stays in flight.
    await until(() => m.server.session.inFlight === 0, 10_000, 'no request in flight');
    expect((await run('head', ['-c', '3', m.path('dev/zero')])).stdout).toBe('\0\0\0');
  });
});

describe('ioctl', () => {
  it('round-trips bytes both ways through an _IOWR ioctl, and _IOR/_IOW/_IO', async () => {
    const dev = registerDevice();
    m.fs.tree.addDevice('dev/reg', dev);
    const r = await python(
      `import os,sys,fcntl,struct
fd = os.open(sys.argv[1], os.O_RDWR)
buf = bytearray(range(16))
ret = fcntl.ioctl(fd, ${REG_XOR}, buf, True)
print(ret, buf.hex())
fcntl.ioctl(fd, ${REG_SET}, struct.pack("<Q", 0x1122334455667788))
print(hex(struct.unpack("<Q", fcntl.ioctl(fd, ${REG_GET}, bytes(8)))[0]))
print(fcntl.ioctl(fd, ${REG_ARG}, 41))`,
      [m.path('dev/reg')],
    );
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`16 ${Buffer.from([...Array(16).keys()].map((b) => b ^ 0xff)).toString('hex')}`);
    expect(lines[1]).toBe('0x1122334455667788');
    expect(dev.reg).toBe(0x1122334455667788n);
    expect(lines[2]).toBe('42');
  });

  it('answers ENOTTY to a non-encoded ioctl (TCGETS) and on a device without ioctl', async () => {
    const r = await python(
      `import os,sys,fcntl,errno
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDWR)
    try:
        fcntl.ioctl(fd, 0x5401, bytes(60)); print("no error")
    except OSError as e:
        print(errno.errorcode[e.errno])`,
      [m.path('dev/reg'), m.path('dev/zero')],
    );
    expect(r.stdout.trim().split('\n')).toEqual(['ENOTTY', 'ENOTTY']);
  });
});

describe('nodes added and removed at run time', () => {
  it('makes a removed node fail stat/open with ENOENT at once, while an open fd keeps working', async () => {
    const { dev, path } = newEcho();
    const name = path.slice(m.dir.length + 1);
    const p = pythonInteractive(
      `import os,sys,errno
path = sys.argv[1]
fd = os.open(path, os.O_RDWR)
os.stat(path)
print("open")
sys.stdin.readline()
for f in (os.stat, lambda p: os.open(p, os.O_RDONLY)):
    try:
        f(path); print("ok")
    except OSError as e:
        print(errno.errorcode[e.errno])
os.write(fd, b"still")
print(os.read(fd, 10).decode())`,
      [path],
    );
    expect(await p.line()).toBe('open');
    await m.fs.tree.remove(name);
    p.send('go');
    expect(await p.line()).toBe('ENOENT');
    expect(await p.line()).toBe('ENOENT');
    expect(await p.line()).toBe('still');
    await p.exited;
    // RELEASE is sent asynchronously, after the process is gone.
    await until(() => dev.calls.releases === 1, 5000, 'the release of the open fd');
  });

  it('shows a node added after the mount to the next lookup', async () => {
    const before = await run('stat', [m.path('dev/late')]);
    expect(before.code).not.toBe(0);
    m.fs.tree.addDevice('dev/late', zeroDevice());
    const after = await run('head', ['-c', '2', m.path('dev/late')]);
    expect(after.stdout).toBe('\0\0');
  });

  it('prunes the implicit directories a removed attribute leaves empty', async () => {
    m.fs.tree.addAttribute('sys/class/test/t0/name', { show: () => 't0\n' });
    expect((await run('cat', [m.path('sys/class/test/t0/name')])).stdout).toBe('t0\n');
    await m.fs.tree.remove('sys/class/test/t0/name');
    expect((await run('ls', [m.path('sys/class')])).stdout.split('\n')).not.toContain('test');
    expect((await run('ls', [m.path('sys/class')])).stdout.split('\n')).toContain('misc');
  });
});

describe('concurrency and bad handlers', () => {
  it('gives 64 concurrent client processes their own answers', async () => {
    const clients = Array.from({ length: 64 }, () =>
      run('sh', ['-c', `echo $$; exec head -c 4000 ${m.path('dev/pid')}`], { timeoutMs: 30_000 }),
    );
    const results = await Promise.all(clients);
    for (const r of results) {
      expect(r.code).toBe(0);
      const [pid, ...rest] = r.stdout.split('\n').filter((l) => l !== '');
      // head's read sizes cut the last line short; every full line is our pid.
      const full = rest.slice(0, -1);
      expect(full.length).toBeGreaterThan(100);
      expect(new Set(full)).toEqual(new Set([pid]));
    }
  });

  it('keeps the data of a write whose handler went async while later writes reuse the read buffer', async () => {
    // The handler holds its 256 KiB payload (a view of the channel's read
    // buffer) across an await; meanwhile 64 writes of zeros are read. The
    // held write's memory must have stayed its own.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held: Buffer | null = null;
    let heldHash = '';
    let sunk = 0;
    m.fs.tree.addDevice('dev/held', {
      open: () => ({
        write: async (d) => {
          held = d;
          await released;
          heldHash = createHash('sha256').update(d).digest('hex');
          return d.length;
        },
        release() {},
      }),
    });
    m.fs.tree.addDevice('dev/sink', {
      open: () => ({
        write: (d) => {
          sunk += d.length;
          return d.length;
        },
        release() {},
      }),
    });
    const pattern = Buffer.alloc(256 * 1024);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + 3) & 0xff;
    const writer = run('sh', [
      '-c',
      `python3 -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) & 255 for i in range(262144)))" | dd of=${m.path('dev/held')} bs=256k iflag=fullblock count=1 2>/dev/null`,
    ]);
    await until(() => held !== null, 20_000, 'the held write to reach its handler');
    const zeros = await run('dd', [`if=/dev/zero`, `of=${m.path('dev/sink')}`, 'bs=256k', 'count=64']);
    expect(zeros.stderr).toMatch(/^64\+0 records out/m);
    expect(sunk).toBe(64 * 256 * 1024);
    release();
    expect((await writer).code).toBe(0);
    expect(heldHash).toBe(createHash('sha256').update(pattern).digest('hex'));
  });

  it('answers EIO when a handler throws, and keeps serving', async () => {
    const r = await run('cat', [m.path('dev/broken')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Input\/output error/);
    expect((await run('head', ['-c', '1', m.path('dev/zero')])).stdout).toBe('\0');
  });
});

describe('mount lifecycle', () => {
  it('recovers a mountpoint whose connection died (ENOTCONN) and unmounts cleanly', async (ctx) => {
    const first = await mountDeviceFs((fs) => fs.tree.addDevice('zero', zeroDevice()));
    const dir = first.dir;
    const entry = await findMount(dir);
    expect(entry?.fstype).toBe('fuse.cdevemu');
    // What a daemon killed with SIGKILL leaves: an aborted connection, still mounted.
    if (!(await abortConnection(entry!.dev))) {
      // fusectl is not mounted (systemd mounts it at boot; a container may
      // not), and only root may mount it. An ordinary user's daemon
      // recovering from SIGKILL is test/daemon/user-mount.test.ts's.
      expect(process.getuid?.()).not.toBe(0);
      await first.close();
      return ctx.skip();
    }
    await first.server.session.ended;
    const stale = await run('stat', [dir]);
    expect(stale.stderr).toMatch(/Transport endpoint is not connected/);
    await first.close();

    const { FuseServer } = await import('../../src/fuse/server.js');
    const { DeviceFs } = await import('../../src/fs/devicefs.js');
    const fs2 = new DeviceFs(m.log);
    fs2.tree.addDevice('zero', zeroDevice());
    const second = await FuseServer.mount(fs2, { mountpoint: dir, logger: m.log });
    try {
      expect((await run('head', ['-c', '2', `${dir}/zero`])).stdout).toBe('\0\0');
    } finally {
      await second.close();
    }
    expect(await findMount(dir)).toBeNull();
  });
});
