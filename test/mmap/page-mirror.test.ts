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
 * answers from `offset` up to the first page not cached or not up to date
 * (fs/fuse/dev.c fuse_retrieve), a store makes the pages it touches (not up
 * to date unless it fills them). Stores land in the order queued, on
 * another thread: a turn later, or when land() is called while `hold` is
 * set; `queued`, `begun` and `done` count them as the notifier thread does.
 * A writeback's read begins when the test calls writeback(), after every
 * store landed so far, unless `readBegan` says how many were done then.
 */
class PageCache implements PageCacheNotifier {
  readonly pages = new Map<number, Uint8Array>();
  /** Pages a store made, not read: not up to date. */
  readonly partial = new Set<number>();
  readonly stores: { offset: number; hex: string }[] = [];
  readonly invalidated: [number, number][] = [];
  readonly maxRetrieve = 8 * PAGE;
  queued = 0;
  begun = 0;
  done = 0;
  readBegan: number | null = null;
  private landed = 0;
  /** Stores wait for land(). */
  hold = false;
  private batches: { stores: readonly { offset: number; data: Buffer }[]; done: () => void }[] = [];

  get drained(): boolean {
    return this.batches.length === 0;
  }

  get doneBeforeRead(): number {
    return this.readBegan ?? this.done;
  }

  store(_nodeid: bigint, stores: readonly { offset: number; data: Buffer }[]): Promise<void> {
    const copies = stores.map((s) => ({ offset: s.offset, data: Buffer.from(s.data) }));
    this.queued += stores.length;
    return new Promise((done) => {
      this.batches.push({ stores: copies, done });
      if (!this.hold) void Promise.resolve().then(() => this.land());
    });
  }

  /** The notifier thread writes every store queued, in order. */
  land(): void {
    for (const b of this.batches.splice(0)) {
      for (const s of b.stores) {
        this.landed++;
        this.begun = Math.max(this.begun, this.landed);
        this.done = Math.max(this.done, this.landed);
        this.stores.push({ offset: s.offset, hex: s.data.toString('hex') });
        const page = Math.floor(s.offset / PAGE);
        if (!this.pages.has(page)) {
          this.pages.set(page, new Uint8Array(PAGE));
          this.partial.add(page);
        }
        this.pages.get(page)!.set(s.data, s.offset % PAGE);
      }
      b.done();
    }
  }

  /** The bytes a retrieve at `offset` would bring back now. */
  cached(offset: number, size: number): Buffer {
    const out: number[] = [];
    for (let at = offset; at < offset + size; at++) {
      const p = Math.floor(at / PAGE);
      const page = this.pages.get(p);
      if (!page || this.partial.has(p)) break;
      out.push(page[at % PAGE]!);
    }
    return Buffer.from(out);
  }

  /** Replies are copied when the daemon reads them: a turn after the retrieve, or when `capture` says. */
  capture: Promise<void> | null = null;

  async retrieve(_nodeid: bigint, offset: number, size: number, take: (offset: number, data: Buffer) => void): Promise<number> {
    await (this.capture ?? Promise.resolve());
    const got = this.cached(offset, size);
    if (got.length) take(offset, got);
    return got.length;
  }

  async invalidate(_nodeid: bigint, offset: number, len: number): Promise<void> {
    this.invalidated.push([offset, len]);
  }

  /** A program's store into its mapping. */
  poke(offset: number, bytes: number[]): void {
    this.pages.get(Math.floor(offset / PAGE))!.set(bytes, offset % PAGE);
  }

  /** A page the kernel dropped is faulted in again: a page read, whose answer it keeps. */
  fault(mirror: PageMirror, page: number): Uint8Array {
    const data = Uint8Array.from(mirror.read(page * PAGE, PAGE));
    this.pages.set(page, data);
    this.partial.delete(page);
    return data;
  }
}

interface Setup {
  mirror: PageMirror;
  kernel: PageCache;
  device: DevicePages & { revokedFrom: number };
  /** The model changes the byte at `at` to `value` and pushes it, naming it. */
  pushByte: (at: number, value: number) => void;
}

function setup(pages = 4): Setup {
  const device = { bytes: new Uint8Array(pages * PAGE), revokedFrom: pages * PAGE, attach: () => {} };
  const kernel = new PageCache();
  const mirror = new PageMirror(7n, device, kernel, pino({ level: 'silent' }));
  /** The program faults every page in: page reads, whose answers the cache keeps. */
  for (let p = 0; p < pages; p++) kernel.pages.set(p, Uint8Array.from(mirror.read(p * PAGE, PAGE)));
  const pushByte = (at: number, value: number): void => {
    device.bytes[at] = value;
    mirror.push([{ offset: at, length: 1 }]);
  };
  return { mirror, kernel, device, pushByte };
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

  it('goes on past a page the program no longer holds, and still counts it held: a store there makes a page the next touch reads whole', async () => {
    const { mirror, kernel, device } = setup();
    kernel.poke(PAGE + 1, [1]);
    kernel.poke(3 * PAGE + 1, [3]);
    kernel.pages.delete(2); // dropped by the kernel (reclaim, a direct write())
    await mirror.pull();
    expect([device.bytes[PAGE + 1], device.bytes[3 * PAGE + 1]]).toEqual([1, 3]);
    device.bytes[2 * PAGE] = 9;
    mirror.push();
    await mirror.flush();
    expect(kernel.stores).toEqual([{ offset: 2 * PAGE, hex: '09' }]);
    expect(kernel.partial.has(2)).toBe(true);
    expect(kernel.fault(mirror, 2)[0]).toBe(9);
  });

  it('forgets no page a retrieve stopped at: its page read, served before the reply came, keeps getting stores', async () => {
    const { mirror, kernel, device } = setup();
    kernel.pages.delete(2); // dropped; its fault's READ is out when the retrieve looks (not up to date)
    let captured!: () => void;
    kernel.capture = new Promise((r) => (captured = r));
    const pulled = mirror.pull();
    await Promise.resolve();
    const answer = mirror.read(2 * PAGE, PAGE); // the READ, served before the reply is read
    captured();
    await pulled;
    kernel.pages.set(2, Uint8Array.from(answer)); // the kernel fills the page with it
    device.bytes[2 * PAGE + 7] = 0x77;
    mirror.push();
    await mirror.flush();
    expect(kernel.pages.get(2)![7]).toBe(0x77);
  });

  it('retrieves once the stores pushed before have landed: what came back before them is not taken for the program\'s', async () => {
    const { mirror, kernel, device, pushByte } = setup();
    kernel.hold = true;
    pushByte(100, 1);
    kernel.poke(200, [2]); // the program's
    const pulled = mirror.pull();
    await new Promise((r) => setImmediate(r));
    kernel.land();
    await pulled;
    expect([device.bytes[100], device.bytes[200]]).toEqual([1, 2]);
  });

  it('holds stores pushed while a retrieve is out until its reply is merged, and answers that must follow them wait for them', async () => {
    const { mirror, kernel, device, pushByte } = setup();
    let captured!: () => void;
    kernel.capture = new Promise((r) => (captured = r));
    kernel.poke(200, [2]);
    const pulled = mirror.pull();
    await new Promise((r) => setImmediate(r));
    pushByte(100, 1);
    expect(kernel.queued).toBe(0);
    expect(mirror.storing).toBe(true);
    const handed = mirror.handedOver();
    expect(handed).toBeInstanceOf(Promise);
    captured();
    await pulled;
    await handed;
    expect(kernel.queued).toBe(1);
    await mirror.flush();
    expect([device.bytes[100], device.bytes[200], kernel.pages.get(0)![100]]).toEqual([1, 2, 1]);
  });

  it('takes from a writeback no byte of a store still on its way: the page there is older, not the program\'s', () => {
    const { mirror, kernel, device, pushByte } = setup(1);
    kernel.hold = true;
    pushByte(100, 1);
    kernel.poke(200, [2]);
    mirror.writeback(0, Buffer.from(kernel.pages.get(0)!));
    expect([device.bytes[100], device.bytes[200]]).toEqual([1, 2]);
    kernel.land();
  });
});

describe('writebacks while stores are on their way', () => {
  it("take a program's bytes over a store that landed before word of it came back: the program may have acted on it (a tcmu status over its entry)", () => {
    const { mirror, kernel, device } = setup(1);
    kernel.hold = true;
    device.bytes.set([0xa1, 0xa2, 1, 0xa4], 96); // an entry: its header, and a byte the status overwrites
    mirror.push([{ offset: 96, length: 4 }]);
    kernel.land(); // written by the notifier thread; its answer comes a turn later
    kernel.poke(98, [0]); // the program completes it: status GOOD, as the page had it before
    mirror.writeback(0, Buffer.from(kernel.pages.get(0)!));
    expect([...device.bytes.subarray(96, 100)]).toEqual([0xa1, 0xa2, 0, 0xa4]);
  });

  it('take nothing of a store that has not landed in what came back, even begun: it may wait for the lock of the page written back (a dirty page dropped)', () => {
    const { mirror, kernel, device } = setup(1);
    kernel.hold = true;
    device.bytes.set([1, 2], 100);
    mirror.push([{ offset: 100, length: 2 }]);
    kernel.begun = kernel.queued; // the notifier thread waits in its write
    kernel.poke(200, [2]);
    mirror.writeback(0, Buffer.from(kernel.pages.get(0)!));
    expect([device.bytes[100], device.bytes[101], device.bytes[200]]).toEqual([1, 2, 2]);
    kernel.land();
    expect(kernel.pages.get(0)![100]).toBe(1);
  });

  it('of several stores to the same bytes (a cmd_head moved twice), the value of any is not the program\'s', () => {
    const { mirror, kernel, device, pushByte } = setup(1);
    kernel.hold = true;
    pushByte(8, 1);
    pushByte(8, 2);
    kernel.poke(8, [1]); // as the first store left it
    mirror.writeback(0, Buffer.from(kernel.pages.get(0)!));
    expect(device.bytes[8]).toBe(2);
    kernel.land();
  });

  it('judge a store landed only by a byte it gives that the page never had before it: a cmd_head\'s low byte repeats, and entries not landed are not the program\'s zeros', () => {
    const { mirror, kernel, device } = setup(1);
    kernel.hold = true;
    /** A tcmu queue: the entry's len_op, then cmd_head past it (little-endian, one page of ring). */
    const queue = (entry: number): void => {
      device.bytes.set([129, 0, 0, 0], entry);
      device.bytes.set([(entry + 128) & 0xff, (entry + 128) >> 8], 12);
      mirror.push([{ offset: entry, length: 4 }, { offset: 12, length: 2 }]);
    };
    queue(512); // cmd_head 640: 0x80 0x02
    kernel.land();
    queue(640); // 768: 0x00 0x03
    queue(768); // 896: 0x80 0x03, the low byte 640 has
    queue(896); // 1024
    // Written before the read began, and not in the copy: a kernel that
    // copies the page at writepage time (a temporary page) made it before.
    kernel.begun = kernel.done = kernel.queued;
    mirror.writeback(0, Buffer.from(kernel.pages.get(0)!));
    expect([640, 768, 896].map((e) => device.bytes[e])).toEqual([129, 129, 129]);
    expect([...device.bytes.subarray(12, 14)]).toEqual([0x00, 0x04]);
    kernel.land();
    expect([640, 768, 896].map((e) => kernel.pages.get(0)![e])).toEqual([129, 129, 129]);
  });

  it('take no store not begun for landed, whatever byte the program wrote: it was in no copy', () => {
    const { mirror, kernel, device, pushByte } = setup(1);
    kernel.hold = true;
    pushByte(100, 7);
    pushByte(200, 5);
    kernel.poke(200, [5]); // the program's own 5, where the second store puts one too
    mirror.writeback(0, Buffer.from(kernel.pages.get(0)!));
    expect(device.bytes[100]).toBe(7);
    kernel.land();
  });

  it('take no byte of a store written while the page was copied for its part there: the copy may hold the part before it and not the rest', () => {
    const { mirror, kernel, device } = setup(1);
    kernel.hold = true;
    device.bytes.set([1, 2, 3, 4, 5, 6, 7, 8], 96); // an entry's header: len_op, cmd_id, flags
    mirror.push([{ offset: 96, length: 8 }]);
    kernel.begun = kernel.queued; // the notifier thread is writing it as the read copies the page
    const copy = Buffer.from(kernel.pages.get(0)!);
    copy.set([1, 2, 3, 4], 96); // the copy passed the store's first half after it was written, the rest before
    mirror.writeback(0, copy);
    expect([...device.bytes.subarray(96, 104)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    kernel.land();
  });

  it('take from a store written while the page was copied nothing of the stores before it: the copy may have passed their bytes first', () => {
    const { mirror, kernel, device, pushByte } = setup(1);
    kernel.hold = true;
    pushByte(100, 7);
    pushByte(200, 9);
    kernel.readBegan = kernel.done; // the read begins; then both are written as it copies the page
    const copy = Buffer.from(kernel.pages.get(0)!);
    kernel.land();
    copy[200] = 9; // byte 100 copied before the first store, byte 200 after the second
    mirror.writeback(0, copy);
    expect([device.bytes[100], device.bytes[200]]).toEqual([7, 9]);
  });

  it('judge each page of a writeback by itself: a store a later page shows may have landed after an earlier page was copied', () => {
    const { mirror, kernel, device, pushByte } = setup(2);
    kernel.hold = true;
    pushByte(100, 7);
    pushByte(PAGE + 100, 9);
    const first = Buffer.from(kernel.pages.get(0)!); // copied before either store landed
    kernel.land();
    mirror.writeback(0, Buffer.concat([first, kernel.pages.get(1)!]));
    expect([device.bytes[100], device.bytes[PAGE + 100]]).toEqual([7, 9]);
  });
});

describe('page reads while stores are on their way', () => {
  it('answer the page as it was before the stores not begun, which land on it after: a cmd_head is never seen ahead of its entry', async () => {
    const { mirror, kernel, device, pushByte } = setup(2);
    kernel.hold = true;
    pushByte(PAGE + 16, 0xe1); // the entry, on page 1
    pushByte(8, 0x40); // cmd_head, on page 0, pushed after it
    kernel.pages.delete(0); // dropped (the kick's direct write()): faulted in again
    const page0 = kernel.fault(mirror, 0);
    expect(page0[8]).toBe(0); // not ahead of the entry, still on its way
    kernel.land();
    expect([kernel.pages.get(0)![8], kernel.pages.get(1)![16]]).toEqual([0x40, 0xe1]);
    await mirror.flush();
    // Known as landed: nothing more to store, and a pull takes nothing back.
    mirror.push();
    expect(kernel.stores).toHaveLength(2);
    await mirror.pull();
    expect([device.bytes[8], device.bytes[PAGE + 16]]).toEqual([0x40, 0xe1]);
  });

  it('a store already begun is in the page or waits for its lock: the answer has it', () => {
    const { mirror, kernel, pushByte } = setup(1);
    kernel.hold = true;
    pushByte(8, 0x40);
    kernel.begun = kernel.queued; // the notifier thread is writing it
    expect(mirror.read(0, PAGE)[8]).toBe(0x40);
    kernel.land();
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
