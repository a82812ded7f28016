import { describe, expect, it } from 'vitest';
import { EventLog, type DeviceEvent } from '../../src/core/events.js';

const quiet = { warn: () => {}, error: () => {} };
const ev = (n: number): DeviceEvent => ({ type: 'action', device: 'd0', generation: 1, at: n, n });

describe('EventLog history', () => {
  it('keeps the last historySize events, oldest first, across many wraps of its ring', () => {
    const log = new EventLog(quiet, 3);
    expect(log.history()).toEqual([]);
    log.record(ev(1));
    log.record(ev(2));
    expect(log.history().map((e) => e.n)).toEqual([1, 2]);
    for (let n = 3; n <= 10; n++) {
      log.record(ev(n));
      expect(log.history().map((e) => e.n)).toEqual([n - 2, n - 1, n]);
    }
  });

  it('keeps nothing with historySize 0, and still streams every event in order', () => {
    const log = new EventLog(quiet, 0);
    const seen: unknown[] = [];
    log.on('event', (e) => seen.push(e.n));
    for (let n = 1; n <= 4; n++) log.record(ev(n));
    expect(log.history()).toEqual([]);
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it('a throwing subscriber is logged and the event is still kept', () => {
    const errors: string[] = [];
    const log = new EventLog({ warn: () => {}, error: (_o, msg) => errors.push(msg) }, 5);
    log.on('event', () => {
      throw new Error('boom');
    });
    log.record(ev(1));
    expect(errors).toEqual(['event listener threw']);
    expect(log.history().map((e) => e.n)).toEqual([1]);
  });
});
