/**
 * The spidev model on a real mount: python3-spidev (through `cdevemu run
 * --bind`, as it opens /dev/spidevB.C by number), spi-tools' spi-config
 * and spi-pipe, a C client's bad tx_buf/rx_buf pointers, the ioctls and
 * messages spidev and the SPI core check, the loopback and the ADC on the
 * wire, and what clients get once the device is removed.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_POLLMASK, POLLIN, POLLOUT } from '../../src/devio.js';
import type { Instance } from '../../src/core/index.js';
import {
  SPI_3WIRE,
  SPI_CS_WORD,
  SPI_LOOP,
  SPI_LSB_FIRST,
  SPI_NO_CS,
  SPI_READY,
  SPI_RX_DUAL,
  SPI_TX_DUAL,
  SPI_TX_OCTAL,
  SPI_TX_QUAD,
} from '../../src/models/spidev/abi.js';
import type { SpiDevice } from '../../src/models/spidev/device.js';
import { cClient } from '../helpers/cc.js';
import { cdevemu } from '../helpers/cli.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { testRoot } from '../helpers/mount.js';
import { run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { NR, SpidevClient } from './spidev-client.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([], 10_000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

/** A device on the lowest free bus (chip select 0), so the tests of this file never share one. */
const plug = async (options: Record<string, unknown> = {}) => {
  const inst = (await t.emu.devices.plug({ model: 'spidev', name: 'spidev%d.0', options })) as Instance<SpiDevice>;
  return { inst, name: inst.name, path: t.path(`dev/${inst.name}`) };
};
const inFlight = (name: string, op: string) =>
  until(() => t.emu.devices.get(name)?.inFlight.some((h) => h.op === op) ?? false, 10_000, `${op} in flight`);
const eventsOf = (d: { name: string; inst: { generation: number } }, type: string) =>
  t.events.filter((e) => e.device === d.name && e.generation === d.inst.generation && e.type === type);
const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/** ADC inputs whose codes show in every bit: channel 0 is 683 (0b1010101011). */
const CHANNELS = [683, 0, 200, 300, 400, 500, 600, 1023];

describe('python3-spidev through cdevemu run --bind', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(testRoot(), 'spidev-run-'));
  });

  /** Runs `program` (Python) under a scenario that plugs `device`, with /dev/spidev0.0 bound to it; answers its stdout lines. */
  async function runPython(name: string, device: Record<string, unknown>, timeline: unknown[], program: string) {
    const scenario = join(dir, `${name}.json`);
    await writeFile(
      scenario,
      JSON.stringify({ name, devices: [{ model: 'spidev', name: 'spidev0.0', options: device }], timeout: '60s', timeline }),
    );
    const r = await cdevemu(['run', scenario, '--bind', '/dev/spidev0.0=dev/spidev0.0', '--', '/usr/bin/python3', '-c', program], {
      timeoutMs: 90_000,
    });
    const lines = r.stdout
      .split('\n')
      .filter((l) => l.trim().startsWith('| '))
      .map((l) => l.trim().slice(2));
    return { code: r.code, out: r.stdout + r.stderr, lines };
  }

  it('xfer2 round-trips bytes through the loopback, at the speed, delay and word size it asks for', async () => {
    const r = await runPython(
      'loopback',
      { chip: 'loopback' },
      [{ expect: { exit: 0, within: '30s' } }],
      `import spidev
s = spidev.SpiDev()
s.open(0, 0)
print("settings", s.mode, s.bits_per_word, s.max_speed_hz)
print("xfer2", *s.xfer2([0x00, 0x5a, 0xa5, 0xff]))
s.mode = 3
s.max_speed_hz = 250000
print("xfer2", *s.xfer2(list(b"hello"), 500000, 10, 8))
s.lsbfirst = True
print("lsbfirst", *s.xfer2([1, 2, 3]), s.mode, s.lsbfirst)
print("readbytes", *s.readbytes(3))
s.close()`,
    );
    expect(r.code, r.out).toBe(0);
    expect(r.lines).toEqual([
      'settings 0 8 1000000',
      'xfer2 0 90 165 255',
      `xfer2 ${[...Buffer.from('hello')].join(' ')}`,
      // LSB first on both ends of a wire: the same bytes.
      'lsbfirst 1 2 3 3 True',
      // A read sends nothing (MOSI low), so the wire brings back zeros.
      'readbytes 0 0 0',
    ]);
  });

  it('xfer2 reads the ADC, single-ended and differential, and sees an input the adc action changes', async () => {
    const r = await runPython(
      'adc',
      { chip: 'mcp3008', channels: CHANNELS },
      [
        // The program's readbytes() says its first conversions are done.
        { wait: { read: 'spidev0.0', timeout: '20s' } },
        { action: { device: 'spidev0.0', action: 'adc', arg: { channel: 3, value: 777 } } },
        { wait: { event: { type: 'adc_input', device: 'spidev0.0', channel: 3, value: 777 }, timeout: '5s' } },
        { expect: { exit: 0, within: '30s' } },
      ],
      `import spidev, time
s = spidev.SpiDev()
s.open(0, 0)
s.max_speed_hz = 1350000
def convert(config):
    r = s.xfer2([1, config << 4, 0])
    return ((r[1] & 3) << 8) | r[2]
print("single", *[convert(8 + ch) for ch in range(8)])
print("diff", *[convert(pair) for pair in range(8)])
s.readbytes(1)
deadline = time.time() + 20
while convert(8 + 3) != 777 and time.time() < deadline:
    time.sleep(0.02)
print("after", convert(8 + 3))`,
    );
    expect(r.code, r.out).toBe(0);
    expect(r.lines).toEqual([
      `single ${CHANNELS.join(' ')}`,
      // Pairs CH0-CH1, CH1-CH0, CH2-CH3, ...: IN+ minus IN-, 0 when IN- is higher.
      'diff 683 0 0 100 0 100 0 423',
      'after 777',
    ]);
  });
});

describe('spi-tools', () => {
  it('spi-config shows and sets the mode, bit order, word size and speed; the speed goes back at the last close', async () => {
    const d = await plug();
    const q = await run('spi-config', ['-d', d.path, '-q']);
    expect(q.code, q.stderr).toBe(0);
    expect(q.stdout.trim()).toBe(`${d.path}: mode=0, lsb=0, bits=8, speed=1000000, spiready=0`);
    const set = await run('spi-config', ['-d', d.path, '-m', '3', '-l', '1', '-b', '16', '-s', '250000']);
    expect(set.code, set.stderr).toBe(0);
    // FUSE sends RELEASE after the client's close has returned (fuse_release() queues it).
    await d.inst.whenReleased();
    expect(d.inst.state.settings).toMatchObject({ mode: 3 | SPI_LSB_FIRST, bitsPerWord: 16 });
    // spidev_release() put the speed back when spi-config closed (what its --wait is for).
    expect(d.inst.state.speedHz).toBe(1_000_000);
    // lsb=0: spi-config compares SPI_IOC_RD_LSB_FIRST's answer, 1 as the kernel gives it, with SPI_LSB_FIRST (8).
    expect((await run('spi-config', ['-d', d.path, '-q'])).stdout.trim()).toBe(
      `${d.path}: mode=3, lsb=0, bits=16, speed=1000000, spiready=0`,
    );
    expect(eventsOf(d, 'spi_setup').map(({ mode, bitsPerWord, speedHz }) => [mode, bitsPerWord, speedHz])).toEqual([
      [3, 8, 1_000_000],
      [3 | SPI_LSB_FIRST, 8, 1_000_000],
      [3 | SPI_LSB_FIRST, 16, 1_000_000],
      [3 | SPI_LSB_FIRST, 16, 250_000],
      [3 | SPI_LSB_FIRST, 16, 1_000_000],
    ]);
    // The controller has no SPI_READY: spi_setup() refuses it.
    const ready = await run('spi-config', ['-d', d.path, '-r', '1']);
    expect(ready.code).toBe(1);
    expect(ready.stderr).toContain('SPI_IOC_WR_MODE: Invalid argument');
  });

  it('spi-pipe streams stdin through the loopback in blocks', async () => {
    const d = await plug();
    const r = await run('sh', ['-c', 'printf "hello, spi world" | spi-pipe -d "$1" -b 4 -n 4 -s 2000000', 'sh', d.path]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('hello, spi world');
    await d.inst.whenReleased();
    // Four blocks of 4 bytes, at the speed it set and then put back.
    expect(d.inst.state.counters).toMatchObject({ messages: 4, bytesOut: 16, bytesIn: 16, wireUs: 64 });
    expect(d.inst.state.speedHz).toBe(1_000_000);
  });

  it('spi-pipe reads a conversion from the ADC: the result MSB first, then LSB first, then zeros', async () => {
    const d = await plug({ chip: 'mcp3008', channels: CHANNELS });
    const r = await run('sh', ['-c', 'printf "\\001\\200\\000\\000\\000" | spi-pipe -d "$1" -b 5 -n 1 | od -An -tx1', 'sh', d.path]);
    expect(r.code, r.stderr).toBe(0);
    // 683 = 0b1010101011: null bit and B9 B8 end byte 1, B7..B0 is byte 2, B1..B8 byte 3, B9 and zeros byte 4.
    expect(r.stdout.trim()).toBe('00 02 ab aa 80');
    expect((await t.emu.devices.action(d.name, 'status')) as object).toMatchObject({
      adc: { conversions: 1, last: { single: true, select: 0, value: 683 } },
    });
  });
});

describe('ioctls', () => {
  it('keeps the mode bits the controller has, drops the octal ones, refuses the others; the mode outlives a close', async () => {
    const d = await plug();
    const c = await SpidevClient.open(d.path);
    expect(await c.op(`set ${NR.mode32} 4 ${SPI_TX_DUAL | SPI_RX_DUAL | SPI_LSB_FIRST | 1}`)).toBe('ok');
    expect(await c.op(`get ${NR.mode32} 4`)).toBe(`ok ${SPI_TX_DUAL | SPI_RX_DUAL | SPI_LSB_FIRST | 1}`);
    // SPI_IOC_RD_MODE is the low byte; SPI_IOC_WR_MODE writes only that byte and so clears the dual bits.
    expect(await c.op(`get ${NR.mode} 1`)).toBe(`ok ${SPI_LSB_FIRST | 1}`);
    expect(await c.op(`get ${NR.lsbFirst} 1`)).toBe('ok 1');
    expect(await c.op(`set ${NR.mode} 1 ${SPI_LSB_FIRST | 2}`)).toBe('ok');
    expect(await c.op(`get ${NR.mode32} 4`)).toBe(`ok ${SPI_LSB_FIRST | 2}`);
    // Octal: unsupported multi-wire bits are dropped with a warning in the kernel, not refused.
    expect(await c.op(`set ${NR.mode32} 4 ${SPI_TX_OCTAL}`)).toBe('ok');
    expect(await c.op(`get ${NR.mode32} 4`)).toBe('ok 0');
    for (const bad of [SPI_READY, SPI_CS_WORD, SPI_TX_DUAL | SPI_TX_QUAD, SPI_3WIRE | SPI_TX_DUAL, 1 << 20]) {
      expect(await c.op(`set ${NR.mode32} 4 ${bad}`), `mode 0x${bad.toString(16)}`).toBe('EINVAL');
    }
    expect(await c.op(`set ${NR.lsbFirst} 1 1`)).toBe('ok');
    await c.close();
    const again = await SpidevClient.open(d.path);
    expect(await again.op(`get ${NR.mode} 1`)).toBe(`ok ${SPI_LSB_FIRST}`);
    await again.close();
  });

  it('sets the word size (0 means 8; 4 to 32) and the speed (spidev keeps what it is given, transfers are held to the controller)', async () => {
    const d = await plug();
    const c = await SpidevClient.open(d.path);
    expect(await c.op(`set ${NR.bitsPerWord} 1 0`)).toBe('ok');
    expect(await c.op(`get ${NR.bitsPerWord} 1`)).toBe('ok 8');
    expect(await c.op(`set ${NR.bitsPerWord} 1 3`)).toBe('EINVAL');
    expect(await c.op(`set ${NR.bitsPerWord} 1 33`)).toBe('EINVAL');
    expect(await c.op(`set ${NR.maxSpeedHz} 4 0`)).toBe('EINVAL');
    expect(await c.op(`set ${NR.maxSpeedHz} 4 60000000`)).toBe('ok');
    expect(await c.op(`get ${NR.maxSpeedHz} 4`)).toBe('ok 60000000');
    // 4 bytes at the controller's 50 MHz: 32 clocks, 0.64 µs.
    expect(await c.op('xfer 01020304')).toBe('ok 4 01020304');
    expect(d.inst.state.counters.wireUs).toBeCloseTo(0.64, 6);
    // Below the controller's 1 kHz the setting is taken but every transfer refused.
    expect(await c.op(`set ${NR.maxSpeedHz} 4 100`)).toBe('ok');
    expect(await c.op('xfer 01')).toBe('EINVAL');
    expect(await c.op('read 1')).toBe('EINVAL');
    await c.close();
    // FUSE sends RELEASE after the client's close has returned (fuse_release() queues it).
    await d.inst.whenReleased();
    expect(d.inst.state.speedHz).toBe(1_000_000);
    expect(eventsOf(d, 'spi_setup').map((e) => e.speedHz)).toEqual([60_000_000, 100, 1_000_000]);
  });

  it("answers other drivers' commands and unknown spidev commands ENOTTY", async () => {
    const d = await plug();
    const c = await SpidevClient.open(d.path);
    expect(await c.op('get 9 1')).toBe('ENOTTY');
    const r = await run('/usr/bin/python3', [
      '-c',
      `import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for cmd in (0x5401, 0x80206b00):  # TCGETS; an _IOR SPI_IOC_MESSAGE(1)
    try: fcntl.ioctl(fd, cmd, bytearray(32), True); print("ok")
    except OSError as e: print(errno.errorcode[e.errno])`,
      d.path,
    ]);
    expect(r.stdout.trim().split('\n')).toEqual(['ENOTTY', 'ENOTTY']);
    await c.close();
  });
});

describe('messages', () => {
  it('honours the speed, delays and lines of each transfer in the time it holds the caller on the wire', async () => {
    const d = await plug();
    const c = await SpidevClient.open(d.path);
    // 32 clocks at 500 kHz (64 µs), 3 gaps of 5 µs between words, then 100 µs.
    expect(await c.op('xfer deadbeef speed=500000 delay=100 wdelay=5')).toBe('ok 4 deadbeef');
    expect(d.inst.state.counters.wireUs).toBeCloseTo(179, 6);
    // Two lines need the dual mode bits; then 16 clocks carry the 32 bits.
    expect(await c.op('xfer deadbeef speed=500000 nbits=2')).toBe('EINVAL');
    expect(await c.op(`set ${NR.mode32} 4 ${SPI_TX_DUAL | SPI_RX_DUAL}`)).toBe('ok');
    expect(await c.op('xfer deadbeef speed=500000 nbits=2')).toBe('ok 4 deadbeef');
    expect(d.inst.state.counters.wireUs).toBeCloseTo(179 + 32, 6);
    expect(await c.op('xfer deadbeef nbits=3')).toBe('EINVAL');
    // cs_change between transfers: 10 µs with CS released.
    expect(await c.op('msg 1,01,1,1 1,02,1,0')).toBe('ok 2 01,02');
    expect(d.inst.state.counters.wireUs).toBeCloseTo(179 + 32 + 8 + 10 + 8, 6);
    await c.close();
  });

  it('sends words of bits_per_word bits from 1, 2 or 4 bytes, and refuses a length that is not whole words', async () => {
    const d = await plug();
    const c = await SpidevClient.open(d.path);
    // 12-bit words in 16-bit slots: the top 4 bits are not sent, and come back as zeros.
    expect(await c.op('xfer ffff3412 bits=12')).toBe('ok 4 ff0f3402');
    expect(await c.op('xfer 0102030405060708 bits=24')).toBe('ok 8 0102030005060700');
    expect(await c.op('xfer 010203 bits=16')).toBe('EINVAL');
    await c.close();
  });

  it('follows the ADC bit by bit: LSB first, 16-bit words, a CS kept or dropped between transfers, SPI_LOOP and 3-wire', async () => {
    const d = await plug({ chip: 'mcp3008', channels: CHANNELS });
    const c = await SpidevClient.open(d.path);
    expect(await c.op('xfer 018000')).toBe('ok 3 0002ab');
    // 16-bit words go out MSB first: 0x0180 then 0x0000; each comes back in host order.
    expect(await c.op('xfer 80010000 bits=16')).toBe('ok 4 0200aaab');
    // One conversion across two transfers: it goes on while CS stays down...
    expect(await c.op('msg 1,01,1,0 2,8000,1,0')).toBe('ok 3 00,02ab');
    // ...and starts over when cs_change raises it in between: 0x80's top bit is then the start bit, of a differential CH0-CH1.
    expect(await c.op('msg 1,01,1,1 2,8000,1,0')).toBe('ok 3 00,0155');
    // LSB first: the chip sees every byte reversed, so the request is sent reversed and the answer arrives so.
    expect(await c.op(`set ${NR.lsbFirst} 1 1`)).toBe('ok');
    expect(await c.op('xfer 800100')).toBe('ok 3 0040d5');
    // SPI_LOOP: the controller receives what it sends.
    expect(await c.op(`set ${NR.mode} 1 ${SPI_LOOP}`)).toBe('ok');
    expect(await c.op('xfer 018000')).toBe('ok 3 018000');
    // 3-wire: one direction per transfer.
    expect(await c.op(`set ${NR.mode} 1 ${SPI_3WIRE}`)).toBe('ok');
    expect(await c.op('xfer 018000')).toBe('EINVAL');
    expect(await c.op('msg 2,0180,0,0 1,-,1,0')).toBe('ok 3 -,ab');
    // NO_CS: the chip select stays up, and the ADC never starts a cycle.
    expect(await c.op(`set ${NR.mode} 1 ${SPI_NO_CS}`)).toBe('ok');
    expect(await c.op('xfer 018000')).toBe('ok 3 000000');
    expect(((await t.emu.devices.action(d.name, 'status')) as { adc: { conversions: number } }).adc.conversions).toBe(7);
    await c.close();
  });

  it('refuses more data than bufsiz (EMSGSIZE), counting each transfer rounded up to 8 bytes as spidev does', async () => {
    const d = await plug({ bufsiz: 4096 });
    const c = await SpidevClient.open(d.path);
    expect(await c.op(`msg ${Array(4).fill('1021,-,1,0').join(' ')}`)).toMatch(/^ok 4084 /);
    expect(await c.op(`msg ${Array(5).fill('817,-,1,0').join(' ')}`)).toBe('EMSGSIZE');
    expect(await c.op('msg 4097,-,1,0')).toBe('EMSGSIZE');
    // A transfer without buffers takes no room, only time.
    expect(await c.op('msg 8192,-,0,0')).toBe('ok 8192 -');
    expect(await c.op('read 4097')).toBe('EMSGSIZE');
    expect(await c.op(`write ${'00'.repeat(4097)}`)).toBe('EMSGSIZE');
    await c.close();
  });

  it('reads and writes half duplex: a write sends, a read receives what the chip drives on its own', async () => {
    const d = await plug();
    const c = await SpidevClient.open(d.path);
    expect(await c.op(`write ${hex('abcd')}`)).toBe('ok 4');
    expect(await c.op('read 4')).toBe('ok 00000000');
    expect(await c.op(`poll ${POLLIN | POLLOUT}`)).toBe(`ok ${POLLIN | POLLOUT}`);
    expect(d.inst.state.counters).toMatchObject({ messages: 2, bytesOut: 4, bytesIn: 4 });
    await c.close();
  });
});

describe('bad pointers from a C client', () => {
  it('fails a bad tx_buf with EFAULT before the wire, a bad rx_buf after it, and keeps serving', async () => {
    const client = await cClient('spidev_pointers');
    const d = await plug();
    const r = await run(client, [d.path]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => [l.split(' ')[0], l.split(' ').slice(1).join(' ')]),
    );
    expect(lines).toEqual({
      good: `ok 4 ${hex('ping')}`,
      'bad-array': 'errno EFAULT ',
      'bad-tx': 'errno EFAULT 00000000',
      'bad-tx-second': 'errno EFAULT 00000000',
      // The transfer happened; copying the first transfer's rx out succeeded before the second failed.
      'bad-rx-second': `errno EFAULT ${hex('wxyz')}`,
      // copy_to_user() stopped at the PROT_NONE page: the accessible half was written.
      'straddle-rx': `errno EFAULT ${hex('ABCD')}`,
      'bad-size': 'errno EINVAL ',
      empty: 'ok 0 ',
      'good-again': `ok 4 ${hex('pong')}`,
    });
    // On the wire: good, bad-rx-second, straddle-rx and good-again; nothing of the bad tx_bufs.
    expect(d.inst.state.counters.messages).toBe(4);
    const again = await run(client, [d.path]);
    expect(again.stdout).toContain(`good-again ok 4 ${hex('pong')}`);
  });
});

describe('unplug', () => {
  /** What spidev answers once spidev->spi is NULL: ESHUTDOWN for every call; poll has no driver method and stays the VFS default. */
  async function expectRemoved(c: SpidevClient): Promise<void> {
    expect(await c.op('xfer 0102')).toBe('ESHUTDOWN');
    expect(await c.op(`get ${NR.mode} 1`)).toBe('ESHUTDOWN');
    expect(await c.op('read 2')).toBe('ESHUTDOWN');
    expect(await c.op('write 0102')).toBe('ESHUTDOWN');
    expect(await c.op(`poll ${DEFAULT_POLLMASK}`)).toBe(`ok ${DEFAULT_POLLMASK}`);
  }

  it('a client blocked before the device (a hang fault) and a client between calls get ESHUTDOWN; their files stay until closed', async () => {
    const d = await plug();
    const blocked = await SpidevClient.open(d.path);
    const idle = await SpidevClient.open(d.path);
    expect(await idle.op('xfer 0102')).toBe('ok 2 0102');
    const rule = t.api.fault({ device: d.name, op: 'ioctl', action: 'hang' });
    try {
      blocked.start('xfer 0a0b');
      await inFlight(d.name, 'ioctl');
      const report = await t.emu.devices.unplug(d.name);
      expect(report.stuck).toEqual([]);
      expect(await blocked.answer()).toBe('ESHUTDOWN');
    } finally {
      t.api.removeFault(rule.id);
    }
    for (const c of [blocked, idle]) await expectRemoved(c);
    expect(t.emu.devices.get(d.name)?.lifecycle).toBe('gone');
    await Promise.all([blocked.close(), idle.close()]);
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(eventsOf(d, 'late_released')).toHaveLength(2);
  });

  it('checks what spidev checks before the device: a read or write past bufsiz is EMSGSIZE, another driver\'s command ENOTTY', async () => {
    const d = await plug({ bufsiz: 64 });
    const c = await SpidevClient.open(d.path);
    await t.emu.devices.unplug(d.name);
    expect(await c.op('read 65')).toBe('EMSGSIZE');
    expect(await c.op(`write ${'00'.repeat(65)}`)).toBe('EMSGSIZE');
    expect(await c.op('read 64')).toBe('ESHUTDOWN');
    expect(await c.op(`write ${'00'.repeat(64)}`)).toBe('ESHUTDOWN');
    // TCGETS; then an _IOR SPI_IOC_MESSAGE(1), which spidev_ioctl() refuses only after the device check.
    expect(await c.op('ioctl 0x5401')).toBe('ENOTTY');
    expect(await c.op('ioctl 0x80206b00')).toBe('ESHUTDOWN');
    await c.close();
  });

  it('lets a message already on the wire finish, and a call waiting for the device, as spidev_remove() waits for spi_lock; the next call is ESHUTDOWN', async () => {
    const d = await plug();
    const c = await SpidevClient.open(d.path);
    const queued = await SpidevClient.open(d.path);
    // 250 bytes at 1 kHz: two seconds on the wire.
    const data = Buffer.alloc(250, 0x5a).toString('hex');
    c.start(`xfer ${data} speed=1000`);
    await inFlight(d.name, 'ioctl');
    queued.start('xfer 0102');
    await until(() => d.inst.inFlight.filter((h) => h.op === 'ioctl').length === 2, 10_000, 'the second call waiting');
    const report = await t.emu.devices.unplug(d.name);
    expect(report.stuck).toEqual([]);
    expect(await c.answer()).toBe(`ok 250 ${data}`);
    expect(await queued.answer()).toBe('ok 2 0102');
    expect(d.inst.state.counters.messages).toBe(2);
    for (const client of [c, queued]) await expectRemoved(client);
    await Promise.all([c.close(), queued.close()]);
  });

  it('ends a message that outlasts the drain: the caller gets ESHUTDOWN at the bound and remove() stops the wire', async () => {
    const d = await plug();
    const c = await SpidevClient.open(d.path);
    // 4096 bytes (bufsiz) at 1 kHz: 33 s on the wire, longer than the test
    // may run, so it is still there when the drain gives up, however loaded
    // the machine is. remove() cuts it short; nothing waits for all of it.
    c.start(`xfer ${'00'.repeat(4096)} speed=1000`);
    await inFlight(d.name, 'ioctl');
    const report = await t.emu.devices.unplug(d.name, { drainTimeoutMs: 50 });
    expect(report.stuck.map((s) => s.op)).toEqual(['ioctl']);
    expect(await c.answer()).toBe('ESHUTDOWN');
    // The handler the drain gave up on returns once remove() has cut the wire short.
    await until(() => d.inst.inFlight.length === 0, 10_000, 'the stuck transfer to end');
    await c.close();
  });
});

describe('options', () => {
  it('names the node spidevB.C and refuses options that disagree with the name, and a chip it does not have', async () => {
    const inst = await t.emu.devices.plug({ model: 'spidev', name: 'spidev107.3', options: { bus: 107, chipSelect: 3, chip: 'mcp3008' } });
    expect(inst.nodePath).toBe('spidev107.3');
    await expect(t.emu.devices.plug({ model: 'spidev', name: 'spidev108.0', options: { chipSelect: 1 } })).rejects.toThrow(
      /name it spidev108\.1 .*not "spidev108\.0"/,
    );
    await expect(t.emu.devices.plug({ model: 'spidev', name: 'adc', options: {} })).rejects.toThrow(/name it spidev0\.0/);
    await expect(t.emu.devices.plug({ model: 'spidev', name: 'spidev109.0', options: { chip: 'eeprom' } })).rejects.toThrow(
      'spidev: option chip must be one of "loopback", "mcp3008", got "eeprom"',
    );
    await expect(
      t.emu.devices.plug({ model: 'spidev', name: 'spidev109.0', options: { chip: 'mcp3008', channels: [1, 2] } }),
    ).rejects.toThrow('spidev: option channels must be an array of 8 items, each an integer from 0 to 1023, got [1,2]');
    await expect(t.emu.devices.action('spidev107.3', 'adc', { channel: 8, value: 1 })).rejects.toThrow('spidev: action adc: argument channel must be an integer from 0 to 7, got 8');
    await t.emu.devices.unplug('spidev107.3');
  });
});
