/**
 * `cdevemu run --preset tcmu` whose program floods the emulated TCM-USER
 * family with 10,000 malformed datagrams (8 bytes: shorter than a netlink
 * header), then 10,000 REMOVED_DEVICE_DONE for no device that ask for acks
 * it never reads, then registers as a consumer and answers the
 * REMOVED_DEVICE of an orderly unplug. The run's stderr stays a few lines,
 * without a stack, and counts what it did not log one by one; the consumer
 * is served as if nothing had happened.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cdevemu } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';

const FLOOD = 10_000;

const PROGRAM = `
import os, socket, struct
port, family, _ = map(int, os.environ['CDEVEMU_TCMU_NETLINK'].split(':'))
def nl_socket():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)  # NETLINK_USERSOCK
    s.bind((0, 0))
    return s
def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack('=HH', n, t) + payload + b'\\0' * ((4 - n % 4) % 4)
def message(sock, cmd, attrs):
    body = struct.pack('=BBH', cmd, 2, 0) + attrs
    return struct.pack('=IHHII', 16 + len(body), family, 5, 1, sock.getsockname()[0]) + body  # REQUEST|ACK
flood = nl_socket()
for _ in range(${FLOOD}):
    flood.sendto(b'\\0' * 8, (port, 0))
unread = nl_socket()
done_for_nothing = message(unread, 5, attr(7, struct.pack('=i', 0)) + attr(8, struct.pack('=I', 99)))
for _ in range(${FLOOD}):
    unread.sendto(done_for_nothing, (port, 0))
s = nl_socket()
def request(cmd, attrs):
    s.sendto(message(s, cmd, attrs), (port, 0))
    d = s.recv(65536)
    assert struct.unpack_from('=H', d, 4)[0] == 2 and struct.unpack_from('=i', d, 16)[0] == 0, d  # NLMSG_ERROR 0: acked
request(7, attr(9, b'\\1'))  # SET_FEATURES, SUPP_KERN_CMD_REPLY
fd = os.open(os.environ['CDEVEMU_MOUNT'] + '/dev/uio0', os.O_RDWR)  # what the timeline waits for
d = s.recv(65536)
assert struct.unpack_from('=B', d, 16)[0] == 2, d  # REMOVED_DEVICE
off, device = 20, None
while off < len(d):
    n, t = struct.unpack_from('=HH', d, off)
    if t == 8: device = d[off + 4:off + 8]  # DEVICE_ID
    off += (n + 3) & ~3
os.close(fd)  # as libtcmu's device_close_shm() before its reply
request(5, attr(7, struct.pack('=i', 0)) + attr(8, device))  # REMOVED_DEVICE_DONE, status 0
`;

const SCENARIO = `
name: a flood of malformed netlink datagrams, then a consumer served
preset: tcmu
devices:
  - model: tcmu
    name: uio0
    options: { subtype: qcow, cfgstring: /nonexistent.img, devSize: 1048576, cmdAreaSize: 65536, dataAreaSize: 65536 }
program:
  command: [python3, -u, flood.py]
timeout: 120s
timeline:
  - wait: { opened: uio0, timeout: 100s }
  - unplug: uio0
  - wait: { event: { type: netlink_done, device: uio0, cmd: REMOVED_DEVICE_DONE, status: 0 }, timeout: 10s }
  - expect: { exit: 0, within: 10s }
`;

it('logs a flood of malformed datagrams in a few lines that count it, and still serves the consumer', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(testRoot(), 'flood-'));
  await writeFile(join(dir, 'flood.py'), PROGRAM);
  await writeFile(join(dir, 'flood.yaml'), SCENARIO);
  const r = await cdevemu(['run', join(dir, 'flood.yaml')], { timeoutMs: 150_000 });
  expect(r.code, r.stdout + r.stderr.slice(0, 4000)).toBe(0);
  expect(r.stdout).toMatch(/^PASS /m);

  const lines = r.stderr.split('\n').filter(Boolean);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack: what other processes send is expected input
  const logged = lines.map((l) => JSON.parse(l) as { msg: string; suppressed?: number; reason?: string });
  const about = (kind: string): typeof logged => logged.filter((l) => l.msg.startsWith(kind));
  // Every line is one of three kinds, each rate-limited: at most 10 lines
  // logged one by one per 5 s interval, and an interval with more ends in
  // one line counting them. Bounded by those counts, not by the flood's
  // duration, which a loaded machine stretches.
  const kinds = ['tcmu netlink: malformed datagram dropped', 'tcmu netlink: a *_DONE for a device that waits for nothing', 'tcmu netlink: ack not delivered'];
  expect(kinds.reduce((n, kind) => n + about(kind).length, 0)).toBe(lines.length);
  for (const kind of kinds) {
    const summaries = about(kind).filter((l) => l.suppressed !== undefined).length;
    expect(about(kind).length - summaries, kind).toBeLessThanOrEqual(10 * (summaries + 1));
  }
  // Each logged with its reason, or counted in a summary line.
  const malformed = about('tcmu netlink: malformed datagram dropped');
  expect(malformed.reduce((n, l) => n + (l.suppressed ?? 1), 0)).toBe(FLOOD);
  expect(malformed.find((l) => l.suppressed === undefined)?.reason).toMatch(/\S/);
  expect(malformed.some((l) => /: \d+ more in the last [\d.]+ s, not logged$/.test(l.msg))).toBe(true);
  const forNothing = about('tcmu netlink: a *_DONE for a device that waits for nothing');
  expect(forNothing.reduce((n, l) => n + (l.suppressed ?? 1), 0)).toBe(FLOOD);
  // The acks (ENODEV) fill the unread socket's queue; the rest are not delivered, and counted.
  expect(about('tcmu netlink: ack not delivered').some((l) => (l.suppressed ?? 0) > 0)).toBe(true);
});
