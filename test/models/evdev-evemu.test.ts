/**
 * evemu interop of the evdev model, with Debian's evemu-tools and evtest:
 * a device recorded by evemu-record and played into a new device plugged
 * from that recording, which evtest and evemu-describe show as the first;
 * a touchpad plugged from a description written by hand; the play
 * action's pace, multitouch slots, refusals; EVIOCGRAB and EVIOCREVOKE,
 * which evemu-record needs, from a caller with page zero mapped.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLLERR, POLLHUP, POLLIN } from '../../src/devio.js';
import { EVIOCGMTSLOTS, EVIOCGRAB, EVIOCREVOKE, EVIOCSCLOCKID, EV_ABS, EV_KEY, EV_LED, EV_MSC, EV_REL, EV_SW } from '../../src/models/evdev.js';
import { runsAsRoot } from '../helpers/as-user.js';
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
  const TYPES: Record<number, string> = { [EV_KEY]: 'EV_KEY', [EV_REL]: 'EV_REL', [EV_ABS]: 'EV_ABS', [EV_MSC]: 'EV_MSC', [EV_SW]: 'EV_SW', [EV_LED]: 'EV_LED' };
  return packets.flatMap((p) => [
    ...p.map(([type, code, value]) => {
      const value_ = type === EV_MSC ? `value ${value.toString(16)}` : `value ${value}`;
      return `type ${type} (${TYPES[type]}), code ${code} (${names[`${type}:${code}`]}), ${value_}`;
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

  it.runIf(runsAsRoot)('evtest shows the new device as the recorded one, and evemu-describe of each gives the same text', async () => {
    const a = await plug(device);
    await inject(a.name, [[[EV_LED, LED_NUML, 1], [EV_SW, SW_LID, 1]]]); // a state the description carries (L:, S:)
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
