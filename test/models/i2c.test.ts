/**
 * The i2c model on a real mount: i2c-tools (i2cdetect, i2cget, i2cset,
 * i2cdump, i2ctransfer) and python3-smbus2 against an emulated adapter
 * with a 24c02, an LM75 and a register map; a C client's bad pointers
 * and bad arguments; NACKs, clock stretching against I2C_TIMEOUT, the
 * EEPROM's write cycle; and what clients blocked in a transfer and
 * between calls get when the adapter is unplugged.
 *
 * i2c-tools and smbus2 open /dev/i2c-N by bus number, so they run in a
 * private mount namespace with the node bound there, as `cdevemu run
 * --bind` does (src/scenario/bind.ts); run by an ordinary user, in a user
 * namespace of their own, as the run's program is.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Instance } from '../../src/core/index.js';
import { POLLIN, POLLOUT } from '../../src/devio.js';
import type { I2cBus } from '../../src/models/i2c/bus.js';
import { bindCommand } from '../../src/scenario/bind.js';
import { inOwnUserNamespace, runsAsRoot, withSbin } from '../helpers/as-user.js';
import { cClient } from '../helpers/cc.js';
import { cdevemu } from '../helpers/cli.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { testRoot } from '../helpers/mount.js';
import { run, type RunResult } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { I2cClient } from './i2c-client.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

let busCount = 0;
/** Plugs an adapter with its own bus number (i2c-10, i2c-11...). */
const plug = async (options: Record<string, unknown> = {}) => {
  const name = `i2c-${10 + busCount++}`;
  const inst = (await t.emu.devices.plug({ model: 'i2c', name, options })) as Instance<I2cBus>;
  return { inst, name, nr: name.slice(4), path: t.path(`dev/${name}`) };
};
type Plugged = Awaited<ReturnType<typeof plug>>;
const action = (name: string, a: string, arg?: unknown) => t.emu.devices.action(name, a, arg) as Promise<Record<string, unknown>>;
const peek = async (d: Plugged, addr: number, reg: number, length?: number) => (await action(d.name, 'peek', { addr, reg, length })).hex;
/** Retries `attempt` until it answers true, polling like until(). */
async function pollUntil(attempt: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await attempt())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const eventsOf = (d: Plugged, type: string) =>
  t.events.filter((e) => e.device === d.name && e.generation === d.inst.generation && e.type === type);

/**
 * Runs `argv` where /dev/i2c-N is the emulated node, as `cdevemu run --bind
 * /dev/i2c-N=dev/i2c-N` does (for an ordinary user, in a user namespace of
 * its own), finding i2c-tools in /usr/sbin.
 */
async function withBus(d: Plugged, argv: string[]): Promise<RunResult> {
  const stage = await mkdtemp(join(testRoot(), 'i2c-ns-'));
  const cmd = inOwnUserNamespace(bindCommand([{ host: `/dev/${d.name}`, source: d.path }], stage, argv, !runsAsRoot));
  return run(cmd[0]!, cmd.slice(1), { timeoutMs: 30_000, env: withSbin() });
}
/** An i2c-tools command's stdout, which must succeed. */
async function tool(d: Plugged, ...argv: string[]): Promise<string> {
  const r = await withBus(d, argv);
  expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}
/** Debian's python3, which has smbus2 (whatever python3 is first on PATH). */
const smbus2 = (d: Plugged, program: string) => withBus(d, ['/usr/bin/python3', '-c', program, d.nr]);

/** i2cdetect's table (0x08-0x77, each cell followed by a space) for a bus with chips at `present` and drivers at `busy` (UU). */
function detectTable(present: number[], busy: number[] = []): string {
  const rows = ['     0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f'];
  for (let row = 0; row < 0x80; row += 0x10) {
    let line = `${row.toString(16).padStart(2, '0')}: `;
    for (let a = row; a < row + 0x10; a++) {
      if (a < 0x08 || a > 0x77) line += '   ';
      else line += `${busy.includes(a) ? 'UU' : present.includes(a) ? a.toString(16).padStart(2, '0') : '--'} `;
    }
    rows.push(line);
  }
  return rows.join('\n') + '\n';
}

describe('i2c-tools', () => {
  it('i2cdetect -y prints the chips at their addresses, UU where a driver is bound, and -- elsewhere', async () => {
    const d = await plug({
      chips: [
        { type: 'eeprom', addr: 0x50 },
        { type: 'lm75', addr: 0x48 },
        { type: 'regs', addr: 0x20 },
        { type: 'regs', addr: 0x3c, driver: 'ssd1306' },
      ],
    });
    expect(await tool(d, 'i2cdetect', '-y', d.nr)).toBe(detectTable([0x20, 0x48, 0x50], [0x3c]));
    // i2cdetect probes 0x08-0x77 with SMBus quick writes (receive byte at 0x30-0x37, 0x50-0x5f), all but UU: the empty addresses NACKed.
    expect((await action(d.name, 'status')).nacks).toBe(0x77 - 0x08 + 1 - 4);
  });

  it('i2cdetect -l lists the adapter through `cdevemu run --bind` of /sys/class/i2c-dev and /dev/i2c-N', async () => {
    const dir = await mkdtemp(join(testRoot(), 'i2c-run-'));
    const file = join(dir, 'list.yaml');
    await writeFile(
      file,
      [
        'name: i2cdetect lists the emulated adapter',
        'devices:',
        '  - { model: i2c, name: i2c-7, options: { name: "cdevemu test bridge" } }',
        'timeline:',
        '  - expect: { exit: 0, within: 20s }',
        '',
      ].join('\n'),
    );
    const r = await cdevemu(
      ['run', file, '--bind', '/dev/i2c-7=dev/i2c-7', '--bind', '/sys/class/i2c-dev=sys/class/i2c-dev', '--', 'i2cdetect', '-l'],
      { timeoutMs: 60_000, env: withSbin() },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // gather_i2c_busses(): the name from sysfs, the type from I2C_FUNCS on /dev/i2c-7.
    expect(r.stdout).toMatch(/\| i2c-7\ti2c {7}\tcdevemu test bridge {13}\tI2C adapter\n/);
  });

  it('i2cget, i2cset and i2cdump read and write the 24c02; i2ctransfer writes a page and reads across pages', async () => {
    const d = await plug({ chips: [{ type: 'eeprom', addr: 0x50, contents: '000102030405060708090a0b0c0d0e0f' }] });
    expect((await tool(d, 'i2cget', '-y', d.nr, '0x50', '0x05')).trim()).toBe('0x05');
    await tool(d, 'i2cset', '-y', d.nr, '0x50', '0x20', '0xab');
    expect(eventsOf(d, 'i2c_write').at(-1)).toMatchObject({ addr: 0x50, reg: 0x20, hex: 'ab' });
    expect((await tool(d, 'i2cget', '-y', d.nr, '0x50', '0x20')).trim()).toBe('0xab');
    const dump = await tool(d, 'i2cdump', '-y', d.nr, '0x50', 'b');
    expect(dump).toContain('00: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f');
    expect(dump).toContain('20: ab ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff');
    // A page write from 0x36: the address rolls over within the 8-byte page (0x30-0x37), as a 24c02 writes.
    await tool(d, 'i2ctransfer', '-y', d.nr, 'w5@0x50', '0x36', '0xa1', '0xa2', '0xa3', '0xa4');
    expect(await peek(d, 0x50, 0x30, 8)).toBe('a3a4ffffffffa1a2');
    expect(eventsOf(d, 'i2c_write').at(-1)).toMatchObject({ addr: 0x50, reg: 0x36, hex: 'a1a2a3a4' });
    // A combined write-read (one STOP): sequential reads run on across pages.
    expect((await tool(d, 'i2ctransfer', '-y', d.nr, 'w1@0x50', '0x0e', 'r4')).trim()).toBe('0x0e 0x0f 0xff 0xff');
  });

  it('i2cget reads the LM75: the temperature word arrives MSB first, as the chip sends it; i2cset sets T_OS', async () => {
    const d = await plug({ chips: [{ type: 'lm75', addr: 0x48, celsius: 25.5 }] });
    // 25.5 °C is 0x1980 in the register; SMBus words are little-endian, so the bytes come swapped.
    expect((await tool(d, 'i2cget', '-y', d.nr, '0x48', '0x00', 'w')).trim()).toBe('0x8019');
    expect(await action(d.name, 'temperature', { celsius: -10.26 })).toEqual({ addr: 0x48, celsius: -10.5 });
    expect(eventsOf(d, 'i2c_temperature')).toMatchObject([{ addr: 0x48, celsius: -10.5 }]);
    expect((await tool(d, 'i2cget', '-y', d.nr, '0x48', '0x00', 'w')).trim()).toBe('0x80f5'); // 0xf580
    expect((await tool(d, 'i2cget', '-y', d.nr, '0x48', '0x03', 'w')).trim()).toBe('0x0050'); // T_OS 80 °C
    await tool(d, 'i2cset', '-y', d.nr, '0x48', '0x03', '0x805a', 'w'); // 90.5 °C: bytes 0x5a 0x80 on the wire
    expect((await action(d.name, 'status')).chips).toMatchObject([{ type: 'lm75', tos: 90.5 }]);
    expect(eventsOf(d, 'i2c_write').at(-1)).toMatchObject({ addr: 0x48, reg: 3, hex: '5a80' });
  });

  it('i2ctransfer writes and reads a register map in one transfer; i2cget -f reaches a driver-bound chip', async () => {
    const d = await plug({
      chips: [
        { type: 'regs', addr: 0x20, registers: { '0x10': '0a0b0c', '0x20': 0x42 } },
        { type: 'regs', addr: 0x21, driver: 'gpio-pca953x' },
      ],
    });
    expect((await tool(d, 'i2ctransfer', '-y', d.nr, 'w3@0x20', '0x11', '0xb1', '0xc1', 'w1@0x20', '0x10', 'r4')).trim()).toBe(
      '0x0a 0xb1 0xc1 0x00',
    );
    expect((await tool(d, 'i2cget', '-y', d.nr, '0x20', '0x20')).trim()).toBe('0x42');
    const busy = await withBus(d, ['i2cget', '-y', d.nr, '0x21', '0x00']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain('Device or resource busy');
    expect((await tool(d, 'i2cget', '-f', '-y', d.nr, '0x21', '0x00')).trim()).toBe('0x00');
  });
});

describe('python3-smbus2', () => {
  it('reads and writes the chips with SMBus transactions and I2C_RDWR, and checks PEC', async () => {
    const d = await plug({
      chips: [
        { type: 'eeprom', addr: 0x50, contents: '0011223344' },
        { type: 'lm75', addr: 0x48, celsius: 21 },
        { type: 'regs', addr: 0x20, registers: { '0x10': '030a0b0c' } },
      ],
    });
    const r = await smbus2(
      d,
      `import sys
from smbus2 import SMBus, i2c_msg
with SMBus(int(sys.argv[1])) as b:
    print(hex(b.read_word_data(0x48, 0)))
    print(b.read_i2c_block_data(0x50, 1, 4))
    b.write_i2c_block_data(0x50, 0x40, [9, 8, 7])
    w, r = i2c_msg.write(0x50, [0x40]), i2c_msg.read(0x50, 3)
    b.i2c_rdwr(w, r)
    print(list(r))
    print(b.read_block_data(0x20, 0x10))
    b.write_byte_data(0x20, 0x30, 0x77)
    print(hex(b.read_byte_data(0x20, 0x30)))
    print(hex(b.process_call(0x20, 0x31, 0x1234)))
    b.pec = 1
    try:
        b.read_byte_data(0x48, 1)
    except OSError as e:
        print("pec", e.errno)
    b.pec = 0
    try:
        b.read_byte(0x51)
    except OSError as e:
        print("nack", e.errno)`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([
      '0x15', // 21 °C: 0x1500, swapped
      '[17, 34, 51, 68]',
      '[9, 8, 7]',
      '[10, 11, 12]',
      '0x77',
      // A register map answers a process call with the registers after the two written.
      '0x0',
      // The LM75 speaks no PEC: the byte after its configuration is not the checksum (EBADMSG).
      'pec 74',
      'nack 6', // ENXIO
    ]);
    expect(await peek(d, 0x20, 0x31, 2)).toBe('3412');
  });
});

describe('the C client: bad pointers and arguments', () => {
  it('gets EFAULT and EINVAL as i2c-dev gives them, and the adapter keeps serving', async () => {
    const d = await plug({
      chips: [
        { type: 'eeprom', addr: 0x50, contents: '0011223344' },
        { type: 'regs', addr: 0x20, registers: { '0x10': '030a0b0c' } },
        { type: 'regs', addr: 0x21, driver: 'gpio-pca953x' },
        { type: 'regs', addr: 0x3a5, tenBit: true, registers: { 0: 'beef' } },
      ],
    });
    const r = await run(await cClient('i2c_client', ['/usr/include/linux/i2c-dev.h', '/usr/include/linux/i2c.h']), [d.path]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => [l.split(' ')[0], l.split(' ').slice(1).join(' ')]),
    );
    expect(lines).toEqual({
      funcs: 'ok 0 0b80ff0f00000000', // 0x0fff800b, an unsigned long
      'funcs-header': 'ok 1 ',
      'funcs-bad': 'errno EFAULT ',
      'rdwr-good': 'ok 2 00112233',
      'rdwr-null-arg': 'errno EFAULT ',
      'rdwr-bad-msgs': 'errno EFAULT ',
      'rdwr-no-msgs': 'errno EINVAL ',
      'rdwr-zero': 'errno EINVAL ',
      'rdwr-43': 'errno EINVAL ',
      'rdwr-42': 'ok 42 ',
      'rdwr-8193': 'errno EINVAL ',
      'rdwr-bad-wbuf': 'errno EFAULT ',
      'rdwr-bad-rbuf': 'errno EFAULT ',
      'rdwr-ro-rbuf': 'errno EFAULT 00',
      'rdwr-recv-len-short': 'errno EINVAL ',
      'rdwr-recv-len': 'ok 2 030a0b0c',
      'rdwr-nack': 'errno ENXIO ',
      'slave-0x80': 'errno EINVAL ',
      'slave-busy': 'errno EBUSY ',
      'slave-force': 'ok 0 ',
      tenbit: 'ok 0 ',
      'slave-0x400': 'errno EINVAL ',
      'slave-0x3a5': 'ok 0 ',
      'read-tenbit': 'ok 2 beef',
      'tenbit-off': 'ok 0 ',
      'retries-big': 'errno EINVAL ',
      retries: 'ok 0 ',
      'timeout-big': 'errno EINVAL ',
      timeout: 'ok 0 ',
      unknown: 'errno ENOTTY ',
      'slave-eeprom': 'ok 0 ',
      write: 'ok 4 ',
      'write-address': 'ok 1 ',
      read: 'ok 3 010203',
      'smbus-byte-data': 'ok 0 02',
      'smbus-null-arg': 'errno EFAULT ',
      'smbus-bad-read-data': 'errno EFAULT ',
      'smbus-bad-write-data': 'errno EFAULT ',
      'smbus-null-data': 'errno EINVAL ',
      'smbus-size-9': 'errno EINVAL ',
      'smbus-rw-2': 'errno EINVAL ',
      'smbus-block-33': 'errno EINVAL ',
      'smbus-block-broken': 'ok 0 20010203ff',
      'slave-empty': 'ok 0 ',
      'smbus-quick-empty': 'errno ENXIO ',
      'rdwr-good-again': 'ok 2 00112233',
    });
    // A bad read buffer fails before the transfer; a read-only one after it (the register write happened).
    expect(await peek(d, 0x20, 0x40, 2)).toBe('005a');
    expect(await action(d.name, 'status')).toMatchObject({ retries: 3, timeoutMs: 2000 });
  });
});

describe('the bus', () => {
  it('keeps the address and PEC per open file; I2C_FUNCS answers what the adapter advertises, and an SMBus-only adapter refuses the rest', async () => {
    // 0x22 speaks PEC: after its register 0 (0x33) comes the CRC-8 of 44 00 45 33 (address bytes included), 0x40.
    const d = await plug({
      functionality: 0x00180008,
      chips: [
        { type: 'regs', addr: 0x20, registers: { 0: 0x11 } },
        { type: 'regs', addr: 0x22, registers: { 0: '3340' } },
      ],
    });
    const a = await I2cClient.open(d.path);
    const b = await I2cClient.open(d.path);
    expect(await a.op('funcs')).toBe('ok 0x180008');
    expect(await a.op('slave 0x20')).toBe('ok');
    expect(await b.op('slave 0x22')).toBe('ok');
    expect(await a.op('smbus 1 0 2')).toBe('ok 1100');
    expect(await b.op('smbus 1 0 2')).toBe('ok 3300');
    expect(await b.op('pec 1')).toBe('ok');
    expect(await b.op('smbus 1 0 2')).toBe('ok 3300');
    // The other file still reads without PEC; with it, a chip that sends no PEC fails the check.
    expect(await a.op('smbus 1 0 2')).toBe('ok 1100');
    expect(await a.op('pec 1')).toBe('ok');
    expect(await a.op('smbus 1 0 2')).toBe('EBADMSG');
    // An SMBus-only controller (no I2C_FUNC_I2C): byte data works; word data (not advertised) and plain I/O do not.
    // EOPNOTSUPP, which Python names ENOTSUP (the same number on Linux).
    expect(await a.op('smbus 1 0 3')).toBe('ENOTSUP');
    expect(await a.op('read 1')).toBe('ENOTSUP');
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses I2C_SLAVE to an address a driver holds whatever the TENBIT of either side, as i2cdev_check() compares bare addresses', async () => {
    const d = await plug({
      chips: [
        { type: 'regs', addr: 0x123, tenBit: true, driver: 'tenbit-driver' },
        { type: 'regs', addr: 0x3c, driver: 'ssd1306' },
        { type: 'regs', addr: 0x23, tenBit: true, driver: 'tenbit-driver' },
      ],
    });
    const c = await I2cClient.open(d.path);
    expect(await c.op('tenbit 1')).toBe('ok');
    expect(await c.op('slave 0x123')).toBe('EBUSY');
    expect(await c.op('slave 0x3c')).toBe('EBUSY');
    expect(await c.op('force 0x123')).toBe('ok');
    expect(await c.op('tenbit 0')).toBe('ok');
    expect(await c.op('slave 0x23')).toBe('EBUSY');
    expect(await c.op('slave 0x24')).toBe('ok');
    await c.close();
  });

  it('answers a NACK with the adapter’s errno, and an EEPROM NACKs its address while it writes (acknowledge polling)', async () => {
    const d = await plug({ nackErrno: 'EREMOTEIO', chips: [{ type: 'eeprom', addr: 0x50, writeCycleMs: 5000 }] });
    const c = await I2cClient.open(d.path);
    expect(await c.op('slave 0x51')).toBe('ok');
    expect(await c.op('read 1')).toBe('EREMOTEIO');
    expect(await c.op('slave 0x50')).toBe('ok');
    expect(await c.op('write 0702')).toBe('ok 2');
    // The write cycle began at STOP: the next START gets no ACK until it ends (at24's polling loop).
    expect(await c.op('write 07')).toBe('EREMOTEIO');
    await pollUntil(async () => (await c.op('write 07')) === 'ok 1', 'the EEPROM acknowledging again');
    expect(await c.op('read 1')).toBe('ok 02');
    await c.close();
  });

  it('fails a transfer ETIMEDOUT when a chip stretches the clock past the adapter timeout (I2C_TIMEOUT)', async () => {
    const d = await plug({
      chips: [
        { type: 'regs', addr: 0x20, stretchMs: 60_000 },
        { type: 'regs', addr: 0x21, stretchMs: 50, registers: { 0: 0x5a } },
      ],
    });
    const c = await I2cClient.open(d.path);
    expect(await c.op('slave 0x20')).toBe('ok');
    expect(await c.op('timeout 5')).toBe('ok'); // 50 ms
    expect(await c.op('read 1')).toBe('ETIMEDOUT');
    expect(await c.op('timeout 100')).toBe('ok'); // 1 s, more than 0x21 stretches
    expect(await c.op('slave 0x21')).toBe('ok');
    expect(await c.op('read 1')).toBe('ok 5a');
    await c.close();
  });
});

describe('options and actions', () => {
  it('refuses a bad bus with a message naming what is wrong', async () => {
    const refused = async (name: string, options: unknown): Promise<string> => {
      const err = await t.emu.devices.plug({ model: 'i2c', name, options }).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err, name).not.toBeNull();
      return err!.message;
    };
    expect(await refused('bus1', {})).toMatch(/named i2c-N/);
    expect(await refused('i2c-90', { chips: [{ type: 'eeprom', addr: 0x05 }] })).toMatch(
      /chips\[0\]\.addr must be an integer from 8 to 119/,
    );
    expect(
      await refused('i2c-90', {
        chips: [
          { type: 'lm75', addr: 0x48 },
          { type: 'regs', addr: 0x48 },
        ],
      }),
    ).toMatch(/option chips\[1\]\.addr: another chip is at address 0x48/);
    expect(await refused('i2c-90', { chips: [{ type: 'flash', addr: 0x48 }] })).toMatch(
      'i2c: option chips[0].type must be one of "eeprom", "lm75", "regs", got "flash"',
    );
    expect(await refused('i2c-90', { chips: [{ type: 'lm75', addr: 0x48, pageSize: 8 }] })).toBe('i2c: create failed: i2c: option chips[0]: pageSize is unknown; known: type, addr, tenBit, driver, stretchMs, celsius, thyst, tos');
    expect(await refused('i2c-90', { nackErrno: 'EPERM' })).toBe('i2c: option nackErrno must be one of "ENXIO", "EREMOTEIO", "EIO", got "EPERM"');
    expect(t.emu.devices.get('i2c-90')).toBeUndefined();
  });

  it('answers the actions, and refuses one aimed at no chip', async () => {
    const d = await plug();
    expect(await action(d.name, 'poke', { addr: 0x50, reg: 0xfe, hex: 'c0ffee' })).toEqual({ addr: 0x50, reg: 0xfe, hex: 'c0ffee' });
    expect(await peek(d, 0x50, 0xfe, 3)).toBe('c0ffee'); // the write wrapped to 0x00
    expect(eventsOf(d, 'i2c_poke')).toMatchObject([{ addr: 0x50, reg: 0xfe, hex: 'c0ffee' }]);
    expect(await action(d.name, 'temperature', { celsius: 300 })).toEqual({ addr: 0x48, celsius: 125 });
    expect(await peek(d, 0x48, 0)).toBe('7d00');
    await expect(action(d.name, 'temperature', { addr: 0x50, celsius: 20 })).rejects.toThrow(/no such chip at address 0x50/);
    await expect(action(d.name, 'peek', { addr: 0x51 })).rejects.toThrow(/no chip at address 0x51/);
    expect((await action(d.name, 'status')).chips).toEqual([
      { type: 'eeprom', addr: 0x50, stretchMs: 0, pageSize: 8, writeCycleMs: 0 },
      { type: 'lm75', addr: 0x48, stretchMs: 0, celsius: 125, config: 0, thyst: 75, tos: 80 },
    ]);
  });
});

describe('unplug', () => {
  it('fails the transfer a client is blocked in, the one waiting for the bus, and every transfer after it EIO; the node is gone', async () => {
    const d = await plug({
      chips: [
        { type: 'eeprom', addr: 0x50, stretchMs: 600_000 },
        { type: 'lm75', addr: 0x48 },
      ],
    });
    const blocked = await I2cClient.open(d.path);
    const waiting = await I2cClient.open(d.path);
    const idle = await I2cClient.open(d.path);
    // The adapter waits for the stretching chip longer than the test runs.
    expect(await blocked.op('timeout 100000')).toBe('ok');
    expect(await blocked.op('slave 0x50')).toBe('ok');
    expect(await waiting.op('slave 0x48')).toBe('ok');
    expect(await idle.op('slave 0x48')).toBe('ok');
    expect(await idle.op(`poll ${POLLIN | POLLOUT} 0`)).toBe(`ok ${POLLIN | POLLOUT}`);
    blocked.start('read 4');
    await until(() => d.inst.inFlight.some((h) => h.op === 'read'), 10_000, 'the read in the model');
    // The bus is held: another file's transaction waits for it.
    waiting.start('smbus 1 0 3');
    await until(() => d.inst.state.queued === 1, 10_000, 'the SMBus read waiting for the bus');
    await t.emu.devices.unplug(d.name);
    expect(await blocked.answer()).toBe('EIO');
    expect(await waiting.answer()).toBe('EIO');
    for (const op of ['read 1', 'write 00', 'rdwr 0x48 2', 'smbus 1 0 3']) expect(await idle.op(op), op).toBe('EIO');
    // i2c-dev has no poll: the VFS answers DEFAULT_POLLMASK, as before the unplug.
    expect(await idle.op(`poll ${POLLIN | POLLOUT} 0`)).toBe(`ok ${POLLIN | POLLOUT}`);
    // The node went with the adapter: no new open.
    const reopen = await run('/usr/bin/python3', [
      '-c',
      'import os, sys\ntry:\n    os.open(sys.argv[1], os.O_RDWR)\nexcept OSError as e:\n    print(e.strerror)',
      d.path,
    ]);
    expect(reopen.stdout.trim()).toBe('No such file or directory');
    await Promise.all([blocked.close(), waiting.close(), idle.close()]);
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(eventsOf(d, 'late_released')).toHaveLength(3);
  });

  it('keeps i2c-dev’s ioctls on a file still open, as i2cdev_ioctl() answers them once the adapter is gone: I2C_FUNCS 0 (i2c-tiny-usb asks the gone device), I2C_SLAVE to an address a driver held, the flags', async () => {
    const d = await plug({
      functionality: 0x0fff800b,
      chips: [
        { type: 'regs', addr: 0x20, registers: { 0: 0x11 } },
        { type: 'regs', addr: 0x3c, driver: 'ssd1306' },
      ],
    });
    const c = await I2cClient.open(d.path);
    expect(await c.op('slave 0x3c')).toBe('EBUSY');
    expect(await c.op('slave 0x20')).toBe('ok');
    expect(await c.op('smbus 1 0 2')).toBe('ok 1100');
    expect(await c.op('funcs')).toBe('ok 0xfff800b');
    await t.emu.devices.unplug(d.name);
    // i2c_get_functionality() calls i2c-tiny-usb's usb_func(), whose read from the gone device fails: 0, successfully.
    expect(await c.op('funcs')).toBe('ok 0x0');
    // i2c_del_adapter() unregistered the clients: i2cdev_check_addr() finds none, so the driver's address is free.
    expect(await c.op('slave 0x3c')).toBe('ok');
    // i2c-dev's own checks still run: an address over 0x7f without TENBIT is EINVAL.
    expect(await c.op('slave 0x80')).toBe('EINVAL');
    expect(await c.op('tenbit 1')).toBe('ok');
    expect(await c.op('force 0x3a5')).toBe('ok');
    expect(await c.op('tenbit 0')).toBe('ok');
    expect(await c.op('pec 1')).toBe('ok');
    expect(await c.op('timeout 5')).toBe('ok');
    expect(await c.op('retries 2')).toBe('ok');
    // What reaches the bus meets a bridge whose hardware is gone: i2c-tiny-usb's usb_xfer() answers EIO.
    for (const op of ['read 1', 'write 00', 'rdwr 0x20 1', 'smbus 1 0 2']) expect(await c.op(op), op).toBe('EIO');
    await c.close();
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(eventsOf(d, 'model_error')).toEqual([]);
    expect(eventsOf(d, 'late_released')).toHaveLength(1);
  });
});
