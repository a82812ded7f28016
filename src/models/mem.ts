/**
 * null, zero and full: the memory devices of drivers/char/mem.c.
 * null reads EOF and swallows writes; zero reads zeros and swallows writes;
 * full reads zeros and fails every write with ENOSPC.
 */
import { Errno } from '../errno.js';
import type { DeviceModel } from '../core/index.js';

/** Shared zero page; reads are at most max_read (1 MiB by default). */
let zeros = Buffer.alloc(1 << 20);
function zeroBytes(size: number): Buffer {
  if (size > zeros.length) zeros = Buffer.alloc(size);
  return zeros.subarray(0, size);
}


export const nullModel: DeviceModel<null> = {
  name: 'null',
  events: {},
  stream: true,
  description: 'reads end of file, writes are swallowed (/dev/null)',
  options: {},
  create: () => null,
  read: () => Buffer.alloc(0),
  write: (_file, data) => data.length,
};

export const zeroModel: DeviceModel<null> = {
  name: 'zero',
  events: {},
  stream: true,
  description: 'reads zeros, writes are swallowed (/dev/zero)',
  options: {},
  create: () => null,
  read: (_file, size) => zeroBytes(size),
  write: (_file, data) => data.length,
};

export const fullModel: DeviceModel<null> = {
  name: 'full',
  events: {},
  stream: true,
  description: 'reads zeros, every write fails ENOSPC (/dev/full)',
  options: {},
  create: () => null,
  read: (_file, size) => zeroBytes(size),
  write: () => {
    throw new Errno('ENOSPC');
  },
};
