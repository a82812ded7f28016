import { getEventListeners } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { E, Errno } from '../../src/errno.js';
import { WaitQueue } from '../../src/core/index.js';
import { Kref } from '../../src/core/kref.js';
import { tick, watch } from './helpers.js';

describe('WaitQueue', () => {
  it('resolves a waiter only once its condition holds at a wake', async () => {
    const wq = new WaitQueue();
    let ready = false;
    const p = wq.wait(() => ready);
    const w = watch(p);
    wq.wake();
    await tick();
    expect(w.state).toBe('pending');
    ready = true;
    wq.wake();
    await expect(p).resolves.toBeUndefined();
  });

  it("rejects with the signal's Errno reason, else EINTR, and leaves no abort listener", async () => {
    const wq = new WaitQueue();
    const a = new AbortController();
    const p = wq.wait(() => false, a.signal);
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(1);
    a.abort(new Errno('ENODEV'));
    await expect(p).rejects.toMatchObject({ errno: E.ENODEV });
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(0);

    const b = new AbortController();
    const q = wq.wait(() => false, b.signal);
    b.abort();
    await expect(q).rejects.toMatchObject({ errno: E.EINTR });
  });

  it('removes the abort listener when the wait succeeds', async () => {
    const wq = new WaitQueue();
    const a = new AbortController();
    let ready = false;
    const p = wq.wait(() => ready, a.signal);
    ready = true;
    wq.wake();
    await p;
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(0);
  });

  it('calls a poll registration once, at the next wake, and honours cancel', () => {
    const wq = new WaitQueue();
    const notify = vi.fn();
    const cancelled = vi.fn();
    wq.pollWait(notify);
    wq.pollWait(cancelled)();
    wq.wake();
    wq.wake();
    expect(notify).toHaveBeenCalledTimes(1);
    expect(cancelled).not.toHaveBeenCalled();
  });

  it('kill fails current and future waits and notifies pollers', async () => {
    const wq = new WaitQueue();
    const notify = vi.fn();
    wq.pollWait(notify);
    const p = wq.wait(() => false);
    wq.kill(new Errno('EIO'));
    await expect(p).rejects.toMatchObject({ errno: E.EIO });
    await expect(wq.wait(() => true)).rejects.toMatchObject({ errno: E.EIO });
    expect(notify).toHaveBeenCalledTimes(1);
  });

  it('kill leaves the abort listener to the abort that follows, which finds the wait failed with the kill reason', async () => {
    const wq = new WaitQueue();
    const a = new AbortController();
    let checks = 0;
    const p = wq.wait(() => (checks++, false), a.signal);
    wq.kill(new Errno('EIO'));
    await expect(p).rejects.toMatchObject({ errno: E.EIO });
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(1);
    // The failed waiter has left the queue: a wake no longer checks its condition.
    const before = checks;
    wq.wake();
    expect(checks).toBe(before);
    // Unplug aborts the request's signal next (core/unplug.ts cancelWaiters).
    a.abort(new Errno('ENODEV'));
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(0);
    await expect(p).rejects.toMatchObject({ errno: E.EIO });
  });
});

describe('Kref', () => {
  it('runs release exactly once, on the last put, and refuses use after it', () => {
    const release = vi.fn();
    const ref = new Kref(release);
    ref.get();
    ref.put();
    expect(release).not.toHaveBeenCalled();
    ref.put();
    expect(release).toHaveBeenCalledTimes(1);
    expect(() => ref.get()).toThrow();
    expect(() => ref.put()).toThrow();
    expect(release).toHaveBeenCalledTimes(1);
  });
});
