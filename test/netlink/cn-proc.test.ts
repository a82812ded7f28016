/**
 * The process events connector's codec (src/netlink/cn-proc.ts) against
 * the kernel's own layout: the messages are built by a C program with
 * <linux/connector.h> and <linux/cn_proc.h> (test/clients/cn_proc_messages.c),
 * the request to listen compared byte for byte, the events decoded; and
 * a listener (root only) that takes the kernel's events and no one else's.
 */
import { expect, it } from 'vitest';
import { decodeProcEvents, encodeMcastOp, PROC_CN_MCAST_LISTEN, type ProcEvent } from '../../src/netlink/cn-proc.js';
import { ProcEventListener } from '../../src/netlink/proc-events.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { NETLINK_CONNECTOR } from '../../src/sys/ffi.js';
import { runsAsRoot } from '../helpers/as-user.js';
import { cClient } from '../helpers/cc.js';
import { run } from '../helpers/proc.js';

async function messages(): Promise<Buffer[]> {
  const bin = await cClient('cn_proc_messages', ['/usr/include/linux/cn_proc.h', '/usr/include/linux/connector.h']);
  const r = await run(bin, []);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').map((l) => Buffer.from(l, 'hex'));
}

it('encodes the request to listen as the kernel\'s headers lay it out', async () => {
  const [listen] = await messages();
  expect(encodeMcastOp(PROC_CN_MCAST_LISTEN, 123456, 4321).toString('hex')).toBe(listen!.toString('hex'));
});

it('decodes the answer, a fork, an exec, a comm and an exit event', async () => {
  const [, ...events] = await messages();
  expect(events.flatMap((d) => decodeProcEvents(d))).toEqual([
    { kind: 'ack', token: 123456, err: 1 },
    { kind: 'fork', at: 1000n, parentTgid: 11, childPid: 12, childTgid: 13 },
    { kind: 'exec', at: 2000n, pid: 20, tgid: 21 },
    { kind: 'comm', at: 3000n, pid: 30, tgid: 31, comm: 'worker-7' },
    { kind: 'exit', at: 0x123456789an, pid: 40, tgid: 41, status: 11 | 0x80, parentTgid: 43 },
  ]);
  // Several messages in one datagram, as netlink allows, and one of another connector skipped.
  const other = Buffer.from(events[1]!);
  other.writeUInt32LE(2, 16); // cb_id.idx
  expect(decodeProcEvents(Buffer.concat([events[1]!, other, events[4]!])).map((e) => e.kind)).toEqual(['fork', 'exit']);
});

// Only root may listen (src/netlink/proc-events.ts).
it.runIf(runsAsRoot)("takes the kernel's events, not a datagram another process sends to its port", async () => {
  const seen: ProcEvent[] = [];
  let childExited!: () => void;
  const exited = new Promise<void>((r) => (childExited = r));
  const onEvent = (e: ProcEvent): void => {
    seen.push(e);
    if (e.kind === 'exit' && e.parentTgid === process.pid) childExited();
  };
  const l = await ProcEventListener.open({ onEvent, onLost: () => {} });
  if (!(l instanceof ProcEventListener)) throw new Error(l.unavailable);
  const forger = new NetlinkSocket({ protocol: NETLINK_CONNECTOR, onDatagram: () => {}, onError: () => {} });
  try {
    const [, , fork] = await messages(); // parent tgid 11, child 12/13
    forger.send(l.port, fork!);
    const child = await run('true', []);
    expect(child.code).toBe(0);
    // The child's own exit comes after the forged datagram, which was queued first.
    await exited;
    expect(seen.filter((e) => e.kind === 'fork' && e.childTgid === 13 && e.parentTgid === 11)).toEqual([]);
  } finally {
    await forger.close();
    await l.close();
  }
});
