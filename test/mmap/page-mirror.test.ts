/**
 * src/fs/page-mirror.ts against a page cache played in memory: what a
 * pull takes from a program and what a push gives it, byte by byte. The
 * real kernel's side is in page-cache.test.ts and unprivileged.test.ts.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { DevicePages } from '../../src/devio.js';
import { PageMirror } from '../../src/fs/page-mirror.js';
import type { PageCacheNotifier } from '../../src/fuse/server.js';

const PAGE = 4096;

/**
 * The kernel's page cache of one inode, as FUSE exposes it: a retrieve
 * answers from `offset` up to the first page not cached
 * (fs/fuse/dev.c fuse_retrieve), a store makes the pages it touches.
 */
class PageCache implements PageCacheNotifier {
  readonly pages = new Map<number, Uint8Array>();
  readonly stores: { offset: number; hex: string }[] = [];
  readonly invalidated: [number, number][] = [];
  readonly maxRetrieve = 8 * PAGE;
  private writing = 0;

  get drained(): boolean {
    return this.writing === 0;
  }

  async store(_nodeid: bigint, stores: readonly { offset: number; data: Buffer }[]): Promise<void> {
    this.writing++;
    await Promise.resolve(); // written by another thread, later
    this.writing--;
    for (const s of stores) {
      this.stores.push({ offset: s.offset, hex: s.data.toString('hex') });
      const page = Math.floor(s.offset / PAGE);
      if (!this.pages.has(page)) this.pages.set(page, new Uint8Array(PAGE));
      this.pages.get(page)!.set(s.data, s.offset % PAGE);
    }
  }

  async retrieve(_nodeid: bigint, offset: number, size: number, take: (offset: number, data: Buffer) => void): Promise<number> {
    const out: number[] = [];
    for (let at = offset; at < offset + size; at++) {
      const page = this.pages.get(Math.floor(at / PAGE));
      if (!page) break;
      out.push(page[at % PAGE]!);
    }
    if (out.length) take(offset, Buffer.from(out));
    return out.length;
  }

  async invalidate(_nodeid: bigint, offset: number, len: number): Promise<void> {
    this.invalidated.push([offset, len]);
  }

  /** A program's store into its mapping. */
  poke(offset: number, bytes: number[]): void {
    this.pages.get(Math.floor(offset / PAGE))!.set(bytes, offset % PAGE);
  }
}

function setup(pages = 4): { mirror: PageMirror; kernel: PageCache; device: DevicePages & { revokedFrom: number } } {
  const device = { bytes: new Uint8Array(pages * PAGE), revokedFrom: pages * PAGE, attach: () => {} };
  const kernel = new PageCache();
  const mirror = new PageMirror(7n, device, kernel, pino({ level: 'silent' }));
  /** The program faults every page in: page reads, whose answers the cache keeps. */
  for (let p = 0; p < pages; p++) kernel.pages.set(p, Uint8Array.from(mirror.read(p * PAGE, PAGE)));
  return { mirror, kernel, device };
}

describe('pull', () => {
  it("takes a program's byte only where it changed: a byte the model changed since stays the model's", async () => {
    const { mirror, kernel, device } = setup();
    kernel.poke(10, [0xaa]);
    device.bytes[11] = 0xbb; // the model, not yet pushed
    await mirror.pull();
    expect([device.bytes[10], device.bytes[11]]).toEqual([0xaa, 0xbb]);
    // A second pull of the same page takes nothing new, and loses nothing.
    device.bytes[10] = 0xcc;
    await mirror.pull();
    expect([device.bytes[10], device.bytes[11]]).toEqual([0xcc, 0xbb]);
  });

  it('goes on past a page the program no longer holds, and forgets that page', async () => {
    const { mirror, kernel, device } = setup();
    kernel.poke(PAGE + 1, [1]);
    kernel.poke(3 * PAGE + 1, [3]);
    kernel.pages.delete(2); // dropped by the kernel (reclaim, an mmap() elsewhere)
    await mirror.pull();
    expect([device.bytes[PAGE + 1], device.bytes[3 * PAGE + 1]]).toEqual([1, 3]);
    device.bytes[2 * PAGE] = 9;
    mirror.push();
    expect(kernel.stores).toEqual([]); // a page not held gets nothing: a touch reads it whole
    expect(mirror.pull([{ offset: 2 * PAGE, length: PAGE }])).toBeUndefined();
  });

  it('a direct write() dropped the pages it covers: they are no longer pulled or pushed', () => {
    const { mirror, kernel, device } = setup(1);
    mirror.dropped(0, 4);
    device.bytes[0] = 1;
    mirror.push();
    expect(kernel.stores).toEqual([]);
    expect(mirror.pull()).toBeUndefined();
  });
});

describe('push', () => {
  it('stores exactly the runs the model changed, so a store of the program not yet pulled survives', async () => {
    const { mirror, kernel, device } = setup();
    kernel.poke(5, [0x55]); // the program's, not pulled
    device.bytes.set([1, 2], 3);
    device.bytes.set([7], 6);
    device.bytes[PAGE + 100] = 8;
    mirror.push();
    await mirror.flush();
    expect(kernel.stores).toEqual([
      { offset: 3, hex: '0102' },
      { offset: 6, hex: '07' },
      { offset: PAGE + 100, hex: '08' },
    ]);
    expect(kernel.pages.get(0)![5]).toBe(0x55);
    // Pushed is known: nothing more to store.
    mirror.push();
    expect(kernel.stores).toHaveLength(3);
  });

  it('stores every byte of the ranges a model names (it owns them), on held pages only', async () => {
    const { mirror, kernel, device } = setup(2);
    device.bytes.set([1, 2, 3, 4], 100);
    mirror.push([{ offset: 98, length: 8 }, { offset: 5 * PAGE, length: 4 }]);
    expect(mirror.storing).toBe(true);
    await mirror.flush();
    expect(mirror.storing).toBe(false);
    expect(kernel.stores).toEqual([{ offset: 98, hex: '0000010203040000' }]);
  });
});

describe('revoke', () => {
  it('page reads and writebacks from the cut on fail EIO, and the cached pages from there are dropped', async () => {
    const { mirror, kernel, device } = setup(2);
    device.revokedFrom = PAGE;
    await mirror.revoke(PAGE);
    expect(kernel.invalidated).toEqual([[PAGE, 0]]);
    expect(() => mirror.read(PAGE, PAGE)).toThrow(expect.objectContaining({ code: 'EIO' }));
    expect(() => mirror.writeback(PAGE, Buffer.alloc(PAGE))).toThrow(expect.objectContaining({ code: 'EIO' }));
    // Before the cut, pages are served as before.
    expect(mirror.read(0, PAGE)).toHaveLength(PAGE);
  });
});
