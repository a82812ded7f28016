/**
 * The daemon's config file (src/config): parsed from text as a user writes
 * it, with the file:line: field errors the daemon prints. No mount, no root.
 */
import { describe, expect, it } from 'vitest';
import { SourceDocument, readDaemonConfig } from '../../src/config/index.js';
import { itRefuses } from '../helpers/refusal.js';

const read = (text: string) => readDaemonConfig(SourceDocument.parse(text, 'cdevemu.yaml'), '/etc/cdevemu');

describe('daemon config file', () => {
  it('reads every field, resolving paths against the file', () => {
    const c = read(
      [
        'mountpoint: ./mnt',
        'socket: /run/x.sock',
        'allowOther: true',
        'drainTimeoutMs: 250',
        'shutdownReleaseMs: 60000',
        'logLevel: debug',
        'models: [./m.mjs]',
        'devices:',
        '  - { model: echo, name: echo0, options: { capacity: 16 } }',
        'faults:',
        '  - { device: echo0, op: read, nth: 2, action: fail, errno: EIO }',
      ].join('\n'),
    );
    // deviceError points a later check of devices[i] (its model, its options) at the file's line.
    const { deviceError, ...fields } = c;
    expect(deviceError?.(0, 'options', 'bad').message).toMatch(/^cdevemu\.yaml:\d+: devices\[0\]\.options: bad/);
    expect(fields).toEqual({
      mountpoint: '/etc/cdevemu/mnt',
      socket: '/run/x.sock',
      allowOther: true,
      drainTimeoutMs: 250,
      shutdownReleaseMs: 60000,
      logLevel: 'debug',
      models: ['/etc/cdevemu/m.mjs'],
      devices: [{ model: 'echo', name: 'echo0', options: { capacity: 16 } }],
      faults: [{ device: 'echo0', op: 'read', nth: 2, action: 'fail', errno: 'EIO' }],
    });
  });

  it('takes an empty file as an empty config', () => {
    expect(read('')).toEqual({});
  });

  itRefuses(read, [
    ['a wrong type', 'devices:\n  - { model: 3, name: e }\n', 'cdevemu.yaml:2: devices[0].model: expected a string'],
    ['an unknown field', 'mountpoint: /m\nmountpont: /n\n', 'cdevemu.yaml:2: mountpont: unknown field'],
    ['a bad log level', 'logLevel: loud\n', 'cdevemu.yaml:1: logLevel: expected one of fatal, error, warn, info, debug, trace, silent'],
    ['a negative drain bound', 'drainTimeoutMs: -1\n', 'cdevemu.yaml:1: drainTimeoutMs: '],
    ['a shutdown window past a timer', 'shutdownReleaseMs: 3000000000\n', 'cdevemu.yaml:1: shutdownReleaseMs: must be at most 2147483647'],
    ['a bad fault rule', 'faults:\n  - { action: fail, errno: EWHAT }\n', 'cdevemu.yaml:2: faults[0].errno: '],
    ['bad YAML', 'devices: [\n', 'cdevemu.yaml:'],
  ]);
});
