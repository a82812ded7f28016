/**
 * Comparisons (src/scenario/compare.ts) as the runner applies them: no
 * comparison holds for want of its subject, none across kinds, and the
 * message of one that fails says what was asked and what was seen. No
 * mount, no root.
 */
import { describe, expect, it } from 'vitest';
import { SourceDocument } from '../../src/config/index.js';
import { holds, readComparison, readFieldTests, valueAt, whyNot, type Comparison, type FieldTest } from '../../src/scenario/compare.js';

const cmp = (yaml: string): Comparison => readComparison(SourceDocument.parse(`v: ${yaml}`, 'c.yaml').root().mapping(null).get('v'));
const fields = (yaml: string): FieldTest[] => readFieldTests(SourceDocument.parse(`f: ${yaml}`, 'c.yaml').root().mapping(null).get('f'));

describe('comparisons', () => {
  it('holds on what each operator says, both ends of between included', () => {
    const table: Array<[string, unknown, boolean]> = [
      ['0', 0, true],
      ['0', 1, false],
      ["{ '!=': 0 }", 1, true],
      ["{ '!=': 0 }", 0, false],
      ["{ '>=': 2 }", 2, true],
      ["{ '>': 2 }", 2, false],
      ["{ '<=': 2 }", 2, true],
      ["{ '<': 2 }", 1.5, true],
      ['{ between: [1, 3] }', 1, true],
      ['{ between: [1, 3] }', 3, true],
      ['{ between: [1, 3] }', 3.5, false],
      ["{ '>': 0, '<': 10, '!=': 5 }", 5, false],
      ["{ '>': 0, '<': 10, '!=': 5 }", 6, true],
      ['irq', 'irq', true],
      ['true', true, true],
      ['null', null, true],
    ];
    for (const [c, v, want] of table) expect([c, v, holds(cmp(c), v)]).toEqual([c, v, want]);
  });

  it('never holds on a missing value, even != (an expectation cannot pass for want of its subject)', () => {
    for (const c of ['0', "{ '!=': 0 }", "{ '!=': null }", "{ '<': 5 }", 'null']) expect([c, holds(cmp(c), undefined)]).toEqual([c, false]);
  });

  it('never holds across kinds: != 0 on a string, an ordering on anything but a number', () => {
    expect(holds(cmp("{ '!=': 0 }"), '0')).toBe(false);
    expect(holds(cmp("{ '!=': 0 }"), null)).toBe(false);
    expect(holds(cmp("{ '!=': x }"), 3)).toBe(false);
    expect(holds(cmp("{ '>=': 1 }"), '2')).toBe(false);
    expect(holds(cmp("{ '>=': 1 }"), true)).toBe(false);
    expect(holds(cmp('1'), '1')).toBe(false);
    // != null asks only that the value is there and not null.
    expect(holds(cmp("{ '!=': null }"), 0)).toBe(true);
  });

  it('reads fields inside fields, and a list item by its index', () => {
    const v = { sense: { key: 5 }, ended: [{ status: 2 }], n: 0 };
    expect(valueAt(v, ['sense', 'key'])).toBe(5);
    expect(valueAt(v, ['ended', '0', 'status'])).toBe(2);
    expect(valueAt(v, ['ended', '1', 'status'])).toBeUndefined();
    expect(valueAt(v, ['n', 'x'])).toBeUndefined();
    expect(valueAt(v, ['toString'])).toBeUndefined(); // own fields only
  });

  it('says what was asked and what was seen, and names a missing field with what is there', () => {
    const result = { good: 10, verifyErrors: 3, sense: null, byOutcome: { completed: 10 }, name: 'x' };
    const why = (f: string): Array<string | null> => fields(f).map((t) => whyNot(t, result, 'workload'));
    expect(why('{ verifyErrors: 0 }')).toEqual(['expected workload.verifyErrors == 0, saw 3']);
    expect(why("{ good: { '>=': 100 } }")).toEqual(['expected workload.good >= 100, saw 10']);
    expect(why("{ good: { between: [1, 10] }, verifyErrors: { '<=': 3 } }")).toEqual([null, null]);
    expect(why('{ lost: 0 }')).toEqual(['expected workload.lost == 0, but workload has no field lost (its fields: good, verifyErrors, sense, byOutcome, name)']);
    expect(why('{ byOutcome.removed: 0 }')).toEqual(['expected workload.byOutcome.removed == 0, but workload.byOutcome has no field removed (its fields: completed)']);
    expect(why('{ sense.key: 5 }')).toEqual(['expected workload.sense.key == 5, but workload.sense is null (null), which has no field key']);
    expect(why("{ name: { '>': 1 } }")).toEqual(['expected workload.name > 1, saw "x" (a string, not a number)']);
  });
});
