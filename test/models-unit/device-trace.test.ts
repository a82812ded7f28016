/**
 * The device trace parser (src/models/record/device-trace.ts): a trace the
 * record model writes reads back as it was; anything the replay could not
 * play faithfully is refused with its line and the reason.
 */
import { describe, expect, it } from 'vitest';
import { DeviceTraceError, parseDeviceTrace, traceLine, type TraceEntry, type TraceHeader } from '../../src/models/record/device-trace.js';

const header: TraceHeader = {
  format: 'cdevemu-device-trace',
  version: 1,
  device: '/dev/ttyUSB0',
  rdev: '188:0',
  name: 'ttyUSB0',
  started: '2026-01-01T00:00:00.000Z',
  sysfs: { 'sys/class/tty/ttyUSB0/dev': '188:0\n' },
};
const entries: TraceEntry[] = [
  { t: 1, op: 'open', file: 1, flags: 2 },
  { t: 2, op: 'ioctl', file: 1, cmd: 0x5401, result: 0, out: '00ff' },
  { t: 2.5, op: 'ioctl', file: 1, cmd: 0x540b, arg: '2', result: 0 },
  { t: 3, op: 'write', file: 1, data: '6869', result: 2 },
  { t: 4, op: 'poll', file: 1, result: 5 },
  { t: 5, op: 'read', file: 1, size: 64, data: '4f4b' },
  { t: 6, op: 'read', file: 1, size: 64, errno: 'EINTR' },
  { t: 7, op: 'release', file: 1 },
  { t: 8, op: 'unplug', errno: 'ENODEV' },
];
const good = (): string[] => [header, ...entries].map((l) => traceLine(l).trimEnd());
const text = (lines: string[]): string => lines.join('\n') + '\n';

/** The error parsing `lines` gives. */
function refusal(lines: string[]): DeviceTraceError {
  try {
    parseDeviceTrace(text(lines), 'x.jsonl');
  } catch (err) {
    expect(err).toBeInstanceOf(DeviceTraceError);
    return err as DeviceTraceError;
  }
  throw new Error('the trace was taken');
}

/** good() with line `n` (1-based) changed. */
function withLine(n: number, change: (o: Record<string, unknown>) => unknown): string[] {
  const lines = good();
  lines[n - 1] = JSON.stringify(change(JSON.parse(lines[n - 1]!) as Record<string, unknown>));
  return lines;
}

describe('device trace format', () => {
  it('reads back what traceLine wrote', () => {
    expect(parseDeviceTrace(text(good()), 'x.jsonl')).toEqual({ header, entries });
  });

  it.each<[string, () => string[], string]>([
    ['an empty file', () => [], 'x.jsonl:1: empty: a trace starts with its header line'],
    ['a line that is not JSON', () => [...good().slice(0, 2), '{"t":'], 'x.jsonl:3: not JSON'],
    ['a line that is not an object', () => [...good().slice(0, 2), '[1]'], 'x.jsonl:3: each line must be a JSON object'],
    ['another format', () => withLine(1, (o) => ({ ...o, format: 'umockdev' })), 'x.jsonl:1: header: not a device trace'],
    ['another version', () => withLine(1, (o) => ({ ...o, version: 2 })), 'x.jsonl:1: header: version 2 is not one this cdevemu reads (1)'],
    ['a header without its device', () => withLine(1, (o) => ({ ...o, device: undefined })), 'x.jsonl:1: header: device must be a string'],
    ['a sysfs path out of sys/', () => withLine(1, (o) => ({ ...o, sysfs: { 'sys/../etc/x': '1' } })), 'x.jsonl:1: header: sysfs path "sys/../etc/x" must lie under sys/'],
    ['an unknown op', () => withLine(2, (o) => ({ ...o, op: 'mmap' })), 'x.jsonl:2: op must be one of open, release, read, write, poll, ioctl, unplug, got "mmap"'],
    ['an unknown field', () => withLine(2, (o) => ({ ...o, mode: 1 })), 'x.jsonl:2: open: unknown field "mode"'],
    ['a missing field', () => withLine(5, (o) => ({ ...o, data: undefined })), 'x.jsonl:5: write: missing data'],
    ['data that is not hex', () => withLine(7, (o) => ({ ...o, data: 'OK' })), 'x.jsonl:7: read: data must be lower-case hex with an even number of digits, got "OK"'],
    ['an unknown errno', () => withLine(8, (o) => ({ ...o, errno: 'EWHAT' })), 'x.jsonl:8: read: errno must be an errno name such as "EIO", got "EWHAT"'],
    ['time going back', () => withLine(4, (o) => ({ ...o, t: 0.5 })), 'x.jsonl:4: ioctl: t 0.5 goes back in time (the line before is at 2)'],
    ['no time', () => withLine(4, (o) => ({ ...o, t: 'soon' })), 'x.jsonl:4: ioctl: t must be a non-negative number of ms, got "soon"'],
    ['an unknown header field', () => withLine(1, (o) => ({ ...o, baud: 9600 })), 'x.jsonl:1: header: unknown field "baud"'],
    ['a read with neither data nor errno', () => withLine(7, (o) => ({ ...o, data: undefined })), 'x.jsonl:7: read: needs data or errno, not neither'],
    ['a read with both data and errno', () => withLine(7, (o) => ({ ...o, errno: 'EIO' })), 'x.jsonl:7: read: needs data or errno, not both'],
    ['a write with neither result nor errno', () => withLine(5, (o) => ({ ...o, result: undefined })), 'x.jsonl:5: write: needs result or errno, not neither'],
    ['a write that took more than it was given', () => withLine(5, (o) => ({ ...o, result: 3 })), 'x.jsonl:5: write: result 3 is more than the 2 bytes written'],
    ['an ioctl with neither result nor errno', () => withLine(3, (o) => ({ ...o, result: undefined })), 'x.jsonl:3: ioctl: needs result or errno, not neither'],
    ['an entry after the unplug', () => [...good(), JSON.stringify({ t: 9, op: 'release', file: 1 })], 'x.jsonl:11: release: nothing can follow the unplug'],
    ['a read that got more than it asked', () => withLine(7, (o) => ({ ...o, size: 1 })), 'x.jsonl:7: read: data of 2 bytes is more than the 1 asked'],
    ['an entry of a file never opened', () => withLine(5, (o) => ({ ...o, file: 2 })), 'x.jsonl:5: write: file 2 is not open here (never opened, its open failed, or released)'],
    ['an entry of a file whose open failed', () => withLine(2, (o) => ({ ...o, errno: 'EBUSY' })), 'x.jsonl:3: ioctl: file 1 is not open here'],
    ['an entry of a file after its release', () => [...good().slice(0, 9), JSON.stringify({ t: 7, op: 'read', file: 1, size: 1, data: '' })], 'x.jsonl:10: read: file 1 is not open here'],
    ['a second open of one file number', () => withLine(3, () => ({ t: 2, op: 'open', file: 1, flags: 2 })), 'x.jsonl:3: open: file 1 was opened before (each open has a number of its own)'],
    ['no open at all', () => good().slice(0, 1), 'x.jsonl:1: no open: the recorded program never opened the device'],
  ])('refuses %s', (_what, lines, message) => {
    expect(refusal(lines()).message).toContain(message);
  });
});
