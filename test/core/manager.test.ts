import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { E, Errno } from '../../src/errno.js';
import { O_NONBLOCK, O_RDWR, POLLERR, POLLIN } from '../../src/devio.js';
import { DeviceError, type DeviceEvent } from '../../src/core/index.js';
import { CallerMemory } from '../../src/usermem.js';
import { call, io, openNode, pipeModel, pipeOf, setup, tick } from './helpers.js';

const ioctlReq = { cmd: 0x1234, arg: 0n, in: Buffer.alloc(0), outSize: 0, compat: false, pid: process.pid, user: new CallerMemory(process.pid) };

describe('names and generations', () => {
  it("'%d' takes the lowest number not used by a live or unplugging instance", async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const plug = async () => (await mgr.plug({ model: 'pipe', name: 'uio%d' })).name;
    expect([await plug(), await plug(), await plug()]).toEqual(['uio0', 'uio1', 'uio2']);

    await mgr.unplug('uio1'); // nothing open: freed
    expect(await plug()).toBe('uio1');

    const f = await openNode(publisher, 'uio0');
    await mgr.unplug('uio0'); // a zombie waiting for its last close does not hold the name
    const again = await mgr.plug({ model: 'pipe', name: 'uio%d' });
    expect([again.name, again.generation]).toEqual(['uio0', 2]);

    publisher.unpublishDelayMs = 30;
    const unplugging = mgr.unplug('uio2'); // an unplugging one does
    expect(await plug()).toBe('uio3');
    await unplugging;
    await f.release();
  });

  it('refuses a live name, bad names and unknown models with typed errors', async () => {
    const { mgr } = setup();
    mgr.registerModel(pipeModel());
    await mgr.plug({ model: 'pipe', name: 'pipe0' });
    await expect(mgr.plug({ model: 'pipe', name: 'pipe0' })).rejects.toMatchObject({ kind: 'conflict' });
    await expect(mgr.plug({ model: 'pipe', name: 'a%db%d' })).rejects.toMatchObject({ kind: 'invalid' });
    await expect(mgr.plug({ model: 'pipe', name: 'a/b' })).rejects.toMatchObject({ kind: 'invalid' });
    await expect(mgr.plug({ model: 'nope', name: 'x' })).rejects.toMatchObject({ kind: 'unknown_model' });
    await expect(mgr.unplug('ghost')).rejects.toBeInstanceOf(DeviceError);
    expect(() => mgr.registerModel(pipeModel())).toThrow(DeviceError);
  });

  it('replug makes generation 2 while generation 1 waits for its last close', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const gen1 = await mgr.plug({ model: 'pipe', name: 'pipe0', options: { size: 4 } });
    const old = await openNode(publisher, 'pipe0');

    const gen2 = await mgr.replug('pipe0');
    expect([gen2.name, gen2.generation, gen2.lifecycle, gen2.options]).toEqual(['pipe0', 2, 'live', { size: 4 }]);
    expect(mgr.list().map((i) => [i.generation, i.lifecycle])).toEqual([
      [1, 'gone'],
      [2, 'live'],
    ]);
    expect(mgr.get('pipe0')).toBe(gen2);
    expect(publisher.nodes.get('pipe0')!.dev.generation).toBe(2);

    const fresh = await openNode(publisher, 'pipe0');
    await fresh.write!(Buffer.from('new'), io());
    expect((await fresh.read!(10, io())).toString()).toBe('new');
    await expect(call(() => old.read!(10, io()))).rejects.toMatchObject({ errno: E.EIO });

    await old.release();
    expect(gen1.lifecycle).toBe('freed');
    expect(mgr.list()).toEqual([gen2]);
    expect(gen2.counters.lateReleases).toBe(0);

    await mgr.unplug('pipe0');
    const gen3 = await mgr.replug('pipe0'); // works on a device already freed
    expect(gen3.generation).toBe(3);
    await fresh.release();
  });
});

describe('events', () => {
  it('emits each instance’s events in lifecycle order, into the stream and the history', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const seen: DeviceEvent[] = [];
    mgr.events.on('event', (e) => seen.push(e));

    await mgr.plug({ model: 'pipe', name: 'pipe0' });
    await mgr.plug({ model: 'pipe', name: 'other0' });
    const a = await openNode(publisher, 'pipe0');
    const other = await openNode(publisher, 'other0');
    expect(await mgr.action('pipe0', 'push', 'hi')).toBe('ok');
    await a.release();
    const b = await openNode(publisher, 'pipe0');
    await mgr.unplug('pipe0');
    await other.release();
    await b.release();

    const pipe0 = seen.filter((e) => e.device === 'pipe0');
    expect(pipe0.map((e) => e.type)).toEqual([
      'plugged',
      'opened',
      'action',
      'pushed',
      'released',
      'opened',
      'unplug_started',
      'drained',
      'removed',
      'late_released',
      'freed',
    ]);
    expect(seen.filter((e) => e.device === 'other0').map((e) => e.type)).toEqual(['plugged', 'opened', 'released']);
    for (const e of pipe0) expect(e).toMatchObject({ device: 'pipe0', generation: 1, at: expect.any(Number) });
    expect(pipe0[3]).toMatchObject({ bytes: 2 });
    expect(mgr.events.history()).toEqual(seen);
  });

  it('keeps a bounded history and refuses core event types from models', async () => {
    const { mgr } = setup();
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    for (let i = 0; i < 1100; i++) inst.emit('tick', { i });
    const history = mgr.events.history();
    expect(history).toHaveLength(1000);
    expect(history.at(-1)).toMatchObject({ type: 'tick', i: 1099 });
    expect(() => inst.emit('freed')).toThrow();
  });

  it("holds a model that declares its events to them: no other type, no other field (what cdevemu run checks filters against)", async () => {
    const { mgr } = setup();
    mgr.registerModel(pipeModel({ events: { pushed: ['bytes'] } }));
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    inst.emit('pushed', { bytes: 3 });
    expect(() => inst.emit('pushd', { bytes: 3 })).toThrow("model pipe emits 'pushd', which its events do not declare");
    expect(() => inst.emit('pushed', { bytes: 3, byte: 1 })).toThrow("model pipe: event 'pushed' carries 'byte', which its events do not declare");
    expect(mgr.events.history().filter((e) => e.type.startsWith('push'))).toMatchObject([{ type: 'pushed', bytes: 3 }]);
  });

  it('holds a model to the types its events declare (what cdevemu run checks comparisons against); null is no type', async () => {
    const { mgr } = setup();
    mgr.registerModel(pipeModel({ events: { pushed: { bytes: 'number', who: 'string', any: 'any' } } }));
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    inst.emit('pushed', { bytes: 3, who: 'cat', any: [1] });
    inst.emit('pushed', { bytes: null, any: 'x' });
    expect(() => inst.emit('pushed', { bytes: '3' })).toThrow("model pipe: event 'pushed' field 'bytes' is a string, declared number");
    expect(() => inst.emit('pushed', { who: { name: 'cat' } })).toThrow("model pipe: event 'pushed' field 'who' is a mapping, declared string");
    expect(() => inst.emit('pushed', { bytez: 3 })).toThrow("model pipe: event 'pushed' carries 'bytez', which its events do not declare");
    expect(mgr.events.history().filter((e) => e.type === 'pushed')).toHaveLength(2);
  });

  it('drops a model event emitted after remove() and warns', async () => {
    const { mgr, publisher, logger } = setup();
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = await openNode(publisher, 'pipe0');
    await mgr.unplug('pipe0');
    inst.emit('expired');
    expect(mgr.events.history().map((e) => e.type)).not.toContain('expired');
    expect(logger.warns).toHaveLength(1);
    await f.release();
  });
});

describe('counters and holders', () => {
  it('counts ops and bytes, per device and per file, and lists holders with their comm', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = await openNode(publisher, 'pipe0');
    await f.write!(Buffer.from('abcd'), io());
    await f.read!(3, io());
    await f.ioctl!(ioctlReq, io());
    await f.poll!(POLLIN, null, io());
    await expect(call(() => f.fsync!(io()))).rejects.toMatchObject({ errno: E.EINVAL });
    expect(inst.counters).toMatchObject({
      opens: 1,
      reads: 1,
      writes: 1,
      ioctls: 1,
      polls: 1,
      errors: 1,
      bytesRead: 3,
      bytesWritten: 4,
      inFlight: 0,
      stuck: 0,
    });
    const comm = readFileSync('/proc/self/comm', 'utf8').trimEnd();
    expect(inst.holders).toEqual([{ file: 1, pid: process.pid, comm, openedAt: expect.any(Number), reads: 1, writes: 1 }]);
    await f.release();
    expect(inst.holders).toEqual([]);
    expect(mgr.events.history().find((e) => e.type === 'released')).toMatchObject({ file: 1, reads: 1, writes: 1 });
  });

  it('whenReleased resolves once the last open file is closed, at once when none is open', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    await inst.whenReleased();
    const a = await openNode(publisher, 'pipe0');
    const b = await openNode(publisher, 'pipe0');
    let released = false;
    const waited = inst.whenReleased().then(() => (released = true));
    await a.release();
    await tick();
    expect(released).toBe(false);
    await b.release();
    await waited;
    expect(inst.holders).toEqual([]);
  });
});

describe('open and release', () => {
  it('answer synchronously when the model answers at once, and through a promise when it waits', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    mgr.registerModel(
      pipeModel({
        name: 'slowpipe',
        open: async (file) => {
          await tick();
          file.instance.state.calls.push('open');
        },
        release: async (file) => {
          await tick();
          file.instance.state.calls.push('release');
        },
      }),
    );
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = publisher.endpoint('pipe0').open(io());
    expect(f).not.toBeInstanceOf(Promise);
    expect(inst.counters).toMatchObject({ opens: 1, inFlight: 0 });
    expect((f as Awaited<typeof f>).release()).toBeUndefined();
    expect(inst.counters).toMatchObject({ releases: 1, inFlight: 0 });
    expect(inst.holders).toEqual([]);

    const slow = await mgr.plug({ model: 'slowpipe', name: 'pipe1' });
    const opening = publisher.endpoint('pipe1').open(io());
    expect(opening).toBeInstanceOf(Promise);
    const g = await opening;
    expect(pipeOf(slow).calls).toContain('open');
    const releasing = g.release();
    expect(releasing).toBeInstanceOf(Promise);
    // Recorded in the gate once it went asynchronous, so unplug drains it.
    expect(slow.counters).toMatchObject({ inFlight: 1 });
    expect(slow.inFlight.map((h) => h.op)).toEqual(['release']);
    await releasing;
    expect(pipeOf(slow).calls).toContain('release');
    expect(slow.counters).toMatchObject({ opens: 1, releases: 1, inFlight: 0 });
  });
});

describe('model errors', () => {
  it('answers EIO for a non-Errno exception, logs it, and keeps serving', async () => {
    const { mgr, publisher, logger } = setup();
    let mode: 'throw' | 'oversize' | 'ok' = 'throw';
    const base = pipeModel();
    mgr.registerModel(
      pipeModel({
        read(file, size, signal) {
          if (mode === 'throw') throw new TypeError('boom');
          if (mode === 'oversize') return Buffer.alloc(size + 1);
          return base.read!(file, size, signal);
        },
        write: async () => Promise.reject(new RangeError('async boom')),
        ioctl: () => ({ out: Buffer.alloc(8) }), // more than the caller accepts: a model bug
        poll() {
          throw new Error('poll boom');
        },
        actions: {
          crash() {
            throw new Error('action boom');
          },
        },
      }),
    );
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = await openNode(publisher, 'pipe0');

    await expect(call(() => f.read!(1, io()))).rejects.toMatchObject({ errno: E.EIO });
    mode = 'oversize';
    await expect(call(() => f.read!(1, io()))).rejects.toMatchObject({ errno: E.EIO });
    await expect(call(() => f.write!(Buffer.from('x'), io()))).rejects.toMatchObject({ errno: E.EIO });
    await expect(call(() => f.ioctl!(ioctlReq, io()))).rejects.toMatchObject({ errno: E.EIO });
    expect(await f.poll!(POLLIN, null, io())).toBe(POLLERR);
    await expect(mgr.action('pipe0', 'crash', null)).rejects.toMatchObject({ errno: E.EIO });
    expect(logger.errors.map((e) => [e.obj.op, (e.obj.err as Error).message])).toEqual([
      ['read', 'boom'],
      ['read', 'read returned 2 bytes for a 1-byte read'],
      ['write', 'async boom'],
      ['ioctl', 'ioctl 0x1234 returned 8 bytes, caller accepts 0'],
      ['poll', 'poll boom'],
      ['action:crash', 'action boom'],
    ]);
    expect(inst.counters.errors).toBe(6);

    // An Errno is an answer, not a bug: passed through, not logged.
    mode = 'ok';
    await expect(call(() => f.read!(1, io(O_RDWR | O_NONBLOCK)))).rejects.toMatchObject({ errno: E.EAGAIN });
    expect(logger.errors).toHaveLength(6);
    expect(inst.lifecycle).toBe('live');
    await f.release();
  });

  it('a failing create refuses the plug, publishes nothing and frees the name', async () => {
    const { mgr, publisher, logger } = setup();
    let fail: Error | null = new Errno('EINVAL', 'bad options');
    mgr.registerModel(
      pipeModel({
        create: () => {
          if (fail) throw fail;
          return { chunks: [], calls: [], removed: false, afterRemove: [] };
        },
      }),
    );
    await expect(mgr.plug({ model: 'pipe', name: 'pipe%d' })).rejects.toMatchObject({ kind: 'probe_failed' });
    expect(publisher.nodes.size).toBe(0);
    // An Errno is the model refusing its options: the plugger's error, not a log entry.
    expect(logger.errors).toEqual([]);
    // Anything else is a model bug, and logged.
    fail = new TypeError('oops');
    await expect(mgr.plug({ model: 'pipe', name: 'pipe%d' })).rejects.toMatchObject({ kind: 'probe_failed' });
    expect(logger.errors).toHaveLength(1);
    fail = null;
    expect((await mgr.plug({ model: 'pipe', name: 'pipe%d' })).name).toBe('pipe0');
  });

  it('a throwing remove or release is logged and the lifecycle completes', async () => {
    const { mgr, publisher, logger } = setup();
    mgr.registerModel(
      pipeModel({
        release: () => {
          throw new Error('release boom');
        },
        remove: () => Promise.reject(new Error('remove boom')),
      }),
    );
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    await (await openNode(publisher, 'pipe0')).release();
    await mgr.unplug('pipe0');
    await tick();
    expect(inst.lifecycle).toBe('freed');
    expect(logger.errors.map((e) => e.obj.op)).toEqual(['release', 'remove']);
    expect(pipeOf(inst).calls.at(-1)).toBe('free');
  });

  it('a second unplug joins the first; an action runs through the gate and is drained', async () => {
    const { mgr } = setup(60_000);
    let finish!: () => void;
    mgr.registerModel(
      pipeModel({
        actions: {
          slow: async () => {
            await new Promise<void>((r) => (finish = r));
            return 'done';
          },
        },
      }),
    );
    await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const acting = mgr.action('pipe0', 'slow', null);
    await tick();
    let drained = false;
    const both = Promise.all([mgr.unplug('pipe0'), mgr.unplug('pipe0')]).then((r) => ((drained = true), r));
    for (let i = 0; i < 5; i++) await tick();
    expect(drained).toBe(false); // the action holds the drain
    finish();
    const [r1, r2] = await both;
    expect(r1).toBe(r2);
    expect(r1.stuck).toEqual([]);
    await expect(acting).resolves.toBe('done');
  });

  it('a second unplug with a shorter drain timeout bounds the first: the handler is reported stuck then', async () => {
    // The first unplug's own bound is beyond any test timeout: only the second can end its drain.
    const { mgr } = setup(60_000);
    mgr.registerModel(pipeModel({ actions: { hang: () => new Promise<never>(() => {}) } }));
    await mgr.plug({ model: 'pipe', name: 'pipe0' });
    void mgr.action('pipe0', 'hang', null).catch(() => {});
    await tick();
    const first = mgr.unplug('pipe0');
    for (let i = 0; i < 5; i++) await tick();
    const second = mgr.unplug('pipe0', { drainTimeoutMs: 0 });
    const [r1, r2] = await Promise.all([first, second]);
    expect(r1).toBe(r2);
    expect(r1.stuck).toEqual([{ op: 'action:hang', pid: expect.any(Number), comm: expect.any(String), sinceMs: expect.any(Number) }]);
  });
});
