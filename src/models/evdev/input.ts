/**
 * The input core's part of an input device (drivers/input/input.c and
 * input-mt.c): its capabilities and state, and the filter every event
 * passes on its way to the handlers (input_handle_event()).
 *
 * - input_get_disposition(): unsupported codes, key/switch/LED/sound values
 *   that do not change the state (a key repeat, value 2, only while the key
 *   is down), unchanged absolute values and zero relative motion are
 *   dropped.
 * - Events are buffered (dev->vals) until a SYN_REPORT and handed on with
 *   it as one packet; an empty packet is not handed on. dev->vals holds
 *   hint_events_per_packet events (input_estimate_events_per_packet()):
 *   once that many are buffered they go on behind a SYN_REPORT of the
 *   core's own, so a long packet arrives in pieces and events written
 *   without a SYN_REPORT still arrive (input_event_dispose()).
 * - Multitouch slots (input_mt_init_slots(), for a device with
 *   ABS_MT_SLOT): ABS_MT_SLOT is staged, the per-slot axes are filtered
 *   against their slot's last value, and the slot is announced only before
 *   an event of a slot other than the last announced one
 *   (input_handle_abs_event()).
 * - Fuzz is reported but not applied: input_defuzz_abs_event() would pull
 *   a value within fuzz of the last one towards it, which changes a
 *   recording played back through the device; here it plays as recorded.
 */
import { Bitmap } from '../util.js';
import {
  ABS_MT_FIRST,
  ABS_MT_LAST,
  ABS_MT_POSITION_X,
  ABS_MT_SLOT,
  ABS_MT_TRACKING_ID,
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
  isMtValue,
  MAX,
  SYN_MT_REPORT,
  SYN_REPORT,
  TRKID_MAX,
} from './codes.js';
import type { AbsInfo, DeviceSpec } from './spec.js';

export interface InputEvent {
  type: number;
  code: number;
  value: number;
}

/** Types whose state the device keeps (EVIOCGKEY/LED/SND/SW) and which pass only on change. */
const STATEFUL = [EV_KEY, EV_SW, EV_LED, EV_SND];

/** struct input_mt: the current slot and each slot's values of the axes ABS_MT_FIRST..ABS_MT_LAST. */
export interface InputMt {
  slot: number;
  slots: Int32Array[];
}

export interface InputDevice {
  name: string;
  phys: string | undefined;
  uniq: string | undefined;
  id: [number, number, number, number];
  /** dev->evbit (index 0) and the per-type capability bitmaps. */
  bits: Map<number, Bitmap>;
  props: Bitmap;
  /** dev->key, ->led, ->snd, ->sw. */
  state: Map<number, Bitmap>;
  /** dev->absinfo; null for a device without axes. */
  absinfo: Map<number, AbsInfo> | null;
  mt: InputMt | null;
  /** dev->hint_events_per_packet: dev->vals holds this many events before the core hands them on itself. */
  hintEventsPerPacket: number;
  /** dev->vals: events of the packet being built, handed on at SYN_REPORT. */
  frame: InputEvent[];
}

/** input_allocate_device() and what a driver sets before input_register_device(). */
export function inputDevice(spec: DeviceSpec): InputDevice {
  const evbit = Bitmap.of(EV_MAX + 1, [EV_SYN]);
  const bits = new Map<number, Bitmap>([[0, evbit]]);
  const abs = new Map([...spec.abs].map(([code, info]) => [code, [...info] as AbsInfo]));
  for (const [type] of CAPS) {
    const list = type === EV_ABS ? [...abs.keys()] : (spec.codes.get(type) ?? []);
    bits.set(type, Bitmap.of(MAX[type]! + 1, list));
    if (list.length) evbit.set(type, true);
  }
  const dev: InputDevice = {
    name: spec.name,
    phys: spec.phys,
    uniq: spec.uniq,
    id: spec.id,
    bits,
    props: Bitmap.of(INPUT_PROP_MAX + 1, spec.props),
    state: new Map(STATEFUL.map((t) => [t, new Bitmap(MAX[t]! + 1)])),
    absinfo: abs.size ? abs : null,
    mt: null,
    hintEventsPerPacket: 0,
    frame: [],
  };
  for (const led of spec.ledsOn) dev.state.get(EV_LED)!.set(led, true);
  for (const sw of spec.switchesOn) dev.state.get(EV_SW)!.set(sw, true);
  const slot = abs.get(ABS_MT_SLOT);
  if (slot && slot[2] >= 0) initSlots(dev, slot[2] + 1);
  // input_register_device(): no driver here gives a larger hint.
  dev.hintEventsPerPacket = estimateEventsPerPacket(dev);
  return dev;
}

/**
 * input_estimate_events_per_packet(): the slots' share of the multitouch
 * axes, one event per other axis and relative axis, room for key and MSC
 * events, SYN_MT_REPORT and SYN_REPORT.
 */
function estimateEventsPerPacket(dev: InputDevice): number {
  const abs = dev.bits.get(EV_ABS)!;
  const tracking = dev.absinfo?.get(ABS_MT_TRACKING_ID);
  let slots = 0;
  if (dev.mt) slots = dev.mt.slots.length;
  else if (abs.test(ABS_MT_TRACKING_ID) && tracking) slots = Math.min(Math.max(tracking[2] - tracking[1] + 1, 2), 32);
  else if (abs.test(ABS_MT_POSITION_X)) slots = 2;
  let events = slots + 1;
  for (const code of abs.list()) events += code === ABS_MT_SLOT || isMtValue(code) ? slots : 1;
  return events + dev.bits.get(EV_REL)!.list().length + 7;
}

/**
 * input_mt_init_slots(): ABS_MT_SLOT ranges over the slots and
 * ABS_MT_TRACKING_ID over 0..TRKID_MAX, whatever the driver said (uinput
 * calls it for a device with ABS_MT_SLOT, with max + 1 slots); every slot
 * starts inactive, tracking id -1.
 */
function initSlots(dev: InputDevice, count: number): void {
  const abs = dev.absinfo!;
  const slot = abs.get(ABS_MT_SLOT)!;
  abs.set(ABS_MT_SLOT, [slot[0], 0, count - 1, 0, 0, slot[5]]);
  abs.set(ABS_MT_TRACKING_ID, [abs.get(ABS_MT_TRACKING_ID)?.[0] ?? 0, 0, TRKID_MAX, 0, 0, abs.get(ABS_MT_TRACKING_ID)?.[5] ?? 0]);
  dev.bits.get(EV_ABS)!.set(ABS_MT_TRACKING_ID, true);
  const slots = Array.from({ length: count }, () => new Int32Array(ABS_MT_LAST - ABS_MT_FIRST + 1));
  for (const s of slots) s[ABS_MT_TRACKING_ID - ABS_MT_FIRST] = -1;
  dev.mt = { slot: 0, slots };
}

type Pass = (packet: InputEvent[]) => void;

/** input_pass_values() of the buffered events and a SYN_REPORT; a lone SYN_REPORT is not passed (dev->num_vals >= 2). */
function flush(dev: InputDevice, pass: Pass): void {
  if (dev.frame.length === 0) return;
  const packet = [...dev.frame, { type: EV_SYN, code: SYN_REPORT, value: 0 }];
  dev.frame = [];
  pass(packet);
}

/**
 * input_handle_event(): filter by capability and state
 * (input_get_disposition()), update the state, buffer the event; at
 * SYN_REPORT, or once dev->vals is full (input_event_dispose()), the
 * packet goes to `pass` (input_pass_values()). Returns whether the event
 * was accepted.
 */
export function inputEvent(dev: InputDevice, ev: InputEvent, pass: Pass): boolean {
  const accepted = dispose(dev, ev, pass);
  if (dev.frame.length >= dev.hintEventsPerPacket) flush(dev, pass);
  return accepted;
}

/** input_get_disposition() and the buffering of input_event_dispose(); SYN_REPORT flushes. */
function dispose(dev: InputDevice, ev: InputEvent, pass: Pass): boolean {
  const { type, code, value } = ev;
  if (type === EV_SYN) {
    if (code === SYN_REPORT) {
      flush(dev, pass);
    } else if (code === SYN_MT_REPORT) {
      dev.frame.push(ev);
    } else {
      return false;
    }
    return true;
  }
  if (!dev.bits.get(type)?.test(code)) return false;
  const state = dev.state.get(type);
  if (state) {
    if (type === EV_KEY && value === 2) {
      if (!state.test(code)) return false;
    } else {
      if (state.test(code) === (value !== 0)) return false;
      state.set(code, value !== 0);
    }
  } else if (type === EV_ABS) {
    return absEvent(dev, ev);
  } else if (type === EV_REL && value === 0) {
    return false;
  }
  dev.frame.push(ev);
  return true;
}

/** input_handle_abs_event(), without input_defuzz_abs_event() (see above). */
function absEvent(dev: InputDevice, ev: InputEvent): boolean {
  const { code, value } = ev;
  const { mt } = dev;
  const abs = dev.absinfo!;
  if (code === ABS_MT_SLOT) {
    // Staged: taken when it names a slot, and announced before the next
    // event of that slot unless that slot was the last announced.
    if (!mt || value < 0 || value >= mt.slots.length) return false;
    mt.slot = value;
    return true;
  }
  const mtValue = isMtValue(code);
  if (!mtValue) {
    const info = abs.get(code)!;
    if (info[0] === value) return false;
    info[0] = value;
  } else if (mt) {
    const values = mt.slots[mt.slot]!;
    if (values[code - ABS_MT_FIRST] === value) return false;
    values[code - ABS_MT_FIRST] = value;
    const slotInfo = abs.get(ABS_MT_SLOT)!;
    if (slotInfo[0] !== mt.slot) {
      slotInfo[0] = mt.slot;
      dev.frame.push({ type: EV_ABS, code: ABS_MT_SLOT, value: mt.slot });
    }
  }
  // Without slots, multitouch axes pass unfiltered (type A devices).
  dev.frame.push(ev);
  return true;
}

/** evdev_handle_mt_request(): each slot's value of a per-slot axis; null where the kernel answers EINVAL. */
export function mtValues(dev: InputDevice, code: number): number[] | null {
  if (!dev.mt || !isMtValue(code)) return null;
  return dev.mt.slots.map((s) => s[code - ABS_MT_FIRST]!);
}
