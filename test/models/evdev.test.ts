/**
 * evdev model on a real mount: evtest against dev/input/eventN (name, key
 * events injected through the API, "No such device" within a second of
 * unplug), the ioctls' kernel formats, whole-record reads, per-open queues,
 * input-core filtering, and every op after unplug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLLERR, POLLHUP, POLLIN, POLLOUT } from '../../src/devio.js';
import {
  EVIOCGABS,
  EVIOCGBIT,
  EVIOCGID,
  EVIOCGKEY,
  EVIOCGNAME,
  EVIOCGPHYS,
  EVIOCGPROP,
  EVIOCGUNIQ,
  EVIOCGVERSION,
  EVIOCSCLOCKID,
  EV_ABS,
  EV_KEY,
  EV_REL,
} from '../../src/models/evdev.js';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { Interactive, run } from '../helpers/proc.js';
import { Holder, readBlocked, le32, O_RDONLY, hex } from './holder.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

const KEY_A = 30;
const KEY_B = 48;
const BTN_LEFT = 0x110;
const REL_X = 0;
const ABS_X = 0;

const options = {
  name: 'cdevemu test pad',
  phys: 'cdevemu/input0',
  id: { bustype: 3, vendor: 0x1234, product: 0x5678, version: 0x111 },
  keys: [KEY_A, KEY_B, BTN_LEFT],
  rel: [REL_X],
  abs: { [ABS_X]: { min: -100, max: 100, fuzz: 2, flat: 4, resolution: 10, value: 5 } },
  props: [0],
};

const plug = async (o: Record<string, unknown> = options) => {
  const inst = await t.emu.devices.plug({ model: 'evdev', name: 'event%d', options: o });
  return { inst, name: inst.name, path: t.path(`dev/input/${inst.name}`) };
};

interface Ev {
  sec: bigint;
  type: number;
  code: number;
  value: number;
}
function events(hex: string): Ev[] {
  const b = Buffer.from(hex, 'hex');
  const out: Ev[] = [];
  for (let i = 0; i + 24 <= b.length; i += 24) {
    out.push({ sec: b.readBigInt64LE(i), type: b.readUInt16LE(i + 16), code: b.readUInt16LE(i + 18), value: b.readInt32LE(i + 20) });
  }
  return out;
}
const tcv = (evs: Ev[]): number[][] => evs.map((e) => [e.type, e.code, e.value]);
function record(type: number, code: number, value: number): string {
  const b = Buffer.alloc(24);
  b.writeUInt16LE(type, 16);
  b.writeUInt16LE(code, 18);
  b.writeInt32LE(value, 20);
  return b.toString('hex');
}

describe('evtest', () => {
  it('prints the device name and the key events injected through the API, and exits "No such device" within a second of unplug', async () => {
    const d = await plug();
    const p = new Interactive('stdbuf', ['-oL', 'evtest', d.path]);
    const header: string[] = [];
    for (;;) {
      const l = await p.line();
      header.push(l);
      if (l.startsWith('Testing ...')) break;
    }
    const text = header.join('\n');
    expect(text).toContain('Input device name: "cdevemu test pad"');
    expect(text).toContain('Input device ID: bus 0x3 vendor 0x1234 product 0x5678 version 0x111');
    expect(text).toContain('Event code 30 (KEY_A)');
    expect(text).toContain('Event code 272 (BTN_LEFT)');
    expect(text).toMatch(/Event code 0 \(ABS_X\)\n\s+Value\s+5\n\s+Min\s+-100\n\s+Max\s+100\n\s+Fuzz\s+2\n\s+Flat\s+4\n\s+Resolution\s+10/);
    expect(text).toContain('Event type 2 (EV_REL)');

    await t.emu.devices.action(d.name, 'key', { code: KEY_A });
    const seen: string[] = [];
    while (seen.filter((l) => l.includes('EV_KEY')).length < 2) seen.push(await p.line());
    expect(seen.filter((l) => l.includes('EV_KEY'))).toEqual([
      expect.stringMatching(/type 1 \(EV_KEY\), code 30 \(KEY_A\), value 1$/),
      expect.stringMatching(/type 1 \(EV_KEY\), code 30 \(KEY_A\), value 0$/),
    ]);
    expect(seen.some((l) => l.includes('-------------- SYN_REPORT ------------'))).toBe(true);

    await t.emu.devices.unplug(d.name);
    const exit = await p.exited;
    expect(exit.code).toBe(1);
    expect(p.stderr).toContain('evtest: error reading: No such device');
  });
});

describe('ioctls', () => {
  it('answers version, id, name/phys/uniq (str_to_user), bits, props, abs and key state like evdev.c', async () => {
    const d = await plug();
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op(`ioctl ${hex(EVIOCGVERSION)} 4`)).toBe(`ok 0 ${le32(0x010001)}`);
    expect(await h.op(`ioctl ${hex(EVIOCGID)} 8`)).toBe('ok 0 0300341278561101');
    const name = Buffer.from('cdevemu test pad\0');
    expect(await h.op(`ioctl ${hex(EVIOCGNAME(256))} 256`)).toBe(`ok ${name.length} ${name.toString('hex').padEnd(512, '0')}`);
    // Truncated to the buffer, without a NUL, and the result is the count copied.
    expect(await h.op(`ioctl ${hex(EVIOCGNAME(5))} 5`)).toBe(`ok 5 ${Buffer.from('cdeve').toString('hex')}`);
    expect(await h.op(`ioctl ${hex(EVIOCGPHYS(64))} 64`)).toMatch(/^ok 15 /);
    expect(await h.op(`ioctl ${hex(EVIOCGUNIQ(64))} 64`)).toBe('ENOENT');
    // EVIOCGBIT(0): EV_SYN, EV_KEY, EV_REL, EV_ABS; 4 bytes copied of a 4-byte buffer.
    expect(await h.op(`ioctl ${hex(EVIOCGBIT(0, 4))} 4`)).toBe(`ok 4 ${le32(0b1111)}`);
    // EVIOCGBIT(EV_KEY, big): BITS_TO_LONGS(KEY_MAX) longs = 96 bytes.
    const keys = await h.op(`ioctl ${hex(EVIOCGBIT(EV_KEY, 128))} 128`);
    const kb = Buffer.from(keys.split(' ')[2]!, 'hex');
    expect(keys.split(' ')[1]).toBe('96');
    expect([KEY_A, KEY_B, BTN_LEFT, 31].map((k) => (kb[k >> 3]! >> (k & 7)) & 1)).toEqual([1, 1, 1, 0]);
    expect(await h.op(`ioctl ${hex(EVIOCGBIT(EV_REL, 8))} 8`)).toBe('ok 8 0100000000000000');
    expect(await h.op(`ioctl ${hex(EVIOCGBIT(0x14, 8))} 8`)).toBe('EINVAL'); // EV_REP has no EVIOCGBIT
    expect(await h.op(`ioctl ${hex(EVIOCGPROP(8))} 8`)).toBe('ok 8 0100000000000000');
    expect(await h.op(`ioctl ${hex(EVIOCGABS(ABS_X))} 24`)).toBe(`ok 0 ${[5, -100, 100, 2, 4, 10].map(le32).join('')}`);
    // Key state follows the events.
    await t.emu.devices.action(d.name, 'key', { code: KEY_B, value: 1 });
    const st = Buffer.from((await h.op(`ioctl ${hex(EVIOCGKEY(96))} 96`)).split(' ')[2]!, 'hex');
    expect([(st[KEY_B >> 3]! >> (KEY_B & 7)) & 1, (st[KEY_A >> 3]! >> (KEY_A & 7)) & 1]).toEqual([1, 0]);
    // Unknown commands are EINVAL, as evdev_do_ioctl() answers.
    expect(await h.op(`ioctl ${hex(0x8004459f)} 4`)).toBe('EINVAL');
    expect(await h.op(`ioctl 0x5401 0`)).toBe('EINVAL');
    await h.close();
  });
});

describe('reads and writes', () => {
  it('reads whole records only, per open file, after the open; a short buffer is EINVAL; O_NONBLOCK gives EAGAIN', async () => {
    const d = await plug();
    await t.emu.devices.action(d.name, 'key', { code: KEY_A }); // before anyone opened: nobody gets it
    const a = await Holder.open(d.path, O_RDONLY);
    const b = await Holder.open(d.path, O_RDONLY);
    expect(await a.op(`poll ${POLLIN | POLLOUT} 0`)).toBe(`ok ${POLLOUT}`);
    await t.emu.devices.action(d.name, 'rel', { code: REL_X, value: -3 });
    await t.emu.devices.action(d.name, 'abs', { code: ABS_X, value: 42 });
    expect(await a.op(`poll ${POLLIN} 0`)).toBe(`ok ${POLLIN}`);
    expect(await a.op('read 23')).toBe('EINVAL');
    // 50 bytes hold two records: the read returns 48 and leaves the rest queued.
    const first = events((await a.op('read 50')).slice(3));
    expect(tcv(first)).toEqual([[EV_REL, REL_X, -3], [0, 0, 0]]);
    expect(first[0]!.sec).toBeGreaterThan(BigInt(Math.floor(Date.now() / 1000) - 60)); // CLOCK_REALTIME
    expect(tcv(events((await a.op('read 4800')).slice(3)))).toEqual([[EV_ABS, ABS_X, 42], [0, 0, 0]]);
    // b got the same events independently.
    expect(tcv(events((await b.op('read 4800')).slice(3)))).toEqual([[EV_REL, REL_X, -3], [0, 0, 0], [EV_ABS, ABS_X, 42], [0, 0, 0]]);
    expect(await b.op('nonblock')).toBe('ok');
    expect(await b.op('read 240')).toBe('EAGAIN');
    await a.close();
    await b.close();
  });

  it('a blocked read wakes on an injected packet; writes inject whole records through the input core filter', async () => {
    const d = await plug();
    const r = await Holder.open(d.path);
    const w = await Holder.open(d.path);
    r.send('read 2400');
    await readBlocked(d.inst);
    // A key already up (value 0) and an unsupported code are dropped; a packet without a SYN_REPORT is held.
    const batch = [record(EV_KEY, KEY_A, 0), record(EV_KEY, 99, 1), record(EV_KEY, KEY_A, 1)].join('');
    expect(await w.op(`write ${batch}ffff`)).toBe('ok 72');
    expect(await w.op(`write ${record(0, 0, 0)}`)).toBe('ok 24');
    expect(tcv(events((await r.line()).slice(3)))).toEqual([[EV_KEY, KEY_A, 1], [0, 0, 0]]);
    // The writer is a client too.
    expect(tcv(events((await w.op('read 2400')).slice(3)))).toEqual([[EV_KEY, KEY_A, 1], [0, 0, 0]]);
    expect(await w.op('write 0000')).toBe('EINVAL');
    await r.close();
    await w.close();
  });

  it('a packet longer than dev->vals holds goes on in pieces, each behind a SYN_REPORT of the core (input_event_dispose)', async () => {
    // Keys only: input_estimate_events_per_packet() = 0 slots + 1 + 7 = 8 events.
    const keys = Array.from({ length: 12 }, (_, i) => i + 1);
    const d = await plug({ keys });
    const h = await Holder.open(d.path);
    expect(await h.op('nonblock')).toBe('ok');
    const presses = keys.slice(0, 10).map((k) => record(EV_KEY, k, 1));
    expect(await h.op(`write ${[...presses, record(0, 0, 0)].join('')}`)).toBe('ok 264');
    const syn = [0, 0, 0];
    const down = (from: number, to: number): number[][] => keys.slice(from, to).map((k) => [EV_KEY, k, 1]);
    expect(tcv(events((await h.op('read 2400')).slice(3)))).toEqual([...down(0, 8), syn, ...down(8, 10), syn]);
    // Without any SYN_REPORT the first 8 still arrive; the 9th waits for one.
    expect(await h.op(`write ${keys.slice(0, 9).map((k) => record(EV_KEY, k, 0)).join('')}`)).toBe('ok 216');
    expect(tcv(events((await h.op('read 2400')).slice(3)))).toEqual([...keys.slice(0, 8).map((k) => [EV_KEY, k, 0]), syn]);
    expect(await h.op('read 2400')).toBe('EAGAIN');
    await h.close();
  });

  it('overflow keeps SYN_DROPPED and the newest event', async () => {
    const d = await plug({ keys: [KEY_A], bufferSize: 8 });
    const h = await Holder.open(d.path, O_RDONLY);
    for (let i = 0; i < 3; i++) await t.emu.devices.action(d.name, 'key', { code: KEY_A }); // 12 events
    // A ring of 8: the 8th event overflows it, leaving SYN_DROPPED and that event; 4 more follow.
    expect(tcv(events((await h.op('read 2400')).slice(3)))).toEqual([
      [0, 3, 0],
      [0, 0, 0],
      [EV_KEY, KEY_A, 1],
      [0, 0, 0],
      [EV_KEY, KEY_A, 0],
      [0, 0, 0],
    ]);
    await h.close();
  });

  it('EVIOCGKEY drops the queued key events whose state it reports (__evdev_flush_queue)', async () => {
    const d = await plug();
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op('nonblock')).toBe('ok');
    await t.emu.devices.action(d.name, 'key', { code: KEY_A, value: 1 });
    await t.emu.devices.action(d.name, 'rel', { code: REL_X, value: 5 });
    await t.emu.devices.action(d.name, 'key', { code: KEY_A, value: 0 });
    const st = Buffer.from((await h.op(`ioctl ${hex(EVIOCGKEY(96))} 96`)).split(' ')[2]!, 'hex');
    expect((st[KEY_A >> 3]! >> (KEY_A & 7)) & 1).toBe(0);
    // The key events went; the first SYN_REPORT stays, the one left closing nothing goes.
    expect(tcv(events((await h.op('read 2400')).slice(3)))).toEqual([
      [0, 0, 0],
      [EV_REL, REL_X, 5],
      [0, 0, 0],
    ]);
    await h.close();
  });

  it('a clock change leaves SYN_DROPPED unreadable until the next packet completes (evdev_set_clk_type, packet_head)', async () => {
    const d = await plug();
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op('nonblock')).toBe('ok');
    await t.emu.devices.action(d.name, 'key', { code: KEY_B, value: 1 });
    expect(await h.op(`ioctl ${hex(EVIOCSCLOCKID)} 4 ${le32(1)}`)).toMatch(/^ok 0 /); // CLOCK_MONOTONIC
    expect(await h.op(`poll ${POLLIN} 0`)).toBe('ok 0');
    expect(await h.op('read 2400')).toBe('EAGAIN');
    await t.emu.devices.action(d.name, 'key', { code: KEY_B, value: 0 });
    expect(await h.op(`poll ${POLLIN} 0`)).toBe(`ok ${POLLIN}`);
    expect(tcv(events((await h.op('read 2400')).slice(3)))).toEqual([
      [0, 3, 0],
      [EV_KEY, KEY_B, 0],
      [0, 0, 0],
    ]);
    await h.close();
  });

  it('actions refuse codes the device lacks and bad arguments', async () => {
    const d = await plug();
    await expect(t.emu.devices.action(d.name, 'key', { code: 2 })).rejects.toThrow(/no key code 2/);
    await expect(t.emu.devices.action(d.name, 'rel', { code: REL_X })).rejects.toThrow('evdev: action rel: argument value is required (an integer from -2147483648 to 2147483647)');
    await expect(t.emu.devices.plug({ model: 'evdev', name: 'event%d', options: { keys: [0x300] } })).rejects.toThrow(/keys\[0\]/);
    await expect(t.emu.devices.plug({ model: 'evdev', name: 'event%d', options: { abs: { 0: { min: 5, max: 1 } } } })).rejects.toThrow(/below min/);
  });

  it('publishes sysfs attributes under sys/class/input/eventN/device', async () => {
    const d = await plug();
    const dir = t.path(`sys/class/input/${d.name}/device`);
    const r = await run('sh', ['-c', `cd ${dir} && cat name phys id/vendor capabilities/ev capabilities/key capabilities/rel properties`]);
    expect(r.stdout).toBe('cdevemu test pad\ncdevemu/input0\n1234\nf\n10000 0 0 0 1000040000000\n1\n1\n');
  });
});

describe('multitouch slots', () => {
  const ABS_MT_SLOT = 0x2f;
  const ABS_MT_POSITION_X = 0x35;
  const ABS_MT_TRACKING_ID = 0x39;
  const BTN_TOUCH = 0x14a;
  /** Five slots with x and a tracking id, as input_mt_init_slots() sets them up. */
  const pad = {
    keys: [BTN_TOUCH],
    abs: { [ABS_MT_SLOT]: { min: 3, max: 4, flat: 1, value: 0 }, [ABS_MT_POSITION_X]: { max: 1000 }, [ABS_MT_TRACKING_ID]: { min: -5, max: 9, fuzz: 3 } },
  };
  const event = (name: string, type: number, code: number, value: number) => t.emu.devices.action(name, 'event', { type, code, value });

  it('filter each slot against its own values and announce a slot before its first event (input_handle_abs_event)', async () => {
    const d = await plug(pad);
    const h = await Holder.open(d.path, O_RDONLY);
    // input_mt_init_slots(): ABS_MT_SLOT 0..slots-1 and ABS_MT_TRACKING_ID 0..TRKID_MAX, whatever was asked.
    expect(await h.op(`ioctl ${hex(EVIOCGABS(ABS_MT_SLOT))} 24`)).toBe(`ok 0 ${[0, 0, 4, 0, 0, 0].map(le32).join('')}`);
    expect(await h.op(`ioctl ${hex(EVIOCGABS(ABS_MT_TRACKING_ID))} 24`)).toBe(`ok 0 ${[-5, 0, 65535, 0, 0, 0].map(le32).join('')}`);
    for (const [type, code, value] of [
      [EV_ABS, ABS_MT_POSITION_X, 500],
      [0, 0, 0],
      [EV_ABS, ABS_MT_SLOT, 2], // staged
      [EV_ABS, ABS_MT_POSITION_X, 500], // slot 2's own x: passes, after the slot
      [0, 0, 0],
      [EV_ABS, ABS_MT_SLOT, 2],
      [EV_ABS, ABS_MT_POSITION_X, 500], // unchanged in slot 2: dropped
      [EV_ABS, ABS_MT_SLOT, 0],
      [EV_ABS, ABS_MT_POSITION_X, 500], // unchanged in slot 0: dropped, and slot 0 not announced
      [EV_ABS, ABS_MT_SLOT, 5], // no such slot: ignored
      [EV_ABS, ABS_MT_TRACKING_ID, 7], // slot 0's: announced now
      [0, 0, 0],
    ] as const) {
      await event(d.name, type, code, value);
    }
    expect(tcv(events((await h.op('read 4800')).slice(3)))).toEqual([
      [EV_ABS, ABS_MT_POSITION_X, 500],
      [0, 0, 0],
      [EV_ABS, ABS_MT_SLOT, 2],
      [EV_ABS, ABS_MT_POSITION_X, 500],
      [0, 0, 0],
      [EV_ABS, ABS_MT_SLOT, 0],
      [EV_ABS, ABS_MT_TRACKING_ID, 7],
      [0, 0, 0],
    ]);
    await h.close();
  });

  it("hold 8 packets of the kernel's estimate of a packet (evdev_compute_buffer_size), slots counted", async () => {
    // input_estimate_events_per_packet(): 5 slots + 1, 5 for each of the 3 multitouch axes (ABS_MT_SLOT one of them),
    // 7 for keys and MSC: 28; 8 packets: 224, a queue of 256.
    const d = await plug({ ...pad, abs: { ...pad.abs, [ABS_MT_SLOT]: { max: 4 } } });
    const h = await Holder.open(d.path, O_RDONLY);
    expect(await h.op('nonblock')).toBe('ok');
    const drain = async (): Promise<number[][]> => {
      const all: number[][] = [];
      for (let r = await h.op('read 48000'); r !== 'EAGAIN'; r = await h.op('read 48000')) all.push(...tcv(events(r.slice(3))));
      return all;
    };
    for (let i = 0; i < 127; i++) await t.emu.devices.action(d.name, 'key', { code: BTN_TOUCH, value: i % 2 ? 0 : 1 }); // 254 events
    const held = await drain();
    expect(held).toHaveLength(254);
    expect(held.filter(([type, code]) => type === 0 && code === 3)).toEqual([]); // no SYN_DROPPED
    for (let i = 0; i < 129; i++) await t.emu.devices.action(d.name, 'key', { code: BTN_TOUCH, value: i % 2 ? 1 : 0 }); // 258 events: two too many
    // The 256th event overflows the queue: SYN_DROPPED and that event (the 128th packet's SYN_REPORT), then the last packet.
    expect(await drain()).toEqual([
      [0, 3, 0],
      [0, 0, 0],
      [EV_KEY, BTN_TOUCH, 0],
      [0, 0, 0],
    ]);
    await h.close();
  });
});

describe('after unplug', () => {
  it('poll answers POLLERR|POLLHUP, with POLLIN|POLLRDNORM for a client that still has a complete packet queued (evdev_poll()); its read is ENODEV all the same', async () => {
    const d = await plug();
    const queued = await Holder.open(d.path, O_RDONLY);
    const empty = await Holder.open(d.path, O_RDONLY);
    await t.emu.devices.action(d.name, 'key', { code: KEY_A });
    // The packet reached both clients; one reads it, the other keeps it queued.
    expect(await queued.op(`poll ${POLLIN} 10000`)).toBe(`ok ${POLLIN}`);
    expect(events((await empty.op('read 240')).split(' ')[1]!).length).toBeGreaterThan(0);
    expect(await empty.op(`poll ${POLLIN} 0`)).toBe('ok 0');
    await t.emu.devices.unplug(d.name);
    expect(await queued.op(`poll ${POLLIN} 0`)).toBe(`ok ${POLLIN | POLLERR | POLLHUP}`);
    expect(await empty.op(`poll ${POLLIN} 0`)).toBe(`ok ${POLLERR | POLLHUP}`);
    expect(await queued.op('read 240')).toBe('ENODEV');
    expect(await empty.op('read 240')).toBe('ENODEV');
    // The mask was fixed at unplug: asked again, it has not changed.
    expect(await queued.op(`poll ${POLLIN} 0`)).toBe(`ok ${POLLIN | POLLERR | POLLHUP}`);
    await queued.close();
    await empty.close();
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(d.inst.counters.lateReleases).toBe(2);
  });

  it('read, write and ioctl fail ENODEV, but a read or write shorter than a record EINVAL (the size is checked first), poll answers POLLERR|POLLHUP, close is a late release', async () => {
    const d = await plug();
    const h = await Holder.open(d.path);
    const blocked = await Holder.open(d.path);
    blocked.send('read 240');
    await readBlocked(d.inst);
    await t.emu.devices.unplug(d.name);
    expect(await blocked.line()).toBe('ENODEV');
    expect(await h.op('read 240')).toBe('ENODEV');
    expect(await h.op(`write ${record(EV_KEY, KEY_A, 1)}`)).toBe('ENODEV');
    // evdev_read() and evdev_write() refuse a count short of one input_event before they look at evdev->exist.
    expect(await h.op('read 16')).toBe('EINVAL');
    expect(await h.op(`write ${record(EV_KEY, KEY_A, 1).slice(0, 32)}`)).toBe('EINVAL');
    expect(await h.op(`ioctl ${hex(EVIOCGVERSION)} 4`)).toBe('ENODEV');
    expect(await h.op(`poll ${POLLIN | POLLOUT} 0`)).toBe(`ok ${POLLERR | POLLHUP}`);
    await h.close();
    await blocked.close();
    await t.waitEvent((e) => e.device === d.name && e.generation === d.inst.generation && e.type === 'freed');
    expect(d.inst.counters.lateReleases).toBe(2);
  });
});
