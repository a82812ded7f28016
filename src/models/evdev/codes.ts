/**
 * The input event codes the evdev model knows, from
 * include/uapi/linux/input-event-codes.h and include/linux/input/mt.h:
 * the event types, the highest code of each type (what EVIOCGBIT and the
 * state bitmaps are sized by), and the multitouch axes.
 */
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
export const EV_MAX = 0x1f;
export const SYN_REPORT = 0;
export const SYN_MT_REPORT = 2;
export const SYN_DROPPED = 3;
export const SYN_MAX = 0x0f;
export const KEY_MAX = 0x2ff;
export const ABS_MAX = 0x3f;
export const INPUT_PROP_MAX = 0x1f;

/* Multitouch: ABS_MT_SLOT selects a slot, the axes from ABS_MT_FIRST to ABS_MT_LAST are per slot (input_is_mt_value()). */
export const ABS_MT_SLOT = 0x2f;
export const ABS_MT_FIRST = 0x30; // ABS_MT_TOUCH_MAJOR
export const ABS_MT_POSITION_X = 0x35;
export const ABS_MT_TRACKING_ID = 0x39;
export const ABS_MT_LAST = 0x3d; // ABS_MT_TOOL_Y
/** include/linux/input/mt.h TRKID_MAX: input_mt_init_slots() gives ABS_MT_TRACKING_ID the range 0..TRKID_MAX. */
export const TRKID_MAX = 0xffff;
/** drivers/input/misc/uinput.c uinput_validate_absinfo(): at most 100 slots. */
export const MT_SLOTS_MAX = 100;

export const isMtValue = (code: number): boolean => code >= ABS_MT_FIRST && code <= ABS_MT_LAST;

/** Highest code per event type, for EVIOCGBIT and the state bitmaps (type 0: the event types). */
export const MAX: Readonly<Record<number, number>> = {
  [EV_SYN]: EV_MAX,
  [EV_KEY]: KEY_MAX,
  [EV_REL]: 0x0f,
  [EV_ABS]: ABS_MAX,
  [EV_MSC]: 0x07,
  [EV_SW]: 0x10,
  [EV_LED]: 0x0f,
  [EV_SND]: 0x07,
  [EV_FF]: 0x7f,
};

/** Event type names, as evtest and evemu print them. */
export const TYPE_NAMES: Readonly<Record<number, string>> = {
  [EV_SYN]: 'EV_SYN',
  [EV_KEY]: 'EV_KEY',
  [EV_REL]: 'EV_REL',
  [EV_ABS]: 'EV_ABS',
  [EV_MSC]: 'EV_MSC',
  [EV_SW]: 'EV_SW',
  [EV_LED]: 'EV_LED',
  [EV_SND]: 'EV_SND',
  [EV_REP]: 'EV_REP',
  [EV_FF]: 'EV_FF',
  0x16: 'EV_PWR',
  0x17: 'EV_FF_STATUS',
};

export const typeName = (type: number): string => TYPE_NAMES[type] ?? `type 0x${type.toString(16)}`;

/** The capability option of each type the model emulates, also the sysfs capabilities/ file name. */
export const CAPS: ReadonlyArray<readonly [type: number, option: string, sysfs: string]> = [
  [EV_KEY, 'keys', 'key'],
  [EV_REL, 'rel', 'rel'],
  [EV_ABS, 'abs', 'abs'],
  [EV_MSC, 'msc', 'msc'],
  [EV_SW, 'sw', 'sw'],
  [EV_LED, 'led', 'led'],
  [EV_SND, 'snd', 'snd'],
];
