import { getEventListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { E, Errno } from '../../src/errno.js';
import { O_NONBLOCK, O_RDWR, POLLERR, POLLHUP, POLLIN, POLLOUT } from '../../src/devio.js';
import { CallerMemory } from '../../src/usermem.js';
import type { DeviceEvent, UnplugAnswers } from '../../src/core/index.js';
import { call, io, openNode, pipeModel, pipeOf, setup, sleep, tick, watch, type PipeState } from './helpers.js';


const ioctlReq = { cmd: 0x1234, arg: 0n, in: Buffer.alloc(0), outSize: 0, compat: false, pid: process.pid, user: new CallerMemory(process.pid) };

describe('unplug with files open', () => {
  it('fails I/O with EIO, fsync EINVAL as the VFS, answers poll with POLLERR|POLLHUP, then lateRelease once and free once', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const st = pipeOf(inst);
    const f = await openNode(publisher, 'pipe0');
    expect(await f.write!(Buffer.from('queued'), io())).toBe(6);

    const report = await mgr.unplug('pipe0');
    expect(report).toEqual({ device: 'pipe0', generation: 1, stuck: [], drainedInMs: expect.any(Number) });
    expect(inst.lifecycle).toBe('gone');
    expect(publisher.nodes.has('pipe0')).toBe(false);

    // Data is queued, so only the gate can make these fail.
    await expect(call(() => f.read!(10, io()))).rejects.toMatchObject({ errno: E.EIO });
    await expect(call(() => f.write!(Buffer.from('x'), io()))).rejects.toMatchObject({ errno: E.EIO });
    await expect(call(() => f.ioctl!(ioctlReq, io()))).rejects.toMatchObject({ errno: E.EIO });
    // vfs_fsync_range(): no ->fsync is EINVAL, before and after unplug.
    await expect(call(() => f.fsync!(io()))).rejects.toMatchObject({ errno: E.EINVAL });
    expect(await f.poll!(POLLIN, null, io())).toBe(POLLERR | POLLHUP);
    expect(st.calls).not.toContain('free');
    expect(mgr.list()).toEqual([inst]); // a zombie until its last close

    await f.release();
    await f.release();
    expect(st.calls.filter((c) => c === 'lateRelease')).toHaveLength(1);
    expect(st.calls.filter((c) => c === 'free')).toHaveLength(1);
    expect(st.calls).not.toContain('release');
    expect(inst.lifecycle).toBe('freed');
    expect(inst.counters).toMatchObject({ opens: 1, releases: 0, lateReleases: 1, inFlight: 0 });
    expect(mgr.list()).toEqual([]);
    expect(mgr.get('pipe0')).toBeUndefined();
  });

  it('frees at once when nothing is open, and release before unplug is a plain release', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = await openNode(publisher, 'pipe0');
    await f.release();
    await mgr.unplug('pipe0');
    expect(pipeOf(inst).calls).toEqual(['create', 'open', 'release', 'remove', 'free']);
    expect(inst.lifecycle).toBe('freed');
  });

  it('wakes a blocked read with EIO and a poller, which then sees the unplug mask', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = await openNode(publisher, 'pipe0');
    const wake = vi.fn();
    expect(await f.poll!(POLLIN, wake, io())).toBe(POLLOUT);
    const reading = f.read!(10, io());
    await tick();
    expect(inst.inFlight.map((h) => h.op)).toEqual(['read']);
    expect(wake).not.toHaveBeenCalled();

    // Expected before the unplug: the read fails while unplug is still running.
    const failed = expect(reading).rejects.toMatchObject({ errno: E.EIO });
    const report = await mgr.unplug('pipe0');
    await failed;
    expect(report.stuck).toEqual([]);
    expect(wake).toHaveBeenCalledTimes(1);
    expect(await f.poll!(POLLIN, wake, io())).toBe(POLLERR | POLLHUP);
    await f.release();
    expect(wake).toHaveBeenCalledTimes(1);
  });

  it("answers each op as the model's unplugged answers say, a blocked read included (uio: read EIO, write EINVAL)", async () => {
    const { mgr, publisher } = setup();
    const mask = POLLIN | POLLERR | POLLHUP;
    mgr.registerModel(pipeModel({ unplugged: { read: new Errno('ENODEV'), write: new Errno('EINVAL'), poll: mask } }));
    await mgr.plug({ model: 'pipe', name: 'ev0' });
    const f = await openNode(publisher, 'ev0');
    const reading = f.read!(10, io());
    const failed = expect(reading).rejects.toMatchObject({ errno: E.ENODEV });
    await mgr.unplug('ev0');
    await failed;
    await expect(call(() => f.read!(10, io()))).rejects.toMatchObject({ errno: E.ENODEV });
    await expect(call(() => f.write!(Buffer.from('x'), io()))).rejects.toMatchObject({ errno: E.EINVAL });
    await expect(call(() => f.ioctl!(ioctlReq, io()))).rejects.toMatchObject({ errno: E.EIO });
    expect(await f.poll!(POLLIN, null, io())).toBe(mask);
    await f.release();
  });

  it('answers an op the model lacks as the VFS does, after unplug too (no write: EINVAL; no ioctl: ENOTTY)', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel({ write: undefined, ioctl: undefined, unplugged: { write: new Errno('ENODEV'), ioctl: new Errno('ENODEV') } }));
    await mgr.plug({ model: 'pipe', name: 'p0' });
    const f = await openNode(publisher, 'p0');
    await mgr.unplug('p0');
    await expect(call(() => f.write!(Buffer.from('x'), io()))).rejects.toMatchObject({ errno: E.EINVAL });
    await expect(call(() => f.ioctl!(ioctlReq, io()))).rejects.toMatchObject({ errno: E.ENOTTY });
    await f.release();
  });

  it('fixes each file\'s poll answer when the gate closes, from a function of the file (evdev_poll() after disconnect)', async () => {
    const { mgr, publisher } = setup();
    const asked: number[] = [];
    mgr.registerModel(
      pipeModel({
        unplugged: {
          poll: (file) => {
            asked.push(file.id);
            return POLLERR | POLLHUP | (file.instance.state.chunks.length > 0 ? POLLIN : 0);
          },
        },
      }),
    );
    const inst = await mgr.plug({ model: 'pipe', name: 'p0' });
    const full = await openNode(publisher, 'p0');
    expect(await full.write!(Buffer.from('queued'), io())).toBe(6);
    const empty = await openNode(publisher, 'p0');
    const events: string[] = [];
    mgr.events.on('event', (e) => events.push(e.type));
    await mgr.unplug('p0');
    expect(asked).toEqual([1, 2]); // once per file, before remove()
    expect(events.indexOf('removed')).toBeGreaterThan(-1);
    expect(await full.poll!(POLLIN, null, io())).toBe(POLLIN | POLLERR | POLLHUP);
    // Frozen: the state the function looked at changes, the answer does not, and no model code runs.
    inst.state.chunks.length = 0;
    expect(await full.poll!(POLLIN, null, io())).toBe(POLLIN | POLLERR | POLLHUP);
    await full.release();
    await empty.release();
    expect(asked).toEqual([1, 2]);
  });

  /** A pipe p0 plugged with `ioctl` as its unplugged.ioctl, and the types of its events in order. */
  async function pipeWithUnplugIoctl(ioctl: UnplugAnswers<PipeState>['ioctl']) {
    const { mgr, publisher } = setup();
    const events: string[] = [];
    mgr.events.on('event', (e: DeviceEvent) => events.push(e.type));
    mgr.registerModel(pipeModel({ unplugged: { ioctl } }));
    const inst = await mgr.plug({ model: 'pipe', name: 'p0' });
    return { mgr, events, inst, f: await openNode(publisher, 'p0') };
  }

  it("answers ioctls after unplug with the ioctl UnplugAnswers.ioctl's function returns when the gate closes, after remove() too (i2cdev_ioctl() after i2c_del_adapter())", async () => {
    const keptWhile: string[] = [];
    const { mgr, events, inst, f } = await pipeWithUnplugIoctl((inst) => {
      keptWhile.push(inst.lifecycle);
      // What the character-device layer answers from, captured while model code may run.
      const queued = inst.state.chunks.length;
      return (file, req) => {
        if (req.cmd === 1) return { result: queued * 10 + file.id };
        if (req.cmd === 2) return Promise.resolve({ out: Buffer.alloc(4) }); // more than the caller's 0 bytes: a bug
        if (req.cmd === 3) throw new Error('a bug in the layer');
        throw new Errno('ENOTTY');
      };
    });
    expect(await f.write!(Buffer.from('queued'), io())).toBe(6);
    await mgr.unplug('p0');
    expect(keptWhile).toEqual(['unplugging']); // once, before remove()
    pipeOf(inst).chunks.length = 0;
    expect(await f.ioctl!({ ...ioctlReq, cmd: 1 }, io())).toEqual({ result: 11 });
    await expect(call(() => f.ioctl!({ ...ioctlReq, cmd: 9 }, io()))).rejects.toMatchObject({ errno: E.ENOTTY });
    await expect(call(() => f.ioctl!({ ...ioctlReq, cmd: 2 }, io()))).rejects.toMatchObject({ errno: E.EIO });
    await expect(call(() => f.ioctl!({ ...ioctlReq, cmd: 3 }, io()))).rejects.toMatchObject({ errno: E.EIO });
    expect(events.filter((t) => t === 'model_error')).toHaveLength(2);
    expect(keptWhile).toHaveLength(1);
    await f.release();
  });

  it('answers every ioctl EIO after unplug when the function of UnplugAnswers.ioctl throws, a model bug', async () => {
    const { mgr, events, f } = await pipeWithUnplugIoctl(() => {
      throw new Error('a bug at gate close');
    });
    await mgr.unplug('p0');
    await expect(call(() => f.ioctl!(ioctlReq, io()))).rejects.toMatchObject({ errno: E.EIO });
    expect(events.filter((t) => t === 'model_error')).toHaveLength(1);
    await f.release();
  });

  it('drain waits for a write in flight, which completes normally', async () => {
    const { mgr, publisher } = setup(60_000);
    let finish!: () => void;
    mgr.registerModel(
      pipeModel({
        async write(file, data) {
          await new Promise<void>((r) => (finish = r)); // ignores its signal
          file.instance.state.calls.push('write done');
          return data.length;
        },
      }),
    );
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = await openNode(publisher, 'pipe0');
    const writing = f.write!(Buffer.from('abc'), io());
    await tick();
    let unplugged = false;
    const unplugging = mgr.unplug('pipe0').then((r) => ((unplugged = true), r));
    for (let i = 0; i < 5; i++) await tick();
    // Held at the barrier by the write, however long that takes.
    expect(unplugged).toBe(false);
    expect(inst.lifecycle).toBe('unplugging');
    finish();
    const report = await unplugging;
    expect(report.stuck).toEqual([]);
    await expect(writing).resolves.toBe(3);
    const calls = pipeOf(inst).calls;
    expect(calls.indexOf('write done')).toBeLessThan(calls.indexOf('remove'));
    await f.release();
  });

  it('reports a handler ignoring its signal as stuck, answers its request EIO at once, frees after it returns', async () => {
    const { mgr, publisher } = setup();
    let finish!: () => void;
    mgr.registerModel(
      pipeModel({ write: (_file, data) => new Promise<number>((r) => (finish = () => r(data.length))) }),
    );
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const st = pipeOf(inst);
    const events: DeviceEvent[] = [];
    mgr.events.on('event', (e) => events.push(e));
    const f = await openNode(publisher, 'pipe0');
    const writing = f.write!(Buffer.from('abc'), io());
    const answer = watch(Promise.resolve(writing));

    const report = await mgr.unplug('pipe0', { drainTimeoutMs: 100 });
    expect(report.stuck).toEqual([{ op: 'write', pid: process.pid, comm: expect.any(String), sinceMs: expect.any(Number) }]);
    expect(report.stuck[0]!.sinceMs).toBeGreaterThanOrEqual(90);
    await tick(); // the handler is still running: the answer must not wait for it
    expect(answer.state).toBe('rejected');
    await expect(writing).rejects.toMatchObject({ errno: E.EIO });
    expect(inst.counters).toMatchObject({ inFlight: 1, stuck: 1 });
    expect(events.map((e) => e.type)).toEqual(['opened', 'unplug_started', 'stuck', 'drained', 'removed']);

    await f.release();
    expect(st.calls).toContain('lateRelease');
    expect(inst.lifecycle).toBe('gone'); // the stuck handler still holds a reference

    finish();
    await tick();
    expect(inst.lifecycle).toBe('freed');
    expect(st.calls.filter((c) => c === 'free')).toHaveLength(1);
    expect(inst.counters.bytesWritten).toBe(0); // the late result was ignored
    expect(events.at(-1)!.type).toBe('freed');
  });

  it("aborts a handler's signal on unplug: an AbortError becomes the unplug errno, not a logged bug", async () => {
    const { mgr, publisher, logger } = setup();
    mgr.registerModel(
      pipeModel({
        async ioctl(_file, _req, signal) {
          await delay(120_000, undefined, { signal }); // sleeps on its signal, not on the wait queue
          return {};
        },
      }),
    );
    await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = await openNode(publisher, 'pipe0');
    const calling = f.ioctl!(ioctlReq, io());
    await tick();
    // Not stuck: the abort, not the drain timeout (far beyond the test's own), ended it.
    const report = await mgr.unplug('pipe0', { drainTimeoutMs: 60_000 });
    expect(report.stuck).toEqual([]);
    await expect(calling).rejects.toMatchObject({ errno: E.EIO });
    expect(logger.errors).toEqual([]);
    await f.release();
  });

  it('fails blocked waits before it aborts signals, and still aborts the signal of a waiter that has finished', async () => {
    const { mgr, publisher } = setup();
    const order: string[] = [];
    mgr.registerModel(
      pipeModel({
        async read(file, _size, signal) {
          // A model's own use of the signal besides the wait, e.g. to cancel a timer it started.
          signal.addEventListener('abort', () => order.push('signal aborted'), { once: true });
          await file.instance.wq.wait(() => false, signal);
          return Buffer.alloc(0);
        },
      }),
    );
    await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = await openNode(publisher, 'pipe0');
    const reading = f.read!(10, io()).then(
      () => order.push('read answered'),
      (err: Errno) => order.push(`read failed ${err.code}`),
    );
    await tick();
    await mgr.unplug('pipe0');
    await reading;
    expect(order).toEqual(['read failed EIO', 'signal aborted']);
    await f.release();
  });

  it('a close during unplug gets lateRelease, after remove()', async () => {
    const { mgr, publisher } = setup();
    let finishWrite!: () => void;
    mgr.registerModel(pipeModel({ write: async (_file, data) => (await new Promise<void>((r) => (finishWrite = r)), data.length) }));
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const busy = await openNode(publisher, 'pipe0');
    const closing = await openNode(publisher, 'pipe0');
    const writing = busy.write!(Buffer.from('abc'), io());
    await tick();
    const unplugging = mgr.unplug('pipe0');
    await tick();
    // The held write keeps the unplug from finishing before the close below, however slow the machine.
    expect(inst.lifecycle).toBe('unplugging');
    const released = closing.release();
    finishWrite();
    await unplugging;
    await released;
    await writing;
    expect(pipeOf(inst).calls.slice(-2)).toEqual(['remove', 'lateRelease']);
    await busy.release();
  });

  it('runs no model code after remove() returns except lateRelease and free', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const st = pipeOf(inst);
    const { endpoint, attributes } = publisher.all[0]!;
    const show = attributes['sys/class/pipe/pipe0/queued'] as () => string;
    expect(show()).toBe('0');
    const f = await openNode(publisher, 'pipe0');
    await mgr.unplug('pipe0');
    expect(st.removed).toBe(true);

    await expect(call(() => f.read!(1, io()))).rejects.toThrow(Errno);
    await expect(call(() => f.write!(Buffer.from('x'), io()))).rejects.toThrow(Errno);
    await expect(call(() => f.ioctl!(ioctlReq, io()))).rejects.toThrow(Errno);
    await expect(call(() => f.fsync!(io()))).rejects.toThrow(Errno);
    await f.poll!(POLLIN, () => {}, io());
    await expect(call(() => endpoint.open(io()))).rejects.toMatchObject({ errno: E.ENODEV });
    await expect(mgr.action('pipe0', 'push', 'x')).rejects.toMatchObject({ kind: 'not_found' });
    expect(() => show()).toThrow(expect.objectContaining({ errno: E.ENODEV }));
    await f.release();
    expect(st.afterRemove).toEqual(['lateRelease', 'free']);
  });

  it('an interrupt fails a blocked read with EINTR and leaves the device usable', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const f = await openNode(publisher, 'pipe0');
    const ac = new AbortController();
    // Completed calls leave no listener on a long-lived transport signal.
    await f.write!(Buffer.from('x'), io(O_RDWR, ac));
    await f.read!(10, io(O_RDWR, ac));
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    const reading = f.read!(10, io(O_RDWR, ac));
    await tick();
    ac.abort();
    await expect(reading).rejects.toMatchObject({ errno: E.EINTR });
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    expect(inst.counters.inFlight).toBe(0);
    await f.write!(Buffer.from('ok'), io());
    expect((await f.read!(10, io())).toString()).toBe('ok');
    // O_NONBLOCK is taken from the call, not from open.
    await expect(call(() => f.read!(10, io(O_RDWR | O_NONBLOCK)))).rejects.toMatchObject({ errno: E.EAGAIN });
  });

  it('notifies a poller once when data arrives', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const reader = await openNode(publisher, 'pipe0');
    const writer = await openNode(publisher, 'pipe0');
    const first = vi.fn();
    const wake = vi.fn();
    await reader.poll!(POLLIN, first, io());
    await reader.poll!(POLLIN, wake, io()); // supersedes the first registration
    await writer.write!(Buffer.from('a'), io());
    await writer.write!(Buffer.from('b'), io());
    expect(first).not.toHaveBeenCalled();
    expect(wake).toHaveBeenCalledTimes(1);
    expect(await reader.poll!(POLLIN, null, io())).toBe(POLLIN | POLLOUT);
  });
});

describe("a read that sleeps on after unplug (unplugged read 'sleep', rtc_dev_read())", () => {
  const sleeper = () => pipeModel({ unplugged: { read: 'sleep' } });

  it('keeps a read blocked at unplug asleep, outside the gate, until its caller is interrupted (EINTR)', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(sleeper());
    const inst = await mgr.plug({ model: 'pipe', name: 'rtc0' });
    const events: DeviceEvent[] = [];
    mgr.events.on('event', (e) => events.push(e));
    const f = await openNode(publisher, 'rtc0');
    const transport = new AbortController();
    const reading = f.read!(4, io(O_RDWR, transport));
    const state = watch(reading);
    await tick();
    const report = await mgr.unplug('rtc0');
    // The model's handler ended (the drain found nothing stuck) and unplug completed; the read did not.
    expect(report.stuck).toEqual([]);
    expect(inst.lifecycle).toBe('gone');
    await tick();
    expect(state.state).toBe('pending');
    expect(inst.counters.inFlight).toBe(0);
    expect(inst.inFlight).toEqual([expect.objectContaining({ op: 'read', pid: process.pid, sleeping: true, stuck: false })]);
    expect(events.map((e) => e.type)).toContain('sleeping');
    // The interrupt, as the session's FUSE_INTERRUPT delivers it: the request's signal aborts with EINTR.
    transport.abort(new Errno('EINTR'));
    await expect(reading).rejects.toMatchObject({ errno: E.EINTR });
    expect(inst.inFlight).toEqual([]);
    expect(events.find((e) => e.type === 'sleep_ended')).toMatchObject({ op: 'read', errno: 'EINTR' });
    expect(pipeOf(inst).calls).not.toContain('free'); // the file is still open
    await f.release();
    expect(pipeOf(inst).calls.slice(-2)).toEqual(['lateRelease', 'free']);
    expect(pipeOf(inst).afterRemove).toEqual(['lateRelease', 'free']);
  });

  it('puts a read made after unplug to sleep, fails it EAGAIN with O_NONBLOCK, and ends a sleeper at the connection end (ENODEV)', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(sleeper());
    const inst = await mgr.plug({ model: 'pipe', name: 'rtc0' });
    const f = await openNode(publisher, 'rtc0');
    await mgr.unplug('rtc0');
    await expect(call(() => f.read!(4, io(O_RDWR | O_NONBLOCK)))).rejects.toMatchObject({ errno: E.EAGAIN });
    const transport = new AbortController();
    const reading = f.read!(4, io(O_RDWR, transport));
    const state = watch(reading);
    await tick();
    expect(state.state).toBe('pending');
    expect(inst.inFlight.map((c) => c.sleeping)).toEqual([true]);
    expect(pipeOf(inst).calls).not.toContain('read'); // no model code for it
    transport.abort(new Errno('ENODEV')); // what the session does to its requests when the connection ends
    await expect(reading).rejects.toMatchObject({ errno: E.ENODEV });
    await f.release();
    expect(inst.lifecycle).toBe('freed');
  });

  it('a release ends what still sleeps on its file, unanswered by anyone', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(sleeper());
    const inst = await mgr.plug({ model: 'pipe', name: 'rtc0' });
    const f = await openNode(publisher, 'rtc0');
    await mgr.unplug('rtc0');
    const reading = f.read!(4, io());
    const failed = expect(reading).rejects.toMatchObject({ errno: E.EBADF });
    await f.release();
    await failed;
    expect(inst.inFlight).toEqual([]);
    expect(inst.lifecycle).toBe('freed');
  });
});

describe('unplug step 1 (the kernel dropping the node)', () => {
  it('is bounded by the drain timeout: a kernel that never lets go of the entry does not stall the unplug', async () => {
    const { mgr, publisher, logger } = setup(50);
    mgr.registerModel(pipeModel());
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    publisher.unpublishHangs = true;
    const report = await mgr.unplug('pipe0');
    expect(report).toMatchObject({ device: 'pipe0', stuck: [] });
    expect(inst.lifecycle).toBe('freed');
    expect(logger.warns.map((w) => w.msg)).toContain('the kernel has not dropped the node within the drain timeout; unplugging anyway');
  });
});

describe('open racing unplug', () => {
  it('an open arriving after unplug began fails ENODEV', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel());
    await mgr.plug({ model: 'pipe', name: 'pipe0' });
    publisher.unpublishDelayMs = 50;
    const endpoint = publisher.endpoint('pipe0');
    const unplugging = mgr.unplug('pipe0');
    await expect(call(() => endpoint.open(io()))).rejects.toMatchObject({ errno: E.ENODEV });
    await unplugging;
  });

  it('an open whose model open is running when unplug begins succeeds, is drained, and late-released', async () => {
    const { mgr, publisher } = setup();
    let finish!: () => void;
    mgr.registerModel(
      pipeModel({
        async open(file) {
          await new Promise<void>((r) => (finish = r));
          file.instance.state.calls.push('open done');
        },
      }),
    );
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const opening = openNode(publisher, 'pipe0');
    await tick();
    const unplugging = mgr.unplug('pipe0');
    // The drain starts in the event-loop turn after unplug() (cancelWaiters'
    // setImmediate), so two turns in it is waiting for the open: it lasts at
    // least as long as the test then holds the open, however slow the machine.
    await tick();
    await tick();
    const waitingSince = performance.now();
    await sleep(100);
    finish();
    const heldMs = performance.now() - waitingSince;
    const f = await opening;
    const report = await unplugging;
    expect(report.drainedInMs).toBeGreaterThanOrEqual(Math.floor(heldMs));
    expect(report.stuck).toEqual([]);
    await expect(call(() => f.read!(1, io()))).rejects.toMatchObject({ errno: E.EIO });
    expect(inst.holders).toHaveLength(1);
    await f.release();
    expect(pipeOf(inst).calls).toEqual(['create', 'open done', 'remove', 'lateRelease', 'free']);
  });

  it('an open stuck past the drain timeout fails ENODEV; when it finishes the file is late-released and freed', async () => {
    const { mgr, publisher } = setup();
    let finish!: () => void;
    mgr.registerModel(pipeModel({ open: () => new Promise<void>((r) => (finish = r)) }));
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    const opening = openNode(publisher, 'pipe0');
    await tick();
    const report = await mgr.unplug('pipe0', { drainTimeoutMs: 50 });
    expect(report.stuck.map((s) => s.op)).toEqual(['open']);
    await expect(opening).rejects.toMatchObject({ errno: E.ENODEV });
    expect(inst.lifecycle).toBe('gone');
    finish();
    await tick();
    expect(pipeOf(inst).calls).toEqual(['create', 'remove', 'lateRelease', 'free']);
    expect(inst.lifecycle).toBe('freed');
  });

  it('a failing open drops its reference and is never released', async () => {
    const { mgr, publisher } = setup();
    mgr.registerModel(pipeModel({ open: () => Promise.reject(new Errno('EBUSY')) }));
    const inst = await mgr.plug({ model: 'pipe', name: 'pipe0' });
    await expect(openNode(publisher, 'pipe0')).rejects.toMatchObject({ errno: E.EBUSY });
    await mgr.unplug('pipe0');
    expect(pipeOf(inst).calls).toEqual(['create', 'remove', 'free']);
    expect(inst.lifecycle).toBe('freed');
  });
});
