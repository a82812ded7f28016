/**
 * evdev: an input device as drivers/input/evdev.c presents
 * /dev/input/eventN, fed through the input core (./evdev/input.ts, after
 * drivers/input/input.c).
 *
 * - Every open file is an evdev client with its own event queue
 *   (./evdev/client-queue.ts); it gets every packet delivered after it
 *   opened (evdev_pass_values()), or none while another client holds the
 *   grab (EVIOCGRAB). A full queue drops everything but the newest event
 *   behind a SYN_DROPPED (__pass_event()). Only complete packets are
 *   readable (packet_head).
 * - evdev_read(): whole struct input_event records only (24 bytes on
 *   x86_64), EINVAL for a buffer shorter than one, blocks while no complete
 *   packet is queued (EAGAIN with O_NONBLOCK).
 * - evdev_write(): injects whole records (input_inject_event()); a trailing
 *   partial record is ignored, a write shorter than one record is EINVAL.
 * - evdev_poll(): EPOLLOUT|EPOLLWRNORM, plus EPOLLIN|EPOLLRDNORM with a packet queued.
 * - ioctls of evdev_do_ioctl(); unknown commands are EINVAL, like the
 *   kernel's. EVIOCGRAB and EVIOCREVOKE take an integer, which a FUSE
 *   mount's restricted ioctl copies as a pointer (4 bytes at address 0 or
 *   1): they reach the model only from a caller with page zero mapped
 *   (setarch -Z), elsewhere the kernel fails them with EFAULT.
 * - After unregister (!evdev->exist) or EVIOCREVOKE read, write and ioctl
 *   fail ENODEV, poll answers EPOLLHUP|EPOLLERR, with EPOLLIN|EPOLLRDNORM
 *   while the client still has a complete packet queued (after unplug, as
 *   of the unplug: nothing is queued to a gone device).
 *
 * A device is described option by option or by an evemu description
 * (./evdev/evemu.ts); the play action plays an evemu recording.
 *
 * The node is dev/input/eventN; sysfs is sys/class/input/eventN/device/
 * {name,phys,uniq,properties,id/*,capabilities/*} (input.c's attributes).
 */
import { Errno } from '../errno.js';
import { POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, iocDir, iocNr, iocSize, iocType, IOC_READ, IOC_WRITE, type IoctlReply, type IoctlRequest } from '../devio.js';
import { checkField, checkValues, defineSchema, ioSizeFits, SchemaError, type DeviceModel, type File, type Instance, type IoSizes, type Values } from '../core/index.js';
import { Bitmap, getUserInt, intReply, packS32, unpackS32, strToUser, waitUnlessNonblock } from './util.js';
import {
  ABS_MAX,
  ABS_MT_SLOT,
  CAPS,
  EV_ABS,
  EV_KEY,
  EV_LED,
  EV_MAX,
  EV_REL,
  EV_SND,
  EV_SW,
  EV_SYN,
  INPUT_PROP_MAX,
  MAX,
  SYN_DROPPED,
  SYN_REPORT,
  typeName,
} from './evdev/codes.js';
import { loadEvemu } from './evdev/evemu.js';
import { ClientQueue } from './evdev/client-queue.js';
import { inputDevice, inputEvent, mtValues, type InputDevice, type InputEvent } from './evdev/input.js';
import { play } from './evdev/play.js';
import { absProblem, type AbsInfo, type DeviceSpec } from './evdev/spec.js';

export { EV_SYN, EV_KEY, EV_REL, EV_ABS, EV_MSC, EV_SW, EV_LED, EV_SND, EV_REP, EV_FF, SYN_REPORT, SYN_MT_REPORT, SYN_DROPPED } from './evdev/codes.js';
export type { InputEvent } from './evdev/input.js';

export const EV_VERSION = 0x010001;
export const INPUT_EVENT_SIZE = 24; // struct input_event on 64-bit: timeval (2 x 8) + u16 + u16 + s32
/**
 * What evdev_read() and evdev_write() take: 0 bytes (a check for errors)
 * or one record and more; anything else is EINVAL, before they look at
 * the device (after unplug too).
 */
const RECORD_SIZES: IoSizes = { exact: 0, atLeast: INPUT_EVENT_SIZE };
const E = 0x45; // 'E'
const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_BOOTTIME = 7;
const BUS_VIRTUAL = 0x06;

/** An event delivered to clients: stamped with both clocks, each client reads its own. */
interface Stamped extends InputEvent {
  realUs: bigint;
  monoUs: bigint;
}

/** struct evdev_client. */
interface Client {
  queue: ClientQueue<Stamped>;
  clock: number;
  /** EVIOCREVOKE: the client gets nothing more, and every call fails ENODEV. */
  revoked: boolean;
}

export interface EvdevState extends InputDevice {
  clients: Set<Client>;
  /** evdev->grab: the client that alone gets the events (EVIOCGRAB). */
  grab: Client | null;
  bufsize: number;
}

const client = (file: File<EvdevState>): Client => file.private as Client;

function nowStamp(): { realUs: bigint; monoUs: bigint } {
  const monoUs = process.hrtime.bigint() / 1000n; // CLOCK_MONOTONIC
  return { realUs: BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)), monoUs };
}

/** A SYN_DROPPED event stamped with `stamp`'s times. */
const synDropped = (stamp: { realUs: bigint; monoUs: bigint }): Stamped => ({ type: EV_SYN, code: SYN_DROPPED, value: 0, realUs: stamp.realUs, monoUs: stamp.monoUs });

/** evdev_events(): the packet goes with one timestamp to the grabbing client, or to every client that was not revoked. */
function evdevEvents(inst: Instance<EvdevState>, packet: InputEvent[]): void {
  const s = inst.state;
  const t = nowStamp();
  const drop = synDropped(t);
  for (const c of s.grab ? [s.grab] : s.clients) if (!c.revoked) for (const ev of packet) c.queue.push({ ...ev, ...t }, drop);
  inst.wq.wake();
}

function handleEvent(inst: Instance<EvdevState>, ev: InputEvent): boolean {
  return inputEvent(inst.state, ev, (packet) => evdevEvents(inst, packet));
}

function encode(ev: Stamped, clock: number, into: Buffer, at: number): void {
  const us = clock === CLOCK_REALTIME ? ev.realUs : ev.monoUs;
  into.writeBigInt64LE(us / 1_000_000n, at);
  into.writeBigInt64LE(us % 1_000_000n, at + 8);
  into.writeUInt16LE(ev.type, at + 16);
  into.writeUInt16LE(ev.code, at + 18);
  into.writeInt32LE(ev.value, at + 20);
}

const CODE = { type: 'integer', min: 0, max: 0xffff } as const;
const S32 = { type: 'integer', min: -(2 ** 31), max: 2 ** 31 - 1 } as const;
/** One axis of option `abs` (struct input_absinfo). */
const ABS_INFO = defineSchema({
  min: { ...S32, default: 0, description: 'minimum' },
  max: { ...S32, default: 0, description: 'maximum' },
  fuzz: { ...S32, default: 0, description: 'fuzz' },
  flat: { ...S32, default: 0, description: 'flat' },
  resolution: { ...S32, default: 0, description: 'resolution' },
  value: { ...S32, description: 'the current value; default min' },
});
const ABS_CODE = { type: 'integer', min: 0, max: ABS_MAX, description: 'an ABS_* code' } as const;

/** Option `abs`, keyed by ABS_* code: each axis checked against ABS_INFO, then as input_abs_set_info() needs. */
function parseAbs(value: Record<string, unknown> | undefined): Map<number, AbsInfo> {
  const out = new Map<number, AbsInfo>();
  for (const [key, spec] of Object.entries(value ?? {})) {
    const n = Number(key);
    const code = checkField('evdev: option', `abs key ${key}`, ABS_CODE, key.trim() !== '' && Number.isInteger(n) ? n : key);
    const a = checkValues(`evdev: option abs.${key}:`, ABS_INFO, spec);
    const problem = absProblem(code, a.min, a.max, a.flat);
    if (problem) throw new SchemaError(`evdev: option abs.${key}: ${problem}`, `abs.${key}`);
    out.set(code, [a.value ?? a.min, a.min, a.max, a.fuzz, a.flat, a.resolution]);
  }
  return out;
}

/** The main block of a PC keyboard, KEY_ESC (1) to KEY_F12 (88): the default when no capability is given. */
const DEFAULT_KEYS = Array.from({ length: 88 }, (_, i) => i + 1);

const U16 = { type: 'integer', min: 0, max: 0xffff } as const;
const codeList = (max: number, what: string) => ({ type: 'array', items: { type: 'integer', min: 0, max, description: what }, description: `${what}s the device reports` }) as const;

/** The largest code of the type whose capability option is `option` (keys, rel...). */
const capMax = (option: string): number => MAX[CAPS.find(([, o]) => o === option)![0]]!;

const OPTIONS = defineSchema({
  evemu: { type: 'string', description: 'the device as evemu-describe prints it: the text, or the absolute path of a file; instead of name, id and the capabilities' },
  name: { type: 'string', description: "the device's name; default 'cdevemu virtual input'" },
  phys: { type: 'string', description: 'EVIOCGPHYS' },
  uniq: { type: 'string', description: 'EVIOCGUNIQ' },
  id: {
    type: 'object',
    description: 'struct input_id',
    fields: {
      bustype: { ...U16, default: BUS_VIRTUAL, description: 'BUS_*; default BUS_VIRTUAL' },
      vendor: { ...U16, default: 0, description: 'vendor id' },
      product: { ...U16, default: 0, description: 'product id' },
      version: { ...U16, default: 0, description: 'version' },
    },
  },
  keys: codeList(capMax('keys'), 'KEY_*/BTN_* code'),
  rel: codeList(capMax('rel'), 'REL_* code'),
  abs: { type: 'object', description: 'axes by ABS_* code: {code: {min, max, fuzz, flat, resolution, value}}' },
  msc: codeList(capMax('msc'), 'MSC_* code'),
  sw: codeList(capMax('sw'), 'SW_* code'),
  led: codeList(capMax('led'), 'LED_* code'),
  snd: codeList(capMax('snd'), 'SND_* code'),
  props: codeList(INPUT_PROP_MAX, 'INPUT_PROP_* property'),
  bufferSize: { type: 'integer', min: 2, max: 1 << 20, description: "events each client's queue holds; default as evdev_compute_buffer_size()" },
});
type EvdevOptions = Values<typeof OPTIONS>;
/** What an evemu description says, so not given beside one. */
const DESCRIBED = ['name', 'id', 'props', ...CAPS.map(([, option]) => option)];

/** The device the options describe: by an evemu description, or option by option. */
async function deviceSpec(o: EvdevOptions): Promise<DeviceSpec> {
  if (o.evemu !== undefined) {
    const both = DESCRIBED.filter((k) => o[k as keyof EvdevOptions] !== undefined);
    if (both.length) throw new Errno('EINVAL', `evdev: option evemu describes the device; ${both.join(', ')} cannot be given with it`);
    const { description } = await loadEvemu(o.evemu, 'evdev: option evemu');
    if (!description) throw new Errno('EINVAL', 'evdev: option evemu has events but no description (N:, I:, B: lines...)');
    return { ...description, phys: o.phys, uniq: o.uniq };
  }
  const abs = parseAbs(o.abs);
  const codes = new Map<number, number[]>();
  for (const [type, key] of CAPS) if (type !== EV_ABS) codes.set(type, (o[key as keyof EvdevOptions] as number[] | undefined) ?? []);
  if (abs.size === 0 && [...codes.values()].every((l) => l.length === 0)) codes.set(EV_KEY, DEFAULT_KEYS);
  return {
    name: o.name ?? 'cdevemu virtual input',
    phys: o.phys,
    uniq: o.uniq,
    id: [o.id?.bustype ?? BUS_VIRTUAL, o.id?.vendor ?? 0, o.id?.product ?? 0, o.id?.version ?? 0],
    codes,
    abs,
    props: o.props ?? [],
    ledsOn: [],
    switchesOn: [],
  };
}

async function create(options: unknown): Promise<EvdevState> {
  const o = options as EvdevOptions;
  const dev = inputDevice(await deviceSpec(o));
  // evdev_compute_buffer_size(): EVDEV_BUF_PACKETS (8) packets, at least EVDEV_MIN_BUFFER_SIZE (64), a power of two.
  const dflt = 2 ** Math.ceil(Math.log2(Math.max(64, 8 * dev.hintEventsPerPacket)));
  const bufsize = o.bufferSize ?? dflt;
  return { ...dev, clients: new Set(), grab: null, bufsize };
}

/** EVIOCSCLOCKID: evdev_set_clk_type(); switching clocks flushes the queue behind a SYN_DROPPED, readable with the next packet. */
function setClock(c: Client, clock: number): void {
  if (clock !== CLOCK_REALTIME && clock !== CLOCK_MONOTONIC && clock !== CLOCK_BOOTTIME) throw new Errno('EINVAL');
  if (c.clock === clock) return;
  c.clock = clock;
  c.queue.dropAll(synDropped(nowStamp()));
}

/* Commands with a length in the size field are matched without it (EVIOC_MASK_SIZE). */
const ioc = (dir: number, nr: number, size = 0): number => ((dir << 30) | (size << 16) | (E << 8) | nr) >>> 0;
const maskSize = (cmd: number): number => (cmd & ~(0x3fff << 16)) >>> 0;

export const EVIOCGVERSION = ioc(IOC_READ, 0x01, 4);
export const EVIOCGID = ioc(IOC_READ, 0x02, 8);
export const EVIOCGREP = ioc(IOC_READ, 0x03, 8);
export const EVIOCGEFFECTS = ioc(IOC_READ, 0x84, 4);
export const EVIOCGRAB = ioc(IOC_WRITE, 0x90, 4);
export const EVIOCREVOKE = ioc(IOC_WRITE, 0x91, 4);
export const EVIOCSCLOCKID = ioc(IOC_WRITE, 0xa0, 4);
export const EVIOCGNAME = (len: number): number => ioc(IOC_READ, 0x06, len);
export const EVIOCGPHYS = (len: number): number => ioc(IOC_READ, 0x07, len);
export const EVIOCGUNIQ = (len: number): number => ioc(IOC_READ, 0x08, len);
export const EVIOCGPROP = (len: number): number => ioc(IOC_READ, 0x09, len);
export const EVIOCGMTSLOTS = (len: number): number => ioc(IOC_READ, 0x0a, len);
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

/** evdev_grab(): one client at a time. */
function grab(s: EvdevState, c: Client): void {
  if (s.grab) throw new Errno('EBUSY');
  s.grab = c;
}

/** evdev_ungrab(): only the grabbing client ungrabs. */
function ungrab(s: EvdevState, c: Client): void {
  if (s.grab !== c) throw new Errno('EINVAL');
  s.grab = null;
}

/** evdev_handle_mt_request(): the code is read from the caller's buffer, each slot's value written after it. */
async function mtSlots(s: EvdevState, req: IoctlRequest): Promise<IoctlReply> {
  const code = await getUserInt(req.user, req.arg);
  const values = mtValues(s, code);
  if (!values) throw new Errno('EINVAL');
  const room = Math.max(0, Math.floor((iocSize(req.cmd) - 4) / 4));
  return { out: packS32([code, ...values.slice(0, room)]) };
}

/**
 * evdev_poll(): EPOLLOUT|EPOLLWRNORM, or EPOLLHUP|EPOLLERR once the device
 * is gone (!evdev->exist) or the client revoked; plus EPOLLIN|EPOLLRDNORM
 * while the client has a complete packet queued (packet_head != tail),
 * gone or not.
 */
function clientPoll(c: Client, gone: boolean): number {
  return (gone ? POLLHUP | POLLERR : POLLOUT | POLLWRNORM) | (c.queue.readable ? POLLIN | POLLRDNORM : 0);
}

export const evdevModel: DeviceModel<EvdevState> = {
  name: 'evdev',
  description: 'an input device (/dev/input/eventN): keys, relative and absolute axes, multitouch, as evtest, libinput and evemu read it',
  options: OPTIONS,
  events: {},
  stream: true,
  // evdev_read(), evdev_write() (each after its size check) and evdev_ioctl() once !evdev->exist; evdev_poll() as for a revoked client.
  unplugged: {
    read: new Errno('ENODEV'),
    readSizes: RECORD_SIZES,
    write: new Errno('ENODEV'),
    writeSizes: RECORD_SIZES,
    ioctl: new Errno('ENODEV'),
    poll: (file) => clientPoll(client(file), true),
  },
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
    const c: Client = { queue: new ClientQueue(file.instance.state.bufsize), clock: CLOCK_REALTIME, revoked: false };
    file.private = c;
    file.instance.state.clients.add(c);
  },
  release(file) {
    const s = file.instance.state;
    const c = client(file);
    if (s.grab === c) s.grab = null; // evdev_release(): evdev_ungrab()
    s.clients.delete(c);
  },
  async read(file, size, signal) {
    if (!ioSizeFits(RECORD_SIZES, size)) throw new Errno('EINVAL');
    if (size === 0) return Buffer.alloc(0);
    const c = client(file);
    while (c.queue.readable === 0) {
      if (c.revoked) throw new Errno('ENODEV');
      await waitUnlessNonblock(file, () => c.queue.readable > 0 || c.revoked, signal);
    }
    if (c.revoked) throw new Errno('ENODEV');
    // Whole records only; the reply is short unless the buffer is an exact
    // multiple, so FUSE does not come back for more (docs/fuse-protocol.md#open-flags).
    const events = c.queue.take(Math.floor(size / INPUT_EVENT_SIZE));
    const out = Buffer.alloc(events.length * INPUT_EVENT_SIZE);
    events.forEach((ev, i) => encode(ev, c.clock, out, i * INPUT_EVENT_SIZE));
    return out;
  },
  write(file, data) {
    if (!ioSizeFits(RECORD_SIZES, data.length)) throw new Errno('EINVAL');
    if (client(file).revoked) throw new Errno('ENODEV');
    if (data.length === 0) return 0;
    const n = Math.floor(data.length / INPUT_EVENT_SIZE);
    for (let i = 0; i < n; i++) {
      const at = i * INPUT_EVENT_SIZE;
      handleEvent(file.instance, { type: data.readUInt16LE(at + 16), code: data.readUInt16LE(at + 18), value: data.readInt32LE(at + 20) });
    }
    return n * INPUT_EVENT_SIZE;
  },
  poll(file) {
    const c = client(file);
    return clientPoll(c, c.revoked);
  },
  ioctl(file, req) {
    const s = file.instance.state;
    const c = client(file);
    const { cmd } = req;
    const size = iocSize(cmd);
    if (c.revoked) throw new Errno('ENODEV');
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
      // The argument is the value, not a pointer; the call reaches the
      // model only when the 4 bytes FUSE copies from that address exist.
      case EVIOCGRAB:
        if (req.arg) grab(s, c);
        else ungrab(s, c);
        return {};
      case EVIOCREVOKE:
        if (req.arg) throw new Errno('EINVAL');
        // evdev_revoke(): no more events, and a reader waiting now wakes to ENODEV.
        c.revoked = true;
        if (s.grab === c) s.grab = null;
        file.instance.wq.wake();
        return {};
      case EVIOCSCLOCKID:
        setClock(c, unpackS32(req.in, 1)[0]!);
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
      case EVIOCGMTSLOTS(0):
        return mtSlots(s, req);
    }
    const stateType = STATE_IOCTLS[maskSize(cmd)];
    if (stateType !== undefined) {
      // evdev_handle_get_val(): the caller now has the state, so the queued
      // events of that type go, or it would apply them twice.
      c.queue.flush(stateType);
      return s.state.get(stateType)!.toUser(MAX[stateType]!, size, req.compat);
    }
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
      if (code === ABS_MT_SLOT) throw new Errno('EINVAL'); // the number of slots is fixed
      const given = req.in.subarray(0, Math.min(size, 24));
      const info = unpackS32(Buffer.concat([given, Buffer.alloc(24 - given.length)]), 6) as AbsInfo;
      const cur = s.absinfo.get(code);
      // Like the kernel, set even for an axis the device does not report; it stays unsupported.
      if (cur) cur.splice(0, 6, ...info);
      else s.absinfo.set(code, info);
      return {};
    }
    throw new Errno('EINVAL');
  },
  actions: {
    key: {
      description: 'a key press and release, or with value one key event (1 press, 0 release, 2 repeat), each with SYN_REPORT',
      args: defineSchema({ code: { ...CODE, required: true, description: 'a KEY_*/BTN_* code the device has' }, value: { ...S32, description: 'the value; a press and release without it' } }),
      run(inst, a: { code: number; value: number | undefined }) {
        const code = supported(inst, EV_KEY, a.code, 'key');
        if (a.value !== undefined) return inject(inst, [{ type: EV_KEY, code, value: a.value }, syn]);
        return inject(inst, [{ type: EV_KEY, code, value: 1 }, syn, { type: EV_KEY, code, value: 0 }, syn]);
      },
    },
    rel: {
      description: 'a relative motion and SYN_REPORT',
      args: defineSchema({ code: { ...CODE, required: true, description: 'a REL_* code the device has' }, value: { ...S32, required: true, description: 'the motion' } }),
      run: (inst, a: { code: number; value: number }) => inject(inst, [{ type: EV_REL, code: supported(inst, EV_REL, a.code, 'rel'), value: a.value }, syn]),
    },
    abs: {
      description: 'an absolute axis value and SYN_REPORT',
      args: defineSchema({ code: { ...CODE, required: true, description: 'an ABS_* code the device has' }, value: { ...S32, required: true, description: 'the value' } }),
      run: (inst, a: { code: number; value: number }) => inject(inst, [{ type: EV_ABS, code: supported(inst, EV_ABS, a.code, 'abs'), value: a.value }, syn]),
    },
    event: {
      description: 'one raw event through the input core, no SYN_REPORT added',
      args: defineSchema({
        type: { ...CODE, max: EV_MAX, required: true, description: 'EV_* type' },
        code: { ...CODE, required: true, description: 'code' },
        value: { ...S32, required: true, description: 'value' },
      }),
      run: (inst, a: InputEvent) => inject(inst, [{ type: a.type, code: a.code, value: a.value }]),
    },
    syn: { description: 'a SYN_REPORT', run: (inst) => inject(inst, [syn]) },
    play: {
      description: "an evemu recording's events (evemu-record's output), at speed times their pace",
      args: defineSchema({
        evemu: { type: 'string', required: true, description: 'the recording: the text, or the absolute path of a file' },
        speed: { type: 'number', min: 0.001, max: 1e6, default: 1, description: 'how many times faster than recorded' },
      }),
      run: (inst, a: { evemu: string; speed: number }) => playEvemu(inst, a),
    },
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

/**
 * The play action: an evemu recording's events (evemu-record's output,
 * its description skipped), at `speed` times their pace. Refused whole,
 * before any event goes in, when it has no events or one the device lacks:
 * played, those would be dropped without a word.
 */
async function playEvemu(inst: Instance<EvdevState>, a: { evemu: string; speed: number }): Promise<unknown> {
  const speed = a.speed;
  const { events } = await loadEvemu(a.evemu, 'evdev: action play: evemu');
  if (events.length === 0) throw new Errno('EINVAL', 'evdev: action play: the recording has no events (E: lines)');
  const lacking = events.find((ev) => ev.type !== EV_SYN && !inst.state.bits.get(ev.type)?.test(ev.code));
  if (lacking) {
    throw new Errno('EINVAL', `evdev: action play: line ${lacking.line}: ${inst.name} has no ${typeName(lacking.type)} code 0x${lacking.code.toString(16)}`);
  }
  return play(inst, events, speed, (ev) => handleEvent(inst, ev));
}
