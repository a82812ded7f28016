/**
 * The emulated TCM-USER family (src/tcmu/netlink.ts) against a consumer
 * written here in Python on a real NETLINK_USERSOCK socket, so every path
 * is driven without tcmu-runner: SET_FEATURES acked, bad requests answered
 * with the kernel's errnos, ADDED_DEVICE on plug answered by DONE, no
 * message for a surprise unplug, the kernel's unbounded drain and wait for
 * REMOVED_DEVICE_DONE (and the unplug's own bound on them), and a consumer
 * that went away dropped.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/api.js';
import { attachTcmu, describeTcmu, quiesceTcmu, tcmuDeviceReplies } from '../../src/tcmu/device.js';
import { TcmuCmd } from '../../src/tcmu/family.js';
import { TcmuNetlink } from '../../src/tcmu/netlink.js';
import { publishTcmuModule, TCMU_MODULE_DIR } from '../../src/tcmu/module-params.js';
import { ProgramTree } from '../../src/tcmu/program-tree.js';
import { testLogger, testRoot } from '../helpers/mount.js';
import { run, type Interactive } from '../helpers/proc.js';
import { ask as askOf, tcmuConsumer } from '../helpers/tcmu-consumer.js';
import { until } from '../helpers/wait.js';
import type { TcmuState } from '../../src/models/tcmu/model.js';

const RING = { cmdAreaSize: 65536, dataAreaSize: 65536, devSize: 1 << 20, subtype: 'qcow', cfgstring: '/nonexistent.img' };

let emu: EmulatorHandle;
let nl: TcmuNetlink;
let py: Interactive;
let program: ProgramTree;

const ask = (cmd: string, ms = 5000): Promise<Record<string, unknown>> => askOf(py, cmd, ms);

/** The newest generation of uio0. */
const lastGeneration = (): number => emu.emulator.devices.get('uio0')!.generation;

/** Plugs a tcmu device, the consumer answering its ADDED_DEVICE with DONE 0; returns the ADDED message. */
async function plugAnswered(options: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const plugging = emu.plug('tcmu', 'uio%d', { ...RING, ...options });
  const added = await ask('recv');
  await ask(`done ${TcmuCmd.ADDED_DEVICE_DONE} ${String(added.id)} 0`);
  await plugging;
  return added;
}

beforeAll(async () => {
  emu = await startEmulator({ mountpoint: await mkdtemp(join(testRoot(), 'tcmu-nl-')), logger: testLogger() });
  program = new ProgramTree();
  nl = new TcmuNetlink({
    devices: emu.emulator.devices,
    logger: testLogger(),
    describe: describeTcmu,
    quiesce: quiesceTcmu,
    attach: attachTcmu,
    deviceReplies: tcmuDeviceReplies,
    accepts: (pid) => program.contains(pid),
  });
  publishTcmuModule(emu.emulator.fs.tree, nl);
  py = tcmuConsumer(nl.port, nl.familyId);
  program.started(py.pid);
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

  it('drains, then waits for REMOVED_DEVICE_DONE without a bound, as the kernel: a command the consumer holds ends at cmd_time_out first', async () => {
    // cmd_time_out longer than the 5 s the drain used to give up after.
    const added = await plugAnswered({ cmdTimeOutMs: 6000 });
    const generation = lastGeneration();
    const held = emu.action('uio0', 'submit', { op: 'tur' });
    await until(() => (emu.emulator.devices.get('uio0')!.state as TcmuState).ring.stats.inflight === 1, 5000, 'TUR in the ring');
    const unplugging = emu.unplug('uio0');
    let settled = false;
    void unplugging.then(() => (settled = true));
    // REMOVED_DEVICE comes only once the TUR has ended, by its cmd_time_out.
    const removed = await ask('recv', 20_000);
    expect(removed).toMatchObject({ cmd: TcmuCmd.REMOVED_DEVICE, id: added.id });
    expect(await held).toMatchObject({ outcome: 'timed_out', status: 2 });
    const types = (): string[] => emu.events({ device: 'uio0', generation }).map((e) => e.type);
    expect(types().slice(types().indexOf('tcmu_draining'))).toEqual(['tcmu_draining', 'tcmu_cmd_timeout', 'tcmu_quiesced', 'netlink_sent']);
    expect(emu.events({ device: 'uio0', generation, type: 'tcmu_quiesced' })[0]).toMatchObject({ outstanding: 0, expired: 1 });
    // No reply for longer than the old 5 s bound: still waiting, nothing else sent.
    expect(await ask('recv', 6000)).toEqual({ none: true });
    expect(settled).toBe(false);
    expect(types()).not.toContain('netlink_timeout');
    expect(types()).not.toContain('unplug_started');
    await ask(`done ${TcmuCmd.REMOVED_DEVICE_DONE} ${String(added.id)} 0`);
    await unplugging;
    expect(types()).toContain('unplug_started');
    expect(emu.events({ device: 'uio0', generation, type: 'netlink_done' }).at(-1)).toMatchObject({ cmd: 'REMOVED_DEVICE_DONE', status: 0 });
  });

  it('bounds the drain and the wait for REMOVED_DEVICE_DONE when the unplug asks (noticeTimeoutMs), reporting what was still out', async () => {
    const added = await plugAnswered({ cmdTimeOutMs: 0 });
    const generation = lastGeneration();
    const held = emu.action('uio0', 'submit', { op: 'tur' }).catch((e: Error) => e);
    await until(() => (emu.emulator.devices.get('uio0')!.state as TcmuState).ring.stats.inflight === 1, 5000, 'TUR in the ring');
    const unplugging = emu.unplug('uio0', { noticeTimeoutMs: 300 });
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.REMOVED_DEVICE, id: added.id });
    const report = await unplugging;
    expect(report.device).toBe('uio0');
    expect(emu.events({ device: 'uio0', generation, type: 'tcmu_quiesced' })[0]).toMatchObject({ outstanding: 1 });
    const types = emu.events({ device: 'uio0', generation }).map((e) => e.type);
    expect(types.indexOf('netlink_timeout')).toBeGreaterThan(types.indexOf('netlink_sent'));
    expect(types.indexOf('unplug_started')).toBeGreaterThan(types.indexOf('netlink_timeout'));
    expect(await held).toMatchObject({ code: 'ENODEV' }); // an action the unplug ends
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

  it('refuses a second event of a device while one waits for its reply (EBUSY), as tcmu_init_genl_cmd_reply(); an unplug then goes on without REMOVED_DEVICE', async () => {
    const added = await plugAnswered();
    const generation = lastGeneration();
    const attrib = emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib');
    const write = (file: string, text: string) => run('bash', ['-c', 'printf %s "$1" > "$2"', 'bash', text, `${attrib}/${file}`]);
    const first = write('dev_config', 'qcow//first.img');
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.RECONFIG_DEVICE, devcfg: 'qcow//first.img' });
    // Refused at once, not queued behind the first: nothing is sent for it.
    const second = await write('dev_size', '2097152');
    expect(second.stderr).toMatch(/Device or resource busy/);
    expect(await ask('recv', 0)).toEqual({ none: true });
    expect(emu.events({ device: 'uio0', generation, type: 'netlink_refused' })).toMatchObject([
      { cmd: 'RECONFIG_DEVICE', errno: 'EBUSY', executing: 'RECONFIG_DEVICE', deviceId: added.id },
    ]);
    // The unplug's REMOVED_DEVICE is refused the same way; the device goes all the same,
    // ending the write still waiting in its handler with the unplug errno.
    const report = await emu.unplug('uio0', { drainTimeoutMs: 200 });
    expect(report.stuck.map((h) => h.op)).toEqual(['store:sys/kernel/config/target/core/user_0/cdevemu/attrib/dev_config']);
    expect(emu.events({ device: 'uio0', generation, type: 'netlink_refused' }).at(-1)).toMatchObject({ cmd: 'REMOVED_DEVICE', errno: 'EBUSY', executing: 'RECONFIG_DEVICE' });
    expect(emu.events({ device: 'uio0', generation, type: 'netlink_sent' }).map((e) => e.cmd)).toEqual(['ADDED_DEVICE', 'RECONFIG_DEVICE']);
    expect((await first).code).not.toBe(0);
    expect(await ask(`done ${TcmuCmd.RECONFIG_DEVICE_DONE} ${String(added.id)} 0`)).toMatchObject({ ack: 0 });
  });

  it('drops a consumer that went away', async () => {
    py.send('exit');
    await py.exited;
    // The next test's TUR must still be in the ring when its unplug starts:
    // cmd_time_out ends it 5 to 6 s after it is queued (up to a whole second,
    // as the kernel rounds), not 1 to 2, which a loaded machine can overrun.
    await emu.plug('tcmu', 'uio%d', { ...RING, cmdTimeOutMs: 5000 });
    expect(nl.consumerPorts).toEqual([]);
    expect(emu.events({ device: 'uio0', generation: lastGeneration(), type: 'netlink_sent' })).toEqual([]);
  });

  it('without a consumer, drains as the kernel does (the command ends at cmd_time_out), then unplugs with no event', async () => {
    const generation = lastGeneration();
    // No listener: a reconfiguration fails ESRCH (genlmsg_multicast_allns).
    const nobody = await run('bash', ['-c', `printf qcow//x.img > ${emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib/dev_config')}`]);
    expect(nobody.stderr).toMatch(/No such process/);
    expect((await run('cat', [emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib/nl_reply_supported')])).stdout).toBe('0\n');
    // A TUR in the ring, with no consumer to complete it.
    const held = emu.action('uio0', 'submit', { op: 'tur' });
    await until(() => (emu.emulator.devices.get('uio0')!.state as TcmuState).ring.stats.inflight === 1, 5000, 'TUR in the ring');
    await emu.unplug('uio0');
    const types = emu.events({ device: 'uio0', generation }).map((e) => e.type);
    expect(types.indexOf('tcmu_cmd_timeout')).toBeGreaterThan(types.indexOf('tcmu_draining'));
    expect(types.indexOf('tcmu_quiesced')).toBeGreaterThan(types.indexOf('tcmu_cmd_timeout'));
    expect(types.indexOf('tcmu_removed')).toBeGreaterThan(types.indexOf('tcmu_quiesced'));
    expect(types).not.toContain('netlink_sent');
    expect(await held).toMatchObject({ outcome: 'timed_out' });
  });

  it('SET_FEATURES without SUPP_KERN_CMD_REPLY keeps what the socket said before (at first: no replies), as tcmu_genl_set_features() sets only what it is given', async () => {
    py = tcmuConsumer(nl.port, nl.familyId);
    program.started(py.pid);
    await py.line();
    expect(await ask(`bare ${TcmuCmd.SET_FEATURES}`)).toEqual({ ack: 0, seq: 1 });
    // Replies not promised: the plug does not wait for ADDED_DEVICE_DONE.
    await emu.plug('tcmu', 'uio%d', RING);
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.ADDED_DEVICE });
    const supported = async (): Promise<string> => (await run('cat', [emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib/nl_reply_supported')])).stdout;
    expect(await supported()).toBe('0\n');
    // Again without the attribute: still not promised (a known `false` must not read as "set").
    expect(await ask(`bare ${TcmuCmd.SET_FEATURES}`)).toMatchObject({ ack: 0 });
    expect(await supported()).toBe('0\n');
    // Promised, then a bare SET_FEATURES again: still promised. The change is announced on the live device.
    expect(await ask('features')).toMatchObject({ ack: 0 });
    expect(emu.events({ device: 'uio0', generation: lastGeneration(), type: 'netlink_registered' }).at(-1)).toMatchObject({ pid: py.pid, replies: true });
    expect(await ask(`bare ${TcmuCmd.SET_FEATURES}`)).toMatchObject({ ack: 0 });
    expect(await supported()).toBe('1\n');
    // The device's own nl_reply_supported, written 0 (tcmu_nl_reply_supported_store): its events wait for no reply.
    const generation = lastGeneration();
    expect((await run('bash', ['-c', `echo 0 > ${emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib/nl_reply_supported')}`])).code).toBe(0);
    expect(await supported()).toBe('0\n');
    await emu.unplug('uio0');
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.REMOVED_DEVICE });
    const types = emu.events({ device: 'uio0', generation }).map((e) => e.type);
    expect(types).toContain('netlink_sent');
    expect(types).not.toContain('netlink_done');
  });

  it('fails the plug with the status of a negative ADDED_DEVICE_DONE, leaving nothing plugged (tcmu_configure_device: err_netlink)', async () => {
    const plugging = emu.plug('tcmu', 'uio%d', RING).catch((e: Error & { cause?: { code?: string } }) => e);
    const added = await ask('recv');
    expect(added).toMatchObject({ cmd: TcmuCmd.ADDED_DEVICE });
    await ask(`done ${TcmuCmd.ADDED_DEVICE_DONE} ${String(added.id)} -12`);
    const err = (await plugging) as Error & { kind?: string; cause?: { code?: string } };
    expect(err).toBeInstanceOf(Error);
    expect(err.kind).toBe('probe_failed');
    expect(err.cause?.code).toBe('ENOMEM');
    expect(emu.emulator.devices.list().filter((i) => i.lifecycle === 'live' || i.lifecycle === 'unplugging')).toEqual([]);
    // Refused at once: no REMOVED_DEVICE for a device that never was.
    expect(await ask('recv', 0)).toEqual({ none: true });
    expect((await run('ls', [emu.path('dev')])).stdout).not.toContain('uio0');
  });

  it('block_netlink and reset_netlink as the module offers them: reset fails what waits with EINTR once blocked (EBUSY before); blocked, new events fail EAGAIN', async () => {
    const added = await plugAnswered();
    const generation = lastGeneration();
    const params = emu.path(`${TCMU_MODULE_DIR}/parameters`);
    const sh = (script: string) => run('bash', ['-c', script]);
    const attrib = emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib');
    expect((await sh(`cat ${emu.path(TCMU_MODULE_DIR)}/initstate ${params}/block_netlink`)).stdout).toBe('live\nunblocked\n');
    const waiting = sh(`printf qcow//w.img > ${attrib}/dev_config`);
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.RECONFIG_DEVICE });
    expect((await sh(`echo 1 > ${params}/reset_netlink`)).stderr).toMatch(/Device or resource busy/);
    expect((await sh(`echo 2 > ${params}/block_netlink`)).stderr).toMatch(/Invalid argument/);
    expect((await sh(`echo 1 > ${params}/block_netlink && cat ${params}/block_netlink`)).stdout).toBe('blocked\n');
    expect((await sh(`echo 1 > ${params}/reset_netlink`)).code).toBe(0);
    expect((await waiting).stderr).toMatch(/Interrupted system call/);
    expect(emu.events({ device: 'uio0', generation, type: 'netlink_done' }).at(-1)).toMatchObject({ cmd: 'RECONFIG_DEVICE_DONE', status: -4 });
    expect((await sh(`printf qcow//b.img > ${attrib}/dev_config`)).stderr).toMatch(/Resource temporarily unavailable/);
    expect(emu.events({ device: 'uio0', generation, type: 'netlink_refused' }).at(-1)).toMatchObject({ cmd: 'RECONFIG_DEVICE', errno: 'EAGAIN' });
    // The late answer to the reset event finds nothing waiting.
    expect(await ask(`done ${TcmuCmd.RECONFIG_DEVICE_DONE} ${String(added.id)} 0`)).toMatchObject({ ack: -19 });
    expect((await sh(`echo 0 > ${params}/block_netlink`)).code).toBe(0);
    const unplugging = emu.unplug('uio0');
    await ask(`done ${TcmuCmd.REMOVED_DEVICE_DONE} ${String((await ask('recv')).id)} 0`);
    await unplugging;
  });

  it('netlink faults: a held REMOVED_DEVICE_DONE holds the unplug until released; a dropped REMOVED_DEVICE never arrives; REMOVED_DEVICE sent without waiting', async () => {
    // Held reply.
    const added = await plugAnswered();
    let generation = lastGeneration();
    await emu.action('uio0', 'netlink_fault', { on: 'reply', cmd: 'REMOVED_DEVICE', mode: 'hold' });
    let settled = false;
    const unplugging = emu.unplug('uio0').then((r) => ((settled = true), r));
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.REMOVED_DEVICE, id: added.id });
    // Held: not even acked.
    py.send(`done ${TcmuCmd.REMOVED_DEVICE_DONE} ${String(added.id)} 0`);
    await until(() => emu.events({ device: 'uio0', generation, type: 'netlink_fault' }).length === 1, 5000, 'the reply held');
    expect(emu.events({ device: 'uio0', generation, type: 'netlink_fault' })[0]).toMatchObject({ message: 'REMOVED_DEVICE_DONE', mode: 'hold' });
    expect(await ask('recv', 0)).toEqual({ none: true });
    expect(settled).toBe(false);
    expect(await emu.action('uio0', 'netlink_release', {})).toEqual({ released: 1 });
    expect(await ask('recv')).toMatchObject({ ack: 0 });
    await unplugging;

    // Dropped event: the family waits for a reply to a message never sent (bounded here by the unplug).
    await plugAnswered();
    generation = lastGeneration();
    await emu.action('uio0', 'netlink_fault', { on: 'event', cmd: 'REMOVED_DEVICE', mode: 'drop' });
    await emu.unplug('uio0', { noticeTimeoutMs: 300 });
    expect(await ask('recv', 0)).toEqual({ none: true });
    const types = emu.events({ device: 'uio0', generation }).map((e) => e.type);
    expect(types.slice(types.indexOf('netlink_fault'))).toEqual(expect.arrayContaining(['netlink_fault', 'netlink_sent', 'netlink_timeout']));

    // netlink_send without waiting: REMOVED_DEVICE for a device that stays; its reply finds nothing waiting.
    const again = await plugAnswered();
    expect(await emu.action('uio0', 'netlink_send', { cmd: 'REMOVED_DEVICE', wait: false })).toMatchObject({ result: 'done', cmd: 'REMOVED_DEVICE' });
    expect(await ask('recv')).toMatchObject({ cmd: TcmuCmd.REMOVED_DEVICE, id: again.id });
    expect(await ask(`done ${TcmuCmd.REMOVED_DEVICE_DONE} ${String(again.id)} 0`)).toMatchObject({ ack: -19 });
    expect(emu.emulator.devices.get('uio0')!.lifecycle).toBe('live');
    const unplugging2 = emu.unplug('uio0');
    await ask(`done ${TcmuCmd.REMOVED_DEVICE_DONE} ${String((await ask('recv')).id)} 0`);
    await unplugging2;
  });
});
