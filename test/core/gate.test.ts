/**
 * OpGate's bookkeeping of the handlers inside: the list unplug reads to
 * report stuck handlers, cancels and drains, and the references they hold.
 */
import { describe, expect, it } from 'vitest';
import { CallingThread } from '../../src/core/calling-thread.js';
import { OpGate, type InFlightOp } from '../../src/core/gate.js';
import { Kref } from '../../src/core/kref.js';
import { Errno } from '../../src/errno.js';

const caller = new CallingThread(1, { name: 'test' });

function gate(): { gate: OpGate; refs: Kref; released: () => boolean } {
  let released = false;
  const refs = new Kref(() => (released = true));
  return { gate: new OpGate(refs), refs, released: () => released };
}

const ops = (hs: readonly InFlightOp[]): string[] => hs.map((h) => h.op);

describe('OpGate', () => {
  it('lists the handlers inside oldest first, whichever order they leave in', () => {
    const { gate: g } = gate();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((op) => g.track(op, caller)) as [InFlightOp, InFlightOp, InFlightOp, InFlightOp];
    expect(ops(g.handlers)).toEqual(['a', 'b', 'c', 'd']);
    g.exit(b);
    expect(ops(g.handlers)).toEqual(['a', 'c', 'd']);
    g.exit(a);
    expect(ops(g.handlers)).toEqual(['c', 'd']);
    g.exit(d);
    expect(ops(g.handlers)).toEqual(['c']);
    const e = g.track('e', caller);
    expect(ops(g.handlers)).toEqual(['c', 'e']);
    g.exit(c);
    g.exit(e);
    expect(g.handlers).toEqual([]);
    expect([a, b, c, d, e].every((h) => h.exited)).toBe(true);
  });

  it('holds a reference per handler inside, dropped on exit', () => {
    const { gate: g, refs, released } = gate();
    const hs = [g.track('read', caller), g.track('release', caller)];
    refs.put(); // the plug's own reference
    expect(released()).toBe(false);
    for (const h of hs) g.exit(h);
    expect(released()).toBe(true);
  });

  it('drains at once when empty, else when the last handler leaves, and reports who stayed', async () => {
    const { gate: g } = gate();
    const never = new Promise<void>(() => {});
    expect(await g.drain(never)).toEqual([]);
    const slow = g.track('slow', caller);
    const stuck = g.track('stuck', caller);
    g.close();
    const gaveUp = await g.drain(Promise.resolve());
    expect(ops(gaveUp)).toEqual(['slow', 'stuck']);
    const drained = g.drain(never);
    g.exit(stuck);
    g.exit(slow);
    expect(await drained).toEqual([]);
  });

  it('cancel aborts the signal of every handler inside', () => {
    const { gate: g } = gate();
    const hs = [g.track('a', caller), g.track('b', caller), g.track('c', caller)];
    const signals = hs.map((h) => h.signal);
    g.exit(hs[1]!);
    g.cancel(new Errno('ENODEV'));
    expect(signals.map((s) => s.aborted)).toEqual([true, false, true]);
  });
});
