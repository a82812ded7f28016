/**
 * NetlinkSocket (src/netlink/socket.ts) on real NETLINK_USERSOCK sockets:
 * datagrams sent to its port reach onDatagram whole and in order, with no
 * thread reading, also when many of them raised a single signal, and a
 * closed socket's port refuses.
 */
import { expect, it } from 'vitest';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { NETLINK_USERSOCK } from '../../src/sys/ffi.js';
import { python } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';

it('delivers a burst of datagrams whole and in order, then refuses once closed', async () => {
  const COUNT = 200;
  const got: Buffer[] = [];
  const ports = new Set<number>();
  let all!: () => void;
  const done = new Promise<void>((r) => (all = r));
  const errors: string[] = [];
  const rx = new NetlinkSocket({
    protocol: NETLINK_USERSOCK,
    onDatagram: (d, port) => {
      ports.add(port);
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
    expect([...ports]).toEqual([tx.port]); // the sender's real port, from recvfrom()
    expect(full).toBeGreaterThan(0); // the queue did fill: reading kept up only through the signals
  } finally {
    await rx.close();
  }
  expect(() => tx.send(rx.port, Buffer.alloc(16))).toThrow(/ECONNREFUSED/);
  await tx.close();
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
