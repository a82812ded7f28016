/**
 * NetlinkSocket (src/netlink/socket.ts) on real NETLINK_USERSOCK sockets:
 * datagrams sent to its port reach onDatagram whole and in order, with no
 * thread reading, and a closed socket's port refuses.
 */
import { expect, it } from 'vitest';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { NETLINK_USERSOCK } from '../../src/sys/ffi.js';

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
