/**
 * rtc model on a real mount: hwclock --set / --show (which waits for an
 * update interrupt with RTC_UIE_ON and select(), or busy-waits for the tick
 * on a clock without update interrupts), the read format of interrupt data,
 * alarms, a clock without them, sysfs wakealarm, exclusive open, and every
 * op after unplug: a read sleeps on until a signal ends it, as
 * rtc_dev_read() does.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLLIN } from '../../src/devio.js';
import {
  RTC_AF,
  RTC_AIE_OFF,
  RTC_AIE_ON,
  RTC_ALM_READ,
  RTC_ALM_SET,
  RTC_IRQF,
  RTC_RD_TIME,
  RTC_SET_TIME,
  RTC_UF,
  RTC_UIE_OFF,
  RTC_UIE_ON,
  RTC_WKALM_RD,
  RTC_WKALM_SET,
  type RtcState,
} from '../../src/models/rtc.js';
import { describeUnless, itUnless, needsRoot, withSbin } from '../helpers/as-user.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { pythonInteractive, run } from '../helpers/proc.js';
import { Holder, O_RDONLY, hex, le32, readBlocked, until } from './holder.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

const plug = async (options: Record<string, unknown> = {}) => {
  const inst = await t.emu.devices.plug({ model: 'rtc', name: 'rtc%d', options });
  return { inst, name: inst.name, path: t.path(`dev/${inst.name}`), state: inst.state as RtcState };
};
/** Update interrupts counted in rtc->irq_data since it was last read (the count above the low byte). */
const pending = (s: RtcState): number => Math.floor(s.irqData / 256);
/** struct rtc_time as hex, from a UTC date. */
function tm(iso: string): string {
  const d = new Date(iso);
  const b = Buffer.alloc(36);
  [d.getUTCSeconds(), d.getUTCMinutes(), d.getUTCHours(), d.getUTCDate(), d.getUTCMonth(), d.getUTCFullYear() - 1900].forEach((v, i) =>
    b.writeInt32LE(v, i * 4),
  );
  return b.toString('hex');
}
/** struct rtc_time hex -> epoch seconds. */
function tmSec(h: string): number {
  const b = Buffer.from(h, 'hex');
  const f = (i: number): number => b.readInt32LE(i * 4);
  return Date.UTC(f(5) + 1900, f(4), f(3), f(2), f(1), f(0)) / 1000;
}

const SET_TIME = "RTC_SET_TIME takes the caller's CAP_SYS_TIME (drivers/rtc/dev.c)";

describeUnless(needsRoot(`hwclock --set: ${SET_TIME}`))('hwclock', () => {
  it('--set then --show returns the time set plus the seconds that passed', async () => {
    const d = await plug();
    // Debian's hwclock is /usr/sbin/hwclock.
    const env = withSbin({ ...process.env, TZ: 'UTC' });
    const setStart = Date.now();
    const set = await run('hwclock', ['--set', '--date', '2030-01-02 03:04:05', '--utc', '--noadjfile', '-f', d.path], { env });
    const setEnd = Date.now();
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    const before = { ...d.inst.counters };
    const showStart = Date.now();
    const show = await run('hwclock', ['--show', '--utc', '--noadjfile', '-f', d.path], { env });
    const showEnd = Date.now();
    expect(show.stderr).toBe('');
    expect(show.code).toBe(0);
    // e.g. "2030-01-02 03:04:06.512345+00:00"
    const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)?\+00:00$/m.exec(show.stdout);
    expect(m, show.stdout).not.toBeNull();
    const shown = Date.parse(`${m![1]}T${m![2]}${m![3] ?? ''}Z`);
    // The clock ran from the set to the read, both somewhere inside their
    // commands' runs; a second more either way for whole-second rounding.
    // Bounds measured around the commands, so load widens them, never breaks them.
    const passed = shown - Date.parse('2030-01-02T03:04:05Z');
    expect(passed).toBeGreaterThanOrEqual(showStart - setEnd - 1000);
    expect(passed).toBeLessThanOrEqual(showEnd - setStart + 1000);
    // hwclock --show waited for the update interrupt: RTC_UIE_ON, select() (POLL), RTC_UIE_OFF, RTC_RD_TIME;
    // its busy-wait fallback would poll RTC_RD_TIME instead and never POLL.
    expect(d.inst.counters.polls - before.polls).toBeGreaterThanOrEqual(1);
    expect(d.inst.counters.ioctls - before.ioctls).toBe(3);
    const r = await run('cat', [t.path(`sys/class/rtc/${d.name}/date`), t.path(`sys/class/rtc/${d.name}/name`)]);
    expect(r.stdout).toBe('2030-01-02\nrtc-cdevemu\n');
  });

  it('--verbose waits for the update interrupt on a clock that has one, and busy-waits for the tick on one without (no UIE, or no alarm)', async () => {
    const env = withSbin({ ...process.env, TZ: 'UTC' });
    const verbose = async (options: Record<string, unknown>) => {
      const d = await plug({ time: '2030-01-02T03:04:05Z', ...options });
      const before = { ...d.inst.counters };
      const r = await run('hwclock', ['--show', '--verbose', '--utc', '--noadjfile', '-f', d.path], { env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      // It read the clock all the same: the time plugged plus the seconds of the run.
      expect(r.stdout).toMatch(/^2030-01-02 03:0\d:\d\d\.\d+\+00:00$/m);
      return { d, out: r.stdout, polls: d.inst.counters.polls - before.polls };
    };
    // util-linux synchronize_to_clock_tick_rtc(): RTC_UIE_ON, then select() for the interrupt.
    const uie = await verbose({});
    expect(uie.out).toContain('...got clock tick');
    expect(uie.out).not.toContain('RTC_UIE_ON');
    expect(uie.out).not.toContain('Waiting in loop');
    expect(uie.polls).toBeGreaterThanOrEqual(1);
    // RTC_UIE_ON fails EINVAL (rtc_update_irq_enable()): busywait_for_rtc_clock_tick() reads the time until its second changes.
    for (const options of [{ updateInterrupt: false }, { alarm: false }]) {
      const busy = await verbose(options);
      const what = JSON.stringify(options);
      expect(busy.out, what).toMatch(/^ioctl\(\d+, RTC_UIE_ON, 0\): Invalid argument$/m);
      expect(busy.out, what).toContain(`Waiting in loop for time from ${busy.d.path} to change`);
      expect(busy.out, what).toContain('...got clock tick');
      expect(busy.polls, what).toBe(0);
    }
  });

  it('--set and --show work on a clock without update interrupts', async () => {
    const d = await plug({ updateInterrupt: false });
    const env = withSbin({ ...process.env, TZ: 'UTC' });
    const set = await run('hwclock', ['--set', '--date', '2031-05-06 07:08:09', '--utc', '--noadjfile', '-f', d.path], { env });
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    const show = await run('hwclock', ['--show', '--utc', '--noadjfile', '-f', d.path], { env });
    expect(show.stderr).toBe('');
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^2031-05-06 07:08:\d\d\.\d+\+00:00$/m);
  });
});

describe('the device', () => {
  it('delivers update interrupts through read and poll as rtc_dev_read does', async () => {
    const d = await plug();
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op('read 6')).toBe('EINVAL');
    expect(await h.op(`poll ${POLLIN} 0`)).toBe('ok 0');
    const rtcSec = async (): Promise<number> => tmSec((await h.op(`ioctl ${hex(RTC_RD_TIME)} 36`)).split(' ')[2]!);
    const on = await rtcSec();
    expect(await h.op(`ioctl ${hex(RTC_UIE_ON)} 0`)).toBe('ok 0 -');
    expect(await h.op(`poll ${POLLIN} 2000`)).toBe(`ok ${POLLIN}`);
    // Off before the read, so that no tick can come between counting and
    // reading: RTC_UIE_OFF leaves what is pending (only a read clears it).
    expect(await h.op(`ioctl ${hex(RTC_UIE_OFF)} 0`)).toBe('ok 0 -');
    const off = await rtcSec();
    // One interrupt per second boundary passed while they were on: one,
    // unless a loaded machine let more boundaries pass before RTC_UIE_OFF.
    const n = pending(d.state);
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(off - on);
    // unsigned long: the count (n << 8) | RTC_IRQF | RTC_UF
    const first = Buffer.from((await h.op('read 8')).slice(3), 'hex');
    expect(first.readBigUInt64LE(0)).toBe(BigInt(n * 256 + (RTC_IRQF | RTC_UF)));
    // Two more seconds pass unread: the model has counted both.
    expect(await h.op(`ioctl ${hex(RTC_UIE_ON)} 0`)).toBe('ok 0 -');
    await until(() => pending(d.state) >= 2, 10_000, 'two update interrupts pending');
    // Off before the read that drains them, so that no tick lands after it.
    expect(await h.op(`ioctl ${hex(RTC_UIE_OFF)} 0`)).toBe('ok 0 -');
    const many = Buffer.from((await h.op('read 4')).slice(3), 'hex');
    expect(many.length).toBe(4);
    expect(many.readUInt32LE(0) & 0xff).toBe(RTC_IRQF | RTC_UF);
    expect(many.readUInt32LE(0) >> 8).toBeGreaterThanOrEqual(2);
    expect(await h.op('nonblock')).toBe('ok');
    expect(await h.op('read 8')).toBe('EAGAIN');
    await h.close();
  });

  itUnless(needsRoot(SET_TIME))('sets and reads the time, refuses an impossible date, and is exclusive', async () => {
    // The clock runs from the plug (from the set, below) to the read: bounds
    // measured around those calls, so load widens them, never breaks them.
    const plugged = Date.now();
    const d = await plug({ time: '2001-02-03T04:05:06Z' });
    const h = await Holder.open(d.path);
    const got = await h.op(`ioctl ${hex(RTC_RD_TIME)} 36`);
    const read = tmSec(got.split(' ')[2]!) - Date.parse('2001-02-03T04:05:06Z') / 1000;
    expect(read).toBeGreaterThanOrEqual(0);
    expect(read).toBeLessThanOrEqual((Date.now() - plugged) / 1000);
    const out = Buffer.from(got.split(' ')[2]!, 'hex');
    expect([out.readInt32LE(24), out.readInt32LE(28), out.readInt32LE(32)]).toEqual([6, 33, 0]); // Saturday, 34th day, no DST
    const feb30 = Buffer.from(tm('2030-02-28T00:00:00Z'), 'hex');
    feb30.writeInt32LE(30, 12);
    expect(await h.op(`ioctl ${hex(RTC_SET_TIME)} 36 ${feb30.toString('hex')}`)).toBe('EINVAL');
    const setAt = Date.now();
    expect(await h.op(`ioctl ${hex(RTC_SET_TIME)} 36 ${tm('2040-06-07T08:09:10Z')}`)).toBe(`ok 0 ${tm('2040-06-07T08:09:10Z')}`);
    const sinceSet = tmSec((await h.op(`ioctl ${hex(RTC_RD_TIME)} 36`)).split(' ')[2]!) - Date.parse('2040-06-07T08:09:10Z') / 1000;
    expect(sinceSet).toBeGreaterThanOrEqual(0);
    expect(sinceSet).toBeLessThanOrEqual((Date.now() - setAt) / 1000);
    expect(await h.op('write 00')).toBe('EINVAL'); // no write op
    expect(await h.op(`ioctl ${hex(0x80047011)} 4`)).toBe('ENOTTY');
    const second = await run('python3', [
      '-c',
      'import os,sys\ntry:\n os.open(sys.argv[1], os.O_RDONLY)\nexcept OSError as e: print(e.strerror)',
      d.path,
    ]);
    expect(second.stdout.trim()).toBe('Device or resource busy');
    await h.close();
  });

  itUnless(needsRoot(SET_TIME))("refuses times outside the clock's range with ERANGE (rtc_valid_range), a year past INT_MAX - 1900 with EINVAL", async () => {
    const d = await plug({ time: '2030-01-01T00:00:00Z' });
    const h = await Holder.open(d.path);
    /** struct rtc_time as hex, from raw fields: a tm_year a program got wrong is not a date. */
    const raw = (year: number, mon = 0, mday = 1): string => Buffer.from(new Int32Array([0, 0, 0, mday, mon, year, 0, 0, 0]).buffer).toString('hex');
    // tm_year 2024: the year 3924 of a program that forgot the 1900; 1999 is before the default range.
    for (const year of [2024, 99]) {
      expect(await h.op(`ioctl ${hex(RTC_SET_TIME)} 36 ${raw(year)}`)).toBe('ERANGE');
      expect(await h.op(`ioctl ${hex(RTC_WKALM_SET)} 40 01000000${raw(year)}`)).toBe('ERANGE');
    }
    expect(await h.op(`ioctl ${hex(RTC_SET_TIME)} 36 ${raw(2 ** 31 - 1900)}`)).toBe('EINVAL');
    expect(await h.op(`ioctl ${hex(RTC_SET_TIME)} 36 ${raw(300000)}`)).toBe('ERANGE'); // beyond what a Date holds
    expect(await h.op(`ioctl ${hex(RTC_SET_TIME)} 36 ${tm('2099-12-31T23:59:59Z')}`)).toMatch(/^ok 0 /);
    await h.close();
    // A clock declared with another range holds what it says.
    const wide = await plug({ time: '1999-12-31T00:00:00Z', rangeMin: '1970-01-01T00:00:00Z', rangeMax: '2199-12-31T23:59:59Z' });
    const w = await Holder.open(wide.path);
    expect(await w.op(`ioctl ${hex(RTC_SET_TIME)} 36 ${tm('2150-01-01T00:00:00Z')}`)).toMatch(/^ok 0 /);
    await w.close();
  });

  it("refuses a plug whose time is outside the clock's range, or a range that ends before it starts", async () => {
    await expect(plug({ time: '1999-12-31T23:59:59Z' })).rejects.toThrow("rtc: option time 1999-12-31T23:59:59Z is outside the clock's range 2000-01-01T00:00:00Z to 2099-12-31T23:59:59Z");
    await expect(plug({ rangeMin: '2030-01-01T00:00:00Z', rangeMax: '2020-01-01T00:00:00Z', time: '2025-01-01T00:00:00Z' })).rejects.toThrow(/rangeMax .* is not after rangeMin/);
  });

  it('fires a wake alarm once, as an RTC_AF interrupt', async () => {
    const d = await plug({ time: '2030-01-01T00:00:00Z' });
    const h = await Holder.open(d.path, O_RDONLY);
    const now = tmSec((await h.op(`ioctl ${hex(RTC_RD_TIME)} 36`)).split(' ')[2]!);
    /** struct rtc_wkalrm as hex: enabled, at `sec`. */
    const wkalrm = (sec: number): string => `01000000${tm(new Date(sec * 1000).toISOString())}`;
    // An alarm an hour away reads back enabled, however long the calls take.
    expect(await h.op(`ioctl ${hex(RTC_WKALM_SET)} 40 ${wkalrm(now + 3600)}`)).toMatch(/^ok 0 /);
    const rd = (await h.op(`ioctl ${hex(RTC_WKALM_RD)} 40`)).split(' ')[2]!;
    expect(rd.slice(0, 2)).toBe('01');
    expect(tmSec(rd.slice(8))).toBe(now + 3600);
    // One due at the next second fires then (at once, if that second has come already).
    expect(await h.op(`ioctl ${hex(RTC_WKALM_SET)} 40 ${wkalrm(now + 1)}`)).toMatch(/^ok 0 /);
    const data = Buffer.from((await h.op('read 8', 5000)).slice(3), 'hex');
    expect(data.readBigUInt64LE(0)).toBe(BigInt((1 << 8) | RTC_IRQF | RTC_AF));
    // Fired: disabled now; RTC_ALM_READ still reports its time.
    expect((await h.op(`ioctl ${hex(RTC_WKALM_RD)} 40`)).split(' ')[2]!.slice(0, 2)).toBe('00');
    expect(tmSec((await h.op(`ioctl ${hex(RTC_ALM_READ)} 36`)).split(' ')[2]!)).toBe(now + 1);
    // Re-enabling an alarm already due fires it at once.
    expect(await h.op(`ioctl ${hex(RTC_AIE_ON)} 0`)).toBe('ok 0 -');
    expect(await h.op(`poll ${POLLIN} 0`)).toBe(`ok ${POLLIN}`);
    await h.close();
  });

  it('without the alarm (RTC_FEATURE_ALARM): the alarm ioctls and RTC_UIE_ON fail EINVAL, RTC_UIE_OFF succeeds, no wakealarm file', async () => {
    const d = await plug({ time: '2030-01-01T00:00:00Z', alarm: false });
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op(`ioctl ${hex(RTC_RD_TIME)} 36`)).toMatch(/^ok 0 /);
    // rtc_read_alarm(), rtc_set_alarm() (before rtc_valid_range(): a year out of range is EINVAL too), rtc_alarm_irq_enable().
    const refused = [
      `ioctl ${hex(RTC_ALM_READ)} 36`,
      `ioctl ${hex(RTC_WKALM_RD)} 40`,
      `ioctl ${hex(RTC_ALM_SET)} 36 ${tm('2030-01-01T12:00:00Z')}`,
      `ioctl ${hex(RTC_WKALM_SET)} 40 01000000${tm('2030-01-02T00:00:00Z')}`,
      `ioctl ${hex(RTC_WKALM_SET)} 40 01000000${tm('2150-01-01T00:00:00Z')}`,
      `ioctl ${hex(RTC_AIE_ON)} 0`,
      `ioctl ${hex(RTC_AIE_OFF)} 0`,
      // rtc_update_irq_enable(): the update timer runs on the alarm.
      `ioctl ${hex(RTC_UIE_ON)} 0`,
    ];
    for (const op of refused) expect(`${op}: ${await h.op(op)}`).toBe(`${op}: EINVAL`);
    // Off is no change of state, answered before the feature check.
    expect(await h.op(`ioctl ${hex(RTC_UIE_OFF)} 0`)).toBe('ok 0 -');
    expect(d.state.timer).toBeNull();
    await h.close();
    const ls = await run('ls', [t.path(`sys/class/rtc/${d.name}`)]);
    expect(ls.stdout.split('\n').filter(Boolean).sort()).toEqual(['date', 'name', 'since_epoch', 'time']);
  });

  it('without update interrupts (RTC_FEATURE_UPDATE_INTERRUPT): RTC_UIE_ON fails EINVAL, the alarm works', async () => {
    const d = await plug({ time: '2030-01-01T00:00:00Z', updateInterrupt: false });
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op(`ioctl ${hex(RTC_UIE_ON)} 0`)).toBe('EINVAL');
    expect(await h.op(`ioctl ${hex(RTC_UIE_OFF)} 0`)).toBe('ok 0 -');
    const now = tmSec((await h.op(`ioctl ${hex(RTC_RD_TIME)} 36`)).split(' ')[2]!);
    expect(await h.op(`ioctl ${hex(RTC_WKALM_SET)} 40 01000000${tm(new Date((now + 1) * 1000).toISOString())}`)).toMatch(/^ok 0 /);
    const data = Buffer.from((await h.op('read 8', 5000)).slice(3), 'hex');
    expect(data.readBigUInt64LE(0)).toBe(BigInt((1 << 8) | RTC_IRQF | RTC_AF));
    await h.close();
  });

  it('sets, moves and clears the alarm through sysfs wakealarm as wakealarm_store does', async () => {
    const d = await plug({ time: '2030-01-01T00:00:00Z' });
    const file = t.path(`sys/class/rtc/${d.name}/wakealarm`);
    // bash: dash's echo reports every failed write as "I/O error".
    const store = (text: string) => run('bash', ['-c', 'echo "$1" > "$2"', 'bash', text, file]);
    const show = async (): Promise<string> => (await run('cat', [file])).stdout;
    const clock = async (): Promise<number> => ((await t.emu.devices.action(d.name, 'time')) as { sec: number }).sec;
    expect(await show()).toBe(''); // no alarm enabled: nothing
    const before = await clock();
    expect((await store('+3600')).code).toBe(0);
    const at = Number(await show());
    expect(at).toBeGreaterThanOrEqual(before + 3600);
    expect(at).toBeLessThanOrEqual((await clock()) + 3600);
    // An enabled alarm is not replaced; "+=" moves it later.
    const busy = await store('+7200');
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toContain('Device or resource busy');
    expect((await store('+=60')).code).toBe(0);
    expect(await show()).toBe(`${at + 60}\n`);
    // A time in the past disables it; "+=" with none enabled is EINVAL, and so is a number that is none.
    expect((await store('0')).code).toBe(0);
    expect(await show()).toBe('');
    for (const bad of ['+=60', 'soon']) expect((await store(bad)).stderr).toContain('Invalid argument');
    // The ioctls see what sysfs set.
    expect((await store(String(at))).code).toBe(0);
    const h = await Holder.open(d.path, O_RDONLY);
    const rd = (await h.op(`ioctl ${hex(RTC_WKALM_RD)} 40`)).split(' ')[2]!;
    expect(rd.slice(0, 2)).toBe('01');
    expect(tmSec(rd.slice(8))).toBe(at);
    await h.close();
  });

  it('after unplug: ioctl fails ENODEV, poll POLLIN and a non-blocking read the data pending then, and EAGAIN and nothing after it (rtc_dev_poll), write EINVAL (no ->write); the timer is gone', async () => {
    const d = await plug();
    const h = await Holder.open(d.path);
    expect(await h.op(`ioctl ${hex(RTC_UIE_ON)} 0`)).toBe('ok 0 -');
    await until(() => d.state.irqData !== 0, 10_000, 'an update interrupt pending');
    await t.emu.devices.unplug(d.name);
    // rtc_dev_read() never looks at rtc->ops: it takes irq_data before it
    // looks at O_NONBLOCK, and with nothing pending it is EAGAIN.
    expect(await h.op('nonblock')).toBe('ok');
    // rtc_dev_poll(): readable while irq_data is not 0.
    expect(await h.op(`poll ${POLLIN} 0`)).toBe(`ok ${POLLIN}`);
    const data = Buffer.from((await h.op('read 8')).slice(3), 'hex');
    expect(data.length).toBe(8);
    expect(data[0]).toBe(RTC_IRQF | RTC_UF);
    expect(await h.op('read 8')).toBe('EAGAIN');
    expect(await h.op('write 00')).toBe('EINVAL');
    expect(await h.op(`ioctl ${hex(RTC_RD_TIME)} 36`)).toBe('ENODEV');
    // rtc_dev_poll() looks at irq_data only: no POLLHUP or POLLERR, as on a real machine.
    expect(await h.op(`poll ${POLLIN} 0`)).toBe('ok 0');
    expect(d.state.timer).toBeNull();
    // A timer left running would count update interrupts on. It was due at
    // the next second boundary at the latest. A second RTC, its update
    // interrupts turned on only now, ticks on the same boundaries (both run
    // on the host's seconds); its second tick is due a boundary later than
    // the leftover's, and Node runs timers in the order they fall due.
    const irqData = d.state.irqData;
    const clock = await plug();
    const c = await Holder.open(clock.path, O_RDONLY);
    expect(await c.op(`ioctl ${hex(RTC_UIE_ON)} 0`)).toBe('ok 0 -');
    await until(() => pending(clock.state) >= 2, 10_000, 'two update interrupts on the second RTC');
    expect(d.state.irqData).toBe(irqData);
    expect(d.state.timer).toBeNull();
    await c.close();
    await h.close();
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(d.inst.counters.lateReleases).toBe(1);
  });
});

/**
 * A reader that calls read(2) itself (ctypes), so that an EINTR is its
 * answer: Python's os.read() retries after a signal whose handler returns
 * (PEP 475). SIGUSR1 has a handler that does nothing, so it interrupts the
 * call without ending the process. After the first read it reads again
 * with O_NONBLOCK, then asks RTC_RD_TIME, then blocks in a read once more.
 */
const SLEEPY_READER = `import ctypes, errno, fcntl, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGUSR1, lambda *a: None)
fd = os.open(sys.argv[1], os.O_RDONLY)
print("open", flush=True)
def read8():
    buf = ctypes.create_string_buffer(8)
    n = libc.read(fd, buf, 8)
    return "ok %d" % n if n >= 0 else errno.errorcode[ctypes.get_errno()]
print("read", read8(), flush=True)
fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
print("nonblocking read", read8(), flush=True)
try:
    fcntl.ioctl(fd, int(sys.argv[2], 0), bytearray(36), True)
    print("ioctl ok", flush=True)
except OSError as e:
    print("ioctl", errno.errorcode[e.errno], flush=True)
fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
print("read", read8(), flush=True)
`;

/** The scheduler state of task `pid` (/proc/PID/stat's third field) and where it sleeps (/proc/PID/wchan, "0" when hidden). */
function sleepsWhere(pid: number): { state: string; wchan: string } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return { state: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!, wchan: readFileSync(`/proc/${pid}/wchan`, 'latin1') };
}

describe('a read across unplug sleeps on, as rtc_dev_read() after rtc_device_unregister()', () => {
  it('stays blocked after the unplug completes until a signal ends it with EINTR; then EAGAIN with O_NONBLOCK, ioctl ENODEV; the state is freed after the close', async () => {
    const d = await plug();
    const reader = pythonInteractive(SLEEPY_READER, [d.path, hex(RTC_RD_TIME)]);
    try {
      expect(await reader.line()).toBe('open');
      await readBlocked(d.inst);
      const report = await t.emu.devices.unplug(d.name);
      // The model's handler ended (nothing stuck, no handler left), and unplug completed without the read.
      expect(report.stuck).toEqual([]);
      expect(d.inst.lifecycle).toBe('gone');
      expect(d.inst.counters.inFlight).toBe(0);
      expect(d.inst.inFlight).toEqual([expect.objectContaining({ op: 'read', pid: reader.pid, sleeping: true })]);
      // Still in read(2): asleep in the kernel waiting for the daemon's answer, having printed nothing.
      const where = sleepsWhere(reader.pid);
      expect(where.state).toBe('S');
      if (where.wchan !== '0') expect(where.wchan).toMatch(/fuse|request_wait_answer/);
      expect(reader.printed).toBe(false);
      // The file is held, so the device is not freed and nothing was late-released.
      expect(d.inst.counters.lateReleases).toBe(0);
      expect(t.eventTypes(d.name, d.inst.generation)).not.toContain('freed');

      process.kill(reader.pid, 'SIGUSR1');
      expect(await reader.line()).toBe('read EINTR');
      expect(await reader.line()).toBe('nonblocking read EAGAIN');
      expect(await reader.line()).toBe('ioctl ENODEV');
      // A new blocking read sleeps as well, and the end of the program ends it.
      await until(() => d.inst.inFlight.some((c) => c.sleeping), 10_000, 'the second read asleep');
      reader.kill('SIGKILL');
      await reader.exited;
      await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
      expect(d.inst.counters.lateReleases).toBe(1);
      const ends = t.events.filter((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'sleep_ended');
      // The second read's end: the kernel interrupts a killed task's request too (request_wait_answer()).
      expect(ends.map((e) => e.errno)).toEqual(['EINTR', 'EINTR']);
    } finally {
      reader.kill();
    }
  });
});

/**
 * A reader that calls read(2) itself (ctypes), one read per stdin line of
 * the size on it, answering "ok HEX" or the errno name. As SLEEPY_READER,
 * SIGUSR1 interrupts a read without ending the process.
 */
const SIZED_READER = `import ctypes, errno, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGUSR1, lambda *a: None)
fd = os.open(sys.argv[1], os.O_RDONLY)
print("open", flush=True)
for line in sys.stdin:
    size = int(line)
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.read(fd, buf, size)
    print("ok " + buf.raw[:n].hex() if n >= 0 else errno.errorcode[ctypes.get_errno()], flush=True)
`;

describe('what rtc_dev_read() answers after rtc_device_unregister() before it would sleep', () => {
  /** The reader's next read of `size` sleeps after unplug: a `sleeping` event, state S, until SIGUSR1 ends it with EINTR. */
  async function sleepsUntilSignal(d: Awaited<ReturnType<typeof plug>>, reader: ReturnType<typeof pythonInteractive>, size: number): Promise<void> {
    const asleep = (): number => t.events.filter((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'sleeping').length;
    const before = asleep();
    reader.send(String(size));
    await until(() => asleep() > before, 10_000, `a sleeping event for the ${size}-byte read`);
    // The daemon may take the request before the reader's task is put to sleep in request_wait_answer().
    await until(() => sleepsWhere(reader.pid).state === 'S', 10_000, 'the reader asleep in read(2)');
    expect(reader.printed).toBe(false);
    process.kill(reader.pid, 'SIGUSR1');
    expect(await reader.line()).toBe('EINTR');
  }

  it('a read of a size other than 4 or at least 8 fails EINVAL at once; one of 4 or 8 sleeps', async () => {
    const d = await plug();
    const reader = pythonInteractive(SIZED_READER, [d.path]);
    try {
      expect(await reader.line()).toBe('open');
      await t.emu.devices.unplug(d.name);
      for (const size of [1, 2, 5, 7]) {
        reader.send(String(size));
        expect(`read ${size}: ${await reader.line()}`).toBe(`read ${size}: EINVAL`);
      }
      expect(t.eventTypes(d.name, d.inst.generation)).not.toContain('sleeping');
      await sleepsUntilSignal(d, reader, 4);
      await sleepsUntilSignal(d, reader, 8);
    } finally {
      reader.kill();
    }
  });

  it('a reader with an alarm interrupt pending at unplug gets its data once, in its size, then sleeps', async () => {
    const d = await plug({ time: '2030-01-01T00:00:00Z' });
    const reader = pythonInteractive(SIZED_READER, [d.path]);
    try {
      expect(await reader.line()).toBe('open');
      // An alarm at the next second: it fires once (RTC_AF) and disables itself, so irq_data stays as counted.
      const wakealarm = t.path(`sys/class/rtc/${d.name}/wakealarm`);
      expect((await run('bash', ['-c', 'echo +1 > "$1"', 'bash', wakealarm])).code).toBe(0);
      await until(() => d.state.irqData !== 0, 10_000, 'the alarm interrupt pending');
      await t.emu.devices.unplug(d.name);
      // unsigned int: the count (1 << 8) | RTC_IRQF | RTC_AF, little-endian, at once.
      reader.send('4');
      expect(await reader.line()).toBe(`ok ${le32((1 << 8) | RTC_IRQF | RTC_AF)}`);
      // Taken: irq_data is 0 again, and the next read sleeps for an interrupt that no longer comes.
      await sleepsUntilSignal(d, reader, 8);
    } finally {
      reader.kill();
    }
  });
});

describeUnless(needsRoot('the callers are uid 65534 with and without CAP_SYS_TIME (setpriv), on a mount with allow_other'))('RTC_SET_TIME asks the caller for CAP_SYS_TIME, not the opener', () => {
  // Imported here, so that the cases of this block stay apart from the file's own set-up.
  let shared: import('../../src/api.js').EmulatorHandle;
  let cClient: (name: string) => Promise<string>;
  beforeAll(async () => {
    const [{ mkdtemp }, { join }, { startEmulator }, cc, { testLogger, testRoot }] = await Promise.all([
      import('node:fs/promises'),
      import('node:path'),
      import('../../src/api.js'),
      import('../helpers/cc.js'),
      import('../helpers/mount.js'),
    ]);
    cClient = cc.cClient;
    // allow_other: without it FUSE itself refuses a caller whose uid is not the mount's
    // (fuse_allow_current_process), and the request would never reach the model.
    shared = await startEmulator({ mountpoint: await mkdtemp(join(testRoot(), 'rtc-')), logger: testLogger(), allowOther: true });
  });
  afterAll(() => shared.stop({ releaseTimeoutMs: 0 }));

  const set2040 = Date.parse('2040-06-07T08:09:10Z') / 1000;
  /** The clock of `name`, as the model reports it, in epoch seconds. */
  const clock = async (name: string): Promise<number> => ((await shared.action(name, 'time')) as { sec: number }).sec;

  it('lets a caller set the clock only with CAP_SYS_TIME, whoever opened the descriptor (root, every time)', async () => {
    const bin = await cClient('rtc_caller');
    const cases: Array<[mode: string, answer: string]> = [
      ['root', 'ok'],
      ['keepcap', 'ok'], // uid 65534 that kept the capability
      ['drop', 'EACCES'], // dropped to uid 65534
      ['nocap', 'EACCES'], // uid 0 without the capability
    ];
    for (const [mode, answer] of cases) {
      const inst = await shared.plug('rtc', 'rtc%d', { time: '2001-02-03T04:05:06Z' });
      const r = await run(bin, [shared.path(`dev/${inst.name}`), mode]);
      expect(`${mode}: ${r.stdout}${r.stderr}`).toBe(`${mode}: ${answer}\n`);
      expect(`${mode}: ${(await clock(inst.name)) >= set2040 ? 'set' : 'not set'}`).toBe(`${mode}: ${answer === 'ok' ? 'set' : 'not set'}`);
    }
  });

  it('asks the thread that calls: one thread without the capability is refused, the other one not', async () => {
    const inst = await shared.plug('rtc', 'rtc%d', { time: '2001-02-03T04:05:06Z' });
    const r = await run(await cClient('rtc_caller'), [shared.path(`dev/${inst.name}`), 'thread']);
    expect(r.stdout + r.stderr).toBe('EACCES\nok\n');
  });
});
