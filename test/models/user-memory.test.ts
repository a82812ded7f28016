/**
 * The user-memory API (src/usermem.ts) through a real mount: a C client
 * hands a model good and bad pointers the way I2C_RDWR and SPI_IOC_MESSAGE
 * callers do; bad ones fail EFAULT with copy_to_user()'s partial writes,
 * and the daemon keeps serving. A handler still running after its request
 * was answered can no longer write into the caller.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WDIOC_SETOPTIONS } from '../../src/models/watchdog.js';
import { USERMEM_HELD, usermemHeld, usermemModel } from '../fixtures/usermem-model.js';
import { cClient } from '../helpers/cc.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { python, pythonInteractive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';

let t: TestEmulator;
let client: string;
beforeAll(async () => {
  t = await startTestEmulator([usermemModel]);
  client = await cClient('usermem');
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

const hex = (s: string): string => Buffer.from(s).toString('hex');

describe('user memory from a C client', () => {
  it('follows good pointers, fails bad ones with EFAULT, and keeps serving', async () => {
    const inst = await t.emu.devices.plug({ model: 'usermem', name: 'um0' });
    const r = await run(client, [t.path('dev/um0')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.split(' ')[0], l.split(' ').slice(1).join(' ')]));
    expect(lines).toEqual({
      good: `ok 10 ${hex('9876543210')}`,
      'null-arg': 'errno EFAULT ',
      'wild-arg': 'errno EFAULT ',
      'bad-src': 'errno EFAULT 00000000',
      // copy_to_user() stops at the PROT_NONE page: the accessible half was written.
      'straddle-dst': `errno EFAULT ${hex('HGFE')}`,
      'straddle-src': 'errno EFAULT ',
      // The copy faulted a page of this node in: a READ the daemon served while the copy waited.
      'own-map': `ok 16 ${hex('ponmlkjihgfedcba')}`,
      'good-again': `ok 3 ${hex('zyx')}`,
    });
    expect(inst.state.copies).toBe(3);
    // And a second client is served as the first was.
    const again = await run(client, [t.path('dev/um0')]);
    expect(again.stdout).toContain(`good-again ok 3 ${hex('zyx')}`);
  });

  it('answers the watchdog a bad WDIOC_SETOPTIONS pointer with EFAULT', async () => {
    const wd = await t.emu.devices.plug({ model: 'watchdog', name: 'watchdog%d', options: { timeout: 600 } });
    const r = await python(
      `import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_WRONLY)
r = libc.ioctl(fd, ctypes.c_ulong(${WDIOC_SETOPTIONS}), ctypes.c_void_p(16))
print(r, os.strerror(ctypes.get_errno()))
os.write(fd, b'V')`,
      [t.path(`dev/${wd.name}`)],
    );
    expect(r.stdout.trim()).toBe('-1 Bad address');
  });

  it('refuses a copy after the request was answered: a stuck handler cannot write into the caller', async () => {
    usermemHeld.outcome = '';
    await t.emu.devices.plug({ model: 'usermem', name: 'um1' });
    const p = pythonInteractive(
      `import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDWR)
buf = ctypes.create_string_buffer(b'....', 4)
r = libc.ioctl(fd, ctypes.c_ulong(${USERMEM_HELD}), buf)
print(r, errno.errorcode.get(ctypes.get_errno(), '-'), buf.raw.decode())
sys.stdin.readline()
print(buf.raw.decode())`,
      [t.path('dev/um1')],
    );
    await until(() => t.emu.devices.get('um1')?.inFlight.some((h) => h.op === 'ioctl') ?? false, 10_000, 'the ioctl in the model');
    // The model ignores its signal: unplug gives up on it and answers the caller.
    const report = await t.emu.devices.unplug('um1', { drainTimeoutMs: 50 });
    expect(report.stuck.map((s) => s.op)).toEqual(['ioctl']);
    expect(await p.line()).toBe('-1 EIO ....');
    usermemHeld.release();
    await until(() => usermemHeld.outcome !== '', 10_000, 'the late write');
    expect(usermemHeld.outcome).toBe('EFAULT');
    p.send('check');
    expect(await p.line()).toBe('....');
    expect(await p.exited).toEqual({ code: 0, signal: null });
  });
});
