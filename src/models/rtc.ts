/**
 * rtc: a real-time clock as drivers/rtc/dev.c (with interface.c) presents
 * /dev/rtcN.
 *
 * - The clock runs from the host's clock plus an offset; RTC_SET_TIME sets
 *   it and restarts its second (the divider chain of a real RTC restarts on
 *   a set), so update interrupts come on the RTC's own second boundaries.
 * - rtc_dev_open() is exclusive (EBUSY) and clears pending interrupt data;
 *   rtc_dev_release() turns update interrupts off.
 * - Interrupts accumulate in rtc->irq_data as rtc_handle_legacy_irq() does:
 *   the count in the bits above 8, RTC_IRQF | RTC_UF / RTC_AF in the low
 *   byte. rtc_dev_read() takes an unsigned int (4 bytes) or an unsigned long
 *   (8 bytes or more; other sizes EINVAL), blocks until data is pending
 *   (EAGAIN with O_NONBLOCK) and clears it; rtc_dev_poll() reports
 *   EPOLLIN|EPOLLRDNORM while data is pending.
 * - ioctls: RTC_RD_TIME, RTC_SET_TIME (capable(CAP_SYS_TIME) of the thread
 *   that calls, as rtc_dev_ioctl() checks it, else EACCES; then
 *   rtc_valid_tm() and rtc_valid_range()), RTC_UIE_ON/OFF (update interrupt once a second),
 *   RTC_ALM_SET/READ (an alarm within 24 hours, set disabled),
 *   RTC_AIE_ON/OFF, RTC_WKALM_SET/RD; anything else ENOTTY. An alarm fires
 *   once (RTC_AF) and disables itself; one already due fires at once.
 * - The clock holds the times of its range (rtc->range_min..range_max, the
 *   `rangeMin`/`rangeMax` options; 2000 to 2099 by default, the range most
 *   RTC chips' drivers declare): rtc_set_time() and rtc_set_alarm() refuse
 *   a time outside it with ERANGE (rtc_valid_range()), as they refuse an
 *   impossible date with EINVAL (rtc_valid_tm()).
 * - What the driver can do is its own: `alarm` is RTC_FEATURE_ALARM (cleared
 *   by __devm_rtc_register_device() for a driver without a set_alarm op),
 *   `updateInterrupt` RTC_FEATURE_UPDATE_INTERRUPT. Without the alarm,
 *   rtc_read_alarm() (RTC_ALM_READ, RTC_WKALM_RD), rtc_set_alarm()
 *   (RTC_ALM_SET, RTC_WKALM_SET) and rtc_alarm_irq_enable() (RTC_AIE_ON/OFF)
 *   fail EINVAL. Update interrupts run on the alarm's timer queue, so
 *   rtc_update_irq_enable() needs both features: RTC_UIE_ON without either
 *   is EINVAL, as in a kernel without CONFIG_RTC_INTF_DEV_UIE_EMUL (hwclock
 *   then busy-waits for the clock's tick), while RTC_UIE_OFF, a change of
 *   nothing, succeeds.
 * - After rtc_device_unregister() (rtc->ops == NULL) rtc_dev_ioctl() fails
 *   ENODEV. Nothing wakes or fails the readers: rtc_dev_read() never looks
 *   at rtc->ops. It checks the read's size (EINVAL, READ_SIZES), takes
 *   irq_data, which unregistering leaves as it was, and sleeps on irq_queue
 *   only while that is 0, for an interrupt that no longer comes. So a read
 *   after unplug first gets the interrupt data counted before it, if any
 *   (readPending: irq_data is the device's, so whichever read comes first
 *   takes it), and a read blocked at unplug, or any later one, sleeps until
 *   a signal ends it (EINTR; EAGAIN with O_NONBLOCK): the model's
 *   unplugged read is 'sleep' (src/core/sleeping-reads.ts), and the program
 *   hangs there as it would on a real machine. rtc_dev_poll() answers from
 *   irq_data alone, so poll reports EPOLLIN while that data is untaken (the
 *   core adds it for readPending's data), then nothing (UNPLUGGED_POLL).
 *
 * sysfs: sys/class/rtc/rtcN/{name,date,time,since_epoch,wakealarm} (rtc/sysfs.c
 * formats); `wakealarm` only with the alarm, as rtc_attr_is_visible() hides
 * it (rtc_does_wakealarm(), the model's device able to wake the system).
 */
import { Errno } from '../errno.js';
import { IO, IOR, IOW, POLLIN, POLLRDNORM } from '../devio.js';
import { defineSchema, ioSizeFits, SchemaError, type DeviceModel, type Instance, type IoSizes, type Values } from '../core/index.js';
import { CAP_SYS_TIME, callerCapable, packS32, unpackS32, waitUnlessNonblock } from './util.js';

/* include/uapi/linux/rtc.h */
const P = 0x70; // 'p'
const RTC_TIME_SIZE = 36; // struct rtc_time: 9 ints
const RTC_WKALRM_SIZE = 40; // unsigned char enabled, pending; (pad); struct rtc_time
export const RTC_AIE_ON = IO(P, 0x01);
export const RTC_AIE_OFF = IO(P, 0x02);
export const RTC_UIE_ON = IO(P, 0x03);
export const RTC_UIE_OFF = IO(P, 0x04);
export const RTC_ALM_SET = IOW(P, 0x07, RTC_TIME_SIZE);
export const RTC_ALM_READ = IOR(P, 0x08, RTC_TIME_SIZE);
export const RTC_RD_TIME = IOR(P, 0x09, RTC_TIME_SIZE);
export const RTC_SET_TIME = IOW(P, 0x0a, RTC_TIME_SIZE);
export const RTC_WKALM_SET = IOW(P, 0x0f, RTC_WKALRM_SIZE);
export const RTC_WKALM_RD = IOR(P, 0x10, RTC_WKALRM_SIZE);
export const RTC_IRQF = 0x80;
export const RTC_AF = 0x20;
export const RTC_UF = 0x10;

export interface RtcState {
  name: string;
  /** rtc->features: RTC_FEATURE_ALARM and RTC_FEATURE_UPDATE_INTERRUPT. */
  features: { alarm: boolean; updateInterrupt: boolean };
  /** rtc->range_min and range_max, in seconds since the epoch. */
  range: { min: number; max: number };
  /** The clock: `sec` was the RTC time at host time `hostMs` (epoch ms). */
  base: { sec: number; hostMs: number };
  /** rtc->irq_data (unsigned long). */
  irqData: number;
  uie: boolean;
  /** rtc->aie_timer: expiry in RTC seconds since the epoch. */
  alarm: { sec: number; enabled: boolean };
  /** RTC_DEV_BUSY. */
  busy: boolean;
  timer: NodeJS.Timeout | null;
}

const DAY = 86400;

/**
 * rtc_dev_read() takes an unsigned int or an unsigned long and more:
 * `count != sizeof(unsigned int) && count < sizeof(unsigned long)` is
 * EINVAL, before it looks at irq_data, after unregister too.
 */
const READ_SIZES: IoSizes = { exact: 4, atLeast: 8 };

/**
 * irq_data as rtc_dev_read() hands it out: put_user() of an unsigned long
 * (8 bytes, little-endian), or for a 4-byte read of an unsigned int, its
 * low 32 bits, which are these bytes' first 4.
 */
function irqDataBytes(data: number, size: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt(data), 0);
  return out.subarray(0, Math.min(size, 8));
}

/**
 * poll after unplug: rtc_dev_poll() checks only rtc->irq_data, and
 * unregistering neither wakes irq_queue nor sets EPOLLHUP/EPOLLERR, so
 * once the data pending at unplug is read (until then the core adds
 * POLLIN|POLLRDNORM) a poller is told nothing, and with no interrupt
 * coming, never will be.
 */
const UNPLUGGED_POLL = 0;

/** The RTC time in seconds and the ms into the current second. */
function rtcNow(s: RtcState): { sec: number; ms: number } {
  const elapsed = Date.now() - s.base.hostMs;
  const whole = Math.floor(elapsed / 1000);
  return { sec: s.base.sec + whole, ms: elapsed - whole * 1000 };
}

/** rtc_time64_to_tm(): tm_sec, min, hour, mday, mon, year, wday, yday, isdst. */
export function secToTm(sec: number): number[] {
  const d = new Date(sec * 1000);
  const yday = Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86400000);
  return [d.getUTCSeconds(), d.getUTCMinutes(), d.getUTCHours(), d.getUTCDate(), d.getUTCMonth(), d.getUTCFullYear() - 1900, d.getUTCDay(), yday, 0];
}

const INT_MAX = 0x7fffffff;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** rtc_month_days(): `year` is the full year. */
function monthDays(mon: number, year: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return DAYS_IN_MONTH[mon]! + (leap && mon === 1 ? 1 : 0);
}

/** rtc_valid_tm(): EINVAL for a date that cannot be (tm_year from 70, up to INT_MAX - 1900). */
function validTm(tm: number[]): void {
  const [sec, min, hour, mday, mon, year] = tm as [number, number, number, number, number, number];
  if (year < 70 || year > INT_MAX - 1900 || mon < 0 || mon >= 12 || mday < 1 || mday > monthDays(mon, year + 1900) || hour < 0 || hour >= 24 || min < 0 || min >= 60 || sec < 0 || sec >= 60) {
    throw new Errno('EINVAL');
  }
}

/**
 * rtc_tm_to_time64() of a valid tm. A year past what a Date holds (275760)
 * is +Infinity: later than any range the options can give.
 */
export function tmToSec(tm: number[]): number {
  const [sec, min, hour, mday, mon, year] = tm as [number, number, number, number, number, number];
  const ms = Date.UTC(year + 1900, mon, mday, hour, min, sec);
  return Number.isNaN(ms) ? Infinity : ms / 1000;
}

/** rtc_valid_range(): ERANGE for a time the clock cannot hold. */
function checkRange(s: RtcState, sec: number): void {
  if (sec < s.range.min || sec > s.range.max) throw new Errno('ERANGE');
}

/** A time rtc_set_time() or rtc_set_alarm() takes: rtc_valid_tm(), then rtc_valid_range(); its seconds. */
function settableTime(s: RtcState, tm: number[]): number {
  validTm(tm);
  const sec = tmToSec(tm);
  checkRange(s, sec);
  return sec;
}

/** rtc_handle_legacy_irq(): count one interrupt of kind `mask` and wake readers. */
function irq(inst: Instance<RtcState>, mask: number): void {
  const s = inst.state;
  // (irq_data + (1 << 8)) | RTC_IRQF | mask, kept exact beyond 32 bits
  s.irqData = (Math.floor(s.irqData / 256) + 1) * 256 + ((s.irqData & 0xff) | RTC_IRQF | mask);
  inst.wq.wake();
}

function alarmDue(inst: Instance<RtcState>, nowSec: number): void {
  const s = inst.state;
  if (s.alarm.enabled && s.alarm.sec <= nowSec) {
    s.alarm.enabled = false; // a one-shot aie_timer is disabled when it fires
    irq(inst, RTC_AF);
  }
}

/**
 * Runs a timer on the RTC's second boundaries while update or alarm
 * interrupts are enabled (the uie_rtctimer and aie_timer of interface.c).
 */
function schedule(inst: Instance<RtcState>): void {
  const s = inst.state;
  if (s.timer) clearTimeout(s.timer);
  s.timer = null;
  if (!s.uie && !s.alarm.enabled) return;
  const { sec, ms } = rtcNow(s);
  const next = sec + 1;
  s.timer = setTimeout(() => {
    s.timer = null;
    // A timer may fire a little early (it counts from the event loop's
    // cached time): wait for the boundary, or its interrupt would come twice.
    if (rtcNow(s).sec < next) {
      schedule(inst);
      return;
    }
    if (s.uie) irq(inst, RTC_UF);
    alarmDue(inst, Math.max(next, rtcNow(s).sec));
    schedule(inst);
  }, 1000 - ms);
}

function setAlarm(inst: Instance<RtcState>, sec: number, enabled: boolean): void {
  inst.state.alarm = { sec, enabled };
  alarmDue(inst, rtcNow(inst.state).sec); // an alarm already due fires at once (rtc_timer_enqueue's -ETIME path)
  schedule(inst);
}

/** rtc_read_alarm(), rtc_set_alarm(), rtc_alarm_irq_enable(): EINVAL without RTC_FEATURE_ALARM. */
function requireAlarm(s: RtcState): void {
  if (!s.features.alarm) throw new Errno('EINVAL');
}

/**
 * rtc_update_irq_enable() of a kernel without CONFIG_RTC_INTF_DEV_UIE_EMUL:
 * turning update interrupts on needs RTC_FEATURE_UPDATE_INTERRUPT and
 * RTC_FEATURE_ALARM (the uie_rtctimer runs on the alarm), else EINVAL;
 * asking for the state they are in already is answered 0 before that check.
 */
function updateIrqEnable(inst: Instance<RtcState>, on: boolean): void {
  const s = inst.state;
  if (s.uie === on) return;
  if (!s.features.updateInterrupt || !s.features.alarm) throw new Errno('EINVAL');
  s.uie = on;
  schedule(inst);
}

/** rtc_set_alarm(): the feature, then rtc_valid_tm() and rtc_valid_range(); sets the alarm at `tm`. */
function setAlarmTm(inst: Instance<RtcState>, tm: number[], enabled: boolean): void {
  requireAlarm(inst.state);
  setAlarm(inst, settableTime(inst.state, tm), enabled);
}

/** kstrtos64(buf, 0): decimal, 0x hex or 0 octal, a sign, one trailing newline; EINVAL else, ERANGE past 64 bits. */
function parseS64(text: string): number {
  const m = /^([+-]?)(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)\n?$/i.exec(text);
  if (!m) throw new Errno('EINVAL');
  const digits = m[2]!;
  const v = BigInt(/^0[0-7]/.test(digits) ? `0o${digits.slice(1)}` : digits);
  if (v > 2n ** 63n) throw new Errno('ERANGE');
  return Number(m[1] === '-' ? -v : v);
}

/**
 * sysfs.c wakealarm_store(): "N" is an alarm at N seconds since the epoch,
 * "+N" N seconds from now, "+=N" moves an enabled alarm N seconds later
 * (EINVAL when none is); an enabled alarm is not replaced (EBUSY), and a
 * time not in the future disables the alarm (set 300 s ahead, disabled).
 */
function storeWakealarm(inst: Instance<RtcState>, text: string): void {
  const s = inst.state;
  const now = rtcNow(s).sec;
  const push = text.startsWith('+=');
  const adjust = !push && text.startsWith('+');
  let alarm = parseS64(text.slice(push ? 2 : adjust ? 1 : 0));
  if (adjust) alarm += now;
  let enabled = false;
  if (alarm > now || push) {
    requireAlarm(s); // rtc_read_alarm()
    if (s.alarm.enabled) {
      if (!push) throw new Errno('EBUSY');
      alarm += s.alarm.sec;
    } else if (push) {
      throw new Errno('EINVAL');
    }
    enabled = true;
  } else {
    alarm = now + 300;
  }
  setAlarmTm(inst, secToTm(alarm), enabled);
}

function tmIn(buf: Buffer, offset = 0): number[] {
  return unpackS32(buf, 9, offset);
}

const OPTIONS = defineSchema({
  name: { type: 'string', default: 'rtc-cdevemu', description: 'the name in sys/class/rtc/NAME/name' },
  time: { type: 'string', description: 'the time the clock starts at (ISO 8601, e.g. 2030-01-02T03:04:05Z), within its range; the host time without it' },
  // RTC_TIMESTAMP_BEGIN_2000 and RTC_TIMESTAMP_END_2099 (include/linux/rtc.h).
  rangeMin: { type: 'string', default: '2000-01-01T00:00:00Z', description: 'the earliest time the clock holds (rtc->range_min, ISO 8601)' },
  rangeMax: { type: 'string', default: '2099-12-31T23:59:59Z', description: 'the latest time the clock holds (rtc->range_max, ISO 8601), after rangeMin' },
  // The features of a PC's rtc-cmos; many i2c and SoC RTCs have neither.
  alarm: { type: 'boolean', default: true, description: 'RTC_FEATURE_ALARM: the driver has alarm ops; without it the alarm ioctls and RTC_UIE_ON fail EINVAL and sysfs wakealarm is absent' },
  updateInterrupt: { type: 'boolean', default: true, description: 'RTC_FEATURE_UPDATE_INTERRUPT: without it (or without alarm) RTC_UIE_ON fails EINVAL, and hwclock busy-waits for the tick' },
});

/** A date option in whole seconds since the epoch; refused unless it is a date after 1970. */
function dateOption(option: string, text: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms) || ms < 0) throw new SchemaError(`rtc: option ${option} ${JSON.stringify(text)} is not a date after 1970 (use ISO 8601, e.g. 2030-01-02T03:04:05Z)`, option);
  return Math.floor(ms / 1000);
}

export const rtcModel: DeviceModel<RtcState> = {
  name: 'rtc',
  events: {},
  stream: true,
  // rtc_dev_ioctl() checks rtc->ops (ENODEV); rtc_dev_read() does not: it
  // checks the size, hands out irq_data pending at unregister, then sleeps
  // on; rtc_dev_poll() answers from irq_data alone; no write (EINVAL).
  unplugged: {
    read: 'sleep',
    readSizes: READ_SIZES,
    // The device's irq_data, not a file's: the next read of any file takes it.
    readPending: (inst) => (inst.state.irqData !== 0 ? irqDataBytes(inst.state.irqData, 8) : null),
    ioctl: new Errno('ENODEV'),
    poll: UNPLUGGED_POLL,
  },
  description: 'a real-time clock (/dev/rtcN): time, alarm and update interrupts, as hwclock and rtcwake use it',
  options: OPTIONS,
  create(_inst, options) {
    const o = options as Values<typeof OPTIONS>;
    const hostMs = Date.now();
    const sec = o.time === undefined ? Math.floor(hostMs / 1000) : dateOption('time', o.time);
    const range = { min: dateOption('rangeMin', o.rangeMin), max: dateOption('rangeMax', o.rangeMax) };
    if (range.max <= range.min) throw new SchemaError(`rtc: option rangeMax ${o.rangeMax} is not after rangeMin ${o.rangeMin}`, 'rangeMax');
    if (sec < range.min || sec > range.max) {
      const what = o.time === undefined ? `the host time ${new Date(hostMs).toISOString()} (no option time)` : `option time ${o.time}`;
      throw new SchemaError(`rtc: ${what} is outside the clock's range ${o.rangeMin} to ${o.rangeMax}`, o.time === undefined ? 'rangeMin' : 'time');
    }
    return {
      name: o.name,
      features: { alarm: o.alarm, updateInterrupt: o.updateInterrupt },
      range,
      base: { sec, hostMs: o.time === undefined ? sec * 1000 : hostMs },
      irqData: 0,
      uie: false,
      alarm: { sec: 0, enabled: false },
      busy: false,
      timer: null,
    };
  },
  attributes(inst) {
    const dir = `sys/class/rtc/${inst.name}`;
    const tm = (): number[] => secToTm(rtcNow(inst.state).sec);
    const p2 = (n: number): string => String(n).padStart(2, '0');
    return {
      [`${dir}/name`]: `${inst.state.name}\n`,
      [`${dir}/date`]: () => {
        const t = tm();
        return `${t[5]! + 1900}-${p2(t[4]! + 1)}-${p2(t[3]!)}\n`;
      },
      [`${dir}/time`]: () => {
        const t = tm();
        return `${p2(t[2]!)}:${p2(t[1]!)}:${p2(t[0]!)}\n`;
      },
      [`${dir}/since_epoch`]: () => `${rtcNow(inst.state).sec}\n`,
      ...(inst.state.features.alarm
        ? {
            [`${dir}/wakealarm`]: {
              // wakealarm_show(): an enabled alarm's seconds since the epoch, nothing for a disabled one
              show: () => (inst.state.alarm.enabled ? `${inst.state.alarm.sec}\n` : ''),
              store: (text: string) => storeWakealarm(inst, text),
            },
          }
        : {}),
    };
  },
  open(file) {
    const s = file.instance.state;
    if (s.busy) throw new Errno('EBUSY');
    s.busy = true;
    s.irqData = 0;
  },
  release(file) {
    const s = file.instance.state;
    updateIrqEnable(file.instance, false);
    s.busy = false;
  },
  async read(file, size, signal) {
    if (!ioSizeFits(READ_SIZES, size)) throw new Errno('EINVAL');
    const s = file.instance.state;
    while (s.irqData === 0) await waitUnlessNonblock(file, () => s.irqData !== 0, signal);
    const data = s.irqData;
    s.irqData = 0;
    return irqDataBytes(data, size);
  },
  poll(file) {
    return file.instance.state.irqData !== 0 ? POLLIN | POLLRDNORM : 0;
  },
  ioctl(file, req) {
    const inst = file.instance;
    const s = inst.state;
    switch (req.cmd) {
      case RTC_RD_TIME:
        return { out: packS32(secToTm(rtcNow(s).sec)) };
      case RTC_SET_TIME:
        // The caller's capability, not the opener's uid: rtc_dev_ioctl()'s capable() runs as the caller.
        return callerCapable(req, CAP_SYS_TIME).then((capable) => {
          if (!capable) throw new Errno('EACCES');
          s.base = { sec: settableTime(s, tmIn(req.in)), hostMs: Date.now() };
          schedule(inst);
          return {};
        });
      case RTC_UIE_ON:
      case RTC_UIE_OFF:
        updateIrqEnable(inst, req.cmd === RTC_UIE_ON);
        return {};
      case RTC_AIE_ON:
      case RTC_AIE_OFF:
        requireAlarm(s);
        setAlarm(inst, s.alarm.sec, req.cmd === RTC_AIE_ON);
        return {};
      case RTC_ALM_READ:
        requireAlarm(s);
        return { out: packS32(secToTm(s.alarm.sec)) };
      case RTC_ALM_SET: {
        // Only hh:mm:ss count: the date is today's, or tomorrow's if that time
        // has passed (rtc_dev_ioctl()); then rtc_set_alarm() checks it.
        const now = rtcNow(s).sec;
        const t = tmIn(req.in);
        const today = secToTm(now);
        const tm = [t[0]!, t[1]!, t[2]!, today[3]!, today[4]!, today[5]!];
        validTm(tm);
        const then = tmToSec(tm);
        setAlarmTm(inst, then < now ? secToTm(then + DAY) : tm, false);
        return {};
      }
      case RTC_WKALM_RD: {
        requireAlarm(s);
        const out = Buffer.alloc(RTC_WKALRM_SIZE);
        out[0] = s.alarm.enabled ? 1 : 0;
        packS32(secToTm(s.alarm.sec)).copy(out, 4);
        return { out };
      }
      case RTC_WKALM_SET:
        setAlarmTm(inst, tmIn(req.in, 4), req.in[0] !== 0);
        return {};
      default:
        throw new Errno('ENOTTY');
    }
  },
  remove(inst) {
    const s = inst.state;
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    s.uie = false;
    s.alarm.enabled = false;
  },
  actions: {
    time: {
      description: "the RTC's time as the device would report it (seconds since the epoch and ISO 8601)",
      run(inst) {
        const sec = rtcNow(inst.state).sec;
        return { sec, iso: new Date(sec * 1000).toISOString() };
      },
    },
  },
};
