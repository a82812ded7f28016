/**
 * NetlinkSocket (src/netlink/socket.ts) on real NETLINK_USERSOCK sockets:
 * datagrams sent to its port reach onDatagram whole and in order, with no
 * thread reading, each with its sender's port and the credentials the
 * kernel recorded, also when many of them raised a single signal, and a
 * closed socket's port refuses.
 */
import { expect, it } from 'vitest';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { NETLINK_USERSOCK } from '../../src/sys/ffi.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { python, pythonInteractive } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';

it('delivers a burst of datagrams whole and in order, then refuses once closed', async () => {
  const COUNT = 200;
  const got: Buffer[] = [];
  const senders = new Set<string>();
  let all!: () => void;
  const done = new Promise<void>((r) => (all = r));
  const errors: string[] = [];
  const rx = new NetlinkSocket({
    protocol: NETLINK_USERSOCK,
    onDatagram: (d, sender) => {
      senders.add(JSON.stringify(sender));
      got.push(d);
      if (got.length === COUNT) all();
    },
    onError: (c) => errors.push(c),
  });
  const tx = new NetlinkSocket({ protocol: NETLINK_USERSOCK, onDatagram: () => {}, onError: (c) => errors.push(c) });
  try {
    // Sizes from 16 bytes to 16 KiB: one read returns exactly one datagram.
    const sent = Array.from({ length: COUNT }, (_, i) => Buffer.alloc(16 + ((i * 811) % 16_384), i & 0xff));
    // More than the receive queue holds: a full queue answers EAGAIN, and the
    // receiver, woken by SIGIO between our turns, drains it.
    let full = 0;
    for (const d of sent) {
      for (;;) {
        try {
          tx.send(rx.port, d);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          full++;
          await new Promise((r) => setImmediate(r));
        }
      }
    }
    await done;
    expect(got.map((d) => d.length)).toEqual(sent.map((d) => d.length));
    expect(got.every((d, i) => d.equals(sent[i]!))).toBe(true);
    expect(errors).toEqual([]);
    // The sender's real port and its process's credentials (SCM_CREDENTIALS), from recvmsg().
    expect([...senders].map((j) => JSON.parse(j) as unknown)).toEqual([{ port: tx.port, pid: process.pid, uid: process.getuid!(), gid: process.getgid!() }]);
    expect(full).toBeGreaterThan(0); // the queue did fill: reading kept up only through the signals
  } finally {
    await rx.close();
  }
  expect(() => tx.send(rx.port, Buffer.alloc(16))).toThrow(/ECONNREFUSED/);
  await tx.close();
});

it('keeps seeing child processes exit while it is flooded: a datagram costs no signal', async () => {
  // A signal per datagram overflows the pipe in which libuv queues signals
  // for the event loop; a SIGCHLD that meets it full is lost, and the exit
  // of that child is never seen. One child exits in the middle of a flood,
  // while the flooder stays (its own exit would bring a SIGCHLD that reaps both).
  const COUNT = 20_000;
  let got = 0;
  let child: ChildProcess | null = null;
  let childExited = false;
  const errors: string[] = [];
  const rx = new NetlinkSocket({
    protocol: NETLINK_USERSOCK,
    onDatagram: () => {
      // Each datagram costs its receiver some work (the tcmu family reads /proc for its sender).
      const end = performance.now() + 0.05;
      while (performance.now() < end);
      if (++got === COUNT / 4) {
        child = spawn('true', { stdio: 'ignore' });
        child.on('exit', () => (childExited = true));
      }
    },
    onError: (c) => errors.push(c),
  });
  const flooder = pythonInteractive(
    `
import socket, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)
for _ in range(int(sys.argv[2])): s.sendto(b'\\0' * 16, (int(sys.argv[1]), 0))
print('sent')
sys.stdin.read()
`,
    [String(rx.port), String(COUNT)],
  );
  try {
    expect(await flooder.line(120_000)).toBe('sent');
    await until(() => got === COUNT, 30_000, 'every datagram read');
    await until(() => childExited, 10_000, `the exit of the child started during the flood (pid ${String((child as ChildProcess | null)?.pid)})`);
    expect(errors).toEqual([]);
  } finally {
    flooder.kill();
    await rx.close();
  }
});

it('reads every datagram queued behind one signal: SIGIOs sent while the process is stopped merge into one', async () => {
  // A standard signal is pending at most once (kernel/signal.c
  // legacy_queue), and a stopped process takes none: the sender stops this
  // process, sends, and lets it go on, so COUNT datagrams raise one SIGIO.
  // Only reading until EAGAIN (NetlinkSocket.drain) finds the others.
  const COUNT = 20;
  const got: number[] = [];
  const errors: string[] = [];
  const rx = new NetlinkSocket({ protocol: NETLINK_USERSOCK, onDatagram: (d) => got.push(d[0]!), onError: (c) => errors.push(c) });
  try {
    // Few and small: a full queue would block a sender that could not wait for
    // this stopped reader, so the sends are non-blocking and fail instead.
    const sender = await python(
      `import os, signal, socket, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, ${NETLINK_USERSOCK})
s.bind((0, 0))
s.setblocking(False)
os.kill(os.getppid(), signal.SIGSTOP)
try:
    for i in range(${COUNT}): s.sendto(bytes([i]) * 16, (int(sys.argv[1]), 0))
finally:
    os.kill(os.getppid(), signal.SIGCONT)
print("sent")`,
      [String(rx.port)],
    );
    expect(sender.stdout, sender.stderr).toBe('sent\n');
    await until(() => got.length >= COUNT, 10_000, `${COUNT} datagrams read (${got.length} so far)`);
    expect(got).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(errors).toEqual([]);
  } finally {
    await rx.close();
  }
});
