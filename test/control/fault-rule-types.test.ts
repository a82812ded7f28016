/**
 * emu.fault() and ControlClient.addFault() take FaultRuleSpec, the type
 * derived from the table parseRule() validates by: tsc accepts the rules
 * the daemon accepts and refuses, line by line, those it refuses
 * (test/fixtures/fault-rule-types.ts). The validator refuses the same rules
 * at run time.
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FaultRuleError, parseRule } from '../../src/faults/index.js';
import { repoRoot } from '../helpers/cli.js';
import { run } from '../helpers/proc.js';

it('type-checks the rules the daemon accepts and refuses, with tsc, every wrong field it refuses', async () => {
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const flags = ['--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--types', 'node', '--skipLibCheck', '--allowJs'];
  const r = await run(process.execPath, [tsc, ...flags, 'test/fixtures/fault-rule-types.ts'], { cwd: repoRoot, timeoutMs: 120_000 });
  // An unused @ts-expect-error (a wrong rule the type let through) is error TS2578.
  expect(r.stdout + r.stderr).toBe('');
  expect(r.code).toBe(0);
  // tsc compiles the whole source graph: ~7 s of CPU, several times that in wall time on a loaded machine.
}, 150_000);

it('refuses at run time what the type refuses: a field of another action', () => {
  const refused: Array<[unknown, string]> = [
    [{ action: 'fail', errno: 'EIO', delayMs: 5 }, 'delayMs'],
    [{ action: 'delay', delayMs: 1, bytes: 2 }, 'bytes'],
    [{ action: 'corrupt', errno: 'EIO' }, 'errno'],
    [{ action: 'hang', count: 2 }, 'count'],
    [{ action: 'short', bytes: 1, jitterMs: 2 }, 'jitterMs'],
  ];
  const refusedField = (spec: unknown): string | null => {
    try {
      parseRule(spec, 'x');
      return null;
    } catch (e) {
      return e instanceof FaultRuleError ? e.field : String(e);
    }
  };
  expect(refused.map(([spec]) => refusedField(spec))).toEqual(refused.map(([, field]) => field));
  expect(() => parseRule({ action: 'hang', count: 2 }, 'x')).toThrow('count: only action corrupt takes count');
  expect(parseRule({ action: 'corrupt', count: 2, op: 'read' }, 'x')).toEqual({ id: 'x', device: '*', op: ['read'], action: 'corrupt', count: 2 });
  expect(parseRule({ action: 'fail', errno: 'EIO', op: 'ioctl', ioctl: '0x10' }, 'x')).toEqual({ id: 'x', device: '*', op: ['ioctl'], ioctl: 16, action: 'fail', errno: 'EIO' });
});
