/**
 * watchdog model on a real mount: wdctl reads identity and timeout and sets
 * the timeout (through ioctls: the node's st_rdev names no /sys/dev/char
 * entry), magic close, "did not stop", expiry events, SETOPTIONS through a
 * FUSE mount, drivers without get_timeleft, pretimeout or other WDIOF_*
 * features, and every op after unplug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_POLLMASK, POLLIN, POLLOUT } from '../../src/devio.js';
import {
  WDIOC_GETBOOTSTATUS,
  WDIOC_GETPRETIMEOUT,
  WDIOC_GETSUPPORT,
  WDIOC_GETSTATUS,
  WDIOC_GETTIMELEFT,
  WDIOC_GETTIMEOUT,
  WDIOC_KEEPALIVE,
  WDIOC_SETOPTIONS,
  WDIOC_SETPRETIMEOUT,
  WDIOC_SETTIMEOUT,
  WDIOS_DISABLECARD,
  WDIOF,
  WDIOS_ENABLECARD,
  type WatchdogState,
} from '../../src/models/watchdog.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { pythonInteractive, run } from '../helpers/proc.js';
import { Holder, le32, O_RDWR, O_WRONLY, hex } from './holder.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

const plug = async (options: Record<string, unknown> = {}) => {
  const inst = await t.emu.devices.plug({ model: 'watchdog', name: 'watchdog%d', options });
  return { inst, name: inst.name, path: t.path(`dev/${inst.name}`) };
};
const V = Buffer.from('V').toString('hex');
const status = async (name: string) =>
  (await t.emu.devices.action(name, 'status')) as { active: boolean; timeout: number; expiries: number };
/** Events of one plug (names are reused after unplug, generations are not). */
const eventsOf = (d: { name: string; inst: { generation: number } }, type: string) =>
  t.events.filter((e) => e.device === d.name && e.generation === d.inst.generation && e.type === type);

describe('wdctl', () => {
  it('shows the identity and timeout, and -s changes the timeout the model reports; magic close stops it', async () => {
    const d = await plug({ identity: 'cdevemu test dog', timeout: 42 });
    const show = await run('wdctl', [d.path]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/Identity:\s+cdevemu test dog \[version 0\]/);
    expect(show.stdout).toMatch(/Timeout:\s+42 seconds/);
    expect(show.stdout).toMatch(/MAGICCLOSE/);
    const set = await run('wdctl', ['-s', '17', d.path]);
    expect(set.code).toBe(0);
    expect(set.stdout).toContain('Timeout has been set to 17 seconds.');
    expect(set.stdout).toMatch(/Timeout:\s+17 seconds/);
    expect((await status(d.name)).timeout).toBe(17);
    expect((await run('cat', [t.path(`sys/class/watchdog/${d.name}/timeout`), t.path(`sys/class/watchdog/${d.name}/state`)])).stdout).toBe(
      '17\ninactive\n',
    );
    // wdctl wrote 'V' before closing both times: the watchdog stopped, nothing was logged.
    expect((await status(d.name)).active).toBe(false);
    expect(eventsOf(d, 'not_stopped')).toEqual([]);
  });

  it('shows Timeleft and the PRETIMEOUT flag only for a driver that has them', async () => {
    // The default: the flags of the common PC watchdogs, no get_timeleft (softdog, i6300esb).
    const plain = await run('wdctl', [(await plug()).path]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/SETTIMEOUT/);
    expect(plain.stdout).toMatch(/KEEPALIVEPING/);
    expect(plain.stdout).not.toMatch(/Timeleft:/);
    expect(plain.stdout).not.toMatch(/PRETIMEOUT/);
    const full = await run('wdctl', [
      (await plug({ timeout: 60, pretimeout: 7, timeleft: true, support: ['SETTIMEOUT', 'MAGICCLOSE', 'PRETIMEOUT', 'KEEPALIVEPING'] }))
        .path,
    ]);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stdout).toMatch(/Timeleft:\s+\d+ seconds/);
    expect(full.stdout).toMatch(/Pre-timeout:\s+7 seconds/);
    expect(full.stdout).toMatch(/PRETIMEOUT/);
  });
});

describe("a driver's features (WDIOF_* flags and get_timeleft)", () => {
  const sysfs = async (name: string): Promise<string[]> =>
    (await run('ls', [t.path(`sys/class/watchdog/${name}`)])).stdout.split('\n').filter(Boolean).sort();
  const BASE = ['bootstatus', 'identity', 'nowayout', 'state', 'status', 'timeout'];

  it('by default has no time left (EOPNOTSUPP, watchdog_get_timeleft) and no pretimeout (EOPNOTSUPP, watchdog_set_pretimeout), nor their sysfs files', async () => {
    const d = await plug({ timeout: 600 });
    const h = await Holder.open(d.path, O_RDWR);
    const support = Buffer.from((await h.op(`ioctl ${hex(WDIOC_GETSUPPORT)} 40`)).split(' ')[2]!, 'hex').readUInt32LE(0);
    expect(support).toBe(WDIOF.SETTIMEOUT | WDIOF.MAGICCLOSE | WDIOF.KEEPALIVEPING);
    // Python names EOPNOTSUPP ENOTSUP (the same number on Linux).
    expect(await h.op(`ioctl ${hex(WDIOC_GETTIMELEFT)} 4`)).toBe('ENOTSUP');
    expect(await h.op(`ioctl ${hex(WDIOC_SETPRETIMEOUT)} 4 ${le32(5)}`)).toBe('ENOTSUP');
    expect(await h.op(`ioctl ${hex(WDIOC_GETPRETIMEOUT)} 4`)).toBe(`ok 0 ${le32(0)}`); // put_user(wdd->pretimeout) always
    // What every driver has stays: SETTIMEOUT, KEEPALIVE, magic close.
    expect(await h.op(`ioctl ${hex(WDIOC_SETTIMEOUT)} 4 ${le32(300)}`)).toBe(`ok 0 ${le32(300)}`);
    expect(await h.op(`ioctl ${hex(WDIOC_KEEPALIVE)} 4`)).toMatch(/^ok 0 /);
    expect(await sysfs(d.name)).toEqual(BASE);
    expect(await h.op(`write ${V}`)).toBe('ok 1');
    await h.close();
    expect((await status(d.name)).active).toBe(false);
    await expect(plug({ pretimeout: 5 })).rejects.toThrow('watchdog: option pretimeout 5 needs PRETIMEOUT in option support');
  });

  it('with get_timeleft and PRETIMEOUT answers both and publishes their files', async () => {
    const d = await plug({ timeout: 600, timeleft: true, support: ['SETTIMEOUT', 'MAGICCLOSE', 'PRETIMEOUT', 'KEEPALIVEPING'] });
    const h = await Holder.open(d.path, O_RDWR);
    const support = Buffer.from((await h.op(`ioctl ${hex(WDIOC_GETSUPPORT)} 40`)).split(' ')[2]!, 'hex').readUInt32LE(0);
    expect(support).toBe(WDIOF.SETTIMEOUT | WDIOF.MAGICCLOSE | WDIOF.PRETIMEOUT | WDIOF.KEEPALIVEPING);
    expect(await h.op(`ioctl ${hex(WDIOC_GETTIMELEFT)} 4`)).toMatch(/^ok 0 /);
    expect(await h.op(`ioctl ${hex(WDIOC_SETPRETIMEOUT)} 4 ${le32(600)}`)).toBe('EINVAL'); // not below the timeout
    expect(await h.op(`ioctl ${hex(WDIOC_SETPRETIMEOUT)} 4 ${le32(5)}`)).toMatch(/^ok 0 /);
    expect(await h.op(`ioctl ${hex(WDIOC_GETPRETIMEOUT)} 4`)).toBe(`ok 0 ${le32(5)}`);
    expect(await sysfs(d.name)).toEqual([...BASE, 'pretimeout', 'timeleft'].sort());
    expect((await run('cat', [t.path(`sys/class/watchdog/${d.name}/pretimeout`)])).stdout).toBe('5\n');
    expect(await h.op(`write ${V}`)).toBe('ok 1');
    await h.close();
  });

  it('without SETTIMEOUT or KEEPALIVEPING refuses those ioctls (EOPNOTSUPP) but is fed by writes; without MAGICCLOSE any close stops it', async () => {
    const d = await plug({ timeout: 600, support: [] });
    const h = await Holder.open(d.path, O_RDWR);
    expect(await h.op(`ioctl ${hex(WDIOC_GETSUPPORT)} 40`)).toMatch(/^ok 0 00000000/);
    expect(await h.op(`ioctl ${hex(WDIOC_SETTIMEOUT)} 4 ${le32(300)}`)).toBe('ENOTSUP');
    expect(await h.op(`ioctl ${hex(WDIOC_GETTIMEOUT)} 4`)).toBe(`ok 0 ${le32(600)}`);
    expect(await h.op(`ioctl ${hex(WDIOC_KEEPALIVE)} 4`)).toBe('ENOTSUP');
    expect(await h.op(`ioctl ${hex(WDIOC_GETSTATUS)} 4`)).toBe(`ok 0 ${le32(0)}`); // the refused KEEPALIVE did not ping
    expect(await h.op('write 00')).toBe('ok 1');
    expect(await h.op(`ioctl ${hex(WDIOC_GETSTATUS)} 4`)).toBe(`ok 0 ${le32(WDIOF.KEEPALIVEPING)}`);
    // watchdog_release(): no 'V' written, but a driver without WDIOF_MAGICCLOSE stops at any close.
    await h.close();
    expect((await status(d.name)).active).toBe(false);
    expect(eventsOf(d, 'not_stopped')).toEqual([]);
  });
});

describe('the device', () => {
  it('keeps running after a close without V ("watchdog did not stop!") and reports an expiry when not fed', async () => {
    const d = await plug({ timeout: 1 });
    const h = await Holder.open(d.path, O_WRONLY);
    expect((await status(d.name)).active).toBe(true);
    expect(await h.op('write 00')).toBe('ok 1');
    await h.close();
    expect(eventsOf(d, 'not_stopped')).toEqual([expect.objectContaining({ message: `${d.name}: watchdog did not stop!` })]);
    const expired = await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'expired', 10_000);
    expect(expired).toMatchObject({ timeout: 1, count: 1 });
    // Unfed, it expires again every second, each expiry counted with its
    // event: a loaded machine may let more pass before the status is read.
    const seen = eventsOf(d, 'expired').length;
    const { expiries } = await status(d.name);
    expect(expiries).toBeGreaterThanOrEqual(seen);
    expect(expiries).toBeLessThanOrEqual(eventsOf(d, 'expired').length);
    // The boot status tells the next opener that the card reset the machine.
    const h2 = await Holder.open(d.path, O_WRONLY);
    expect(await h2.op(`ioctl ${hex(WDIOC_GETBOOTSTATUS)} 4`)).toBe(`ok 0 ${le32(WDIOF.CARDRESET)}`);
    // watchdog_get_status() passes the boot status's reset reasons on (and the open's start was a ping).
    expect(await h2.op(`ioctl ${hex(WDIOC_GETSTATUS)} 4`)).toBe(`ok 0 ${le32(WDIOF.CARDRESET | WDIOF.KEEPALIVEPING)}`);
    expect(await h2.op(`write ${V}`)).toBe('ok 1');
    await h2.close();
    expect((await status(d.name)).active).toBe(false);
  });

  it('is fed by writes and WDIOC_KEEPALIVE; answers timeouts, status and SETOPTIONS; is exclusive', async () => {
    // A timeout no load can outlast: feeding is shown by the ping bit and the
    // time left, not by surviving a race against the clock.
    const d = await plug({ timeout: 600, timeleft: true });
    const h = await Holder.open(d.path, O_RDWR);
    const second = await run('python3', [
      '-c',
      'import os,sys\ntry:\n os.open(sys.argv[1], os.O_WRONLY)\nexcept OSError as e: print(e.strerror)',
      d.path,
    ]);
    expect(second.stdout.trim()).toBe('Device or resource busy');
    for (const feed of ['write 41', `ioctl ${hex(WDIOC_KEEPALIVE)} 4`]) {
      expect(await h.op(feed)).toMatch(/^ok /);
      expect(await h.op(`ioctl ${hex(WDIOC_GETSTATUS)} 4`)).toBe(`ok 0 ${le32(WDIOF.KEEPALIVEPING)}`);
      expect(await h.op(`ioctl ${hex(WDIOC_GETSTATUS)} 4`)).toBe(`ok 0 ${le32(0)}`); // reading it cleared the bit
    }
    expect(eventsOf(d, 'expired')).toEqual([]);
    expect(await h.op(`ioctl ${hex(WDIOC_SETTIMEOUT)} 4 ${le32(0)}`)).toBe('EINVAL');
    const setAt = Date.now();
    expect(await h.op(`ioctl ${hex(WDIOC_SETTIMEOUT)} 4 ${le32(300)}`)).toBe(`ok 0 ${le32(300)}`);
    expect(await h.op(`ioctl ${hex(WDIOC_GETTIMEOUT)} 4`)).toBe(`ok 0 ${le32(300)}`);
    // SETTIMEOUT pings: the time left starts again from the new timeout.
    const left = Buffer.from((await h.op(`ioctl ${hex(WDIOC_GETTIMELEFT)} 4`)).slice(5), 'hex').readInt32LE(0);
    expect(left).toBeLessThanOrEqual(300);
    expect(left).toBeGreaterThanOrEqual(300 - Math.ceil((Date.now() - setAt) / 1000) - 1);
    // WDIOC_SETOPTIONS is _IOR: the value crosses only because the model reads the caller's memory.
    expect(await h.op(`ioctl ${hex(WDIOC_SETOPTIONS)} 4 ${le32(WDIOS_DISABLECARD)}`)).toMatch(/^ok 0 /);
    expect((await status(d.name)).active).toBe(false);
    expect(await h.op(`ioctl ${hex(WDIOC_SETOPTIONS)} 4 ${le32(WDIOS_ENABLECARD)}`)).toMatch(/^ok 0 /);
    expect((await status(d.name)).active).toBe(true);
    // A value with neither WDIOS_DISABLECARD nor WDIOS_ENABLECARD (none, WDIOS_TEMPPANIC,
    // a WDIOF_* flag by mistake) leaves watchdog_ioctl()'s -ENOIOCTLCMD: ENOTTY.
    for (const wrong of [0, 4, WDIOF.MAGICCLOSE]) expect(await h.op(`ioctl ${hex(WDIOC_SETOPTIONS)} 4 ${le32(wrong)}`)).toBe('ENOTTY');
    expect((await status(d.name)).active).toBe(true);
    expect(await h.op(`write ${Buffer.from('xxVx').toString('hex')}`)).toBe('ok 4');
    expect(await h.op(`ioctl ${hex(WDIOC_GETSTATUS)} 4`)).toBe(`ok 0 ${le32(WDIOF.MAGICCLOSE | WDIOF.KEEPALIVEPING)}`);
    expect(await h.op(`ioctl ${hex(0x80045763)} 4`)).toBe('ENOTTY');
    expect(await h.op('read 4')).toBe('EINVAL'); // no read op
    await h.close();
    expect((await status(d.name)).active).toBe(false);
  });

  it('SETOPTIONS reads the calling process, not the opener: a forked child disables the card its parent opened', async () => {
    const d = await plug({ timeout: 60 });
    // The parent opens (which starts the card) and keeps ENABLECARD at the
    // address; the child writes DISABLECARD at the same address of its own
    // copy and makes the ioctl. Read from the opener, the card would stay on.
    const p = pythonInteractive(
      `import os, sys, ctypes
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_WRONLY)
opt = ctypes.c_int(${WDIOS_ENABLECARD})
pid = os.fork()
if pid == 0:
    opt.value = ${WDIOS_DISABLECARD}
    os._exit(0 if libc.ioctl(fd, ctypes.c_ulong(${WDIOC_SETOPTIONS}), ctypes.byref(opt)) == 0 else ctypes.get_errno())
_, st = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(st), opt.value)
sys.stdin.readline()
os.write(fd, b'V')`,
      [d.path],
    );
    expect(await p.line()).toBe(`0 ${WDIOS_ENABLECARD}`);
    expect((await status(d.name)).active).toBe(false);
    p.send('close');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.stderr).toBe('');
  });

  it('nowayout refuses to stop even after V', async () => {
    const d = await plug({ nowayout: true });
    const h = await Holder.open(d.path, O_WRONLY);
    expect(await h.op(`ioctl ${hex(WDIOC_SETOPTIONS)} 4 ${le32(WDIOS_DISABLECARD)}`)).toBe('EBUSY');
    expect(await h.op(`write ${V}`)).toBe('ok 1');
    await h.close();
    expect((await status(d.name)).active).toBe(true);
    expect(eventsOf(d, 'not_stopped')).toHaveLength(1);
    await t.emu.devices.unplug(d.name); // cancels the timer
  });

  it('after unplug: write and ioctl fail ENODEV, read EINVAL as always (no read), poll stays the VFS default, timers are cancelled', async () => {
    // Five seconds from the open: a loaded machine would have to stall that
    // long before the unplug for it to expire while live.
    const d = await plug({ timeout: 5 });
    const h = await Holder.open(d.path, O_RDWR);
    await t.emu.devices.unplug(d.name);
    expect(await h.op('write 00')).toBe('ENODEV');
    expect(await h.op(`ioctl ${hex(WDIOC_KEEPALIVE)} 4`)).toBe('ENODEV');
    expect(await h.op('read 4')).toBe('EINVAL');
    expect(await h.op(`poll ${POLLIN | POLLOUT} 0`)).toBe(`ok ${DEFAULT_POLLMASK & (POLLIN | POLLOUT)}`);
    const state = d.inst.state as WatchdogState;
    expect(state.timers).toEqual([]);
    // A timer left running would count an expiry (its event is dropped once
    // the device is removed, but the count is not) when its five seconds are
    // up. A second watchdog, started only now with a second more, expires a
    // second after that, and Node runs timers in the order they fall due.
    const later = await plug({ timeout: 6 });
    const l = await Holder.open(later.path, O_WRONLY);
    await t.waitEvent((e) => e.device === later.name && e.generation === later.inst.generation && e.type === 'expired', 20_000);
    expect(state.expiries).toBe(0);
    expect(eventsOf(d, 'expired')).toEqual([]);
    expect(await l.op(`write ${V}`)).toBe('ok 1');
    await l.close();
    await h.close();
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(d.inst.counters.lateReleases).toBe(1);
    expect(eventsOf(d, 'not_stopped')).toEqual([]);
  });
});
