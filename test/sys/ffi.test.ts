import { closeSync, fstatSync, readSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/errno.js';
import {
  F_SEAL_GROW,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  pageSize,
  PROT_READ,
  PROT_WRITE,
  addSeals,
  ftruncate,
  getSeals,
  ioctl,
  memfdCreate,
  mmap,
  munmap,
  view,
} from '../../src/sys/ffi.js';

const PAGE_SIZE = pageSize();

describe('ffi', () => {
  it('maps a memfd: stores through the view are the file bytes', () => {
    const fd = memfdCreate('ffi-test', MFD_CLOEXEC | MFD_ALLOW_SEALING);
    try {
      ftruncate(fd, PAGE_SIZE);
      expect(fstatSync(fd).size).toBe(PAGE_SIZE);
      const p = mmap(PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      const bytes = new Uint8Array(view(p, PAGE_SIZE));
      bytes.set([1, 2, 3], 10);
      const back = Buffer.alloc(3);
      readSync(fd, back, 0, 3, 10);
      expect([...back]).toEqual([1, 2, 3]);
      writeSync(fd, Buffer.from([9]), 0, 1, 11);
      expect(bytes[11]).toBe(9);
      munmap(p, PAGE_SIZE);
    } finally {
      closeSync(fd);
    }
  });

  it('translates errno: seals refuse growth with EPERM, bad fds give EBADF', () => {
    const fd = memfdCreate('ffi-seal', MFD_CLOEXEC | MFD_ALLOW_SEALING);
    try {
      addSeals(fd, F_SEAL_GROW | F_SEAL_SHRINK);
      expect(getSeals(fd) & (F_SEAL_GROW | F_SEAL_SHRINK)).toBe(F_SEAL_GROW | F_SEAL_SHRINK);
      expect(() => ftruncate(fd, PAGE_SIZE)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    } finally {
      closeSync(fd);
    }
    let err: unknown;
    try {
      ioctl(fd, 0x5401, Buffer.alloc(64));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Errno);
    expect((err as Errno).code).toBe('EBADF');
    expect(() => mmap(PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
