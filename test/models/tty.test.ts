/**
 * The tty model on a real mount: stty and python3-serial against it, the
 * line discipline's canonical and raw reads, a loopback, modem lines,
 * exclusivity, TIOCGSERIAL, what FIONREAD gives, what a hung-up tty
 * gives its clients after carrier loss and after unplug, and a blocking
 * open of a port without clocal, which waits for carrier.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLLERR, POLLHUP, POLLIN, POLLOUT } from '../../src/devio.js';
import type { Instance } from '../../src/core/index.js';
import { TCFLSH, TCSBRK, TIOCCBRK, TIOCEXCL, TIOCGEXCL, TIOCINQ, TIOCMBIC, TIOCMGET, TIOCMIWAIT, TIOCNXCL, TIOCSBRK } from '../../src/models/tty/ioctls.js';
import { TIOCM_CD, TIOCM_CTS, TIOCM_DSR, TIOCM_DTR, TIOCM_RI, TIOCM_RTS, type TtyPort } from '../../src/models/tty/port.js';
import { CLOCAL, CRTSCTS, ECHO } from '../../src/models/tty/termios.js';
import { runsAsRoot } from '../helpers/as-user.js';
import { cClient } from '../helpers/cc.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { Interactive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { hex, TtyClient } from './tty-client.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

const plug = async (options: Record<string, unknown> = {}) => {
  const inst = (await t.emu.devices.plug({ model: 'tty', name: 'ttyUSB%d', options })) as Instance<TtyPort>;
  return { inst, name: inst.name, path: t.path(`dev/${inst.name}`) };
};
const action = (name: string, a: string, arg?: unknown) => t.emu.devices.action(name, a, arg) as Promise<Record<string, unknown>>;
const status = async (name: string) =>
  (await action(name, 'status')) as {
    termios: { ispeed: number; ospeed: number; framing: string; canonical: boolean; vmin: number; vtime: number };
    device: { inStep: boolean };
    lines: string[];
    opens: number;
    blockedOpens: number;
    exclusive: boolean;
    inputBuffered: number;
  };
const eventsOf = (d: { name: string; inst: { generation: number } }, type: string) =>
  t.events.filter((e) => e.device === d.name && e.generation === d.inst.generation && e.type === type);
/** Waits until the device has `n` bytes buffered for reading (what the action put on the line has arrived). */
const buffered = (name: string, n: number) =>
  until(() => (t.emu.devices.get(name)?.state as TtyPort).ldisc.buffered === n, 10_000, `${n} bytes buffered on ${name}`);
const inFlight = (name: string, op: string) => until(() => t.emu.devices.get(name)?.inFlight.some((h) => h.op === op) ?? false, 10_000, `${op} in flight`);

/** stty's flags as a list of words ("-parenb", "cs8", ...). */
const words = (text: string): string[] => text.split(/[\s;]+/);

/** The NMEA checksum is the XOR of the characters between '$' and '*'. */
function validSentence(line: string): boolean {
  const m = /^\$([^*]+)\*([0-9A-F]{2})\r\n$/.exec(line);
  if (!m) return false;
  let sum = 0;
  for (const c of m[1]!) sum ^= c.charCodeAt(0);
  return sum === parseInt(m[2]!, 16);
}

describe('stty', () => {
  it('shows the port settings and changes them; the model keeps what stty set', async () => {
    const d = await plug();
    const show = await run('stty', ['-F', d.path, '-a']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^speed 9600 baud; rows 0; columns 0; line = 0;/);
    expect(show.stdout).toContain('min = 1; time = 0;');
    expect(words(show.stdout)).toEqual(expect.arrayContaining(['cs8', 'hupcl', 'cread', 'clocal', '-parenb', 'icrnl', 'ixon', 'opost', 'onlcr', 'isig', 'icanon', 'iexten', 'echo', 'echoe', 'echok', 'echoctl', 'echoke']));
    // stty checks its change by reading the settings back (TCSETSW, then TCGETS).
    const set = await run('stty', ['-F', d.path, '4800', 'cs7', 'parenb', '-icanon', 'min', '0', 'time', '5', '-echo', '-clocal']);
    expect(set.code, set.stderr).toBe(0);
    const after = await run('stty', ['-F', d.path, '-a']);
    expect(after.stdout).toMatch(/^speed 4800 baud;/);
    expect(after.stdout).toContain('min = 0; time = 5;');
    expect(words(after.stdout)).toEqual(expect.arrayContaining(['parenb', '-parodd', 'cs7', '-clocal', '-icanon', '-echo', 'echoe']));
    const s = await status(d.name);
    expect(s.termios).toMatchObject({ ispeed: 4800, ospeed: 4800, framing: '7E1', canonical: false, vmin: 0, vtime: 5 });
    expect(eventsOf(d, 'tty_termios').at(-1)).toMatchObject({ ospeed: 4800, framing: '7E1' });
    // The settings belong to the port: a later open finds them.
    expect((await run('stty', ['-F', d.path])).stdout).toMatch(/^speed 4800 baud;/);
  });
});

describe('python3-serial', () => {
  const readLines = (path: string, baud: number) =>
    run(
      '/usr/bin/python3',
      [
        '-c',
        `import serial, sys
s = serial.Serial(sys.argv[1], int(sys.argv[2]))
lines = [s.readline() for _ in range(4)]
s.close()
for l in lines: print(l.decode('latin1').encode('unicode_escape').decode())`,
        path,
        String(baud),
      ],
      { timeoutMs: 30_000 },
    );
  const sentences = (stdout: string) =>
    stdout
      .trim()
      .split('\n')
      .map((l) => l.replace(/\\r/g, '\r').replace(/\\n/g, '\n'));

  for (const baud of [4800, 9600]) {
    it(`opens a ${baud}-baud GPS at ${baud} and reads NMEA sentences`, async () => {
      const d = await plug({ source: 'nmea', baud, fix: { lat: -33.8568, lon: 151.2153, alt: 42 } });
      const r = await readLines(d.path, baud);
      expect(r.code, r.stderr).toBe(0);
      // The first line may start mid-sentence (the receiver was talking before the open).
      const whole = sentences(r.stdout).slice(1);
      expect(whole.length).toBe(3);
      for (const l of whole) expect(validSentence(l), l).toBe(true);
      const gga = whole.find((l) => l.startsWith('$GPGGA'));
      const rmc = whole.find((l) => l.startsWith('$GPRMC'));
      expect(gga ?? rmc).toMatch(/,3351\.4080,S,15112\.9180,E,/);
      expect((await status(d.name)).termios.ospeed).toBe(baud);
    });
  }

  it('reads no sentence from a 4800-baud GPS at 9600: the bytes arrive garbled', async () => {
    const d = await plug({ source: 'nmea', baud: 4800 });
    const r = await run(
      '/usr/bin/python3',
      [
        '-c',
        `import serial, sys
s = serial.Serial(sys.argv[1], 9600)
data = s.read(200)
print(len(data), b'$GP' in data, data.count(b'\\n'))`,
        d.path,
      ],
      { timeoutMs: 30_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    // 200 bytes, more than one burst of sentences (GGA, GSA, RMC): none of it reads as NMEA.
    expect(r.stdout.trim().split(' ')).toEqual(['200', 'False', '0']);
    expect(((await action(d.name, 'status')).icount as { frame: number }).frame).toBeGreaterThan(0);
  });

  it('sets a custom rate with TCSETS2 (BOTHER) and reads it back with TCGETS2', async () => {
    const d = await plug();
    const r = await run('/usr/bin/python3', [
      '-c',
      `import serial, sys, fcntl, struct
s = serial.Serial(sys.argv[1], 250000)
buf = bytearray(44)
fcntl.ioctl(s.fd, 0x802C542A, buf, True)
print(*struct.unpack_from('IIII', buf), *struct.unpack_from('II', buf, 36))
s.close()`,
      d.path,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [, , cflag, , ispeed, ospeed] = r.stdout.trim().split(' ').map(Number);
    expect([ispeed, ospeed]).toEqual([250000, 250000]);
    expect(cflag! & 0o10017).toBe(0o10000); // BOTHER
    expect((await status(d.name)).termios.ospeed).toBe(250000);
    // pyserial's 9600 afterwards is a table rate again (B9600), as tty_encode_baud_rate() re-encodes it.
    await run('/usr/bin/python3', ['-c', 'import serial, sys; serial.Serial(sys.argv[1], 9600).close()', d.path]);
    expect((await run('stty', ['-F', d.path])).stdout).toMatch(/^speed 9600 baud;/);
  });
});

describe('line discipline', () => {
  it('assembles canonical lines with ERASE, KILL, ICRNL and EOF, and echoes them to the device', async () => {
    const d = await plug();
    const c = await TtyClient.open(d.path);
    await action(d.name, 'input', { text: 'ab\x7fc\rxyz\x15q\n' });
    await buffered(d.name, 5);
    expect(await c.op('read 100')).toBe(`ok ${hex('ac\n')}`);
    expect(await c.op('read 100')).toBe(`ok ${hex('q\n')}`);
    // ECHOE erases with "\b \b", ECHOKE erases the killed line; ONLCR makes the echoed NL CR NL.
    const echo = 'ab\b \bc\r\nxyz\b \b\b \b\b \bq\r\n';
    await until(() => d.inst.state.sentTotal >= echo.length, 10_000, 'the echo sent');
    expect((await action(d.name, 'output')).text).toBe(echo);
    // A long line is read in pieces; EOF at the start of a line reads as 0 bytes, elsewhere it ends the line.
    await action(d.name, 'input', { text: 'hello world\n\x04ab\x04' });
    await buffered(d.name, 14);
    expect(await c.op('read 5')).toBe(`ok ${hex('hello')}`);
    expect(await c.op('read 100')).toBe(`ok ${hex(' world\n')}`);
    expect(await c.op('read 100')).toBe('ok ');
    expect(await c.op('read 100')).toBe(`ok ${hex('ab')}`);
    // A read with nothing ready blocks, and O_NONBLOCK says EAGAIN.
    expect(await c.op('nonblock')).toBe('ok');
    expect(await c.op('read 100')).toBe('EAGAIN');
    await c.close();
  });

  it('keeps 4095 bytes of a canonical line that does not fit and still ends it at its newline', async () => {
    const d = await plug({ baud: 115200 });
    const c = await TtyClient.open(d.path);
    expect(await c.op('speed 115200')).toBe('ok');
    expect(await c.op(`flags 3 ${ECHO} 0`)).toBe('ok');
    await action(d.name, 'input', { text: 'x'.repeat(5000) + '\n' });
    expect(await c.op('read 8192', 30_000)).toBe(`ok ${hex('x'.repeat(4095) + '\n')}`);
    await c.close();
  });

  it('reads raw input by VMIN and VTIME', async () => {
    const d = await plug();
    const c = await TtyClient.open(d.path);
    expect(await c.op('raw 0 0')).toBe('ok');
    expect(await c.op('read 10')).toBe('ok '); // MIN 0 TIME 0: what is there, nothing
    expect(await c.op('raw 3 0')).toBe('ok');
    c.start('read 10');
    await inFlight(d.name, 'read');
    await action(d.name, 'input', { text: 'ab' });
    await until(() => d.inst.state.icount.rx === 2, 10_000, 'two bytes received');
    // Two bytes are fewer than MIN: the read has them and is still waiting.
    expect(t.emu.devices.get(d.name)!.inFlight.map((h) => h.op)).toEqual(['read']);
    await action(d.name, 'input', { text: 'c' });
    expect(await c.answer()).toBe(`ok ${hex('abc')}`);
    // MIN 5 TIME 2: after the first byte, 0.2 s without another ends the read short of MIN.
    expect(await c.op('raw 5 2')).toBe('ok');
    await action(d.name, 'input', { text: 'xyz' });
    await buffered(d.name, 3);
    expect(await c.op('read 10')).toBe(`ok ${hex('xyz')}`);
    // MIN 0 TIME 3: nothing within 0.3 s reads as 0 bytes.
    expect(await c.op('raw 0 3')).toBe('ok');
    expect(await c.op('read 10')).toBe('ok ');
    await c.close();
  });

  it('loops back what it transmits, after output processing (OPOST ONLCR)', async () => {
    const d = await plug({ source: 'loopback' });
    const c = await TtyClient.open(d.path);
    expect(await c.op('raw 4 0')).toBe('ok');
    expect(await c.op(`write ${hex('ping')}`)).toBe('ok 4');
    expect(await c.op('read 10')).toBe(`ok ${hex('ping')}`);
    expect(await c.op('raw 3 0')).toBe('ok');
    expect(await c.op('flags 1 0 0x5')).toBe('ok'); // OPOST | ONLCR back on
    expect(await c.op(`write ${hex('b\n')}`)).toBe('ok 2');
    expect(await c.op('read 10')).toBe(`ok ${hex('b\r\n')}`);
    // A break on a loopback reads as \0 (cfmakeraw cleared IGNBRK and BRKINT).
    expect(await c.op('raw 1 0')).toBe('ok');
    expect(await c.op(`arg ${TCSBRK} 0`)).toBe('ok 0');
    expect(await c.op('read 10')).toBe('ok 00');
    expect(eventsOf(d, 'tty_break')).toHaveLength(1);
    await c.close();
  });

  it('starts a TIOCSBRK break only once the output has drained: while CTS holds it (crtscts), the ioctl waits', async () => {
    const d = await plug({ source: 'loopback', lines: { cts: false } });
    const c = await TtyClient.open(d.path);
    expect(await c.op('raw 5 0')).toBe('ok');
    expect(await c.op(`flags 2 0 ${CRTSCTS}`)).toBe('ok');
    expect(await c.op(`write ${hex('data')}`)).toBe('ok 4');
    c.start(`arg ${TIOCSBRK} 0`);
    await inFlight(d.name, 'ioctl');
    expect(eventsOf(d, 'tty_break')).toEqual([]);
    await action(d.name, 'modem', { cts: true });
    expect(await c.answer()).toBe('ok 0');
    // The loopback saw the data, then the break (a \0 with cfmakeraw's settings).
    expect(await c.op('read 10')).toBe(`ok ${hex('data')}00`);
    expect(await c.op(`arg ${TIOCCBRK} 0`)).toBe('ok 0');
    await c.close();
  });

  it('flushes input with TCFLSH and refuses a bad queue selector', async () => {
    const d = await plug();
    const c = await TtyClient.open(d.path);
    await action(d.name, 'input', { text: 'abc\n' });
    await buffered(d.name, 4);
    expect(await c.op(`arg ${TCFLSH} 0`)).toBe('ok 0');
    expect((await status(d.name)).inputBuffered).toBe(0);
    expect(await c.op(`arg ${TCFLSH} 7`)).toBe('EINVAL');
    await c.close();
  });
});

describe('modem lines, exclusivity, serial info', () => {
  it('raises DTR/RTS at every open, sets them with TIOCM*, reports the device lines and waits for a change with TIOCMIWAIT', async () => {
    const d = await plug();
    const c = await TtyClient.open(d.path);
    expect(await c.op(`int ${TIOCMGET}`)).toBe(`ok ${TIOCM_DTR | TIOCM_RTS | TIOCM_CTS | TIOCM_DSR | TIOCM_CD}`);
    expect(await c.op(`int ${TIOCMBIC} ${TIOCM_DTR}`)).toBe('ok 2');
    expect(eventsOf(d, 'tty_modem').at(-1)).toMatchObject({ lines: ['rts', 'cts', 'dsr', 'cd'] });
    // Every open raises them again (tty_port_block_til_ready()), stty's non-blocking one too.
    const stty = await run('stty', ['-F', d.path]);
    expect(stty.code, stty.stderr).toBe(0);
    expect(await c.op(`int ${TIOCMGET}`)).toBe(`ok ${TIOCM_DTR | TIOCM_RTS | TIOCM_CTS | TIOCM_DSR | TIOCM_CD}`);
    expect(await c.op(`int ${TIOCMBIC} ${TIOCM_DTR}`)).toBe('ok 2');
    await action(d.name, 'modem', { cts: false, ri: true });
    expect(await c.op(`int ${TIOCMGET}`)).toBe(`ok ${TIOCM_RTS | TIOCM_RI | TIOCM_DSR | TIOCM_CD}`);
    c.start(`arg ${TIOCMIWAIT} ${TIOCM_CD}`);
    await inFlight(d.name, 'ioctl');
    await action(d.name, 'modem', { dsr: false }); // not in the mask: still waiting
    expect(t.emu.devices.get(d.name)!.inFlight.map((h) => h.op)).toEqual(['ioctl']);
    await action(d.name, 'modem', { cd: false }); // CLOCAL is set: no hang-up
    expect(await c.answer()).toBe('ok 0');
    await c.close();
    // The last close drops DTR and RTS (HUPCL).
    await until(() => (eventsOf(d, 'tty_modem').at(-1)?.lines as string[]).includes('rts') === false, 10_000, 'RTS dropped');
  });

  it('TIOCEXCL marks the port exclusive until TIOCNXCL or the last close: another open fails EBUSY, except root\'s (CAP_SYS_ADMIN)', async () => {
    const d = await plug();
    const c = await TtyClient.open(d.path);
    expect(await c.op(`arg ${TIOCEXCL} 0`)).toBe('ok 0');
    expect(await c.op(`int ${TIOCGEXCL}`)).toBe('ok 1');
    expect((await status(d.name)).exclusive).toBe(true);
    if (process.getuid?.() === 0) {
      // tty_reopen() lets CAP_SYS_ADMIN through an exclusive port.
      const root = await TtyClient.open(d.path);
      expect(await root.op(`arg ${TIOCNXCL} 0`)).toBe('ok 0');
      expect(await c.op(`int ${TIOCGEXCL}`)).toBe('ok 0');
      expect(await c.op(`arg ${TIOCEXCL} 0`)).toBe('ok 0');
      await root.close();
    } else {
      const refused = await run('python3', ['-c', 'import os, sys; os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)', d.path]);
      expect(refused.stderr).toMatch(/\[Errno 16\] Device or resource busy/);
      expect(await c.op(`arg ${TIOCNXCL} 0`)).toBe('ok 0');
      const second = await TtyClient.open(d.path);
      expect(await second.op(`int ${TIOCGEXCL}`)).toBe('ok 0');
      expect(await c.op(`arg ${TIOCEXCL} 0`)).toBe('ok 0');
      await second.close();
    }
    await c.close();
    await until(async () => (await status(d.name)).opens === 0, 10_000, 'all closed');
    expect((await status(d.name)).exclusive).toBe(false);
  });

  /** setpriv's arguments for a root process without CAP_SYS_ADMIN (a container's root, a hardened service). */
  const withoutSysAdmin = ['--inh-caps=-sys_admin', '--ambient-caps=-sys_admin', '--bounding-set=-sys_admin'];

  it.runIf(runsAsRoot)('asks the calling thread for CAP_SYS_ADMIN, not the opener\'s uid: root without it is refused an exclusive port, TIOCSTI, TIOCVHANGUP and TIOCSSERIAL', async () => {
    const d = await plug();
    const holder = await TtyClient.open(d.path);
    expect(await holder.op(`arg ${TIOCEXCL} 0`)).toBe('ok 0');
    // tty_reopen(): root whose capability is gone is not let through.
    const reopen = await run('setpriv', [...withoutSysAdmin, 'python3', '-c', 'import os, sys; os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)', d.path]);
    expect(reopen.stderr).toMatch(/\[Errno 16\] Device or resource busy/);
    expect(await holder.op(`arg ${TIOCNXCL} 0`)).toBe('ok 0');
    // A descriptor opened by a shell that had the capability, used by a program that has not (a daemon that dropped it after opening).
    const program = `import errno, fcntl, os, struct
def call(cmd, arg):
    try: fcntl.ioctl(3, cmd, arg); return "ok"
    except OSError as e: return errno.errorcode[e.errno]
ss = bytearray(72); fcntl.ioctl(3, 0x541E, ss, True); struct.pack_into("H", ss, 32, 1)
print(call(0x5412, b"x"), call(0x5437, 0), call(0x541F, bytes(ss)))`;
    const dropped = await run('bash', ['-c', 'exec 3<>"$1"; shift; exec setpriv "$@"', 'sh', d.path, ...withoutSysAdmin, 'python3', '-c', program]);
    expect(dropped.stdout.trim(), dropped.stderr).toBe('EPERM EPERM EPERM');
    // Nothing happened: no input injected, nobody hung up, the close timings as they were.
    expect((await status(d.name)).inputBuffered).toBe(0);
    expect(eventsOf(d, 'tty_hangup')).toEqual([]);
    expect(await holder.op('write 41')).toBe('ok 1');
    await holder.close();
  });

  it('answers TIOCGSERIAL as usb-serial does', async () => {
    const d = await plug();
    const r = await run('python3', [
      '-c',
      `import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
buf = bytearray(72)
fcntl.ioctl(fd, 0x541E, buf, True)
print(*struct.unpack_from('iiIiiiii', buf), *struct.unpack_from('H', buf, 32), *struct.unpack_from('H', buf, 40))`,
      d.path,
    ]);
    const [type, line, , , , , , baudBase, closeDelay, closingWait] = r.stdout.trim().split(' ').map(Number);
    expect({ type, line, baudBase, closeDelay, closingWait }).toEqual({ type: 0, line: Number(d.name.slice(6)), baudBase: 9600, closeDelay: 50, closingWait: 3000 });
  });

  it('FIONREAD never reaches the model: the kernel answers the size of the last write, not the input queue', async () => {
    const d = await plug();
    const c = await TtyClient.open(d.path);
    await action(d.name, 'input', { text: 'abc\n' });
    await buffered(d.name, 4);
    const ioctls = t.emu.devices.get(d.name)!.counters.ioctls;
    expect(await c.op(`int ${TIOCINQ}`)).toBe('ok 0'); // 4 bytes wait; FIONREAD says 0
    expect(await c.op(`write ${hex('0123456789')}`)).toBe('ok 10');
    expect(await c.op(`int ${TIOCINQ}`)).toBe('ok 10'); // nothing new to read; FIONREAD says 10
    expect(t.emu.devices.get(d.name)!.counters.ioctls).toBe(ioctls);
    await c.close();
  });
});

describe('hang-up', () => {
  const HUNG = POLLIN | POLLOUT | POLLERR | POLLHUP;

  /** What a hung-up file answers (hung_up_tty_fops): read 0, write and ioctl EIO, poll everything. */
  async function expectHungUp(c: TtyClient): Promise<void> {
    expect(await c.op('read 10')).toBe('ok ');
    expect(await c.op(`write ${hex('x')}`)).toBe('EIO');
    expect(await c.op('attr')).toBe('EIO');
    expect(await c.op(`poll ${POLLIN | POLLOUT} 0`)).toBe(`ok ${HUNG}`);
  }

  it('carrier loss without CLOCAL hangs up the open files: a blocked read returns 0, and the next open is served once carrier is back', async () => {
    const d = await plug();
    const blocked = await TtyClient.open(d.path);
    const idle = await TtyClient.open(d.path);
    expect(await idle.op(`flags 2 ${CLOCAL} 0`)).toBe('ok');
    blocked.start('read 10');
    await inFlight(d.name, 'read');
    await action(d.name, 'modem', { cd: false });
    expect(await blocked.answer()).toBe('ok ');
    await expectHungUp(idle);
    expect(eventsOf(d, 'tty_hangup')).toMatchObject([{ files: 2, why: 'carrier lost' }]);
    // clocal is still clear: a blocking open waits for the carrier (tty_port_block_til_ready()).
    const opening = TtyClient.open(d.path);
    await inFlight(d.name, 'open');
    await action(d.name, 'modem', { cd: true });
    const again = await opening;
    expect(await again.op('attr')).toMatch(/^ok /);
    await Promise.all([blocked.close(), idle.close(), again.close()]);
  });

  it('unplug ends blocked reads (0 bytes, or what a raw reader had), and gives a client between calls what a hung-up tty gives', async () => {
    const d = await plug();
    const holding = await TtyClient.open(d.path);
    const empty = await TtyClient.open(d.path);
    const idle = await TtyClient.open(d.path);
    // The settings belong to the port: both readers wait for MIN (200) bytes, of which 3 came.
    expect(await holding.op('raw 200 0')).toBe('ok');
    await action(d.name, 'input', { text: 'abc' });
    await buffered(d.name, 3);
    const readsInFlight = (): number => t.emu.devices.get(d.name)!.inFlight.filter((h) => h.op === 'read').length;
    // The first read to reach the port takes the 3 bytes (a read is served as it arrives): so one at a time.
    holding.start('read 300');
    await until(() => readsInFlight() === 1, 10_000, 'the first read in flight');
    empty.start('read 300');
    await until(() => readsInFlight() === 2, 10_000, 'two reads in flight');
    await t.emu.devices.unplug(d.name);
    expect(await empty.answer()).toBe('ok ');
    // n_tty had handed the first reader the 3 bytes that came before it slept: it returns them.
    expect(await holding.answer()).toBe(`ok ${hex('abc')}`);
    for (const c of [holding, empty, idle]) await expectHungUp(c);
    await Promise.all([holding.close(), empty.close(), idle.close()]);
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(eventsOf(d, 'late_released')).toHaveLength(3);
  });
});

describe('open without clocal', () => {
  /**
   * A blocking open (test/clients/blocking_open.c) of a port whose CD is
   * down and whose clocal `stty` cleared first: the settings outlast
   * stty's close, so this open waits for carrier.
   */
  async function waitingOpen(restart = false) {
    const d = await plug({ lines: { cd: false } });
    const set = await run('stty', ['-F', d.path, '-clocal']);
    expect(set.code, set.stderr).toBe(0);
    const opener = new Interactive(await cClient('blocking_open'), restart ? [d.path, 'restart'] : [d.path]);
    expect(await opener.line()).toBe('ready');
    await inFlight(d.name, 'open');
    await until(async () => (await status(d.name)).blockedOpens === 1, 10_000, 'the open waiting for carrier');
    return { d, opener };
  }

  it('waits in a blocking open until the device raises CD, DTR and RTS up meanwhile; O_NONBLOCK opens (stty) pass at once', async () => {
    const { d, opener } = await waitingOpen();
    // The port is set up while the open waits: DTR and RTS are up, as a modem needs to answer.
    expect(await status(d.name)).toMatchObject({ lines: ['dtr', 'rts', 'cts', 'dsr'], opens: 0, blockedOpens: 1 });
    const stty = await run('stty', ['-F', d.path, '-a']);
    expect(stty.code, stty.stderr).toBe(0);
    expect(words(stty.stdout)).toContain('-clocal');
    expect(opener.printed).toBe(false);
    expect(t.emu.devices.get(d.name)!.inFlight.map((h) => h.op)).toEqual(['open']);
    await action(d.name, 'modem', { cd: true });
    expect(await opener.line()).toBe('open');
    expect(await status(d.name)).toMatchObject({ opens: 1, blockedOpens: 0 });
    opener.child.stdin!.end();
    expect(await opener.exited).toEqual({ code: 0, signal: null });
  });

  it('ends the wait with EINTR on a signal, the port released; with SA_RESTART too, where the kernel would restart the open', async () => {
    // A FUSE reply cannot carry ERESTARTSYS (fuse_dev_do_write() refuses errors past 511), so SA_RESTART cannot restart it.
    for (const restart of [false, true]) {
      const { d, opener } = await waitingOpen(restart);
      opener.kill('SIGUSR1');
      expect(await opener.line()).toBe('errno EINTR');
      await opener.exited;
      // The failed open was the port's last file: DTR and RTS dropped (hupcl).
      await until(async () => (await status(d.name)).blockedOpens === 0, 10_000, 'no open waiting');
      expect(await status(d.name)).toMatchObject({ lines: ['cts', 'dsr'], opens: 0 });
    }
  });

  it('raises DTR and RTS again when CD or a signal ends the wait, as each pass of the kernel\'s wait does: a TIOCMBIC made meanwhile is undone', async () => {
    for (const end of ['cd', 'signal'] as const) {
      const { d, opener } = await waitingOpen();
      // Another file, open meanwhile (O_NONBLOCK passes the wait), drops them.
      const other = await TtyClient.open(d.path, true);
      expect(await other.op(`int ${TIOCMBIC} ${TIOCM_DTR | TIOCM_RTS}`)).toBe('ok 6');
      expect(await status(d.name)).toMatchObject({ lines: ['cts', 'dsr'], blockedOpens: 1 });
      if (end === 'cd') {
        await action(d.name, 'modem', { cd: true });
        expect(await opener.line()).toBe('open');
        opener.child.stdin!.end();
      } else {
        opener.kill('SIGUSR1');
        expect(await opener.line()).toBe('errno EINTR');
      }
      await opener.exited;
      // The other file keeps the port open: no hupcl drop at the opener's close.
      expect(await other.op(`int ${TIOCMGET}`), end).toBe(`ok ${TIOCM_DTR | TIOCM_RTS | TIOCM_CTS | TIOCM_DSR | (end === 'cd' ? TIOCM_CD : 0)}`);
      await other.close();
    }
  });

  it('starts the open over after a hang-up, as tty_open() retries it, and completes it once CD rises', async () => {
    const { d, opener } = await waitingOpen();
    const modemEvents = eventsOf(d, 'tty_modem').length;
    expect(await action(d.name, 'hangup')).toEqual({ files: 1 });
    // Released (DTR and RTS dropped with hupcl), then opened again (raised).
    await until(() => eventsOf(d, 'tty_modem').length === modemEvents + 2, 10_000, 'the port closed and opened again');
    expect(await status(d.name)).toMatchObject({ lines: ['dtr', 'rts', 'cts', 'dsr'], blockedOpens: 1 });
    expect(opener.printed).toBe(false);
    await action(d.name, 'modem', { cd: true });
    expect(await opener.line()).toBe('open');
    opener.child.stdin!.end();
    await opener.exited;
  });

  it('ends the wait with ENODEV on unplug, as the retried open of a disconnected adapter gets, and frees the device', async () => {
    const { d, opener } = await waitingOpen();
    await t.emu.devices.unplug(d.name);
    expect(await opener.line()).toBe('errno ENODEV');
    await opener.exited;
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(eventsOf(d, 'stuck')).toEqual([]);
  });
});
