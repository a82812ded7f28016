/**
 * The record model in front of a real tty (a pty from /dev/ptmx, fed from
 * its master side by a python3 child) and the replay model playing what it
 * wrote, on a real mount, with python3 clients on the emulated nodes: the
 * session's reads, writes, termios ioctl (TCGETS through the caller's
 * memory) and the device going away (the pty's master closed: the tty
 * hangs up, POLLHUP) are traced, and replayed with no pty; a
 * write that differs fails in strict mode and is taken in lenient mode,
 * with an event naming its offset; fault rules apply on top; the replay
 * keeps the recorded order and pace (made deterministic by `speed`).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDeviceTrace, type TraceEntry } from '../../src/models/record/device-trace.js';
import type { DeviceEvent } from '../../src/core/events.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { testRoot } from '../helpers/mount.js';
import { Interactive, pythonInteractive } from '../helpers/proc.js';
import { cdevemu } from '../helpers/cli.js';

/** A pty, raw, whose master this child holds: `send HEX` writes to it, `close` closes both ends; what the slave's writer sends is printed as `got HEX`. */
const PTY = `import os, sys, tty, select
m, s = os.openpty(); tty.setraw(s)
print(os.ttyname(s), flush=True)
p = select.poll(); p.register(0, select.POLLIN); p.register(m, select.POLLIN)
while True:
    for fd, ev in p.poll():
        if fd == 0:
            line = sys.stdin.readline()
            if not line: sys.exit(0)
            cmd, *arg = line.split()
            if cmd == 'send': os.write(m, bytes.fromhex(arg[0])); print('sent', flush=True)
            elif cmd == 'close': p.unregister(m); os.close(m); os.close(s); print('closed', flush=True)
        else:
            print('got', os.read(m, 4096).hex(), flush=True)
`;

/** A client of a node: one command a line, one answer a line (`ok ...` or `err ENAME`). */
const CLIENT = `import os, sys, errno, fcntl, termios, select
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
print('opened', flush=True)
for line in sys.stdin:
    cmd, *a = line.split()
    try:
        if cmd == 'write': r = os.write(fd, bytes.fromhex(a[0]))
        elif cmd == 'read': r = os.read(fd, int(a[0])).hex()
        elif cmd == 'nonblock': fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK); r = ''
        elif cmd == 'ispeed': r = termios.tcgetattr(fd)[4]
        elif cmd == 'open': os.close(os.open(sys.argv[1], os.O_RDWR)); r = ''
        elif cmd == 'tiocmget': r = fcntl.ioctl(fd, termios.TIOCMGET, bytes(4)).hex()
        elif cmd in ('speed', 'flushspeed'):
            at = termios.tcgetattr(fd); at[4] = at[5] = getattr(termios, 'B' + a[0])
            termios.tcsetattr(fd, termios.TCSANOW if cmd == 'speed' else termios.TCSAFLUSH, at); r = ''
        elif cmd == 'hup':
            p = select.poll(); p.register(fd, select.POLLIN)
            while not p.poll()[0][1] & (select.POLLHUP | select.POLLERR): pass
            r = ''
        print('ok', r, flush=True)
    except (OSError, termios.error) as e:
        print('err', errno.errorcode[e.args[0]], flush=True)
`;

let t: TestEmulator;
let dir: string;
let seq = 0;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
  dir = await mkdtemp(join(testRoot(), 'trace-'));
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

const hex = (s: string): string => Buffer.from(s).toString('hex');
/** termios.B115200 on Linux (CBAUDEX | 2), as tcgetattr()'s ispeed. */
const termiosB115200 = 0o010002;

/** A client of dev/NAME, once it has opened it. */
async function client(name: string): Promise<Interactive> {
  const c = pythonInteractive(CLIENT, [t.path(`dev/${name}`)]);
  expect(await c.line()).toBe('opened');
  return c;
}

async function ask(c: Interactive, cmd: string): Promise<string> {
  c.send(cmd);
  return c.line();
}

/** Lines of `p` until one that starts with `prefix`. */
async function lineStarting(p: Interactive, prefix: string): Promise<string> {
  for (;;) {
    const l = await p.line();
    if (l.startsWith(prefix)) return l;
  }
}

async function plugReplay(trace: string, options: Record<string, unknown> = {}): Promise<string> {
  const inst = await t.emu.devices.plug({ model: 'replay', name: `rep${seq++}`, options: { trace, ...options } });
  return inst.name;
}

/** Writes a hand-made trace of a ttyS9 (docs/trace-format.md): the header, then `entries`; its path. */
async function writeTrace(file: string, entries: object[]): Promise<string> {
  const path = join(dir, file);
  const header = { format: 'cdevemu-device-trace', version: 1, device: '/dev/ttyS9', rdev: '4:73', name: 'ttyS9', started: '2026-01-01T00:00:00.000Z', sysfs: {} };
  await writeFile(path, [header, ...entries].map((l) => JSON.stringify(l) + '\n').join(''));
  return path;
}

/**
 * A program that opens argv[1], then for each later argument: `w HEX`
 * writes, `r SIZE` reads, `s SPEED` sets the line's speed (TCGETS, then
 * TCSETS), `o` opens and closes the device again. It prints what failed and carries on, so
 * only the device can fail its run.
 */
const STEPS = `import os, sys, termios
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
for step in sys.argv[2:]:
    cmd, _, arg = step.partition(' ')
    try:
        if cmd == 'w': os.write(fd, bytes.fromhex(arg))
        elif cmd == 'r': os.read(fd, int(arg))
        elif cmd == 's':
            at = termios.tcgetattr(fd); at[4] = at[5] = getattr(termios, 'B' + arg)
            termios.tcsetattr(fd, termios.TCSANOW, at)
        elif cmd == 'o': os.close(os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY))
    except (OSError, termios.error) as e: print(step, 'failed:', e)
`;

/** `cdevemu run` of STEPS doing `steps` on dev/r0, a replay of `trace`, expecting exit 0. */
const runSteps = (trace: string, mode: string, steps: string[]) =>
  cdevemu(['run', '--device', `r0=replay:${JSON.stringify({ trace, speed: 0, mode })}`, '--expect', 'exit:0', '--', 'python3', '-c', STEPS, '{mount}/dev/r0', ...steps]);

/** The replay_mismatch and replay_incomplete events of device `name` so far. */
const findings = (name: string): DeviceEvent[] => t.events.filter((e) => e.device === name && (e.type === 'replay_mismatch' || e.type === 'replay_incomplete'));

const removed = (name: string): Promise<unknown> => t.waitEvent((e) => e.device === name && e.type === 'removed', 10_000);

describe('record a pty session, replay it without one', () => {
  const trace = (): string => join(dir, 'pty.jsonl');
  let entries: TraceEntry[] = [];
  let ispeed = '';

  it('records reads, writes, TCGETS and the hang-up as an unplug', async () => {
    const pty = pythonInteractive(PTY);
    const path = await pty.line();
    const inst = await t.emu.devices.plug({ model: 'record', name: 'rec0', options: { device: path, trace: trace() } });
    const c = await client(inst.name);
    try {
      ispeed = await ask(c, 'ispeed');
      expect(ispeed).toMatch(/^ok \d+$/);
      expect(await ask(c, 'speed 9600')).toBe('ok ');
      expect(await ask(c, `write ${hex('PING1\n')}`)).toBe('ok 6');
      expect(await lineStarting(pty, 'got')).toBe(`got ${hex('PING1\n')}`);
      pty.send(`send ${hex('PONG\n')}`);
      expect(await ask(c, 'read 64')).toBe(`ok ${hex('PONG\n')}`);
      pty.send('close');
      await lineStarting(pty, 'closed');
      // The tty hung up (POLLHUP): the readiness watch sees it with no call made, and the device goes.
      await removed(inst.name);
      expect(await ask(c, `write ${hex('x')}`)).toBe('err EIO');
      expect(await ask(c, 'read 64')).toBe('err EIO');
    } finally {
      c.kill();
      pty.kill();
    }
    const parsed = parseDeviceTrace(readFileSync(trace(), 'utf8'), trace());
    expect(parsed.header).toMatchObject({ device: path, name: 'rec0', sysfs: {} });
    entries = parsed.entries;
    const ops = entries.filter((e) => e.op !== 'poll').map((e) => e.op);
    expect(ops.filter((op) => op !== 'ioctl')).toEqual(['open', 'write', 'read', 'unplug']);
    // struct termios (36 bytes) at the caller's pointer: out of TCGETS, into TCSETS (glibc's
    // tcsetattr() reads it back with TCGETS after).
    const ioctls = entries.filter((e) => e.op === 'ioctl');
    expect(new Set(ioctls.map((e) => e.cmd))).toEqual(new Set([0x5401, 0x5402]));
    expect(ioctls.every((e) => e.result === 0 && (e.cmd === 0x5401 ? e.out?.length === 72 : e.in?.length === 72))).toBe(true);
    expect(entries.find((e) => e.op === 'read')).toMatchObject({ data: hex('PONG\n') });
    expect(entries.filter((e) => e.op === 'write')).toMatchObject([{ data: hex('PING1\n'), result: 6 }]);
    expect(entries.at(-1)).toMatchObject({ op: 'unplug', errno: 'EIO' });
  });

  it('replays it (strict): the same answers, then the unplug once the data is read', async () => {
    const name = await plugReplay(trace(), { speed: 0 });
    const c = await client(name);
    try {
      expect(await ask(c, 'ispeed')).toBe(ispeed);
      expect(await ask(c, 'speed 9600')).toBe('ok ');
      expect(await ask(c, `write ${hex('PING1\n')}`)).toBe('ok 6');
      expect(await ask(c, 'read 64')).toBe(`ok ${hex('PONG\n')}`);
      expect(await ask(c, 'hup')).toBe('ok ');
      await removed(name);
      expect(await ask(c, 'read 64')).toBe('err EIO');
    } finally {
      c.kill();
    }
    expect(findings(name)).toEqual([]);
  });

  it('a program that leaves part of the recording undone: replay_incomplete at its last close, failing in strict mode only', async () => {
    for (const mode of ['strict', 'lenient']) {
      const name = await plugReplay(trace(), { speed: 0, mode });
      const c = await client(name);
      expect(await ask(c, 'ispeed')).toBe(ispeed);
      c.kill(); // neither TCSETS nor PING1 nor reading PONG
      const ev = await t.waitEvent((e) => e.device === name && e.type === 'replay_incomplete', 5000);
      // PONG came after the last write that was taken: a stream the program may stop reading.
      expect(ev).toMatchObject({ writtenBytes: 0, expectedBytes: 6, unreadBytes: 0, when: 'release', mode, fails: mode === 'strict' });
      expect(ev.missingIoctls).toContain(0x5402);
    }
  });

  it('cdevemu run fails a program that opens and closes in strict mode, and passes it in lenient mode', async () => {
    const prog = 'import os,sys\nos.close(os.open(sys.argv[1], os.O_RDWR))\n';
    const runWith = (mode: string) =>
      cdevemu(['run', '--device', `r0=replay:${JSON.stringify({ trace: trace(), speed: 0, mode })}`, '--expect', 'exit:0', '--', 'python3', '-c', prog, '{mount}/dev/r0']);
    const strict = await runWith('strict');
    expect(strict.stdout).toMatch(/replay_incomplete on r0 \(generation 1\): \{"opens":1,"expectedOpens":1,"writtenBytes":0,"expectedBytes":6,"unreadBytes":0,"missingIoctls":\[/);
    expect(strict.stdout).toMatch(/dev\/r0: no device saw a failure$/m);
    expect(strict.code).toBe(1);
    const lenient = await runWith('lenient');
    expect(lenient.stdout, lenient.stderr).toMatch(/^PASS /m);
    expect(lenient.code).toBe(0);
  });

  it('a replug is refused: it would truncate the trace of the first generation', async () => {
    const path = join(dir, 'replugged.jsonl');
    const pty = pythonInteractive(PTY);
    const inst = await t.emu.devices.plug({ model: 'record', name: 'rec-replug', options: { device: await pty.line(), trace: path } });
    const c = await client(inst.name);
    try {
      expect(await ask(c, `write ${hex('one')}`)).toBe('ok 3');
    } finally {
      c.kill();
    }
    await t.waitEvent((e) => e.device === inst.name && e.type === 'released', 5000);
    try {
      await expect(t.emu.devices.replug(inst.name)).rejects.toThrow(/record: rec-replug was plugged before \(generation 2\): a trace holds one generation/);
    } finally {
      pty.kill();
    }
    const { entries: kept } = parseDeviceTrace(readFileSync(path, 'utf8'), path);
    expect(kept.map((e) => e.op)).toEqual(['open', 'write', 'release']);
  });

  it('a hang-up seen only by poll (POLLHUP, no call failed) is traced as the unplug, and replayed', async () => {
    const path = join(dir, 'hup.jsonl');
    const pty = pythonInteractive(PTY);
    const inst = await t.emu.devices.plug({ model: 'record', name: 'rec-hup', options: { device: await pty.line(), trace: path } });
    const c = await client(inst.name);
    try {
      expect(await ask(c, `write ${hex('hi\n')}`)).toBe('ok 3');
      expect(await lineStarting(pty, 'got')).toBe(`got ${hex('hi\n')}`);
      pty.send('close');
      await lineStarting(pty, 'closed');
      expect(await ask(c, 'hup')).toBe('ok ');
      await removed(inst.name);
    } finally {
      c.kill();
      pty.kill();
    }
    const { entries: hup } = parseDeviceTrace(readFileSync(path, 'utf8'), path);
    expect(hup.map((e) => e.op)).toEqual(expect.arrayContaining(['open', 'write', 'unplug']));
    // Nothing failed: the program only polled.
    expect(hup.filter((e) => e.op === 'read' || (e.op !== 'unplug' && e.errno !== undefined))).toEqual([]);
    expect(hup.at(-1)).toEqual(expect.objectContaining({ op: 'unplug', errno: 'EIO' }));
    // Replayed, the program that waits for the hang-up gets it.
    const name = await plugReplay(path, { speed: 0 });
    const r = await client(name);
    try {
      expect(await ask(r, `write ${hex('hi\n')}`)).toBe('ok 3');
      expect(await ask(r, 'hup')).toBe('ok ');
      await removed(name);
    } finally {
      r.kill();
    }
  });

  it('cdevemu run fails a program that opens fewer times than recorded in strict mode, before its verdict', async () => {
    const path = await writeTrace('two-opens.jsonl', [
      { t: 5, op: 'open', file: 1, flags: 2 },
      { t: 6, op: 'release', file: 1 },
      { t: 7, op: 'open', file: 2, flags: 2 },
      { t: 8, op: 'release', file: 2 },
    ]);
    const prog = 'import os,sys\nos.close(os.open(sys.argv[1], os.O_RDWR))\n';
    const runWith = (mode: string, opens: number) =>
      cdevemu(['run', '--device', `r0=replay:${JSON.stringify({ trace: path, speed: 0, mode })}`, '--expect', 'exit:0', '--', 'python3', '-c', prog.repeat(opens), '{mount}/dev/r0']);
    const once = await runWith('strict', 1);
    expect(once.stdout).toMatch(/replay_incomplete on r0 \(generation 1\): \{"opens":1,"expectedOpens":2,.*"when":"end"/);
    expect(once.stdout).toMatch(/dev\/r0: no device saw a failure$/m);
    expect(once.code).toBe(1);
    const twice = await runWith('strict', 2);
    expect(twice.stdout, twice.stderr).toMatch(/^PASS /m);
    expect(twice.code).toBe(0);
    const lenient = await runWith('lenient', 1);
    expect(lenient.stdout, lenient.stderr).toMatch(/^PASS /m);
    expect(lenient.code).toBe(0);
    // Against a daemon, whose device outlives the run: the run tells it the session ended (POST .../end-session).
    const { Daemon } = await import('../daemon/harness.js');
    const d = await Daemon.start();
    try {
      await d.client.plug({ model: 'replay', name: 'r0', options: { trace: path, speed: 0, mode: 'strict' } });
      const remote = await cdevemu(['run', '--socket', d.socket, '--expect', 'exit:0', '--', 'python3', '-c', prog, `${d.mount}/dev/r0`]);
      expect(remote.stdout).toMatch(/replay_incomplete on r0 \(generation 1\): \{"opens":1,"expectedOpens":2,.*"when":"end"/);
      expect(remote.code).toBe(1);
      await expect(d.client.endSession('nope')).rejects.toMatchObject({ status: 404, code: 'not_found' });
    } finally {
      await d.stop();
    }
  });

  it('strict: a write that differs fails EIO, with an event naming the offset', async () => {
    const name = await plugReplay(trace(), { speed: 0, mode: 'strict' });
    const c = await client(name);
    try {
      expect(await ask(c, `write ${hex('PINGX\n')}`)).toBe('err EIO');
    } finally {
      c.kill();
    }
    const ev = t.events.filter((e) => e.device === name && e.type === 'replay_mismatch');
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ op: 'write', offset: 4, expected: hex('1\n'), got: hex('X\n'), mode: 'strict' });
  });

  it('lenient: a write that differs is taken, and the event says where', async () => {
    const name = await plugReplay(trace(), { speed: 0, mode: 'lenient' });
    const c = await client(name);
    try {
      expect(await ask(c, `write ${hex('PINGX\n')}`)).toBe('ok 6');
      expect(await ask(c, 'read 64')).toBe(`ok ${hex('PONG\n')}`);
    } finally {
      c.kill();
    }
    expect(t.events.filter((e) => e.device === name && e.type === 'replay_mismatch')).toMatchObject([{ op: 'write', offset: 4, mode: 'lenient' }]);
  });

  it('an ioctl whose input no recorded call had: EIO in strict mode, answered in lenient, an event in both', async () => {
    for (const mode of ['strict', 'lenient']) {
      const name = await plugReplay(trace(), { speed: 0, mode });
      const c = await client(name);
      try {
        expect(await ask(c, 'speed 19200')).toBe(mode === 'strict' ? 'err EIO' : 'ok ');
      } finally {
        c.kill();
      }
      expect(t.events.filter((e) => e.device === name && e.type === 'replay_mismatch')).toMatchObject([{ op: 'ioctl', cmd: 0x5402, mode }]);
    }
  });

  it('an ioctl command the trace never saw: ENOTTY in both modes, a mismatch that fails in strict mode', async () => {
    for (const mode of ['strict', 'lenient']) {
      const name = await plugReplay(trace(), { speed: 0, mode });
      const c = await client(name);
      try {
        expect(await ask(c, 'tiocmget')).toBe('err ENOTTY');
      } finally {
        c.kill();
      }
      expect(t.events.filter((e) => e.device === name && e.type === 'replay_mismatch')).toMatchObject([{ op: 'ioctl', cmd: 0x5415, expected: '', mode, fails: mode === 'strict' }]);
    }
  });

  it('cdevemu run fails on a strict mismatch the program shrugged off, and passes the same program in lenient mode', async () => {
    // Writes what the recording did not, ignores the EIO, exits 0.
    const prog = 'import os,sys\nfd = os.open(sys.argv[1], os.O_RDWR)\ntry: os.write(fd, b"PINGX\\n")\nexcept OSError as e: print("write failed", e.errno)\n';
    const runWith = (mode: string) =>
      cdevemu(['run', '--device', `r0=replay:${JSON.stringify({ trace: trace(), speed: 0, mode })}`, '--expect', 'exit:0', '--', 'python3', '-c', prog, '{mount}/dev/r0']);
    const strict = await runWith('strict');
    expect(strict.stdout).toMatch(/\| write failed 5/);
    expect(strict.stdout).toMatch(/ok {4}expect program exit 0/);
    expect(strict.stdout).toMatch(/replay_mismatch on r0 \(generation 1\): \{"op":"write","offset":4,/);
    expect(strict.stdout).toMatch(/dev\/r0: no device saw a failure$/m);
    expect(strict.code).toBe(1);
    const lenient = await runWith('lenient');
    expect(lenient.stdout, lenient.stderr).toMatch(/^PASS /m);
    expect(lenient.code).toBe(0);
  });

  it('fault rules apply on top of the replay', async () => {
    const name = await plugReplay(trace(), { speed: 0 });
    const rule = t.emu.faults.add({ device: name, op: 'read', action: 'fail', errno: 'ENOSPC' });
    const c = await client(name);
    try {
      expect(await ask(c, 'read 64')).toBe('err ENOSPC');
      t.emu.faults.remove(rule.id);
      expect(await ask(c, 'read 64')).toBe(`ok ${hex('PONG\n')}`);
    } finally {
      c.kill();
    }
  });
});

describe('ioctl order', () => {
  /** Records a pty through a `record` device while a client asks `commands` of it (each answered ok...); the trace's path. */
  async function recordPty(file: string, commands: string[]): Promise<string> {
    const path = join(dir, file);
    const pty = pythonInteractive(PTY);
    const inst = await t.emu.devices.plug({ model: 'record', name: `rec-${file.replace('.jsonl', '')}`, options: { device: await pty.line(), trace: path } });
    const c = await client(inst.name);
    try {
      for (const command of commands) expect(await ask(c, command)).toMatch(/^ok /);
    } finally {
      c.kill();
      await t.emu.devices.unplug(inst.name);
      pty.kill();
    }
    return path;
  }

  it('termios set in another order than recorded: a mismatch, though each input was recorded', async () => {
    const path = await recordPty('order.jsonl', ['speed 9600', 'speed 115200']);
    const name = await plugReplay(path, { speed: 0 });
    const r = await client(name);
    try {
      expect(await ask(r, 'speed 115200')).toBe('err EIO');
    } finally {
      r.kill();
    }
    expect(t.events.filter((e) => e.device === name && e.type === 'replay_mismatch')).toMatchObject([{ op: 'ioctl', cmd: 0x5402, mode: 'strict' }]);
  });

  it('TCSETSF then TCSETS replayed as TCSETS then TCSETSF: a mismatch naming the command that was due', async () => {
    const path = await recordPty('order-across.jsonl', ['flushspeed 9600', 'speed 115200']);
    for (const [mode, answer] of [['strict', 'err EIO'], ['lenient', 'ok ']]) {
      const name = await plugReplay(path, { speed: 0, mode });
      const r = await client(name);
      try {
        expect(await ask(r, 'speed 115200')).toBe(answer);
        expect(await ask(r, 'flushspeed 9600')).toBe('ok ');
      } finally {
        r.kill();
      }
      expect(t.events.filter((e) => e.device === name && e.type === 'replay_mismatch')).toMatchObject([{ op: 'ioctl', cmd: 0x5402, expectedCmd: 0x5404, mode }]);
    }
  });

  it('termios set on the other side of a write than recorded: a mismatch naming both places, though every call and byte matches', async () => {
    const before = await recordPty('set-then-write.jsonl', ['speed 9600', `write ${hex('hi')}`]);
    expect((await runSteps(before, 'strict', ['s 9600', `w ${hex('hi')}`])).stdout).toMatch(/^PASS /m);
    // The bytes went out at the old speed: the line was set after them.
    const late = await runSteps(before, 'strict', [`w ${hex('hi')}`, 's 9600']);
    expect(late.stdout).toMatch(/replay_mismatch on r0 \(generation 1\): \{"op":"ioctl","offset":2,"expectedOffset":0,"cmd":21506,"expectedCmd":21506,/);
    expect(late.stdout).toMatch(/: no device saw a failure$/m);
    expect(late.code).toBe(1);
    const after = await recordPty('write-then-set.jsonl', [`write ${hex('hi')}`, 'speed 9600']);
    const early = await runSteps(after, 'strict', ['s 9600', `w ${hex('hi')}`]);
    expect(early.stdout).toMatch(/replay_mismatch on r0 \(generation 1\): \{"op":"ioctl","offset":0,"expectedOffset":2,"cmd":21506,/);
    expect(early.code).toBe(1);
    const lenient = await runSteps(before, 'lenient', [`w ${hex('hi')}`, 's 9600']);
    expect(lenient.stdout, lenient.stderr).toMatch(/^PASS /m);
  });

  it('an older setting made again is a mismatch (the line ends at another speed); the latest made again is a repeat', async () => {
    const path = await recordPty('set-again.jsonl', ['speed 9600', 'speed 115200']);
    const back = await runSteps(path, 'strict', ['s 9600', 's 115200', 's 9600']);
    expect(back.stdout).toMatch(/replay_mismatch on r0 \(generation 1\): \{"op":"ioctl","offset":null,"expectedOffset":null,"cmd":21506,"expectedCmd":null,/);
    expect(back.stdout).toMatch(/: no device saw a failure$/m);
    expect(back.code).toBe(1);
    const twice = await runSteps(path, 'strict', ['s 9600', 's 9600', 's 115200', 's 115200']);
    expect(twice.stdout, twice.stderr).toMatch(/^PASS /m);
  });

  it('the recorded order replayed, with a query asked more often: no mismatch', async () => {
    const path = await recordPty('order-same.jsonl', ['flushspeed 9600', 'speed 115200']);
    const name = await plugReplay(path, { speed: 0 });
    const r = await client(name);
    try {
      expect(await ask(r, 'ispeed')).toMatch(/^ok \d+$/); // a TCGETS more than recorded: a repeat
      expect(await ask(r, 'flushspeed 9600')).toBe('ok ');
      expect(await ask(r, 'speed 115200')).toBe('ok ');
      expect(await ask(r, 'ispeed')).toBe(`ok ${termiosB115200}`);
    } finally {
      r.kill();
    }
    await t.waitEvent((e) => e.device === name && e.type === 'released', 5000);
    expect(findings(name)).toEqual([]);
  });
});

describe('a recording used up or not', () => {
  /** PING1/PONG1, PING2/PONG2, then the close. */
  async function dialogue(): Promise<string> {
    return writeTrace(`dialogue-${seq++}.jsonl`, [
      { t: 5, op: 'open', file: 1, flags: 2 },
      { t: 6, op: 'write', file: 1, data: hex('PING1\n'), result: 6 },
      { t: 7, op: 'read', file: 1, size: 64, data: hex('PONG1\n') },
      { t: 8, op: 'write', file: 1, data: hex('PING2\n'), result: 6 },
      { t: 9, op: 'read', file: 1, size: 64, data: hex('PONG2\n') },
      { t: 10, op: 'release', file: 1 },
    ]);
  }

  /** The replay_incomplete events of a client of a fresh replay of the dialogue that sends `cmds`, then closes. */
  async function afterClose(cmds: string[]): Promise<DeviceEvent[]> {
    const name = await plugReplay(await dialogue(), { speed: 0 });
    const c = await client(name);
    for (const cmd of cmds) expect(await ask(c, cmd)).toMatch(/^ok /);
    c.kill();
    await t.waitEvent((e) => e.device === name && e.type === 'released', 5000);
    return t.events.filter((e) => e.device === name && e.type === 'replay_incomplete');
  }

  it('all of it: nothing to say, though what came after the last write is left unread', async () => {
    expect(await afterClose([`write ${hex('PING1\n')}`, 'read 64', `write ${hex('PING2\n')}`])).toEqual([]);
  });

  it('a write left out: replay_incomplete says how much was written', async () => {
    expect(await afterClose([`write ${hex('PING1\n')}`, 'read 64'])).toMatchObject([{ writtenBytes: 6, expectedBytes: 12, unreadBytes: 0, missingIoctls: [], when: 'release', fails: true }]);
  });

  it('what came before the last write left unread: replay_incomplete says how much', async () => {
    expect(await afterClose([`write ${hex('PING1\n')}`, `write ${hex('PING2\n')}`])).toMatchObject([{ writtenBytes: 12, expectedBytes: 12, unreadBytes: 6 }]);
  });
});

describe('recorded failures', () => {
  it('a read, a write and an open the device failed fail so again, at their place', async () => {
    const path = await writeTrace('failures.jsonl', [
      { t: 5, op: 'open', file: 1, flags: 2 },
      { t: 6, op: 'read', file: 1, size: 8, errno: 'EINVAL' },
      { t: 7, op: 'read', file: 1, size: 64, data: hex('hello') },
      { t: 8, op: 'write', file: 1, data: hex('ab'), result: 2 },
      { t: 9, op: 'write', file: 1, data: hex('cd'), errno: 'ENOSPC' },
      { t: 10, op: 'write', file: 1, data: hex('cd'), result: 2 },
      { t: 11, op: 'open', file: 2, flags: 2, errno: 'EBUSY' },
      { t: 12, op: 'release', file: 1 },
    ]);
    const name = await plugReplay(path, { speed: 0 });
    const c = await client(name);
    try {
      expect(await ask(c, 'read 8')).toBe('err EINVAL');
      expect(await ask(c, 'read 64')).toBe(`ok ${hex('hello')}`);
      // Written at once, the device takes what it took before the failure: the rest fails as it did.
      expect(await ask(c, `write ${hex('abcd')}`)).toBe('ok 2');
      expect(await ask(c, `write ${hex('cd')}`)).toBe('err ENOSPC');
      expect(await ask(c, `write ${hex('cd')}`)).toBe('ok 2');
      expect(await ask(c, 'open')).toBe('err EBUSY');
    } finally {
      c.kill();
    }
    await t.waitEvent((e) => e.device === name && e.type === 'released' && e.file === 1, 5000); // the client's own file: the last
    expect(findings(name)).toEqual([]);
  });
});

describe('opens and failures the recording has, and the program does not', () => {
  /** An open, then `ab` written. */
  const openAb = [
    { t: 5, op: 'open', file: 1, flags: 2 },
    { t: 6, op: 'write', file: 1, data: hex('ab'), result: 2 },
  ];

  it('an open more than recorded: a mismatch, EIO in strict mode and taken in lenient', async () => {
    const path = await writeTrace('one-open.jsonl', [
      { t: 5, op: 'open', file: 1, flags: 2 },
      { t: 6, op: 'release', file: 1 },
    ]);
    const strict = await runSteps(path, 'strict', ['o']);
    expect(strict.stdout).toMatch(/\| o failed: \[Errno 5\]/);
    expect(strict.stdout).toMatch(/replay_mismatch on r0 \(generation 1\): \{"op":"open",/);
    expect(strict.stdout).toMatch(/: no device saw a failure$/m);
    expect(strict.code).toBe(1);
    const lenient = await runSteps(path, 'lenient', ['o']);
    expect(lenient.stdout, lenient.stderr).toMatch(/^PASS /m);
  });

  it('an open and a write the device failed, never made: replay_incomplete, which fails a strict run', async () => {
    const path = await writeTrace('failures-left.jsonl', [
      ...openAb,
      { t: 7, op: 'write', file: 1, data: hex('cd'), errno: 'ENOSPC' },
      { t: 8, op: 'open', file: 2, flags: 2, errno: 'EBUSY' },
      { t: 9, op: 'release', file: 1 },
    ]);
    const skipped = await runSteps(path, 'strict', [`w ${hex('ab')}`]);
    expect(skipped.stdout).toMatch(/replay_incomplete on r0 \(generation 1\): \{"opens":1,"expectedOpens":2,"writtenBytes":2,"expectedBytes":2,"unreadBytes":0,"missingIoctls":\[\],"missingFailedWrites":\["ENOSPC"\]/);
    expect(skipped.stdout).toMatch(/: no device saw a failure$/m);
    expect(skipped.code).toBe(1);
    // Put under both failures, as the recorded program was.
    const met = await runSteps(path, 'strict', [`w ${hex('ab')}`, `w ${hex('cd')}`, 'o']);
    expect(met.stdout).toMatch(/\| w 6364 failed: \[Errno 28\]/);
    expect(met.stdout).toMatch(/\| o failed: \[Errno 16\]/);
    expect(met.stdout, met.stderr).toMatch(/^PASS /m);
  });

  it('a read the device failed before the last write, never made: replay_incomplete, though it had no bytes to leave unread', async () => {
    const path = await writeTrace('failed-read-left.jsonl', [
      { t: 5, op: 'open', file: 1, flags: 2 },
      { t: 6, op: 'read', file: 1, size: 8, errno: 'EIO' },
      { t: 7, op: 'write', file: 1, data: hex('ab'), result: 2 },
      { t: 8, op: 'release', file: 1 },
    ]);
    const skipped = await runSteps(path, 'strict', [`w ${hex('ab')}`]);
    expect(skipped.stdout).toMatch(/replay_incomplete on r0 \(generation 1\): \{.*"unreadBytes":0,.*"missingFailedReads":\["EIO"\]/);
    expect(skipped.code).toBe(1);
    // Put under the failure, as the recorded program was.
    const met = await runSteps(path, 'strict', ['r 8', `w ${hex('ab')}`]);
    expect(met.stdout).toMatch(/\| r 8 failed: \[Errno 5\]/);
    expect(met.stdout, met.stderr).toMatch(/^PASS /m);
  });

  it('the write that found the device gone comes before the recorded unplug: a program that stops short of it was never unplugged', async () => {
    const path = await writeTrace('gone-on-write.jsonl', [
      ...openAb,
      { t: 7, op: 'write', file: 1, data: hex('x'), errno: 'EIO' },
      { t: 7, op: 'unplug', errno: 'EIO' },
    ]);
    const early = await runSteps(path, 'strict', [`w ${hex('ab')}`]);
    expect(early.stdout).toMatch(/replay_incomplete on r0 \(generation 1\): \{.*"missingFailedWrites":\["EIO"\]/);
    expect(early.code).toBe(1);
    const whole = await runSteps(path, 'strict', [`w ${hex('ab')}`, `w ${hex('x')}`]);
    expect(whole.stdout).toMatch(/\| w 78 failed: \[Errno 5\]/);
    expect(whole.stdout, whole.stderr).toMatch(/^PASS /m);
  });
});

describe('hand-written traces', () => {
  it('cdevemu run refuses one whose entries belong to no open (exit 2, naming the line): a program that leaves the device alone would pass it', async () => {
    const path = await writeTrace('no-open.jsonl', [{ t: 5, op: 'read', file: 1, size: 64, data: hex('hello\n') }]);
    const r = await runSteps(path, 'strict', []);
    expect(r.stderr).toContain(`replay: ${path}:2: read: file 1 is not open here (never opened, its open failed, or released)`);
    expect(r.code).toBe(2);
  });
});

describe('short writes', () => {
  it('a write the device took short is taken short again, and the rest after it', async () => {
    const path = await writeTrace('short.jsonl', [
      { t: 5, op: 'open', file: 1, flags: 2 },
      { t: 6, op: 'write', file: 1, data: hex('abcdef'), result: 4 },
      { t: 7, op: 'write', file: 1, data: hex('ef'), result: 2 },
    ]);
    for (const mode of ['strict', 'lenient']) {
      const name = await plugReplay(path, { speed: 0, mode });
      const c = await client(name);
      try {
        expect(await ask(c, `write ${hex('abcdef')}`)).toBe('ok 4');
        expect(await ask(c, `write ${hex('ef')}`)).toBe('ok 2');
      } finally {
        c.kill();
      }
      await t.waitEvent((e) => e.device === name && e.type === 'released', 5000);
      expect(findings(name)).toEqual([]);
    }
  });
});

describe('replay pace', () => {
  /** Two reads recorded an hour apart. */
  async function twoReads(): Promise<string> {
    return writeTrace(`pace-${seq++}.jsonl`, [
      { t: 5, op: 'open', file: 1, flags: 2 },
      { t: 15, op: 'read', file: 1, size: 64, data: hex('first') },
      { t: 3_600_005, op: 'read', file: 1, size: 64, data: hex('second') },
    ]);
  }

  it('speed 1: what came an hour later has not come yet', async () => {
    const c = await client(await plugReplay(await twoReads(), { speed: 1 }));
    try {
      expect(await ask(c, 'read 64')).toBe(`ok ${hex('first')}`);
      await ask(c, 'nonblock');
      expect(await ask(c, 'read 64')).toBe('err EAGAIN');
    } finally {
      c.kill();
    }
  });

  it('a large speed brings it, in order; speed 0 brings both at once', async () => {
    const fast = await client(await plugReplay(await twoReads(), { speed: 1e6 }));
    try {
      // A blocking read wakes when the second comes; each read takes what has come, in order.
      let got = '';
      while (got.length < hex('firstsecond').length) got += (await ask(fast, 'read 64')).slice(3);
      expect(got).toBe(hex('firstsecond'));
    } finally {
      fast.kill();
    }
    const now = await client(await plugReplay(await twoReads(), { speed: 0 }));
    try {
      expect(await ask(now, 'read 64')).toBe(`ok ${hex('firstsecond')}`);
    } finally {
      now.kill();
    }
  });
});
