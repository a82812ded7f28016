/**
 * Who may speak to the emulated TCM-USER family (src/tcmu/netlink.ts): the
 * program under test and its descendants, by the sender's pid the kernel
 * recorded (SCM_CREDENTIALS). NETLINK_USERSOCK is open to every process of
 * the network namespace, and the port is in /proc/net/netlink, so the same
 * Python consumer is also run by strangers: as uid 65534, and as root
 * outside the program's process tree (run by an ordinary user: as that
 * user outside it). They get no ack, no event, and their
 * forged *_DONE replies change nothing; a port number a consumer left and a
 * stranger bound gets no event; a flood of theirs costs a bounded number of
 * log lines, and the program's consumer is still served.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/api.js';
import { attachTcmu, describeTcmu, quiesceTcmu } from '../../src/tcmu/device.js';
import { TcmuCmd } from '../../src/tcmu/family.js';
import { TcmuNetlink } from '../../src/tcmu/netlink.js';
import { ProgramTree } from '../../src/tcmu/program-tree.js';
import { runsAsRoot } from '../helpers/as-user.js';
import { testLogger, testRoot } from '../helpers/mount.js';
import { run, type Interactive } from '../helpers/proc.js';
import { ask, tcmuConsumer } from '../helpers/tcmu-consumer.js';
import { until } from '../helpers/wait.js';

const RING = { cmdAreaSize: 65536, dataAreaSize: 65536, devSize: 1 << 20, subtype: 'qcow', cfgstring: '/nonexistent.img' };
const NOBODY = 65534;

let emu: EmulatorHandle;
let nl: TcmuNetlink;
/** The program under test's consumer. */
let consumer: Interactive;
/** The same client as uid 65534, and as root but outside the program's tree (an ordinary user: as that user outside it). */
let strangers: Array<[string, Interactive]>;
/** What the family logged (pino's JSON lines). */
const logged: Array<{ msg: string; suppressed?: number }> = [];

/** Has the stranger's last datagram been read (and dropped)? */
async function droppedOne(send: () => void): Promise<void> {
  const before = nl.dropped.foreign;
  send();
  await until(() => nl.dropped.foreign === before + 1, 10_000, 'the datagram read and dropped');
}

/** Only what is queued already: the emulator sends events before it waits for a reply, so anything sent is there by now. */
const queued = (client: Interactive): Promise<Record<string, unknown>> => ask(client, 'recv', 0);

beforeAll(async () => {
  emu = await startEmulator({ mountpoint: await mkdtemp(join(testRoot(), 'tcmu-strangers-')), logger: testLogger() });
  const program = new ProgramTree();
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line) as { msg: string }) });
  nl = new TcmuNetlink({
    devices: emu.emulator.devices,
    logger,
    describe: describeTcmu,
    quiesce: quiesceTcmu,
    attach: attachTcmu,
    accepts: (pid) => program.contains(pid),
  });
  consumer = tcmuConsumer(nl.port, nl.familyId);
  program.started(consumer.pid);
  // Another uid is root's to play (setpriv); an ordinary user plays itself outside the program.
  strangers = runsAsRoot
    ? [
        ['uid 65534', tcmuConsumer(nl.port, nl.familyId, { uid: NOBODY })],
        ['root outside the program', tcmuConsumer(nl.port, nl.familyId)],
      ]
    : [['this user outside the program', tcmuConsumer(nl.port, nl.familyId)]];
  for (const c of [consumer, ...strangers.map(([, s]) => s)]) await c.line();
  expect(await ask(consumer, 'features')).toEqual({ ack: 0, seq: 1 });
});

afterAll(async () => {
  consumer?.kill();
  for (const [, s] of strangers ?? []) s.kill();
  await nl?.close();
  await emu?.stop({ releaseTimeoutMs: 0 });
});

describe('the TCM-USER family and other processes', () => {
  it('answers SET_FEATURES from a stranger with nothing and does not register it', async () => {
    const ports = nl.consumerPorts;
    expect(ports).toHaveLength(1);
    for (const [who, s] of strangers) {
      await droppedOne(() => s.send('features'));
      expect(await queued(s), who).toEqual({ none: true }); // no ack
    }
    expect(nl.consumerPorts).toEqual(ports);
  });

  it('sends a stranger no event, and takes no *_DONE from one: neither a failed reconfiguration nor a removal refused', async () => {
    const plugging = emu.plug('tcmu', 'uio%d', RING);
    const added = await ask(consumer, 'recv');
    expect(added).toMatchObject({ cmd: TcmuCmd.ADDED_DEVICE });
    // A forged ADDED_DEVICE_DONE -ENOMEM from each stranger, read and dropped while the plug waits.
    for (const [, s] of strangers) await droppedOne(() => s.send(`done ${TcmuCmd.ADDED_DEVICE_DONE} ${String(added.id)} -12`));
    await ask(consumer, `done ${TcmuCmd.ADDED_DEVICE_DONE} ${String(added.id)} 0`);
    await plugging;
    expect(emu.events({ device: 'uio0', type: 'netlink_done' })).toMatchObject([
      { cmd: 'ADDED_DEVICE_DONE', status: 0, port: nl.consumerPorts[0] },
    ]);

    // A configfs write waits for RECONFIG_DEVICE_DONE: the strangers' -EPERM must not fail it.
    const attrib = emu.path('sys/kernel/config/target/core/user_0/cdevemu/attrib');
    const write = run('bash', ['-c', 'printf %s "$1" > "$2"', 'bash', 'qcow//new.img', `${attrib}/dev_config`]);
    const reconfig = await ask(consumer, 'recv');
    expect(reconfig).toMatchObject({ cmd: TcmuCmd.RECONFIG_DEVICE, devcfg: 'qcow//new.img' });
    for (const [, s] of strangers) await droppedOne(() => s.send(`done ${TcmuCmd.RECONFIG_DEVICE_DONE} ${String(added.id)} -1`));
    await ask(consumer, `done ${TcmuCmd.RECONFIG_DEVICE_DONE} ${String(added.id)} 0`);
    expect(await write).toMatchObject({ code: 0, stderr: '' });

    // An orderly unplug waits for REMOVED_DEVICE_DONE: the strangers' -EBUSY must not be its answer.
    const unplugging = emu.unplug('uio0');
    expect(await ask(consumer, 'recv')).toMatchObject({ cmd: TcmuCmd.REMOVED_DEVICE, id: added.id });
    for (const [, s] of strangers) await droppedOne(() => s.send(`done ${TcmuCmd.REMOVED_DEVICE_DONE} ${String(added.id)} -16`));
    await ask(consumer, `done ${TcmuCmd.REMOVED_DEVICE_DONE} ${String(added.id)} 0`);
    await unplugging;
    const done = emu.events({ device: 'uio0', type: 'netlink_done' }).map((e) => [e.cmd, e.status]);
    expect(done).toEqual([
      ['ADDED_DEVICE_DONE', 0],
      ['RECONFIG_DEVICE_DONE', 0],
      ['REMOVED_DEVICE_DONE', 0],
    ]);
    // Three events went out; none reached a stranger.
    for (const [who, s] of strangers) expect(await queued(s), who).toEqual({ none: true });
  });

  it('registers a child of the program; once its socket closed, sends no event to its port, though a stranger has bound the number since', async () => {
    // A process the program forked is part of it (as tcmu-runner's children would be): it registers, then exits.
    consumer.send('fork-features');
    const child = JSON.parse(await consumer.line()) as { ack: number; port: number };
    expect(child.ack).toBe(0);
    const left = child.port;
    expect(nl.consumerPorts).toContain(left);
    const squatter = tcmuConsumer(nl.port, nl.familyId, { ...(runsAsRoot ? { uid: NOBODY } : {}), bindPort: left });
    expect(JSON.parse(await squatter.line())).toEqual({ port: left });
    try {
      const plugging = emu.plug('tcmu', 'uio%d', RING);
      const added = await ask(consumer, 'recv');
      await ask(consumer, `done ${TcmuCmd.ADDED_DEVICE_DONE} ${String(added.id)} 0`);
      await plugging;
      expect(emu.events({ device: 'uio0', generation: 2, type: 'netlink_sent' })).toMatchObject([{ ports: [nl.consumerPorts[0]] }]);
      expect(await queued(squatter)).toEqual({ none: true });
      expect(nl.consumerPorts).not.toContain(left);
    } finally {
      squatter.kill();
    }
  });

  it('drops a stranger flood with a bounded log that counts it, and still serves the consumer', async () => {
    const FLOOD = 10_000;
    const [, stranger] = strangers[0]!;
    const before = { dropped: nl.dropped.foreign, lines: logged.length };
    stranger.send(`flood ${FLOOD}`);
    expect(JSON.parse(await stranger.line(60_000))).toEqual({ sent: FLOOD });
    await until(() => nl.dropped.foreign === before.dropped + FLOOD, 30_000, 'the flood read');
    // The count not logged comes in one line when the interval ends.
    const kind = 'tcmu netlink: datagram dropped: its sender is not the program under test or one of its descendants';
    const mine = (): typeof logged => logged.slice(before.lines).filter((l) => l.msg.startsWith(kind));
    const accounted = (): number => mine().reduce((n, l) => n + (l.suppressed ?? 1), 0);
    await until(() => accounted() === FLOOD, 30_000, 'every dropped datagram logged or counted');
    // At most 10 lines logged one by one per 5 s interval, and an interval
    // with more ends in one line counting them: bounded by those counts, not
    // by the flood's duration, which a loaded machine stretches.
    const summaries = mine().filter((l) => /: \d+ more in the last [\d.]+ s, not logged$/.test(l.msg)).length;
    expect(summaries).toBeGreaterThan(0);
    expect(mine().length - summaries).toBeLessThanOrEqual(10 * (summaries + 1));
    // Served as before.
    expect(await ask(consumer, 'features')).toMatchObject({ ack: 0 });
  });
});
