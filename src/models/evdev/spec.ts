/**
 * What an input device is made of before it is registered: the fields a
 * driver fills in its struct input_dev (name, id, capability bits, absinfo,
 * properties, the initial LED and switch state). The evdev model's options
 * and an evemu description both come down to one of these.
 */
import { ABS_MT_SLOT, MT_SLOTS_MAX } from './codes.js';

/** struct input_absinfo, in its field order: value, minimum, maximum, fuzz, flat, resolution. */
export type AbsInfo = [value: number, min: number, max: number, fuzz: number, flat: number, resolution: number];

export interface DeviceSpec {
  name: string;
  phys?: string;
  uniq?: string;
  /** struct input_id: bustype, vendor, product, version. */
  id: [number, number, number, number];
  /** The supported codes of each event type (EV_KEY, EV_REL...); EV_ABS's are the keys of `abs`. */
  codes: Map<number, number[]>;
  abs: Map<number, AbsInfo>;
  props: number[];
  /** LEDs and switches that are on when the device appears. */
  ledsOn: number[];
  switchesOn: number[];
}

/**
 * What drivers/input/misc/uinput.c uinput_validate_absinfo() refuses in an
 * axis, in words; null when the axis is fine. The model holds every device
 * to it, however it is described.
 */
export function absProblem(code: number, min: number, max: number, flat: number): string | null {
  if ((min !== 0 || max !== 0) && max < min) return `max ${max} is below min ${min}`;
  if (flat > max - min) return `flat ${flat} is more than the range ${max - min}`;
  if (code === ABS_MT_SLOT && max >= MT_SLOTS_MAX) return `ABS_MT_SLOT max ${max} gives more than ${MT_SLOTS_MAX} slots`;
  return null;
}
