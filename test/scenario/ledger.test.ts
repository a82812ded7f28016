/**
 * Which files the ledger takes for the program's (src/scenario/ledger.ts):
 * on a daemon others use, only a file whose open was not another client's;
 * a holder without a file number (a daemon that lists none) cannot be
 * placed and counts, so `released` waits for it instead of passing.
 */
import { expect, it } from 'vitest';
import type { DeviceEvent } from '../../src/core/events.js';
import { Ledger } from '../../src/scenario/ledger.js';

const opened = (file: number): DeviceEvent => ({ type: 'opened', device: 'd0', generation: 1, at: 0, file, pid: 1, comm: 'x', flags: 0 });

it("on a shared target, takes a file opened by another client for none of the program's, and a holder with no number for the program's", () => {
  const l = new Ledger(true);
  l.record(opened(3), false);
  l.record(opened(4), true);
  expect([3, 4, undefined].map((f) => l.programsFile('d0', 1, f))).toEqual([true, false, true]);
  expect(new Ledger(false).programsFile('d0', 1, 4)).toBe(true);
});
