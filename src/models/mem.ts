/**
 * null, zero and full: the memory devices of drivers/char/mem.c.
 * null reads EOF and swallows writes; zero reads zeros and swallows writes;
 * full reads zeros and fails every write with ENOSPC.
 */
import { Errno } from '../errno.js';
import type { DeviceModel } from '../core/index.js';
import { parseOptions } from './options.js';

/** Shared zero page; reads are at most max_read (1 MiB by default). */
let zeros = Buffer.alloc(1 << 20);
function zeroBytes(size: number): Buffer {
  if (size > zeros.length) zeros = Buffer.alloc(size);
  return zeros.subarray(0, size);
}

const noOptions = (model: string) => (_inst: unknown, options: unknown): null => {
  parseOptions(model, options, {});
  return null;
};

export const nullModel: DeviceModel<null> = {
  name: 'null',
  events: {},
  stream: true,
  create: noOptions('null'),
  read: () => Buffer.alloc(0),
  write: (_file, data) => data.length,
};

export const zeroModel: DeviceModel<null> = {
  name: 'zero',
  events: {},
  stream: true,
  create: noOptions('zero'),
  read: (_file, size) => zeroBytes(size),
  write: (_file, data) => data.length,
};

export const fullModel: DeviceModel<null> = {
  name: 'full',
  events: {},
  stream: true,
  create: noOptions('full'),
  read: (_file, size) => zeroBytes(size),
  write: () => {
    throw new Errno('ENOSPC');
  },
};
