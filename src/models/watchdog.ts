/**
 * watchdog: a watchdog timer as drivers/watchdog/watchdog_dev.c presents
 * /dev/watchdogN.
 *
 * - watchdog_open() is exclusive (EBUSY) and starts the watchdog.
 * - watchdog_write() is a keepalive; a 'V' anywhere in the data arms magic
 *   close (any write clears it first).
 * - watchdog_release() stops the watchdog only after the magic 'V' (or if
 *   WDIOF_MAGICCLOSE is not offered) and never with nowayout; otherwise the
 *   kernel logs "watchdog did not stop!" and pings: here that is a
 *   `not_stopped` event and the timer keeps running.
 * - When the timer runs out the machine would reset: here the model emits
 *   an `expired` event, counts it, sets WDIOF_CARDRESET in the boot status
 *   and starts another period. A pretimeout emits `pretimeout` first.
 * - ioctls of watchdog_ioctl(): WDIOC_GETSUPPORT, GETSTATUS, GETBOOTSTATUS,
 *   SETOPTIONS (WDIOS_DISABLECARD / ENABLECARD; a value with neither is
 *   ENOTTY), KEEPALIVE, SETTIMEOUT
 *   (answers the new timeout), GETTIMEOUT, GETTIMELEFT, SETPRETIMEOUT,
 *   GETPRETIMEOUT; anything else ENOTTY.
 * - What the driver can do is its own, as in the kernel: the `support`
 *   option is watchdog_info.options (the WDIOF_* flags WDIOC_GETSUPPORT
 *   copies out), and without WDIOF_SETTIMEOUT, KEEPALIVEPING or PRETIMEOUT
 *   the core refuses WDIOC_SETTIMEOUT (watchdog_set_timeout()),
 *   WDIOC_KEEPALIVE (watchdog_ioctl()) or WDIOC_SETPRETIMEOUT
 *   (watchdog_set_pretimeout()) with EOPNOTSUPP; without MAGICCLOSE any
 *   close stops it. `timeleft` says whether the driver has a get_timeleft
 *   op: without one watchdog_get_timeleft() answers EOPNOTSUPP. Both default
 *   to what the common PC watchdogs share (docs/models.md#watchdog-drivers).
 * - WDIOC_SETOPTIONS is encoded _IOR although it passes a value in, so a
 *   FUSE mount does not copy it in: the model reads it from the calling
 *   thread's memory (req.user), as watchdog_ioctl()'s get_user() does.
 * - No read and no poll, like the kernel's watchdog_fops: read is EINVAL,
 *   poll the VFS default, also after unplug (`unplugged`). After
 *   watchdog_unregister_device() write and ioctl fail ENODEV, and the
 *   timers are cancelled.
 *
 * sysfs: sys/class/watchdog/watchdogN/{identity,timeout,pretimeout,timeleft,
 * state,status,bootstatus,nowayout} (watchdog_dev.c's attributes); as
 * wdt_is_visible() hides them, `timeleft` only with a get_timeleft op and
 * `pretimeout` only with WDIOF_PRETIMEOUT.
 */
import { Errno } from '../errno.js';
import { DEFAULT_POLLMASK, IOR, IOWR } from '../devio.js';
import { checkField, defineSchema, SchemaError, type DeviceModel, type Instance, type Values } from '../core/index.js';
import { cString, getUserInt, intReply, unpackS32 } from './util.js';

/* include/uapi/linux/watchdog.h */
const W = 0x57; // 'W'
export const WDIOC_GETSUPPORT = IOR(W, 0, 40);
export const WDIOC_GETSTATUS = IOR(W, 1, 4);
export const WDIOC_GETBOOTSTATUS = IOR(W, 2, 4);
export const WDIOC_SETOPTIONS = IOR(W, 4, 4);
export const WDIOC_KEEPALIVE = IOR(W, 5, 4);
export const WDIOC_SETTIMEOUT = IOWR(W, 6, 4);
export const WDIOC_GETTIMEOUT = IOR(W, 7, 4);
export const WDIOC_SETPRETIMEOUT = IOWR(W, 8, 4);
export const WDIOC_GETPRETIMEOUT = IOR(W, 9, 4);
export const WDIOC_GETTIMELEFT = IOR(W, 10, 4);
/** The WDIOF_* flags of watchdog_info.options, by the name after WDIOF_. */
export const WDIOF = {
  OVERHEAT: 0x0001,
  FANFAULT: 0x0002,
  EXTERN1: 0x0004,
  EXTERN2: 0x0008,
  POWERUNDER: 0x0010,
  CARDRESET: 0x0020,
  POWEROVER: 0x0040,
  SETTIMEOUT: 0x0080,
  MAGICCLOSE: 0x0100,
  PRETIMEOUT: 0x0200,
  ALARMONLY: 0x0400,
  KEEPALIVEPING: 0x8000,
} as const;
export type WdiofName = keyof typeof WDIOF;
export const WDIOS_DISABLECARD = 0x0001;
export const WDIOS_ENABLECARD = 0x0002;

export interface WatchdogState {
  identity: string;
  firmwareVersion: number;
  /** watchdog_info.options. */
  options: number;
  /** The driver has a get_timeleft op. */
  timeleft: boolean;
  timeout: number;
  pretimeout: number;
  minTimeout: number;
  maxTimeout: number;
  nowayout: boolean;
  bootstatus: number;
  active: boolean;
  /** Epoch ms of the last keepalive (or start). */
  lastPing: number;
  /** _WDOG_ALLOW_RELEASE: a 'V' was written. */
  allowRelease: boolean;
  /** _WDOG_KEEPALIVE: pinged since GETSTATUS last looked. */
  keepalive: boolean;
  /** _WDOG_DEV_OPEN. */
  open: boolean;
  expiries: number;
  timers: NodeJS.Timeout[];
}

function arm(inst: Instance<WatchdogState>): void {
  const s = inst.state;
  for (const t of s.timers) clearTimeout(t);
  s.timers = [];
  if (!s.active) return;
  const left = s.lastPing + s.timeout * 1000 - Date.now();
  if (s.pretimeout > 0) {
    s.timers.push(setTimeout(() => inst.emit('pretimeout', { pretimeout: s.pretimeout, timeout: s.timeout }), left - s.pretimeout * 1000));
  }
  s.timers.push(
    setTimeout(() => {
      s.expiries++;
      s.bootstatus |= WDIOF.CARDRESET;
      inst.emit('expired', { timeout: s.timeout, count: s.expiries, sinceKeepaliveMs: Date.now() - s.lastPing });
      s.lastPing = Date.now();
      arm(inst);
    }, left),
  );
}

function ping(inst: Instance<WatchdogState>): void {
  const s = inst.state;
  if (!s.active) return;
  s.keepalive = true;
  s.lastPing = Date.now();
  arm(inst);
}

function start(inst: Instance<WatchdogState>): void {
  const s = inst.state;
  if (s.active) return;
  s.active = true;
  s.lastPing = Date.now();
  arm(inst);
}

/** watchdog_stop(): refused (EBUSY) with nowayout. */
function stop(inst: Instance<WatchdogState>): void {
  const s = inst.state;
  if (!s.active) return;
  if (s.nowayout) throw new Errno('EBUSY');
  s.active = false;
  arm(inst);
}

function timeLeft(s: WatchdogState): number {
  return s.active ? Math.max(0, Math.floor((s.lastPing + s.timeout * 1000 - Date.now()) / 1000)) : 0;
}

/** The boot status bits watchdog_get_status() passes on: why the machine last reset. */
const RESET_REASONS = WDIOF.CARDRESET | WDIOF.OVERHEAT | WDIOF.FANFAULT | WDIOF.EXTERN1 | WDIOF.EXTERN2 | WDIOF.POWERUNDER | WDIOF.POWEROVER;

/**
 * watchdog_get_status() without a driver status op: the boot status's reset
 * reasons, MAGICCLOSE while a 'V' is pending, KEEPALIVEPING if fed since the
 * last look (reading it clears that bit, for sysfs `status` too).
 */
function status(s: WatchdogState): number {
  const st = (s.bootstatus & RESET_REASONS) | (s.allowRelease ? WDIOF.MAGICCLOSE : 0) | (s.keepalive ? WDIOF.KEEPALIVEPING : 0);
  s.keepalive = false;
  return st;
}

/** watchdog_get_timeleft(): EOPNOTSUPP from a driver without a get_timeleft op. */
function getTimeLeft(s: WatchdogState): number {
  if (!s.timeleft) throw new Errno('EOPNOTSUPP');
  return timeLeft(s);
}

/** watchdog_have_pretimeout(), of a kernel without CONFIG_WATCHDOG_HRTIMER_PRETIMEOUT: the driver's WDIOF_PRETIMEOUT. */
function hasPretimeout(s: WatchdogState): boolean {
  return (s.options & WDIOF.PRETIMEOUT) !== 0;
}

function setTimeout_(s: WatchdogState, t: number): void {
  if (!(s.options & WDIOF.SETTIMEOUT)) throw new Errno('EOPNOTSUPP');
  if (t < s.minTimeout || t > s.maxTimeout) throw new Errno('EINVAL');
  s.timeout = t;
  if (s.pretimeout >= s.timeout) s.pretimeout = 0;
}

const OPTIONS = defineSchema({
  identity: { type: 'string', default: 'cdevemu watchdog', description: 'watchdog_info.identity, at most 31 characters' },
  timeout: { type: 'integer', min: 1, max: 65535, default: 30, description: 'seconds, from minTimeout to maxTimeout' },
  pretimeout: { type: 'integer', min: 0, max: 65534, default: 0, description: 'seconds before the timeout the pretimeout event comes, below timeout; 0 for none; above 0 needs PRETIMEOUT in support' },
  minTimeout: { type: 'integer', min: 1, max: 65535, default: 1, description: 'the smallest timeout WDIOC_SETTIMEOUT takes' },
  maxTimeout: { type: 'integer', min: 1, max: 65535, default: 65535, description: 'the largest timeout WDIOC_SETTIMEOUT takes' },
  nowayout: { type: 'boolean', default: false, description: 'once started it cannot be stopped (WATCHDOG_NOWAYOUT)' },
  bootstatus: { type: 'integer', min: 0, max: 0xffff, default: 0, description: 'WDIOC_GETBOOTSTATUS flags' },
  firmwareVersion: { type: 'integer', min: 0, max: 0xffffffff, default: 0, description: 'watchdog_info.firmware_version' },
  // The flags iTCO_wdt, sp5100_tco, i6300esb and softdog all declare; none has PRETIMEOUT.
  support: {
    type: 'array',
    items: { type: 'string', enum: Object.keys(WDIOF) as WdiofName[], description: 'a flag: WDIOF_ without its prefix' },
    default: ['SETTIMEOUT', 'MAGICCLOSE', 'KEEPALIVEPING'],
    description:
      'watchdog_info.options, the WDIOF_* flags (without WDIOF_) WDIOC_GETSUPPORT reports; without SETTIMEOUT, KEEPALIVEPING or PRETIMEOUT that ioctl is EOPNOTSUPP, without MAGICCLOSE any close stops the watchdog',
  },
  // softdog and i6300esb have no get_timeleft op; iTCO_wdt and sp5100_tco have one.
  timeleft: { type: 'boolean', default: false, description: 'the driver has a get_timeleft op: WDIOC_GETTIMELEFT answers and sysfs timeleft exists (EOPNOTSUPP and no file without it)' },
});

/** watchdog_info.options from the flags' names. */
function optionsOf(names: readonly WdiofName[]): number {
  return names.reduce((bits, name) => bits | WDIOF[name], 0);
}

export const watchdogModel: DeviceModel<WatchdogState> = {
  name: 'watchdog',
  stream: true,
  // watchdog_write() and watchdog_ioctl() once wd_data->wdd is NULL; no read (EINVAL), the VFS's poll.
  unplugged: { write: new Errno('ENODEV'), ioctl: new Errno('ENODEV'), poll: DEFAULT_POLLMASK },
  events: {
    pretimeout: { pretimeout: 'number', timeout: 'number' },
    expired: { timeout: 'number', count: 'number', sinceKeepaliveMs: 'number' },
    not_stopped: { message: 'string', timeout: 'number' },
  },
  description: 'a watchdog timer (/dev/watchdogN): keepalive, magic close, timeout and pretimeout, as wdctl and systemd use it',
  options: OPTIONS,
  create(_inst, options) {
    const o = options as Values<typeof OPTIONS>;
    const what = 'watchdog: option';
    const identity = o.identity;
    if (Buffer.byteLength(identity, 'latin1') > 31) throw new SchemaError(`${what} identity is at most 31 characters (watchdog_info.identity[32]), got ${JSON.stringify(identity)}`, 'identity');
    const minTimeout = o.minTimeout;
    const maxTimeout = checkField(what, 'maxTimeout', { ...OPTIONS.maxTimeout, min: minTimeout }, o.maxTimeout);
    const timeout = checkField(what, 'timeout', { ...OPTIONS.timeout, min: minTimeout, max: maxTimeout }, o.timeout);
    const flags = optionsOf(o.support);
    const pretimeout = checkField(what, 'pretimeout', { ...OPTIONS.pretimeout, max: timeout - 1 }, o.pretimeout);
    if (pretimeout > 0 && !(flags & WDIOF.PRETIMEOUT)) {
      throw new SchemaError(`${what} pretimeout ${pretimeout} needs PRETIMEOUT in option support (a driver without WDIOF_PRETIMEOUT has no pretimeout)`, 'pretimeout');
    }
    return {
      identity,
      firmwareVersion: o.firmwareVersion,
      options: flags,
      timeleft: o.timeleft,
      timeout,
      pretimeout,
      minTimeout,
      maxTimeout,
      nowayout: o.nowayout,
      bootstatus: o.bootstatus,
      active: false,
      lastPing: 0,
      allowRelease: false,
      keepalive: false,
      open: false,
      expiries: 0,
      timers: [],
    };
  },
  attributes(inst) {
    const dir = `sys/class/watchdog/${inst.name}`;
    const s = inst.state;
    return {
      [`${dir}/identity`]: `${s.identity}\n`,
      [`${dir}/timeout`]: () => `${s.timeout}\n`,
      // wdt_is_visible(): no pretimeout file without pretimeout support, no timeleft file without get_timeleft
      ...(hasPretimeout(s) ? { [`${dir}/pretimeout`]: () => `${s.pretimeout}\n` } : {}),
      ...(s.timeleft ? { [`${dir}/timeleft`]: () => `${timeLeft(s)}\n` } : {}),
      [`${dir}/state`]: () => (s.active ? 'active\n' : 'inactive\n'),
      [`${dir}/status`]: () => `0x${status(s).toString(16)}\n`,
      [`${dir}/bootstatus`]: () => `${s.bootstatus}\n`,
      [`${dir}/nowayout`]: () => `${s.nowayout ? 1 : 0}\n`,
    };
  },
  open(file) {
    const s = file.instance.state;
    if (s.open) throw new Errno('EBUSY');
    s.open = true;
    start(file.instance);
  },
  write(file, data) {
    const s = file.instance.state;
    if (data.length === 0) return 0;
    s.allowRelease = data.includes(0x56); // 'V'
    ping(file.instance);
    return data.length;
  },
  release(file) {
    const inst = file.instance;
    const s = inst.state;
    const magic = s.allowRelease || !(s.options & WDIOF.MAGICCLOSE);
    s.allowRelease = false;
    let stopped = !s.active;
    if (!stopped && magic) {
      try {
        stop(inst);
        stopped = true;
      } catch {
        // nowayout
      }
    }
    if (!stopped) {
      inst.emit('not_stopped', { message: `${inst.name}: watchdog did not stop!`, timeout: s.timeout });
      ping(inst);
    }
    s.open = false;
  },
  async ioctl(file, req) {
    const inst = file.instance;
    const s = inst.state;
    switch (req.cmd) {
      case WDIOC_GETSUPPORT: {
        const out = Buffer.alloc(40);
        out.writeUInt32LE(s.options, 0);
        out.writeUInt32LE(s.firmwareVersion, 4);
        cString(s.identity, 32).copy(out, 8);
        return { out };
      }
      case WDIOC_GETSTATUS:
        return intReply(status(s));
      case WDIOC_GETBOOTSTATUS:
        return intReply(s.bootstatus);
      case WDIOC_SETOPTIONS: {
        const val = await getUserInt(req.user, req.arg);
        // watchdog_ioctl(): err is still -ENOIOCTLCMD from watchdog_ioctl_op()
        // (no driver ioctl op) unless DISABLECARD or ENABLECARD acts on it, and
        // vfs_ioctl() turns that into ENOTTY: any other value is refused.
        if (!(val & (WDIOS_DISABLECARD | WDIOS_ENABLECARD))) throw new Errno('ENOTTY');
        if (val & WDIOS_DISABLECARD) stop(inst);
        if (val & WDIOS_ENABLECARD) start(inst);
        return {};
      }
      case WDIOC_KEEPALIVE:
        // watchdog_ioctl(): a driver that does not declare WDIOF_KEEPALIVEPING is not pinged this way
        if (!(s.options & WDIOF.KEEPALIVEPING)) throw new Errno('EOPNOTSUPP');
        ping(inst);
        return {};
      case WDIOC_SETTIMEOUT:
        setTimeout_(s, unpackS32(req.in, 1)[0]!);
        ping(inst);
        return intReply(s.timeout);
      case WDIOC_GETTIMEOUT:
        return intReply(s.timeout);
      case WDIOC_GETTIMELEFT:
        return intReply(getTimeLeft(s));
      case WDIOC_SETPRETIMEOUT: {
        // watchdog_set_pretimeout(): support first, then the value (watchdog_pretimeout_invalid())
        if (!hasPretimeout(s)) throw new Errno('EOPNOTSUPP');
        const t = unpackS32(req.in, 1)[0]!;
        if (t < 0 || (t > 0 && t >= s.timeout)) throw new Errno('EINVAL');
        s.pretimeout = t;
        arm(inst);
        return {};
      }
      case WDIOC_GETPRETIMEOUT:
        return intReply(s.pretimeout);
      default:
        throw new Errno('ENOTTY');
    }
  },
  remove(inst) {
    const s = inst.state;
    s.active = false;
    arm(inst); // cancels the timers
  },
  actions: {
    status: {
      description: "the watchdog's state as a program could see it, plus the expiry count",
      run(inst) {
        const s = inst.state;
        return { active: s.active, timeout: s.timeout, pretimeout: s.pretimeout, timeleft: timeLeft(s), expiries: s.expiries, open: s.open };
      },
    },
  },
};
