/**
 * src/sys/procstat.ts: /proc/PID/stat lines, whose comm may hold spaces
 * and parentheses, read from the last ")"; and this process's own line.
 */
import { describe, expect, it } from 'vitest';
import { parseStat, readStat } from '../../src/sys/procstat.js';

const rest = (state: string, ppid: number, start: number): string =>
  [state, ppid, ...Array.from({ length: 17 }, (_, i) => i), start, ...Array.from({ length: 30 }, () => 0)].join(' ');

describe('parseStat', () => {
  it('reads comm, state, ppid, process group, session and starttime around a comm with spaces and parentheses', () => {
    expect(parseStat(`4242 (spin) T (x) ${rest('R', 17, 99123)}\n`)).toEqual({ comm: 'spin) T (x', state: 'R', ppid: 17, pgrp: 0, session: 1, start: 99123 });
    expect(parseStat(`1 (init) ${rest('S', 0, 5)}`)).toEqual({ comm: 'init', state: 'S', ppid: 0, pgrp: 0, session: 1, start: 5 });
  });

  it('refuses what is not a stat line', () => {
    expect(parseStat('')).toBeNull();
    expect(parseStat('12 no parentheses S 1')).toBeNull();
    expect(parseStat('12 (short) S 1 2')).toBeNull();
  });

  it("reads this process's own stat file, and null for a task that is not there", () => {
    expect(readStat(`/proc/${process.pid}/stat`)).toMatchObject({ state: expect.stringMatching(/^[RS]$/), ppid: process.ppid });
    expect(readStat('/proc/0/stat')).toBeNull();
  });
});
