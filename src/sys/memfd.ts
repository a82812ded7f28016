/**
 * Shared pages for device regions: one sealable memfd per device, mapped
 * once in this process. Programs map the same file (through FUSE
 * passthrough), so a store by either side is seen by the other at once.
 *
 * The emulator's own mapping is never unmapped while JavaScript can reach
 * it: it is unmapped when its ArrayBuffer is garbage-collected. Revoking a
 * range first swaps this process's pages there for a private copy, so the
 * truncation that kills every program's mapping (SIGBUS on the next touch,
 * as shmem_fault gives past EOF) can never fault the emulator itself.
 */
import { closeSync } from 'node:fs';
import {
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  PROT_READ,
  PROT_WRITE,
  addSeals,
  address,
  ftruncate,
  memfdCreate,
  mmap,
  munmap,
  view,
  type Pointer,
} from './ffi.js';

const unmapOnCollect = new FinalizationRegistry<{ p: Pointer; length: number }>(({ p, length }) => {
  try {
    munmap(p, length);
  } catch {
    // Nothing to do: the address range was ours and is left mapped.
  }
});

export class SharedMemory {
  /** This process's mapping of the whole file (MAP_SHARED until revoke() swaps part of it). */
  readonly buffer: ArrayBuffer;
  private readonly base: Pointer;
  private fdOpen = true;

  private constructor(
    readonly fd: number,
    readonly length: number,
  ) {
    this.base = mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    this.buffer = view(this.base, length);
    unmapOnCollect.register(this.buffer, { p: this.base, length });
  }

  /** A zeroed memfd of `length` bytes (a multiple of the page size), mapped here. */
  static create(name: string, length: number): SharedMemory {
    const fd = memfd(name);
    try {
      ftruncate(fd, length);
      return new SharedMemory(fd, length);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Cuts the file at `from` (page aligned) and seals its size: every
   * mapping of the bytes past it, made before or after, gets SIGBUS on the
   * next touch, and nothing can grow the file to bring the old pages back
   * (growing a truncated memfd revives old mappings with zero pages).
   * This process keeps a private copy of the cut bytes at the same
   * addresses.
   */
  revoke(from: number): void {
    if (from < this.length) {
      const cut = this.length - from;
      const copy = new Uint8Array(this.buffer, from, cut).slice();
      mmap(cut, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0, address(this.base) + BigInt(from));
      new Uint8Array(this.buffer, from, cut).set(copy);
      ftruncate(this.fd, from);
    }
    addSeals(this.fd, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  }

  /** Drops the descriptor; pages programs still map stay theirs (the kernel keeps the file until the last munmap). */
  close(): void {
    if (!this.fdOpen) return;
    this.fdOpen = false;
    closeSync(this.fd);
  }
}

function memfd(name: string): number {
  // memfd_create(2) refuses names longer than 249 bytes.
  return memfdCreate(name.slice(0, 249), MFD_CLOEXEC | MFD_ALLOW_SEALING);
}
