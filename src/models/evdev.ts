/**
 * evdev: an input device as drivers/input/evdev.c presents
 * /dev/input/eventN, fed through the input core (drivers/input/input.c).
 *
 * - Every open file is an evdev client with its own event queue; it gets
 *   every event delivered after it opened (evdev_pass_values()). A full
 *   queue drops everything but the newest event behind a SYN_DROPPED
 *   (__pass_event()).
 * - The input core filters what reaches clients (input_get_disposition()):
 *   unsupported codes, key/switch/LED/sound values that do not change the
 *   state (a key repeat, value 2, only while the key is down), unchanged
 *   absolute values and zero relative motion are dropped; events are
 *   buffered until a SYN_REPORT and delivered with it, as one packet with
 *   one timestamp; an empty packet is not delivered.
 * - evdev_read(): whole struct input_event records only (24 bytes on
 *   x86_64), EINVAL for a buffer shorter than one, blocks while the queue is
 *   empty (EAGAIN with O_NONBLOCK).
 * - evdev_write(): injects whole records (input_inject_event()); a trailing
 *   partial record is ignored, a write shorter than one record is EINVAL.
 * - evdev_poll(): EPOLLOUT|EPOLLWRNORM, plus EPOLLIN|EPOLLRDNORM with events queued.
 * - ioctls of evdev_do_ioctl(); unknown commands are EINVAL, like the
 *   kernel's. EVIOCGRAB and EVIOCREVOKE never arrive: their argument is an
 *   integer, which a FUSE mount's restricted ioctl tries to copy as a
 *   pointer, so the kernel fails them with EFAULT.
 * - After unregister (!evdev->exist) read, write and ioctl fail ENODEV,
 *   poll answers EPOLLHUP|EPOLLERR.
 *
 * The node is dev/input/eventN; sysfs is sys/class/input/eventN/device/
 * {name,phys,uniq,properties,id/*,capabilities/*} (input.c's attributes).
 */
import { Errno } from '../errno.js';
import { POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, iocDir, iocNr, iocSize, iocType, IOC_READ, IOC_WRITE } from '../devio.js';
import type { DeviceModel, File, Instance } from '../core/index.js';
import { parseOptions } from './options.js';
import { actionArg, Bitmap, intField, intListOption, intOption, intReply, packS32, unpackS32, strToUser, waitUnlessNonblock } from './util.js';

/* include/uapi/linux/input-event-codes.h */
export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_REL = 0x02;
export const EV_ABS = 0x03;
export const EV_MSC = 0x04;
export const EV_SW = 0x05;
export const EV_LED = 0x11;
export const EV_SND = 0x12;
export const EV_REP = 0x14;
export const EV_FF = 0x15;
export const SYN_REPORT = 0;
export const SYN_MT_REPORT = 2;
export const SYN_DROPPED = 3;
const EV_MAX = 0x1f;
const KEY_MAX = 0x2ff;
const ABS_MAX = 0x3f;
const INPUT_PROP_MAX = 0x1f;
/** Highest code per event type, for EVIOCGBIT and the state bitmaps. */
const MAX: Record<number, number> = {
  0: EV_MAX,
  [EV_KEY]: KEY_MAX,
  [EV_REL]: 0x0f,
  [EV_ABS]: ABS_MAX,
  [EV_MSC]: 0x07,
  [EV_SW]: 0x10,
  [EV_LED]: 0x0f,
  [EV_SND]: 0x07,
  [EV_FF]: 0x7f,
};
/** The capability option of each type, also the sysfs capabilities/ file name. */
const CAPS: Array<[number, string, string]> = [
  [EV_KEY, 'keys', 'key'],
  [EV_REL, 'rel', 'rel'],
  [EV_ABS, 'abs', 'abs'],
  [EV_MSC, 'msc', 'msc'],
  [EV_SW, 'sw', 'sw'],
  [EV_LED, 'led', 'led'],
  [EV_SND, 'snd', 'snd'],
];
/** Types whose state the device keeps (EVIOCGKEY/LED/SND/SW) and which pass only on change. */
const STATEFUL = [EV_KEY, EV_SW, EV_LED, EV_SND];

export const EV_VERSION = 0x010001;
export const INPUT_EVENT_SIZE = 24; // struct input_event on 64-bit: timeval (2 x 8) + u16 + u16 + s32
const E = 0x45; // 'E'
const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_BOOTTIME = 7;
const BUS_VIRTUAL = 0x06;

export interface InputEvent {
  type: number;
  code: number;
  value: number;
}

/** An event delivered to clients: stamped with both clocks, each client reads its own. */
interface Stamped extends InputEvent {
  realUs: bigint;
  monoUs: bigint;
}

/** struct evdev_client. */
interface Client {
  queue: Stamped[];
  clock: number;
}

export interface EvdevState {
  name: string;
  phys: string | undefined;
  uniq: string | undefined;
  /** struct input_id: bustype, vendor, product, version. */
  id: [number, number, number, number];
  /** dev->evbit (index 0) and the per-type capability bitmaps. */
  bits: Map<number, Bitmap>;
  props: Bitmap;
  /** dev->key, ->led, ->snd, ->sw. */
  state: Map<number, Bitmap>;
  /** dev->absinfo: value, minimum, maximum, fuzz, flat, resolution. */
  absinfo: Map<number, number[]> | null;
  /** dev->vals: events of the packet being built, delivered at SYN_REPORT. */
  frame: InputEvent[];
  clients: Set<Client>;
  bufsize: number;
}

const client = (file: File<EvdevState>): Client => file.private as Client;

function nowStamp(): { realUs: bigint; monoUs: bigint } {
  const monoUs = process.hrtime.bigint() / 1000n; // CLOCK_MONOTONIC
  return { realUs: BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)), monoUs };
}

/** __pass_event(): append, and on overflow keep only SYN_DROPPED and the newest event. */
function passEvent(s: EvdevState, c: Client, ev: Stamped): void {
  c.queue.push(ev);
  if (c.queue.length >= s.bufsize) c.queue = [{ ...ev, type: EV_SYN, code: SYN_DROPPED, value: 0 }, ev];
}

/** input_pass_values() at SYN_REPORT: the packet goes to every client with one timestamp. */
function flush(inst: Instance<EvdevState>): void {
  const s = inst.state;
  if (s.frame.length === 0) return; // input_handle_event(): a lone SYN_REPORT is not passed
  const t = nowStamp();
  const packet = [...s.frame, { type: EV_SYN, code: SYN_REPORT, value: 0 }];
  s.frame = [];
  for (const c of s.clients) for (const ev of packet) passEvent(s, c, { ...ev, ...t });
  inst.wq.wake();
}

/**
 * input_handle_event(): filter by capability and state (input_get_disposition),
 * update the device state, buffer the event; SYN_REPORT flushes the packet.
 * Returns whether the event was accepted.
 */
function handleEvent(inst: Instance<EvdevState>, ev: InputEvent): boolean {
  const s = inst.state;
  const { type, code, value } = ev;
  if (type === EV_SYN) {
    if (code === SYN_REPORT) flush(inst);
    else if (code === SYN_MT_REPORT) s.frame.push(ev);
    else return false;
    return true;
  }
  if (!s.bits.get(type)?.test(code)) return false;
  const state = s.state.get(type);
  if (state) {
    if (type === EV_KEY && value === 2) {
      if (!state.test(code)) return false;
    } else {
      if (state.test(code) === (value !== 0)) return false;
      state.set(code, value !== 0);
    }
  } else if (type === EV_ABS) {
    const info = s.absinfo!.get(code)!;
    if (info[0] === value) return false;
    info[0] = value;
  } else if (type === EV_REL && value === 0) {
    return false;
  }
  s.frame.push(ev);
  return true;
}

function encode(ev: Stamped, clock: number, into: Buffer, at: number): void {
  const us = clock === CLOCK_REALTIME ? ev.realUs : ev.monoUs;
  into.writeBigInt64LE(us / 1_000_000n, at);
  into.writeBigInt64LE(us % 1_000_000n, at + 8);
  into.writeUInt16LE(ev.type, at + 16);
  into.writeUInt16LE(ev.code, at + 18);
  into.writeInt32LE(ev.value, at + 20);
}

function parseAbs(value: unknown): Map<number, number[]> {
  const out = new Map<number, number[]>();
  if (value === undefined) return out;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Errno('EINVAL', 'evdev: option abs must be an object {code: {min, max, fuzz, flat, resolution, value}}');
  }
  for (const [key, spec] of Object.entries(value)) {
    const code = intOption('evdev', `abs key ${key}`, Number(key), 0, 0, ABS_MAX);
    const a = parseOptions(`evdev abs ${key}`, spec, { min: 'number', max: 'number', fuzz: 'number', flat: 'number', resolution: 'number', value: 'number' });
    const n = (k: keyof typeof a, dflt: number): number => intOption('evdev', `abs.${key}.${k}`, a[k], dflt, -(2 ** 31), 2 ** 31 - 1);
    const min = n('min', 0);
    const max = n('max', 0);
    if (max < min) throw new Errno('EINVAL', `evdev: abs.${key}: max ${max} is below min ${min}`);
    // struct input_absinfo order: value, minimum, maximum, fuzz, flat, resolution
    out.set(code, [n('value', min), min, max, n('fuzz', 0), n('flat', 0), n('resolution', 0)]);
  }
  return out;
}

function parseId(value: unknown): [number, number, number, number] {
  const o = parseOptions('evdev id', value, { bustype: 'number', vendor: 'number', product: 'number', version: 'number' });
  const u16 = (k: keyof typeof o, dflt: number): number => intOption('evdev', `id.${k}`, o[k], dflt, 0, 0xffff);
  return [u16('bustype', BUS_VIRTUAL), u16('vendor', 0), u16('product', 0), u16('version', 0)];
}

/** The main block of a PC keyboard, KEY_ESC (1) to KEY_F12 (88): the default when no capability is given. */
const DEFAULT_KEYS = Array.from({ length: 88 }, (_, i) => i + 1);

function create(options: unknown): EvdevState {
  const o = parseOptions('evdev', options, {
    name: 'string',
    phys: 'string',
    uniq: 'string',
    id: 'object',
    keys: 'array',
    rel: 'array',
    abs: 'object',
    msc: 'array',
    sw: 'array',
    led: 'array',
    snd: 'array',
    props: 'array',
    bufferSize: 'number',
  });
  const absinfo = parseAbs(o.abs);
  const lists = new Map<number, number[]>();
  for (const [type, key] of CAPS) {
    lists.set(type, type === EV_ABS ? [...absinfo.keys()] : intListOption('evdev', key, o[key as keyof typeof o], 0, MAX[type]!));
  }
  if ([...lists.values()].every((l) => l.length === 0)) lists.set(EV_KEY, DEFAULT_KEYS);
  const evbit = Bitmap.of(EV_MAX + 1, [EV_SYN]);
  const bits = new Map<number, Bitmap>([[0, evbit]]);
  for (const [type, codes] of lists) {
    bits.set(type, Bitmap.of(MAX[type]! + 1, codes));
    if (codes.length) evbit.set(type, true);
  }
  // evdev_compute_buffer_size(): 8 packets of the estimated packet size, at least 64, a power of two.
  const perPacket = 2 + [...lists.values()].reduce((n, l) => n + l.length, 0);
  const dflt = 2 ** Math.ceil(Math.log2(Math.max(64, 8 * Math.min(perPacket, 64))));
  const bufsize = intOption('evdev', 'bufferSize', o.bufferSize, dflt, 2, 1 << 20);
  return {
    name: o.name ?? 'cdevemu virtual input',
    phys: o.phys,
    uniq: o.uniq,
    id: parseId(o.id),
    bits,
    props: Bitmap.of(INPUT_PROP_MAX + 1, intListOption('evdev', 'props', o.props, 0, INPUT_PROP_MAX)),
    state: new Map(STATEFUL.map((t) => [t, new Bitmap(MAX[t]! + 1)])),
    absinfo: absinfo.size ? absinfo : null,
    frame: [],
    clients: new Set(),
    bufsize,
  };
}

/** EVIOCSCLOCKID: evdev_set_clk_type(); switching clocks flushes the queue behind a SYN_DROPPED. */
function setClock(c: Client, clock: number): void {
  if (clock !== CLOCK_REALTIME && clock !== CLOCK_MONOTONIC && clock !== CLOCK_BOOTTIME) throw new Errno('EINVAL');
  if (c.clock === clock) return;
  c.clock = clock;
  if (c.queue.length) c.queue = [{ type: EV_SYN, code: SYN_DROPPED, value: 0, ...nowStamp() }];
}

/* Commands with a length in the size field are matched without it (EVIOC_MASK_SIZE). */
const ioc = (dir: number, nr: number, size = 0): number => ((dir << 30) | (size << 16) | (E << 8) | nr) >>> 0;
const maskSize = (cmd: number): number => (cmd & ~(0x3fff << 16)) >>> 0;

export const EVIOCGVERSION = ioc(IOC_READ, 0x01, 4);
export const EVIOCGID = ioc(IOC_READ, 0x02, 8);
export const EVIOCGREP = ioc(IOC_READ, 0x03, 8);
export const EVIOCGEFFECTS = ioc(IOC_READ, 0x84, 4);
export const EVIOCSCLOCKID = ioc(IOC_WRITE, 0xa0, 4);
export const EVIOCGNAME = (len: number): number => ioc(IOC_READ, 0x06, len);
export const EVIOCGPHYS = (len: number): number => ioc(IOC_READ, 0x07, len);
export const EVIOCGUNIQ = (len: number): number => ioc(IOC_READ, 0x08, len);
export const EVIOCGPROP = (len: number): number => ioc(IOC_READ, 0x09, len);
export const EVIOCGKEY = (len: number): number => ioc(IOC_READ, 0x18, len);
export const EVIOCGLED = (len: number): number => ioc(IOC_READ, 0x19, len);
export const EVIOCGSND = (len: number): number => ioc(IOC_READ, 0x1a, len);
export const EVIOCGSW = (len: number): number => ioc(IOC_READ, 0x1b, len);
export const EVIOCGBIT = (ev: number, len: number): number => ioc(IOC_READ, 0x20 + ev, len);
export const EVIOCGABS = (abs: number): number => ioc(IOC_READ, 0x40 + abs, 24);
export const EVIOCSABS = (abs: number): number => ioc(IOC_WRITE, 0xc0 + abs, 24);

const STATE_IOCTLS: Record<number, number> = {
  [EVIOCGKEY(0)]: EV_KEY,
  [EVIOCGLED(0)]: EV_LED,
  [EVIOCGSND(0)]: EV_SND,
  [EVIOCGSW(0)]: EV_SW,
};

export const evdevModel: DeviceModel<EvdevState> = {
  name: 'evdev',
  events: {},
  stream: true,
  unplugErrno: new Errno('ENODEV'),
  nodePath: (inst) => `input/${inst.name}`,
  create: (_inst, options) => create(options),
  attributes(inst) {
    const s = inst.state;
    const dir = `sys/class/input/${inst.name}/device`;
    const hex4 = (n: number): string => `${n.toString(16).padStart(4, '0')}\n`;
    const attrs: Record<string, string> = {
      [`${dir}/name`]: `${s.name}\n`,
      [`${dir}/phys`]: `${s.phys ?? ''}\n`,
      [`${dir}/uniq`]: `${s.uniq ?? ''}\n`,
      [`${dir}/properties`]: s.props.toSysfs(INPUT_PROP_MAX),
      [`${dir}/id/bustype`]: hex4(s.id[0]),
      [`${dir}/id/vendor`]: hex4(s.id[1]),
      [`${dir}/id/product`]: hex4(s.id[2]),
      [`${dir}/id/version`]: hex4(s.id[3]),
      [`${dir}/capabilities/ev`]: s.bits.get(0)!.toSysfs(EV_MAX),
    };
    for (const [type, , file] of CAPS) attrs[`${dir}/capabilities/${file}`] = s.bits.get(type)!.toSysfs(MAX[type]!);
    return attrs;
  },
  open(file) {
    const c: Client = { queue: [], clock: CLOCK_REALTIME };
    file.private = c;
    file.instance.state.clients.add(c);
  },
  release(file) {
    file.instance.state.clients.delete(client(file));
  },
  async read(file, size, signal) {
    if (size === 0) return Buffer.alloc(0);
    if (size < INPUT_EVENT_SIZE) throw new Errno('EINVAL');
    const c = client(file);
    while (c.queue.length === 0) await waitUnlessNonblock(file, () => c.queue.length > 0, signal);
    // Whole records only; the reply is short unless the buffer is an exact
    // multiple, so FUSE does not come back for more (docs/fuse-protocol.md#open-flags).
    const n = Math.min(c.queue.length, Math.floor(size / INPUT_EVENT_SIZE));
    const out = Buffer.alloc(n * INPUT_EVENT_SIZE);
    c.queue.splice(0, n).forEach((ev, i) => encode(ev, c.clock, out, i * INPUT_EVENT_SIZE));
    return out;
  },
  write(file, data) {
    if (data.length === 0) return 0;
    if (data.length < INPUT_EVENT_SIZE) throw new Errno('EINVAL');
    const n = Math.floor(data.length / INPUT_EVENT_SIZE);
    for (let i = 0; i < n; i++) {
      const at = i * INPUT_EVENT_SIZE;
      handleEvent(file.instance, { type: data.readUInt16LE(at + 16), code: data.readUInt16LE(at + 18), value: data.readInt32LE(at + 20) });
    }
    return n * INPUT_EVENT_SIZE;
  },
  poll(file) {
    return POLLOUT | POLLWRNORM | (client(file).queue.length ? POLLIN | POLLRDNORM : 0);
  },
  ioctl(file, req) {
    const s = file.instance.state;
    const { cmd } = req;
    const size = iocSize(cmd);
    switch (cmd) {
      case EVIOCGVERSION:
        return intReply(EV_VERSION);
      case EVIOCGID: {
        const out = Buffer.alloc(8);
        s.id.forEach((v, i) => out.writeUInt16LE(v, i * 2));
        return { out };
      }
      case EVIOCGREP:
        throw new Errno('ENOSYS'); // no EV_REP: FUSE turns this into ENOTTY
      case EVIOCGEFFECTS:
        return intReply(0); // no force feedback
      case EVIOCSCLOCKID:
        setClock(client(file), unpackS32(req.in, 1)[0]!);
        return {};
    }
    switch (maskSize(cmd)) {
      case EVIOCGNAME(0):
        return strToUser(s.name, size);
      case EVIOCGPHYS(0):
        return strToUser(s.phys, size);
      case EVIOCGUNIQ(0):
        return strToUser(s.uniq, size);
      case EVIOCGPROP(0):
        return s.props.toUser(INPUT_PROP_MAX, size, req.compat);
    }
    const stateType = STATE_IOCTLS[maskSize(cmd)];
    if (stateType !== undefined) return s.state.get(stateType)!.toUser(MAX[stateType]!, size, req.compat);
    if (iocType(cmd) !== E) throw new Errno('EINVAL');
    const nr = iocNr(cmd);
    if (iocDir(cmd) === IOC_READ && (nr & ~EV_MAX) === 0x20) {
      const bits = s.bits.get(nr & EV_MAX) ?? (MAX[nr & EV_MAX] !== undefined ? new Bitmap(MAX[nr & EV_MAX]! + 1) : null);
      if (!bits) throw new Errno('EINVAL');
      return bits.toUser(MAX[nr & EV_MAX]!, size, req.compat);
    }
    if ((nr & ~ABS_MAX) === 0x40 && iocDir(cmd) === IOC_READ) {
      if (!s.absinfo) throw new Errno('EINVAL');
      const info = s.absinfo.get(nr & ABS_MAX) ?? [0, 0, 0, 0, 0, 0];
      return { out: packS32(info).subarray(0, Math.min(size, 24)) };
    }
    if ((nr & ~ABS_MAX) === 0xc0 && iocDir(cmd) === IOC_WRITE) {
      if (!s.absinfo) throw new Errno('EINVAL');
      const code = nr & ABS_MAX;
      if (code === 0x2f) throw new Errno('EINVAL'); // ABS_MT_SLOT: the number of slots is fixed
      const given = req.in.subarray(0, Math.min(size, 24));
      const info = unpackS32(Buffer.concat([given, Buffer.alloc(24 - given.length)]), 6);
      const cur = s.absinfo.get(code);
      // Like the kernel, set even for an axis the device does not report; it stays unsupported.
      if (cur) cur.splice(0, 6, ...info);
      else s.absinfo.set(code, info);
      return {};
    }
    throw new Errno('EINVAL');
  },
  actions: {
    key(inst, arg) {
      const a = actionArg('evdev', 'key', arg);
      const code = supported(inst, EV_KEY, intField('evdev', 'key', a, 'code'), 'key');
      if (a.value !== undefined) return inject(inst, [{ type: EV_KEY, code, value: intField('evdev', 'key', a, 'value') }, syn]);
      return inject(inst, [{ type: EV_KEY, code, value: 1 }, syn, { type: EV_KEY, code, value: 0 }, syn]);
    },
    rel(inst, arg) {
      const a = actionArg('evdev', 'rel', arg);
      const code = supported(inst, EV_REL, intField('evdev', 'rel', a, 'code'), 'rel');
      return inject(inst, [{ type: EV_REL, code, value: intField('evdev', 'rel', a, 'value') }, syn]);
    },
    abs(inst, arg) {
      const a = actionArg('evdev', 'abs', arg);
      const code = supported(inst, EV_ABS, intField('evdev', 'abs', a, 'code'), 'abs');
      return inject(inst, [{ type: EV_ABS, code, value: intField('evdev', 'abs', a, 'value') }, syn]);
    },
    event(inst, arg) {
      const a = actionArg('evdev', 'event', arg);
      const f = (k: string): number => intField('evdev', 'event', a, k);
      return inject(inst, [{ type: f('type'), code: f('code'), value: f('value') }]);
    },
    syn: (inst) => inject(inst, [syn]),
  },
};

const syn: InputEvent = { type: EV_SYN, code: SYN_REPORT, value: 0 };

/** Actions refuse codes the device lacks (the kernel would drop them silently, which hides a typo). */
function supported(inst: Instance<EvdevState>, type: number, code: number, option: string): number {
  if (!inst.state.bits.get(type)?.test(code)) throw new Errno('EINVAL', `evdev: ${inst.name} has no ${option} code ${code}`);
  return code;
}

/** Feeds events through the input core; answers how many it accepted (filtered ones are not). */
function inject(inst: Instance<EvdevState>, events: InputEvent[]): { accepted: number } {
  let accepted = 0;
  for (const ev of events) if (handleEvent(inst, ev)) accepted++;
  return { accepted };
}
