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
 *   GETPRETIMEOUT; anything else ENOTTY. WDIOC_SETOPTIONS is encoded _IOR
 *   although it passes a value in, so a FUSE mount does not copy it in:
 *   the model reads it from the calling thread's memory (req.user), as
 *   watchdog_ioctl()'s get_user() does.
 * - No read and no poll, like the kernel's watchdog_fops: read is EINVAL,
 *   poll the VFS default, also after unplug (`unplugged`). After
 *   watchdog_unregister_device() write and ioctl fail ENODEV, and the
 *   timers are cancelled.
 *
 * sysfs: sys/class/watchdog/watchdogN/{identity,timeout,pretimeout,timeleft,
 * state,status,bootstatus,nowayout} (watchdog_dev.c's attributes).
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
export const WDIOF_CARDRESET = 0x0020;
export const WDIOF_SETTIMEOUT = 0x0080;
export const WDIOF_MAGICCLOSE = 0x0100;
export const WDIOF_PRETIMEOUT = 0x0200;
export const WDIOF_KEEPALIVEPING = 0x8000;
export const WDIOS_DISABLECARD = 0x0001;
export const WDIOS_ENABLECARD = 0x0002;

export interface WatchdogState {
  identity: string;
  firmwareVersion: number;
  /** watchdog_info.options. */
  options: number;
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
      s.bootstatus |= WDIOF_CARDRESET;
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

/** watchdog_get_status() without a driver status op; reading it clears the keepalive bit. */
function status(s: WatchdogState): number {
  const st = (s.allowRelease ? WDIOF_MAGICCLOSE : 0) | (s.keepalive ? WDIOF_KEEPALIVEPING : 0);
  s.keepalive = false;
  return st;
}

function setTimeout_(s: WatchdogState, t: number): void {
  if (!(s.options & WDIOF_SETTIMEOUT)) throw new Errno('EOPNOTSUPP');
  if (t < s.minTimeout || t > s.maxTimeout) throw new Errno('EINVAL');
  s.timeout = t;
  if (s.pretimeout >= s.timeout) s.pretimeout = 0;
}

const OPTIONS = defineSchema({
  identity: { type: 'string', default: 'cdevemu watchdog', description: 'watchdog_info.identity, at most 31 characters' },
  timeout: { type: 'integer', min: 1, max: 65535, default: 30, description: 'seconds, from minTimeout to maxTimeout' },
  pretimeout: { type: 'integer', min: 0, max: 65534, default: 0, description: 'seconds before the timeout the pretimeout event comes, below timeout; 0 for none' },
  minTimeout: { type: 'integer', min: 1, max: 65535, default: 1, description: 'the smallest timeout WDIOC_SETTIMEOUT takes' },
  maxTimeout: { type: 'integer', min: 1, max: 65535, default: 65535, description: 'the largest timeout WDIOC_SETTIMEOUT takes' },
  nowayout: { type: 'boolean', default: false, description: 'once started it cannot be stopped (WATCHDOG_NOWAYOUT)' },
  bootstatus: { type: 'integer', min: 0, max: 0xffff, default: 0, description: 'WDIOC_GETBOOTSTATUS flags' },
  firmwareVersion: { type: 'integer', min: 0, max: 0xffffffff, default: 0, description: 'watchdog_info.firmware_version' },
});

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
    return {
      identity,
      firmwareVersion: o.firmwareVersion,
      options: WDIOF_SETTIMEOUT | WDIOF_MAGICCLOSE | WDIOF_PRETIMEOUT | WDIOF_KEEPALIVEPING,
      timeout,
      pretimeout: checkField(what, 'pretimeout', { ...OPTIONS.pretimeout, max: timeout - 1 }, o.pretimeout),
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
      [`${dir}/pretimeout`]: () => `${s.pretimeout}\n`,
      [`${dir}/timeleft`]: () => `${timeLeft(s)}\n`,
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
    const magic = s.allowRelease || !(s.options & WDIOF_MAGICCLOSE);
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
        ping(inst);
        return {};
      case WDIOC_SETTIMEOUT:
        setTimeout_(s, unpackS32(req.in, 1)[0]!);
        ping(inst);
        return intReply(s.timeout);
      case WDIOC_GETTIMEOUT:
        return intReply(s.timeout);
      case WDIOC_GETTIMELEFT:
        return intReply(timeLeft(s));
      case WDIOC_SETPRETIMEOUT: {
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
