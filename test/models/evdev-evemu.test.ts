/**
 * evemu interop of the evdev model, with Debian's evemu-tools and evtest:
 * a device recorded by evemu-record and played into a new device plugged
 * from that recording, which evtest and evemu-describe show as the first;
 * a touchpad plugged from a description written by hand; the play
 * action's pace, multitouch slots, refusals; EVIOCGRAB and EVIOCREVOKE,
 * which evemu-record needs, from a caller with page zero mapped.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLLERR, POLLHUP, POLLIN } from '../../src/devio.js';
import {
  EVIOCGMTSLOTS,
  EVIOCGRAB,
  EVIOCREVOKE,
  EVIOCSCLOCKID,
  EV_ABS,
  EV_KEY,
  EV_LED,
  EV_MSC,
  EV_REL,
  EV_SW,
} from '../../src/models/evdev.js';
import { typeName } from '../../src/models/evdev/codes.js';
import { itUnless, needsRoot } from '../helpers/as-user.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { testRoot } from '../helpers/mount.js';
import { Interactive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { Holder, O_RDONLY, hex, le32 } from './holder.js';

let t: TestEmulator;
let dir: string;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
  dir = await mkdtemp(join(testRoot(), 'evemu-'));
});
afterAll(async () => {
  await t.emu.stop({ releaseTimeoutMs: 0 });
  await rm(dir, { recursive: true, force: true });
});

const SYN = 0;
const KEY_A = 30;
const KEY_B = 48;
const BTN_LEFT = 0x110;
const BTN_TOOL_FINGER = 0x145;
const BTN_TOUCH = 0x14a;
const BTN_TOOL_DOUBLETAP = 0x14d;
const REL_X = 0;
const REL_Y = 1;
const ABS_X = 0;
const ABS_Y = 1;
const ABS_MT_SLOT = 0x2f;
const ABS_MT_POSITION_X = 0x35;
const ABS_MT_POSITION_Y = 0x36;
const ABS_MT_TRACKING_ID = 0x39;
const MSC_SCAN = 4;
const LED_NUML = 0;
const LED_CAPSL = 1;
const SW_LID = 0;
const CLOCK_MONOTONIC = 1;

const plug = async (options: Record<string, unknown>) => {
  const inst = await t.emu.devices.plug({ model: 'evdev', name: 'event%d', options });
  return { inst, name: inst.name, path: t.path(`dev/input/${inst.name}`) };
};

type Triple = [type: number, code: number, value: number];

/** Injects packets through the event action, each followed by SYN_REPORT. */
async function inject(name: string, packets: Triple[][]): Promise<void> {
  for (const packet of packets) {
    for (const [type, code, value] of [...packet, [SYN, 0, 0] as Triple]) await t.emu.devices.action(name, 'event', { type, code, value });
  }
}

/** evtest on a node: its listing up to "Testing ...", then its event lines with the time left out. */
class Evtest {
  readonly proc: Interactive;
  readonly events: string[] = [];
  listing = '';

  private constructor(path: string) {
    this.proc = new Interactive('stdbuf', ['-oL', 'evtest', path]);
  }

  static async start(path: string): Promise<Evtest> {
    const e = new Evtest(path);
    const header: string[] = [];
    for (let l = await e.proc.line(); ; l = await e.proc.line()) {
      header.push(l);
      if (l.startsWith('Testing ...')) break;
    }
    e.listing = header.join('\n');
    void e.collect();
    return e;
  }

  private async collect(): Promise<void> {
    for (;;) {
      const l = await this.proc.line(600_000).catch(() => null);
      if (l === null) return;
      const m = /^Event: time \d+\.\d{6}, (.*)$/.exec(l);
      if (m) this.events.push(m[1]!);
    }
  }

  async waitFor(count: number): Promise<string[]> {
    await until(() => this.events.length >= count, 10_000, `${count} evtest event lines (have ${this.events.length})`);
    return this.events;
  }

  stop(): void {
    this.proc.kill();
  }
}

/** The lines evtest prints for packets of events (each packet ends with its SYN_REPORT line). */
function evtestLines(packets: Triple[][], names: Record<string, string>): string[] {
  return packets.flatMap((p) => [
    ...p.map(([type, code, value]) => {
      const value_ = type === EV_MSC ? `value ${value.toString(16)}` : `value ${value}`; // evtest prints scan codes in hex
      return `type ${type} (${typeName(type)}), code ${code} (${names[`${type}:${code}`]}), ${value_}`;
    }),
    '-------------- SYN_REPORT ------------',
  ]);
}

/** evemu-describe's output for a node. */
async function describeNode(path: string): Promise<string> {
  const r = await run('evemu-describe', [path]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

/** Reads `file` until `done` holds for its text (a writer in another process), within 10 s. */
async function fileWhen(file: string, done: (text: string) => boolean, what: string): Promise<string> {
  const end = Date.now() + 10_000;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (done(text)) return text;
    if (Date.now() > end) throw new Error(`${what} not in ${file} within 10 s; it has:\n${text}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const eLines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('E: '));

/**
 * evemu-record on a node into `out`, under setarch -Z: evemu-record tries
 * EVIOCGRAB first and gives up when it fails, and on a FUSE node the
 * kernel copies that integer argument as a pointer (address 1), which only
 * a process with page zero mapped has. Resolves once the description is
 * written: the node is open, so every later packet is recorded. stop()
 * waits for `events` E: lines, ends it with SIGINT and answers the file.
 */
async function startRecording(path: string, out: string): Promise<{ stop(events: number): Promise<string> }> {
  const description = await describeNode(path);
  const proc = new Interactive('setarch', ['-Z', 'evemu-record', path, out]);
  await fileWhen(out, (text) => text.startsWith(description), `evemu-record's description (stderr: ${proc.stderr})`);
  return {
    async stop(events) {
      await fileWhen(out, (text) => eLines(text).length >= events, `${events} E: lines`);
      proc.kill('SIGINT');
      expect((await proc.exited).code).toBe(0);
      return readFile(out, 'utf8');
    },
  };
}

/** Names evtest prints, by "type:code". */
const NAMES: Record<string, string> = {
  [`${EV_KEY}:${KEY_A}`]: 'KEY_A',
  [`${EV_KEY}:${KEY_B}`]: 'KEY_B',
  [`${EV_KEY}:${BTN_LEFT}`]: 'BTN_LEFT',
  [`${EV_KEY}:${BTN_TOOL_FINGER}`]: 'BTN_TOOL_FINGER',
  [`${EV_KEY}:${BTN_TOUCH}`]: 'BTN_TOUCH',
  [`${EV_KEY}:${BTN_TOOL_DOUBLETAP}`]: 'BTN_TOOL_DOUBLETAP',
  [`${EV_REL}:${REL_X}`]: 'REL_X',
  [`${EV_REL}:${REL_Y}`]: 'REL_Y',
  [`${EV_ABS}:${ABS_X}`]: 'ABS_X',
  [`${EV_ABS}:${ABS_Y}`]: 'ABS_Y',
  [`${EV_ABS}:${ABS_MT_SLOT}`]: 'ABS_MT_SLOT',
  [`${EV_ABS}:${ABS_MT_POSITION_X}`]: 'ABS_MT_POSITION_X',
  [`${EV_ABS}:${ABS_MT_POSITION_Y}`]: 'ABS_MT_POSITION_Y',
  [`${EV_ABS}:${ABS_MT_TRACKING_ID}`]: 'ABS_MT_TRACKING_ID',
  [`${EV_MSC}:${MSC_SCAN}`]: 'MSC_SCAN',
  [`${EV_LED}:${LED_CAPSL}`]: 'LED_CAPSL',
  [`${EV_SW}:${SW_LID}`]: 'SW_LID',
};

describe('evemu-record, then play into a device plugged from the recording', () => {
  /** A pad with keys, buttons, relative and multitouch axes, a scan code, LEDs, a switch and properties. */
  const device = {
    name: 'cdevemu round trip pad',
    id: { bustype: 3, vendor: 0x046d, product: 0x4011, version: 0x111 },
    keys: [KEY_A, KEY_B, BTN_LEFT, BTN_TOOL_FINGER, BTN_TOUCH, BTN_TOOL_DOUBLETAP],
    rel: [REL_X, REL_Y],
    abs: {
      [ABS_X]: { max: 1000, fuzz: 4, resolution: 10 },
      [ABS_Y]: { max: 800, flat: 2, resolution: 10 },
      [ABS_MT_SLOT]: { max: 1 },
      [ABS_MT_POSITION_X]: { max: 1000, resolution: 10 },
      [ABS_MT_POSITION_Y]: { max: 800, resolution: 10 },
      [ABS_MT_TRACKING_ID]: { max: 65535 },
    },
    msc: [MSC_SCAN],
    led: [LED_NUML, LED_CAPSL],
    sw: [SW_LID],
    props: [0, 2], // INPUT_PROP_POINTER, INPUT_PROP_BUTTONPAD
  };
  /** Packets the input core passes as they are: what evtest must show, from both devices. */
  const packets: Triple[][] = [
    [[EV_KEY, KEY_A, 1]],
    [[EV_KEY, KEY_A, 0]],
    [
      [EV_REL, REL_X, 5],
      [EV_REL, REL_Y, -3],
    ],
    [
      [EV_ABS, ABS_MT_TRACKING_ID, 10],
      [EV_ABS, ABS_MT_POSITION_X, 100],
      [EV_ABS, ABS_MT_POSITION_Y, 200],
      [EV_KEY, BTN_TOUCH, 1],
      [EV_KEY, BTN_TOOL_FINGER, 1],
      [EV_ABS, ABS_X, 100],
      [EV_ABS, ABS_Y, 200],
    ],
    // Slot 1 at slot 0's x: its own value, so it passes.
    [
      [EV_ABS, ABS_MT_SLOT, 1],
      [EV_ABS, ABS_MT_TRACKING_ID, 11],
      [EV_ABS, ABS_MT_POSITION_X, 100],
      [EV_ABS, ABS_MT_POSITION_Y, 400],
      [EV_KEY, BTN_TOOL_FINGER, 0],
      [EV_KEY, BTN_TOOL_DOUBLETAP, 1],
    ],
    [
      [EV_ABS, ABS_MT_SLOT, 0],
      [EV_ABS, ABS_MT_POSITION_X, 110],
      [EV_ABS, ABS_MT_SLOT, 1],
      [EV_ABS, ABS_MT_POSITION_X, 310],
      [EV_ABS, ABS_X, 110],
    ],
    [
      [EV_ABS, ABS_MT_SLOT, 0],
      [EV_ABS, ABS_MT_TRACKING_ID, -1],
      [EV_ABS, ABS_MT_SLOT, 1],
      [EV_ABS, ABS_MT_TRACKING_ID, -1],
      [EV_KEY, BTN_TOUCH, 0],
      [EV_KEY, BTN_TOOL_DOUBLETAP, 0],
    ],
    [
      [EV_MSC, MSC_SCAN, 0x70005],
      [EV_KEY, KEY_B, 1],
    ],
    [
      [EV_MSC, MSC_SCAN, 0x70005],
      [EV_KEY, KEY_B, 0],
    ],
    [[EV_LED, LED_CAPSL, 1]],
    [[EV_SW, SW_LID, 0]],
    [[EV_KEY, BTN_LEFT, 1]],
    [[EV_KEY, BTN_LEFT, 0]],
  ];
  const eventCount = packets.reduce((n, p) => n + p.length + 1, 0);
  /** An E: line without its time and the time since the last packet in its comment. */
  const untimed = (l: string): string => l.replace(/^E: \d+\.\d{6} /, 'E: ').replace(/ [+-]\d+ms$/, '');

  itUnless(needsRoot('evemu-record runs under setarch -Z: mapping page zero takes CAP_SYS_RAWIO'))('evtest shows the new device as the recorded one, and evemu-describe of each gives the same text', async () => {
    const a = await plug(device);
    await inject(a.name, [
      [
        [EV_LED, LED_NUML, 1],
        [EV_SW, SW_LID, 1],
      ],
    ]); // a state the description carries (L:, S:)
    const evtestA = await Evtest.start(a.path);
    const file = join(dir, 'round-trip.evemu');
    const recordingA = await startRecording(a.path, file);
    await inject(a.name, packets);
    const lines = evtestLines(packets, NAMES);
    expect(await evtestA.waitFor(lines.length)).toEqual(lines);
    const recorded = await recordingA.stop(eventCount);
    expect(eLines(recorded)).toHaveLength(eventCount);
    const header = recorded.slice(0, recorded.indexOf('################################\n'));
    expect(header).toContain('L: 00 1\nS: 00 1\n');

    // A device plugged from the file is described as the recorded one was, byte for byte.
    const b = await plug({ evemu: file });
    expect(await describeNode(b.path)).toBe(header);
    const evtestB = await Evtest.start(b.path);
    expect(evtestB.listing).toBe(evtestA.listing);

    const recordingB = await startRecording(b.path, join(dir, 'replayed.evemu'));
    expect(await t.emu.devices.action(b.name, 'play', { evemu: file })).toMatchObject({ events: eventCount, accepted: eventCount });
    expect(await evtestB.waitFor(lines.length)).toEqual(evtestA.events);
    // The replay, recorded, is the recording, timestamps aside: same events, same SYN_REPORT framing.
    expect(eLines(await recordingB.stop(eventCount)).map(untimed)).toEqual(eLines(recorded).map(untimed));
    // Both end in the same state: axes' values, LEDs and switches.
    expect(await describeNode(b.path)).toBe(await describeNode(a.path));
    evtestA.stop();
    evtestB.stop();
  });
});

describe('a touchpad from a description written by hand', () => {
  /**
   * A Synaptics clickpad as psmouse presents it, in evemu's format: keys
   * BTN_LEFT (byte 34 bit 0), BTN_TOOL_FINGER (byte 40 bit 5),
   * BTN_TOOL_QUINTTAP, BTN_TOUCH, BTN_TOOL_DOUBLETAP, _TRIPLETAP, _QUADTAP
   * (byte 41 bits 0, 2, 5, 6, 7); axes X, Y (byte 0), PRESSURE, TOOL_WIDTH
   * (byte 3 bits 0 and 4), MT_SLOT (byte 5 bit 7), MT_POSITION_X/_Y (byte 6
   * bits 5, 6), MT_TRACKING_ID and MT_PRESSURE (byte 7 bits 1, 2); five
   * slots; INPUT_PROP_POINTER and INPUT_PROP_BUTTONPAD.
   */
  const touchpad = `# EVEMU 1.3
# Synaptics clickpad, psmouse, five slots
N: SynPS/2 Synaptics TouchPad
I: 0011 0002 0007 01b1
P: 05 00 00 00 00 00 00 00
B: 00 0b 00 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 01 00 00 01 00 00 00 00 00
B: 01 20 e5 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 01 00 00 00 00 00 00 00 00
B: 02 00 00 00 00 00 00 00 00
B: 03 03 00 00 11 00 80 60 06
B: 04 00 00 00 00 00 00 00 00
B: 05 00 00 00 00 00 00 00 00
B: 11 00 00 00 00 00 00 00 00
B: 12 00 00 00 00 00 00 00 00
B: 14 00 00 00 00 00 00 00 00
B: 15 00 00 00 00 00 00 00 00
B: 15 00 00 00 00 00 00 00 00
A: 00 1266 5676 0 0 50
A: 01 1096 4758 0 0 66
A: 18 0 255 0 0 0
A: 1c 0 15 0 0 0
A: 2f 0 4 0 0 0
A: 35 1266 5676 0 0 50
A: 36 1096 4758 0 0 66
A: 39 0 65535 0 0 0
A: 3a 0 255 0 0 0
`;
  const axis = (code: number, name: string, min: number, max: number, res = 0): string =>
    [
      `    Event code ${code} (${name})`,
      '      Value      0',
      `      Min ${String(min).padStart(8)}`,
      `      Max ${String(max).padStart(8)}`,
      ...(res ? [`      Resolution ${String(res).padStart(7)}`] : []),
    ].join('\n');
  /** What evtest lists for it: every code of the bitmaps, each axis's A: line (values 0), the two properties. */
  const listing = [
    'Input driver version is 1.0.1',
    'Input device ID: bus 0x11 vendor 0x2 product 0x7 version 0x1b1',
    'Input device name: "SynPS/2 Synaptics TouchPad"',
    'Supported events:',
    '  Event type 0 (EV_SYN)',
    '  Event type 1 (EV_KEY)',
    '    Event code 272 (BTN_LEFT)',
    '    Event code 325 (BTN_TOOL_FINGER)',
    '    Event code 328 (BTN_TOOL_QUINTTAP)',
    '    Event code 330 (BTN_TOUCH)',
    '    Event code 333 (BTN_TOOL_DOUBLETAP)',
    '    Event code 334 (BTN_TOOL_TRIPLETAP)',
    '    Event code 335 (BTN_TOOL_QUADTAP)',
    '  Event type 3 (EV_ABS)',
    axis(0, 'ABS_X', 1266, 5676, 50),
    axis(1, 'ABS_Y', 1096, 4758, 66),
    axis(24, 'ABS_PRESSURE', 0, 255),
    axis(28, 'ABS_TOOL_WIDTH', 0, 15),
    axis(47, 'ABS_MT_SLOT', 0, 4),
    axis(53, 'ABS_MT_POSITION_X', 1266, 5676, 50),
    axis(54, 'ABS_MT_POSITION_Y', 1096, 4758, 66),
    axis(57, 'ABS_MT_TRACKING_ID', 0, 65535),
    axis(58, 'ABS_MT_PRESSURE', 0, 255),
    'Properties:',
    '  Property type 0 (INPUT_PROP_POINTER)',
    '  Property type 2 (INPUT_PROP_BUTTONPAD)',
    'Testing ... (interrupt to exit)',
  ].join('\n');
  /** Two fingers down, one moved, both lifted; the slot selections as a driver may send them. */
  const twoFingers = `# EVEMU 1.3
E: 0.000001 0003 0039 0100
E: 0.000001 0003 0035 2000
E: 0.000001 0003 0036 3000
E: 0.000001 0001 014a 0001
E: 0.000001 0001 0145 0001
E: 0.000001 0003 0000 2000
E: 0.000001 0003 0001 3000
E: 0.000001 0000 0000 0000
E: 0.010001 0003 002f 0001
E: 0.010001 0003 0039 0101
E: 0.010001 0003 0035 2000
E: 0.010001 0003 0036 3500
E: 0.010001 0001 0145 0000
E: 0.010001 0001 014d 0001
E: 0.010001 0000 0000 0000
E: 0.020001 0003 002f 0000
E: 0.020001 0003 002f 0001
E: 0.020001 0003 0036 3600
E: 0.020001 0003 0035 2000
E: 0.020001 0000 0000 0000
E: 0.030001 0003 002f 0000
E: 0.030001 0003 0039 -001
E: 0.030001 0003 002f 0001
E: 0.030001 0003 0039 -001
E: 0.030001 0001 014a 0000
E: 0.030001 0001 014d 0000
E: 0.030001 0000 0000 0000
`;

  it('evtest lists it, evemu-describe gives its lines back, and a two-finger recording plays through its slots as input_handle_abs_event() passes it', async () => {
    const d = await plug({ evemu: touchpad });
    const described = await describeNode(d.path);
    const data = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(data(described)).toEqual(data(touchpad));
    expect(described).toContain('# Size in mm: 88x55\n'); // (5676 - 1266) / 50 by (4758 - 1096) / 66
    const evtest = await Evtest.start(d.path);
    expect(evtest.listing).toBe(listing);

    // Slot 1 is announced before its first event; a staged slot that is the
    // last announced is not; slot 1's x equal to slot 0's passes, and slot 1's
    // unchanged x is dropped.
    expect(await t.emu.devices.action(d.name, 'play', { evemu: twoFingers, speed: 10 })).toEqual({
      events: 27,
      accepted: 26,
      durationMs: 30,
    });
    const expected = evtestLines(
      [
        [
          [EV_ABS, ABS_MT_TRACKING_ID, 100],
          [EV_ABS, ABS_MT_POSITION_X, 2000],
          [EV_ABS, ABS_MT_POSITION_Y, 3000],
          [EV_KEY, BTN_TOUCH, 1],
          [EV_KEY, BTN_TOOL_FINGER, 1],
          [EV_ABS, ABS_X, 2000],
          [EV_ABS, ABS_Y, 3000],
        ],
        [
          [EV_ABS, ABS_MT_SLOT, 1],
          [EV_ABS, ABS_MT_TRACKING_ID, 101],
          [EV_ABS, ABS_MT_POSITION_X, 2000],
          [EV_ABS, ABS_MT_POSITION_Y, 3500],
          [EV_KEY, BTN_TOOL_FINGER, 0],
          [EV_KEY, BTN_TOOL_DOUBLETAP, 1],
        ],
        [[EV_ABS, ABS_MT_POSITION_Y, 3600]],
        [
          [EV_ABS, ABS_MT_SLOT, 0],
          [EV_ABS, ABS_MT_TRACKING_ID, -1],
          [EV_ABS, ABS_MT_SLOT, 1],
          [EV_ABS, ABS_MT_TRACKING_ID, -1],
          [EV_KEY, BTN_TOUCH, 0],
          [EV_KEY, BTN_TOOL_DOUBLETAP, 0],
        ],
      ],
      NAMES,
    );
    expect(await evtest.waitFor(expected.length)).toEqual(expected);
    evtest.stop();

    // EVIOCGMTSLOTS: the axis code in, each slot's value after it, as far as the buffer holds.
    const h = await Holder.open(d.path, O_RDONLY);
    const ask = (code: number, len: number): Promise<string> =>
      h.op(`ioctl ${hex(EVIOCGMTSLOTS(len))} ${len} ${le32(code)}${'00'.repeat(len - 4)}`);
    expect(await ask(ABS_MT_POSITION_Y, 24)).toBe(`ok 0 ${[ABS_MT_POSITION_Y, 3000, 3600, 0, 0, 0].map(le32).join('')}`);
    expect(await ask(ABS_MT_TRACKING_ID, 12)).toBe(`ok 0 ${[ABS_MT_TRACKING_ID, -1, -1].map(le32).join('')}`);
    expect(await ask(ABS_X, 24)).toBe('EINVAL');
    await h.close();
  });
});

/** Events read from a holder until `count`, with their CLOCK_MONOTONIC time in us. */
async function readEvents(h: Holder, count: number): Promise<Array<{ us: bigint; type: number; code: number; value: number }>> {
  const out: Array<{ us: bigint; type: number; code: number; value: number }> = [];
  while (out.length < count) {
    const b = Buffer.from((await h.op('read 2400')).slice(3), 'hex');
    for (let i = 0; i + 24 <= b.length; i += 24) {
      out.push({
        us: b.readBigInt64LE(i) * 1_000_000n + b.readBigInt64LE(i + 8),
        type: b.readUInt16LE(i + 16),
        code: b.readUInt16LE(i + 18),
        value: b.readInt32LE(i + 20),
      });
    }
  }
  return out;
}

const recording = (packets: Array<[time: string, events: Triple[]]>): string =>
  packets
    .flatMap(([time, events]) =>
      [...events, [SYN, 0, 0] as Triple].map(
        ([type, code, value]) => `E: ${time} ${type.toString(16).padStart(4, '0')} ${code.toString(16).padStart(4, '0')} ${value}`,
      ),
    )
    .join('\n') + '\n';

describe('the play action', () => {
  it("keeps the recording's pace, `speed` times faster, each packet with one timestamp", async () => {
    const d = await plug({ name: 'pace', keys: [KEY_A, KEY_B] });
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op(`ioctl ${hex(EVIOCSCLOCKID)} 4 ${le32(CLOCK_MONOTONIC)}`)).toMatch(/^ok 0/);
    const both = (v: number): Triple[] => [
      [EV_KEY, KEY_A, v],
      [EV_KEY, KEY_B, v],
    ];
    // At the recorded pace: 300 ms apart.
    const slow = recording([
      ['0.000001', both(1)],
      ['0.300001', both(0)],
      ['0.600001', both(1)],
    ]);
    expect(await t.emu.devices.action(d.name, 'play', { evemu: slow })).toEqual({ events: 9, accepted: 9, durationMs: 600 });
    const evs = await readEvents(h, 9);
    expect(evs.map((e) => [e.type, e.code, e.value])).toEqual([...both(1), [SYN, 0, 0], ...both(0), [SYN, 0, 0], ...both(1), [SYN, 0, 0]]);
    const at = [0, 3, 6].map((i) => evs[i]!.us);
    for (const i of [0, 3, 6]) expect(new Set(evs.slice(i, i + 3).map((e) => e.us)).size).toBe(1); // one packet, one time
    // Each packet no earlier than its time after the first (1 ms for rounding between the clocks).
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(299_000n);
    expect(at[2]! - at[0]!).toBeGreaterThanOrEqual(599_000n);

    // A hundred times faster: 10 s apart in the recording, 100 ms when
    // played; the whole 20 s recording plays in less than its recorded
    // length. Only a 20 s stall could break that on a working play, and a
    // play that ignored speed would still end, and fail it, within the
    // test's timeout.
    const fast = recording([
      ['10.000000', both(0)],
      ['20.000000', both(1)],
      ['30.000000', both(0)],
    ]);
    expect(await t.emu.devices.action(d.name, 'play', { evemu: fast, speed: 100 })).toEqual({ events: 9, accepted: 9, durationMs: 20_000 });
    const fastEvs = await readEvents(h, 9);
    const fastAt = [0, 3, 6].map((i) => fastEvs[i]!.us);
    expect(fastAt[1]! - fastAt[0]!).toBeGreaterThanOrEqual(99_000n);
    expect(fastAt[2]! - fastAt[0]!).toBeGreaterThanOrEqual(199_000n);
    expect(fastAt[2]! - fastAt[0]!).toBeLessThan(20_000_000n);
    await h.close();
  });

  it('ends with ENODEV when the device is unplugged during a wait, and leaves nothing for unplug to wait for', async () => {
    const d = await plug({ name: 'unplugged mid-play', keys: [KEY_A] });
    const h = await Holder.open(d.path, O_RDONLY);
    const long = recording([
      ['0.000001', [[EV_KEY, KEY_A, 1]]],
      ['60.000001', [[EV_KEY, KEY_A, 0]]],
    ]);
    const playing = t.emu.devices.action(d.name, 'play', { evemu: long });
    playing.catch(() => {});
    expect((await readEvents(h, 2)).map((e) => [e.type, e.code, e.value])).toEqual([
      [EV_KEY, KEY_A, 1],
      [SYN, 0, 0],
    ]);
    await t.emu.devices.unplug(d.name);
    await expect(playing).rejects.toMatchObject({ code: 'ENODEV' });
    expect(t.eventTypes(d.name, d.inst.generation)).not.toContain('stuck');
    await h.close();
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
  });

  it('refuses, before playing anything, a recording without events, with an event the device lacks, or with a bad line; and a bad speed', async () => {
    const d = await plug({ name: 'refusals', keys: [KEY_A] });
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op('nonblock')).toBe('ok');
    const play = (arg: Record<string, unknown>): Promise<unknown> => t.emu.devices.action(d.name, 'play', arg);
    await expect(play({ evemu: '# EVEMU 1.3\nN: no events\nI: 0003 0001 0001 0001\n' })).rejects.toThrow(/the recording has no events/);
    await expect(play({ evemu: 'E: 0.000001 0001 001e 0001\nE: 0.000001 0000 0000 0000\nE: 0.000002 0001 0030 0001\n' })).rejects.toThrow(
      /line 3: event\d+ has no EV_KEY code 0x30/,
    );
    await expect(play({ evemu: 'E: 0.000001 0001 001e 0001\nE: 0.5 0000 0000 0000\n' })).rejects.toThrow(
      /evemu line 2: E: needs SEC\.USEC \(6 digits/,
    );
    await expect(play({ evemu: 'E: 1.000000 0001 001e 0001\nE: 0.000001 0000 0000 0000\n' })).rejects.toThrow(/line 2: the time goes back/);
    await expect(play({ evemu: 'E: 0.000001 0001 001e 0001\nE: 0.000001 0000 0000 0000\n', speed: 0 })).rejects.toThrow(
      'evdev: action play: argument speed must be a number from 0.001 to 1000000, got 0',
    );
    await expect(play({ evemu: 'relative/path.evemu' })).rejects.toThrow(/neither evemu text .* nor an absolute path/);
    await expect(play({ evemu: join(dir, 'missing.evemu') })).rejects.toThrow(/cannot read .*missing\.evemu \(ENOENT\)/);
    // Nothing was played.
    expect(await h.op('read 240')).toBe('EAGAIN');
    await h.close();
  });
});

describe('descriptions refused', () => {
  const head = '# EVEMU 1.3\nN: bad\nI: 0003 0001 0002 0003\n';
  const B = (type: number, ...bytes: number[]): string =>
    `B: ${[type, ...bytes, ...Array(8 - bytes.length).fill(0)].map((b: number) => b.toString(16).padStart(2, '0')).join(' ')}\n`;
  const cases: Array<[what: string, text: string, message: RegExp]> = [
    [
      'a short bitmap line',
      `${head}B: 01 00 00 00 40 00 00\n`,
      /option evemu line 4: B: needs the event type and 8 bytes, each 2 hex digits: "B: 01 00 00 00 40 00 00"/,
    ],
    ['a code past the type', `${head}${B(2, 0, 0, 1)}`, /line 4: EV_REL code 0x10 is past the type's highest code 0xf/],
    ['an axis without its A: line', `${head}${B(3, 3)}A: 00 0 10 0 0 0\n`, /line 4: axis 0x01 is in the bitmap but has no A: line/],
    [
      'an A: line for an axis not in the bitmap',
      `${head}${B(3, 1)}A: 00 0 10 0 0 0\nA: 01 0 10 0 0 0\n`,
      /line 6: axis 0x01 is not in the B: 03 \(EV_ABS\) bitmap/,
    ],
    [
      'an A: line without resolution in format 1.3',
      `${head}${B(3, 1)}A: 00 0 10 0 0\n`,
      /line 5: A: needs the axis \(hex\) and 5 integers: min max fuzz flat resolution \(format 1\.3\)/,
    ],
    ['an axis whose max is below its min', `${head}${B(3, 1)}A: 00 10 0 0 0 0\n`, /line 5: max 0 is below min 10/],
    [
      'more than 100 slots',
      `${head}${B(3, 0, 0, 0, 0, 0, 0x80)}A: 2f 0 100 0 0 0\n`,
      /line 5: ABS_MT_SLOT max 100 gives more than 100 slots/,
    ],
    ['force feedback', `${head}${B(0x15, 1)}`, /line 4: force feedback \(EV_FF\) is not emulated/],
    ['autorepeat', `${head}${B(0x14, 3)}`, /line 4: autorepeat \(EV_REP\) is not emulated/],
    ['an LED not in the bitmap', `${head}${B(0x11, 1)}L: 01 1\n`, /line 5: EV_LED code 0x01 is not in the B: 11 bitmap/],
    [
      'a P: line after the bitmaps',
      `${head}${B(1)}P: 00 00 00 00 00 00 00 00\n`,
      /line 5: P: after B: \(the order is N:, I:, then P:, B:, A:, L:, S: lines\)/,
    ],
    [
      'no I: line',
      '# EVEMU 1.3\nN: bad\nB: 01 00 00 00 00 00 00 00 00\n',
      /line 3: the I: line \(bustype vendor product version\) must follow the N: line: "B: 01/,
    ],
    ['a newer format', `# EVEMU 1.4\nN: bad\n`, /line 1: file format 1\.4 is not one this reader knows \(1\.0 to 1\.3\)/],
    ['a line evemu does not have', `${head}X: 1\n`, /line 4: not an evemu line/],
    ['an event where the description starts', 'N: bad\nE: 0.000001 0001 001e 0001\n', /line 2: an event where the I: line/],
    ['events only', 'E: 0.000001 0001 001e 0001\n', /option evemu has events but no description/],
  ];
  it.each(cases)('%s, with the line and what is wrong', async (_what, text, message) => {
    const err = await t.emu.devices.plug({ model: 'evdev', name: 'event%d', options: { evemu: text } }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(message);
    expect(err?.message.split('\n')).toHaveLength(1);
  });

  it('with the options it stands for; the emulator plugs a good one after', async () => {
    await expect(
      t.emu.devices.plug({ model: 'evdev', name: 'event%d', options: { evemu: `${head}${B(1, 0, 0, 0, 0x40)}`, name: 'x' } }),
    ).rejects.toThrow(/option evemu describes the device; name cannot be given with it/);
    const d = await plug({ evemu: `${head}${B(1, 0, 0, 0, 0x40)}`, phys: 'usb-0000:00:14.0-1/input0' });
    const r = await run('cat', [
      t.path(`sys/class/input/${d.name}/device/name`),
      t.path(`sys/class/input/${d.name}/device/phys`),
      t.path(`sys/class/input/${d.name}/device/capabilities/key`),
    ]);
    expect(r.stdout).toBe('bad\nusb-0000:00:14.0-1/input0\n40000000\n');
  });
});

describe('EVIOCGRAB and EVIOCREVOKE', () => {
  it('fail EFAULT from an ordinary caller: the kernel copies their integer argument as a pointer', async () => {
    const d = await plug({ name: 'grab', keys: [KEY_A] });
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op(`ioctl ${hex(EVIOCGRAB)} 0 1`)).toBe('EFAULT');
    expect(await h.op(`ioctl ${hex(EVIOCREVOKE)} 0 0`)).toBe('EFAULT');
    await h.close();
  });

  itUnless(needsRoot('mapping page zero (setarch -Z) below vm.mmap_min_addr takes CAP_SYS_RAWIO'))(
    'from a caller with page zero mapped (setarch -Z): one grabber gets the events, a revoked client gets ENODEV',
    async () => {
      const d = await plug({ name: 'grab', keys: [KEY_A] });
      const zero = ['setarch', '-Z'];
      const a = await Holder.open(d.path, O_RDONLY, zero);
      const b = await Holder.open(d.path, O_RDONLY, zero);
      expect(await b.op('nonblock')).toBe('ok');
      expect(await a.op(`ioctl ${hex(EVIOCGRAB)} 0 1`)).toBe('ok 0 -');
      expect(await b.op(`ioctl ${hex(EVIOCGRAB)} 0 1`)).toBe('EBUSY');
      expect(await b.op(`ioctl ${hex(EVIOCGRAB)} 0 0`)).toBe('EINVAL'); // only the grabber ungrabs
      await t.emu.devices.action(d.name, 'key', { code: KEY_A });
      expect((await readEvents(a, 4)).map((e) => [e.type, e.code, e.value])).toEqual([
        [EV_KEY, KEY_A, 1],
        [SYN, 0, 0],
        [EV_KEY, KEY_A, 0],
        [SYN, 0, 0],
      ]);
      expect(await b.op('read 240')).toBe('EAGAIN');
      await a.close(); // evdev_release() ungrabs
      expect(await b.op(`ioctl ${hex(EVIOCGRAB)} 0 1`)).toBe('ok 0 -');
      expect(await b.op(`ioctl ${hex(EVIOCGRAB)} 0 0`)).toBe('ok 0 -');

      expect(await b.op(`ioctl ${hex(EVIOCREVOKE)} 0 1`)).toBe('EINVAL');
      expect(await b.op(`ioctl ${hex(EVIOCREVOKE)} 0 0`)).toBe('ok 0 -');
      await t.emu.devices.action(d.name, 'key', { code: KEY_A });
      expect(await b.op('read 240')).toBe('ENODEV');
      expect(await b.op(`poll ${POLLIN} 0`)).toBe(`ok ${POLLERR | POLLHUP}`);
      expect(await b.op(`ioctl ${hex(EVIOCGRAB)} 0 1`)).toBe('ENODEV');
      await b.close();
    },
  );
});
