/**
 * The schema helper (src/core/schema.ts) that checks model options and
 * action arguments: types, ranges, enums, formats, defaults, required and
 * unknown fields, nested objects and arrays, and the messages that name
 * the field, the value and what is allowed.
 */
import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/errno.js';
import { checkField, checkValues, defineSchema, describeSchema, SchemaError } from '../../src/core/schema.js';

const S = defineSchema({
  size: { type: 'integer', min: 1, max: 4096, default: 512, description: 'bytes' },
  ratio: { type: 'number', min: 0, max: 1, description: 'a share' },
  mode: { type: 'string', enum: ['fast', 'slow'], default: 'fast', description: 'how' },
  level: { type: 'integer', enum: [1, 2], description: 'a level' },
  on: { type: 'boolean', default: false, description: 'a switch' },
  data: { type: 'string', format: 'hex', description: 'bytes' },
  blob: { type: 'string', format: 'base64', description: 'bytes' },
  path: { type: 'string', format: 'absolute-path', description: 'a file' },
  region: { type: ['integer', 'string'], min: 0, description: 'an index or a name' },
  name: { type: 'string', required: true, description: 'a name' },
  id: {
    type: 'object',
    description: 'ids',
    fields: { vendor: { type: 'integer', min: 0, max: 0xffff, default: 0, description: 'vendor' } },
  },
  list: {
    type: 'array',
    minItems: 1,
    maxItems: 3,
    items: { type: 'integer', min: 0, max: 9, description: 'a digit' },
    description: 'digits',
  },
});

const refusal = (value: unknown): SchemaError => {
  try {
    checkValues('m: option', S, value);
  } catch (err) {
    expect(err).toBeInstanceOf(SchemaError);
    return err as SchemaError;
  }
  throw new Error(`${JSON.stringify(value)} was taken`);
};

describe('checkValues', () => {
  it('fills in defaults, keeps what is given, and leaves the rest undefined', () => {
    expect(checkValues('m: option', S, { name: 'a' })).toEqual({ size: 512, mode: 'fast', on: false, name: 'a' });
    const all = {
      size: 4096,
      ratio: 0.5,
      mode: 'slow',
      level: 2,
      on: true,
      data: '0aff',
      blob: 'AAE=',
      path: '/x',
      region: 'map1',
      name: 'b',
      id: { vendor: 7 },
      list: [1, 2, 3],
    };
    expect(checkValues('m: option', S, all)).toEqual(all);
    expect(checkValues('m: option', S, { name: 'a', id: {} }).id).toEqual({ vendor: 0 });
    expect(checkValues('m: option', S, { name: 'a', region: 3 }).region).toBe(3);
  });

  it("gives each an array default's copy, its items checked where it is declared", () => {
    const F = defineSchema({ flags: { type: 'array', items: { type: 'string', enum: ['A', 'B'] }, default: ['A'], description: '' } });
    const first = checkValues('m: option', F, {});
    first.flags.push('B');
    expect(checkValues('m: option', F, {}).flags).toEqual(['A']);
    expect(() => defineSchema({ flags: { ...F.flags, default: ['C'] } })).toThrow(
      'schema field flags default[0] must be one of "A", "B", got "C"',
    );
  });

  it('takes undefined and null as no values, and refuses anything but an object', () => {
    expect(checkValues('m: argument', { a: { type: 'integer', default: 1, description: '' } }, undefined)).toEqual({ a: 1 });
    expect(checkValues('m: argument', {}, null)).toEqual({});
    expect(() => checkValues('m: option', S, [1])).toThrow('m: options must be an object, got [1]');
    expect(() => checkValues('m: option', S, 'x')).toThrow('m: options must be an object, got "x"');
  });

  it('refuses a value out of range, naming the field, the value and the range', () => {
    expect(refusal({ name: 'a', size: 0 }).message).toBe('m: option size must be an integer from 1 to 4096, got 0');
    expect(refusal({ name: 'a', size: 4097 }).message).toBe('m: option size must be an integer from 1 to 4096, got 4097');
    expect(refusal({ name: 'a', ratio: 1.5 }).message).toBe('m: option ratio must be a number from 0 to 1, got 1.5');
    expect(refusal({ name: 'a', region: -1 }).message).toBe('m: option region must be an integer >= 0 or a string, got -1');
    expect(refusal({ name: 'a', size: 0 }).field).toBe('size');
  });

  it('refuses a wrong type: a fraction for an integer, a string for a number, NaN-like values', () => {
    expect(refusal({ name: 'a', size: 1.5 }).message).toBe('m: option size must be an integer from 1 to 4096, got 1.5');
    expect(refusal({ name: 'a', size: '12' }).message).toBe('m: option size must be an integer from 1 to 4096, got "12"');
    expect(refusal({ name: 'a', on: 'yes' }).message).toBe('m: option on must be a boolean, got "yes"');
    expect(refusal({ name: 'a', id: [] }).message).toBe('m: option id must be an object, got []');
    expect(refusal({ name: 1 }).message).toBe('m: option name must be a string, got 1');
  });

  it('refuses a value not in the enum, and a string not in its format', () => {
    expect(refusal({ name: 'a', mode: 'Fast' }).message).toBe('m: option mode must be one of "fast", "slow", got "Fast"');
    expect(refusal({ name: 'a', level: 3 }).message).toBe('m: option level must be one of 1, 2, got 3');
    expect(refusal({ name: 'a', data: 'abc' }).message).toBe('m: option data must be a string of hex byte pairs, got "abc"');
    expect(refusal({ name: 'a', blob: 'AAE' }).message).toBe('m: option blob must be a base64 string, got "AAE"');
    expect(refusal({ name: 'a', path: 'rel/x' }).message).toBe('m: option path must be an absolute path, got "rel/x"');
  });

  it('refuses an unknown field with the known ones and the likeliest meant, and a missing required one', () => {
    const e = refusal({ name: 'a', sise: 3 });
    expect(e.message).toBe(
      'm: option sise is unknown (did you mean size?); known: size, ratio, mode, level, on, data, blob, path, region, name, id, list',
    );
    expect(e.field).toBe('sise');
    expect(refusal({ name: 'a', colour: 1 }).message).toMatch(/^m: option colour is unknown; known: /);
    expect(refusal({}).message).toBe('m: option name is required (a string)');
    expect(refusal({ name: null }).message).toBe('m: option name is required (a string)');
  });

  it('checks nested objects and arrays, naming the field by its path', () => {
    expect(refusal({ name: 'a', id: { vendor: 0x10000 } }).message).toBe(
      'm: option id.vendor must be an integer from 0 to 65535, got 65536',
    );
    expect(refusal({ name: 'a', id: { vendr: 1 } }).message).toBe('m: option id.vendr is unknown (did you mean vendor?); known: vendor');
    expect(refusal({ name: 'a', list: [1, 10] }).message).toBe('m: option list[1] must be an integer from 0 to 9, got 10');
    expect(refusal({ name: 'a', list: [] }).message).toBe(
      'm: option list must be an array of 1 to 3 items, each an integer from 0 to 9, got []',
    );
    expect(refusal({ name: 'a', list: [1, 2, 3, 4] }).field).toBe('list');
  });

  it('is an Errno EINVAL for the library API', () => {
    const e = refusal({ name: 'a', size: 0 });
    expect(e).toBeInstanceOf(Errno);
    expect(e.code).toBe('EINVAL');
  });
});

describe('checkField', () => {
  it('checks one value against a spec narrowed at run time, its default when absent', () => {
    const timeout = { type: 'integer', min: 1, max: 65535, default: 30, description: '' } as const;
    expect(checkField('w: option', 'timeout', { ...timeout, min: 10, max: 60 }, 20)).toBe(20);
    expect(checkField('w: option', 'timeout', timeout, undefined)).toBe(30);
    expect(() => checkField('w: option', 'timeout', { ...timeout, min: 10, max: 60 }, 61)).toThrow(
      'w: option timeout must be an integer from 10 to 60, got 61',
    );
  });
});

describe('defineSchema', () => {
  it('refuses a default outside its own field', () => {
    expect(() => defineSchema({ n: { type: 'integer', min: 1, default: 0, description: '' } })).toThrow(
      'schema field n default must be an integer >= 1, got 0',
    );
    expect(() =>
      defineSchema({
        o: { type: 'object', description: '', fields: { m: { type: 'string', enum: ['a'], default: 'b', description: '' } } },
      }),
    ).toThrow(/default must be one of "a"/);
  });
});

describe('describeSchema', () => {
  it('lists the fields in order with their declaration, nested ones the same way', () => {
    const v = describeSchema(S);
    expect(v.map((f) => f.name)).toEqual(Object.keys(S));
    expect(v[0]).toEqual({ name: 'size', type: 'integer', min: 1, max: 4096, default: 512, description: 'bytes' });
    expect(v.find((f) => f.name === 'region')!.type).toEqual(['integer', 'string']);
    expect(v.find((f) => f.name === 'id')!.fields).toEqual([
      { name: 'vendor', type: 'integer', min: 0, max: 0xffff, default: 0, description: 'vendor' },
    ]);
    expect(v.find((f) => f.name === 'list')).toMatchObject({ minItems: 1, maxItems: 3, items: { type: 'integer', min: 0, max: 9 } });
    // JSON round trip: what GET /v1/models sends.
    expect(JSON.parse(JSON.stringify(v))).toEqual(v);
  });
});
