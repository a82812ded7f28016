/**
 * Which files the ledger takes for the program's (src/scenario/ledger.ts):
 * on a daemon others use, only a file whose open was not another client's;
 * a holder without a file number (a daemon that lists none) cannot be
 * placed and counts, so `released` waits for it instead of passing; and
 * the calls made through the program's files, which `read` and `written`
 * waits count there.
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

it("counts the program's calls through its files: a closed one's by its release, an open one's by its holder, none of another client's", () => {
  const l = new Ledger(true);
  const released = (file: number, reads: number): DeviceEvent => ({ type: 'released', device: 'd0', generation: 1, at: 0, file, pid: 1, reads, writes: 0 });
  const events = [opened(3), opened(4), opened(5), opened(6), released(3, 2)];
  l.record(events[0]!, false);
  l.record(events[1]!, true);
  l.record(events[2]!, false);
  l.record(events[3]!, false);
  l.record(events[4]!, false);
  const holder = (file: number, reads: number) => ({ file, pid: 1, comm: 'x', openedAt: 0, reads, writes: 0 });
  // File 4 is another client's; file 6 has closed but its release is not read yet.
  const devices = [{ name: 'd0', model: 'zero', generation: 1, state: 'live', holders: [holder(4, 50), holder(5, 1)], reads: 60, writes: 0, inFlight: [] }];
  expect(l.programsCalls(events, devices, 'd0', 'reads')).toBe(3);
  // A daemon whose holders carry no counts: only the device's count is known.
  const older = [{ ...devices[0]!, holders: [{ file: 5, pid: 1, comm: 'x', openedAt: 0 }] }] as unknown as typeof devices;
  expect(l.programsCalls(events, older, 'd0', 'reads')).toBeNull();
});
