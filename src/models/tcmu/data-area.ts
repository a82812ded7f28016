/**
 * The data area's allocator: DATA_BLOCK_SIZE blocks handed out lowest
 * first, as target_core_user.c's data_bitmap does (find_first_zero_bit in
 * tcmu_get_empty_block). A command's blocks need not be contiguous; the
 * iovecs merge the runs that are (scatter_data_area: "gather and map the
 * blocks to the same iovec when the blocks are all next to each other").
 */
import { DATA_BLOCK_SIZE } from './abi.js';

export interface Iovec {
  /** Offset from the start of the mailbox (iov_base as userspace sees it). */
  base: number;
  len: number;
}

export class DataArea {
  private readonly used: Uint8Array;
  private free: number;
  /** No free block below this index. */
  private lowest = 0;

  constructor(
    private readonly dataOff: number,
    dataSize: number,
  ) {
    this.used = new Uint8Array(Math.floor(dataSize / DATA_BLOCK_SIZE));
    this.free = this.used.length;
  }

  get freeBlocks(): number {
    return this.free;
  }

  /** The blocks for `bytes`, or null when too few are free (the command waits on the qfull queue). */
  alloc(bytes: number): number[] | null {
    const need = Math.ceil(bytes / DATA_BLOCK_SIZE);
    if (need > this.free) return null;
    const got: number[] = [];
    for (let i = this.lowest; got.length < need; i++) {
      if (!this.used[i]) {
        this.used[i] = 1;
        got.push(i);
      }
    }
    this.free -= need;
    this.lowest = got.length ? got[got.length - 1]! + 1 : this.lowest;
    return got;
  }

  release(blocks: readonly number[]): void {
    for (const b of blocks) {
      if (!this.used[b]) continue;
      this.used[b] = 0;
      this.free++;
      if (b < this.lowest) this.lowest = b;
    }
  }

  /** The iovecs covering `bytes` of these blocks, adjacent blocks merged. */
  iovecs(blocks: readonly number[], bytes: number): Iovec[] {
    const out: Iovec[] = [];
    let left = bytes;
    for (const b of blocks) {
      const len = Math.min(left, DATA_BLOCK_SIZE);
      const base = this.dataOff + b * DATA_BLOCK_SIZE;
      const last = out[out.length - 1];
      if (last && last.base + last.len === base) last.len += len;
      else out.push({ base, len });
      left -= len;
    }
    return out;
  }
}
