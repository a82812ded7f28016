/**
 * Scenario files (src/scenario/schema.ts) as a user writes them: every step
 * kind is read into the runner's shape, and a bad file is refused with one
 * file:line: field line. No mount, no root.
 */
import { describe, expect, it } from 'vitest';
import { SourceDocument } from '../../src/config/index.js';
import { parseBind, readScenario } from '../../src/scenario/schema.js';
import { itRefuses } from '../helpers/refusal.js';

const read = (text: string) => readScenario(SourceDocument.parse(text, 's.yaml'), '/srv/scen');

describe('scenario schema', () => {
  it('reads devices, program and every kind of step', () => {
    const s = read(
      [
        'name: demo',
        'devices: [{ model: uio, name: uio0 }]',
        'program: { command: [python3, ./c.py, "{mount}/dev/uio0"], bind: ["/dev/uio0=dev/uio0"] }',
        'timeout: 30s',
        'timeline:',
        '  - wait: { opened: uio0, timeout: 5s }',
        '  - action: { device: uio0, action: irq }',
        '  - fault: { device: uio0, op: read, nth: 2, action: fail, errno: EIO }',
        '  - sleep: 200ms',
        '  - unplug: uio0',
        '  - replug: uio0',
        '  - expect: { released: uio0, within: 2s }',
        '  - expect: { device: uio0, lateReleases: 1 }',
        '  - expect: { exit: 0, within: 5s }',
        '  - expect: { noStuck: true }',
      ].join('\n'),
    );
    expect(s.name).toBe('demo');
    expect(s.timeoutMs).toBe(30_000);
    expect(s.devices).toEqual([{ model: 'uio', name: 'uio0' }]);
    expect(s.program?.bind).toEqual(['/dev/uio0=dev/uio0']);
    expect(s.timeline.map((t) => t.step.kind)).toEqual([
      'wait',
      'action',
      'fault',
      'sleep',
      'unplug',
      'replug',
      'expect',
      'expect',
      'expect',
      'expect',
    ]);
    expect(s.timeline[0]).toMatchObject({ line: 6, step: { kind: 'wait', what: 'opened', device: 'uio0', timeoutMs: 5000 } });
    expect(s.timeline[3]!.step).toEqual({ kind: 'sleep', ms: 200 });
    expect(s.timeline[6]!.step).toMatchObject({ kind: 'expect', what: 'released', device: 'uio0', withinMs: 2000 });
  });

  itRefuses(read, [
    ['an unknown step', 'timeline:\n  - sleep: 1s\n  - dance: 3\n', 's.yaml:3: timeline[1].dance: unknown field'],
    ['a bad duration', 'timeline:\n  - sleep: soon\n', 's.yaml:2: timeline[0].sleep: expected a duration'],
    ['an unknown errno', 'timeline:\n  - fault:\n      action: fail\n      errno: EWHATEVER\n', 's.yaml:4: timeline[0].fault.errno: '],
    ['no timeline', 'name: x\n', 's.yaml:1: timeline: missing'],
    [
      'a relative bind host path',
      'program: { command: [x], bind: ["dev/uio0=dev/uio0"] }\ntimeline: []\n',
      's.yaml:1: program.bind[0]: expected HOSTPATH=MOUNTPATH: an absolute host path and a path in the mount, without . or .., e.g. /dev/uio0=dev/uio0',
    ],
  ]);

  it('parses --bind pairs', () => {
    expect(parseBind('/dev/uio0=dev/uio0')).toEqual({ host: '/dev/uio0', mount: 'dev/uio0' });
    expect(parseBind('//dev//input/=/dev/input')).toEqual({ host: '/dev/input', mount: 'dev/input' });
    expect(parseBind('dev/uio0=dev/uio0')).toBeNull();
    expect(parseBind('/=dev')).toBeNull();
    // The bind namespace walks the host path up by its text: `..` would make it another directory than the kernel's.
    expect(parseBind('/tmp/a/../../x/uio0=dev/uio0')).toBeNull();
    expect(parseBind('/tmp/./x=dev/uio0')).toBeNull();
    expect(parseBind('/x=dev/../etc')).toBeNull();
  });
});
