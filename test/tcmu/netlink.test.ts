/**
 * The emulated TCM-USER family (src/tcmu/netlink.ts) against a consumer
 * written here in Python on a real NETLINK_USERSOCK socket, so every path
 * is driven without tcmu-runner: SET_FEATURES acked, bad requests answered
 * with the kernel's errnos, ADDED_DEVICE on plug answered by DONE, no
 * message for a surprise unplug, a bounded wait for a DONE that never
 * comes, and a consumer that went away dropped.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/api.js';
import { attachTcmu, describeTcmu, quiesceTcmu } from '../../src/tcmu/device.js';
import { TcmuCmd } from '../../src/tcmu/family.js';
import { TcmuNetlink } from '../../src/tcmu/netlink.js';
import { testLogger, testRoot } from '../helpers/mount.js';
import { pythonInteractive, run, type Interactive } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import type { TcmuState } from '../../src/models/tcmu/model.js';

// A libtcmu stand-in: commands on stdin, one JSON line per answer.
const CONSUMER = `
import json, socket, struct, sys
port, family = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)  # NETLINK_USERSOCK
s.bind((0, 0))
me = s.getsockname()[0]
seq = 0
def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack('=HH', n, t) + payload + b'\\0' * ((4 - n % 4) % 4)
def send(cmd, attrs=b'', pid=None):
    global seq
    seq += 1
    body = struct.pack('=BBH', cmd, 2, 0) + attrs
    s.sendto(struct.pack('=IHHII', 16 + len(body), family, 5, seq, me if pid is None else pid) + body, (port, 0))  # REQUEST|ACK
def recv(ms):
    s.settimeout(ms / 1000)
    try:
        d = s.recv(65536)
    except socket.timeout:
        return {'none': True}
    ln, typ, flags, sq, pid = struct.unpack_from('=IHHII', d)
    if typ == 2:
        return {'ack': struct.unpack_from('=i', d, 16)[0], 'seq': struct.unpack_from('=I', d, 28)[0]}
    cmd, ver = struct.unpack_from('=BB', d, 16)
    attrs, off = {}, 20
    while off + 4 <= ln:
        n, t = struct.unpack_from('=HH', d, off)
        attrs[t] = d[off + 4:off + n]
        off += (n + 3) & ~3
    r = {'cmd': cmd, 'version': ver, 'flags': flags, 'pid': pid,
         'device': attrs[1].rstrip(b'\\0').decode(), 'minor': struct.unpack('=I', attrs[2])[0],
         'id': struct.unpack('=I', attrs[8])[0]}
    if 4 in attrs: r['devcfg'] = attrs[4].rstrip(b'\\0').decode()
    if 5 in attrs: r['devsize'] = struct.unpack('=Q', attrs[5])[0]
    if 6 in attrs: r['writecache'] = attrs[6][0]
    return r
print(json.dumps({'port': me}))
for line in sys.stdin:
    w = line.split()
    if w[0] == 'features': send(7, attr(9, b'\\1'))
    elif w[0] == 'features-as': send(7, attr(9, b'\\1'), int(w[1]))  # a wrong nlmsg_pid
    elif w[0] == 'done': send(int(w[1]), attr(7, struct.pack('=i', int(w[3]))) + attr(8, struct.pack('=I', int(w[2]))))
    elif w[0] == 'bare': send(int(w[1]))
    elif w[0] == 'recv': print(json.dumps(recv(int(w[1]))))
    elif w[0] == 'exit': break
`;

const RING = { cmdAreaSize: 65536, dataAreaSize: 65536, devSize: 1 << 20, subtype: 'qcow', cfgstring: '/nonexistent.img' };

let emu: EmulatorHandle;
let nl: TcmuNetlink;
let py: Interactive;

async function ask(cmd: string, ms = 5000): Promise<Record<string, unknown>> {
  py.send(cmd === 'recv' ? `recv ${ms}` : cmd);
  if (cmd !== 'recv') py.send(`recv ${ms}`);
  return JSON.parse(await py.line(ms + 5000)) as Record<string, unknown>;
}

/** Plugs a tcmu device, the consumer answering its ADDED_DEVICE with DONE 0; returns the ADDED message. */
async function plugAnswered(): Promise<Record<string, unknown>> {
  const plugging = emu.plug('tcmu', 'uio%d', RING);
  const added = await ask('recv');
  await ask(`done ${TcmuCmd.ADDED_DEVICE_DONE} ${String(added.id)} 0`);
  await plugging;
  return added;
}

beforeAll(async () => {
  emu = await startEmulator({ mountpoint: await mkdtemp(join(testRoot(), 'tcmu-nl-')), logger: testLogger() });
  nl = new TcmuNetlink({ devices: emu.emulator.devices, logger: testLogger(), describe: describeTcmu, quiesce: quiesceTcmu, attach: attachTcmu, replyTimeoutMs: 300 });
  py = pythonInteractive(CONSUMER, [String(nl.port), String(nl.familyId)]);
  await py.line();
});

afterAll(async () => {
  py?.kill();
  await nl?.close();
  await emu?.stop({ releaseTimeoutMs: 0 });
});

describe('the TCM-USER family', () => {
  it('acks SET_FEATURES and registers the sender; answers bad requests with the kernel errnos', async () => {
    expect(await ask('features')).toEqual({ ack: 0, seq: 1 });
    expect(nl.consumerPorts).toHaveLength(1);
    // tcmu_genl_cmd_done(): no event pending for that device id.
    expect(await ask(`done ${TcmuCmd.REMOVED_DEVICE_DONE} 99 0`)).toMatchObject({ ack: -19 });
    // No CMD_STATUS / DEVICE_ID.
    expect(await ask(`bare ${TcmuCmd.ADDED_DEVICE_DONE}`)).toMatchObject({ ack: -22 });
    // A command the family does not take.
    expect(await ask('bare 42')).toMatchObject({ ack: -95 });
    // Known and answered by its real port, whatever nlmsg_pid it writes (NETLINK_CB(skb).portid).
    const real = nl.consumerPorts[0];
    expect(await ask('features-as 4242')).toMatchObject({ ack: 0 });
    expect(nl.consumerPorts).toEqual([real]);
  });

  it('announces a plugged device and completes the plug on ADDED_DEVICE_DONE', async () => {
    const plugging = emu.plug('tcmu', 'uio%d', RING);
    const ev = await ask('recv');
    expect(ev).toMatchObject({ cmd: TcmuCmd.ADDED_DEVICE, version: 2, flags: 0, pid: 0, minor: 0, device: 'tcm-user/0/cdevemu/qcow//nonexistent.img' });
    expect(await ask(`done ${TcmuCmd.ADDED_DEVICE_DONE} ${String(ev.id)} 0`)).toMatchObject({ ack: 0 });
    await plugging;
    expect(emu.events({ device: 'uio0', type: 'netlink_done' })[0]).toMatchObject({ cmd: 'ADDED_DEVICE_DONE', status: 0, deviceId: ev.id });
  });

  it('sends nothing for a surprise unplug', async () => {
    await emu.unplug('uio0', { mode: 'surprise' });
    expect(await ask('recv', 200)).toEqual({ none: true });
    expect(emu.events({ device: 'uio0', type: 'netlink_sent' })).toHaveLength(1); // the ADDED only
  });

  it('bounds the wait for a REMOVED_DEVICE_DONE that never comes, then unplugs', async () => {
    const added = await plugAnswered();
    const unplugging = emu.unplug('uio0');
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.REMOVED_DEVICE, id: added.id });
    const report = await unplugging;
    expect(report.device).toBe('uio0');
    const types = emu.events({ device: 'uio0', generation: 2 }).map((e) => e.type);
    expect(types.indexOf('netlink_timeout')).toBeGreaterThan(types.indexOf('netlink_sent'));
    expect(types.indexOf('unplug_started')).toBeGreaterThan(types.indexOf('netlink_timeout'));
  });

  it('asks the consumer with RECONFIG_DEVICE before a configfs write of dev_config or dev_size takes effect, and fails the write with its status', async () => {
    const added = await plugAnswered();
    const attrib = emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib');
    const write = (file: string, text: string) => run('bash', ['-c', 'printf %s "$1" > "$2"', 'bash', text, `${attrib}/${file}`]);

    // Accepted: the string, then the uio name (tcmu_update_uio_info).
    const accepted = write('dev_config', 'qcow//new.img');
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.RECONFIG_DEVICE, id: added.id, devcfg: 'qcow//new.img', device: 'tcm-user/0/cdevemu/qcow//nonexistent.img' });
    expect(await ask(`done ${TcmuCmd.RECONFIG_DEVICE_DONE} ${String(added.id)} 0`)).toMatchObject({ ack: 0 });
    expect((await accepted).code).toBe(0);
    expect((await run('cat', [`${attrib}/dev_config`, emu.path('sys/class/uio/uio0/name')])).stdout).toBe('qcow//new.img\ntcm-user/0/cdevemu/qcow//new.img\n');
    // The consumer announced SUPP_KERN_CMD_REPLY: events wait for its *_DONE.
    expect((await run('cat', [`${attrib}/nl_reply_supported`])).stdout).toBe('1\n');

    // Refused with -EOPNOTSUPP: the write fails so, and nothing changes.
    const refused = write('dev_size', '2097152');
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.RECONFIG_DEVICE, devsize: 2097152 });
    await ask(`done ${TcmuCmd.RECONFIG_DEVICE_DONE} ${String(added.id)} -95`);
    expect((await refused).stderr).toMatch(/Operation not supported/);
    expect((await run('cat', [`${attrib}/dev_size`])).stdout).toBe(`${RING.devSize}\n`);

    const unplugging = emu.unplug('uio0');
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.REMOVED_DEVICE });
    await ask(`done ${TcmuCmd.REMOVED_DEVICE_DONE} ${String(added.id)} 0`);
    await unplugging;
  });

  it('drops a consumer that went away', async () => {
    py.send('exit');
    await py.exited;
    await emu.plug('tcmu', 'uio%d', RING);
    expect(nl.consumerPorts).toEqual([]);
    expect(emu.events({ device: 'uio0', generation: 4, type: 'netlink_sent' })).toEqual([]);
  });

  it('without a consumer, unplugs without waiting for commands nobody can complete', async () => {
    // No listener: a reconfiguration fails ESRCH (genlmsg_multicast_allns).
    const nobody = await run('bash', ['-c', `printf qcow//x.img > ${emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib/dev_config')}`]);
    expect(nobody.stderr).toMatch(/No such process/);
    expect((await run('cat', [emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib/nl_reply_supported')])).stdout).toBe('0\n');
    // A TUR in the ring of generation 4, with no consumer to complete it.
    const held = emu.action('uio0', 'submit', { op: 'tur' }).catch((e: Error) => e);
    await until(() => (emu.emulator.devices.get('uio0')!.state as TcmuState).ring.stats.inflight === 1, 5000, 'TUR in the ring');
    await emu.unplug('uio0');
    const types = emu.events({ device: 'uio0', generation: 4 }).map((e) => e.type);
    expect(types).not.toContain('tcmu_quiesced');
    expect(types).toContain('tcmu_removed');
    expect(await held).toMatchObject({ code: 'EIO' });
  });
});
