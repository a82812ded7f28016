/**
 * Programs' page caches of one device's regions, when the pages cannot be
 * shared through a backing file (no FUSE passthrough): the node is mapped
 * through the page cache of its FUSE inode (FUSE_DIRECT_IO_ALLOW_MMAP), so
 * the kernel holds the programs' copy and the device holds its own
 * (`DevicePages.bytes`). This keeps the two in step
 * (docs/fuse-protocol.md#page-cache-mappings):
 *
 * - a page fault arrives as a page read, answered from the device's bytes;
 * - a dirty page comes back as a writeback WRITE, and the pages programs
 *   hold are fetched with FUSE_NOTIFY_RETRIEVE (pull); both are merged:
 * - what the device changed is stored into the cached pages with
 *   FUSE_NOTIFY_STORE (push).
 *
 * Merging needs to know which side changed a byte: `seen` holds, per page,
 * the bytes as the page cache last had them to our knowledge (what a page
 * read answered, what was stored, what came back). A byte of a page that
 * comes back differing from it was written by a program and is taken; one
 * that matches is left as the device has it, which may be newer. A push
 * stores the bytes that differ from it, never a byte the device did not
 * change, so a program's stores not yet pulled survive it (unless a model
 * names the ranges it owns: push(ranges)). A page with no `seen` entry was
 * never cached: a pull skips it (a program that touches it reads it
 * first), a push too. A page once cached is never forgotten, though the
 * kernel may drop it at any time (a direct write(), reclaim): that cannot
 * be known for sure from here (a page read after the drop may be served
 * before the write() that dropped it arrives; a retrieve that stops at a
 * page may race its READ), and a page wrongly taken for uncached would
 * miss every later store. A store to a page no longer cached makes a page
 * that is not up to date, which a touch reads in full, and a retrieve
 * stops at, so taking a page for cached costs a store, never a byte.
 *
 * STOREs are written by the notifier thread, in the order pushed, and land
 * some time after the push: what comes back meanwhile may not have them
 * yet. Three rules keep the copies in step across that lag:
 *
 * - a retrieve is written once every store pushed before it has landed,
 *   and stores pushed while it is out wait until its reply is merged, so a
 *   reply holds exactly the stores pushed before it (and the program's);
 * - what comes back (a reply, a writeback) is judged against the stores
 *   not known to have landed, by the data itself: when it came back is not
 *   known (a writeback may be copied before or after a store lands), and
 *   word that a store landed comes later than a program may act on it (a
 *   tcmu consumer completes the entry, on page 0, which the kick writes
 *   back and drops). Each page is judged by itself (pages are copied one
 *   after another, with stores landing between). A store the notifier
 *   thread had written when the read that brought the page back began,
 *   of which a byte came back at a value it gives and one that byte never
 *   had before it, has landed, and so has every store before it (a byte
 *   back at a value it had before proves nothing: a cmd_head's low byte
 *   repeats, 640 and 896 share theirs, and taking that for proof took the
 *   zeros of entries not landed for the program's, and tcmu-runner spun
 *   on an entry of length 0). A store written since shows nothing: where
 *   the kernel keeps no copy of a page under writeback (6.18 here), the
 *   page is copied as we read the request, without its lock, so a store
 *   written meanwhile may be in the copy in part. Under a store not
 *   landed, a byte that came back as the page cache had it before, or as
 *   a store gives it, is not the program's and stays the device's; any
 *   other value is the program's (its status over a landed entry). A
 *   program learns of a store from a later one (the cmd_head past an
 *   entry) or from an answer, each begun after the thread counted the
 *   store written; what this cannot see is a program that acts on a
 *   store's own bytes before that count (the thread preempted right after
 *   its write) and puts back a value a byte had before (a flag it
 *   clears): that byte is left to the device until the page comes back;
 * - a page read is answered with the page as it was before the stores not
 *   yet begun (each one's `prior`): they land after the answer (a STORE
 *   waits for the page's lock, which the fault holds until we answer; one
 *   begun that found the page unlocked is in it, or waits and brings the
 *   same bytes again), so the program sees the page change in the order
 *   pushed, as it would had it held the page, and never a byte ahead of
 *   the stores to other pages (a tcmu cmd_head ahead of the entry it
 *   points past).
 */
import type { Logger } from 'pino';
import type { ByteRange, DevicePages, PageSync } from '../devio.js';
import { E, Errno } from '../errno.js';
import type { PageCacheNotifier } from '../fuse/server.js';

const PAGE = 4096;

/** One FUSE_NOTIFY_STORE, pushed and not known to have landed. */
interface Store {
  offset: number;
  data: Buffer;
  /** The bytes it replaces, as the page cache has them before it (from `seen`). */
  prior: Buffer;
  /** Its number in the notifier thread's order (PageCacheNotifier.queued); 0 while it waits for a pull. */
  seq: number;
}

export class PageMirror implements PageSync {
  /** Page index -> the page as programs' page cache holds it, as far as we know. */
  private readonly seen = new Map<number, Uint8Array>();
  /** Stores written by the notifier thread and not yet done. */
  private readonly pending = new Set<Promise<void>>();
  /** Stores handed to the notifier thread and not known to have landed, in order. */
  private inflight: Store[] = [];
  /** Stores pushed while a pull is out, in order: handed over once it is merged. */
  private waiting: Store[] = [];
  /** Pulls out; while any is, pushed stores wait. */
  private pulls = 0;
  /** Those waiting for the stores held back by pulls to be handed over. */
  private released: (() => void)[] = [];
  /** Open files of the node in page-cache mode: the mirror lives while one is open. */
  opens = 0;

  constructor(
    private readonly nodeid: bigint,
    readonly pages: DevicePages,
    private readonly kernel: PageCacheNotifier,
    private readonly log: Logger,
  ) {}

  private get end(): number {
    return Math.min(this.pages.bytes.length, this.pages.revokedFrom);
  }

  /**
   * A page read (a fault, or readahead around one): the device's bytes,
   * which become what the page cache holds. Past a revoked offset the
   * read fails, so a touch of a revoked page gets SIGBUS (uio_vma_fault);
   * a read that starts before it is answered short, and the kernel takes
   * the file to end there (fs/fuse/file.c fuse_short_read).
   */
  read(offset: number, size: number): Buffer {
    if (offset >= this.end) throw new Errno(E.EIO);
    const data = Buffer.from(this.pages.bytes.subarray(offset, Math.min(offset + size, this.end)));
    // As before the stores not begun yet, latest first (see the header).
    const later = this.unbegun();
    for (let i = later.length - 1; i >= 0; i--) overlay(data, offset, later[i]!.offset, later[i]!.prior);
    for (let at = 0; at + PAGE <= data.length; at += PAGE) {
      if ((offset + at) % PAGE !== 0) continue;
      // What the page holds once those stores have landed on the answer.
      const page = Uint8Array.from(data.subarray(at, at + PAGE));
      for (const st of later) overlay(page, offset + at, st.offset, st.data);
      this.seen.set((offset + at) / PAGE, page);
    }
    return data;
  }

  /** A writeback WRITE (FUSE_WRITE_CACHE): dirty pages of a program's mapping. */
  writeback(offset: number, data: Buffer): number {
    if (offset >= this.end) throw new Errno(E.EIO);
    this.merge(offset, data);
    return data.length;
  }

  /** Stores not begun by the notifier thread, in order, with those held back by a pull. */
  private unbegun(): Store[] {
    if (this.inflight.length === 0) return this.waiting;
    const begun = this.kernel.begun;
    return [...this.inflight.filter((st) => st.seq > begun), ...this.waiting];
  }

  /**
   * `data` as it came back at `offset`, with each byte that is a value the
   * page cache had or is being given there, under stores not known to have
   * landed, replaced by what `seen` says it will be (so merge leaves it to
   * the device): see the header.
   */
  private landed(offset: number, data: Uint8Array): Uint8Array {
    const end = offset + data.length;
    const open = (this.inflight.length ? [...this.inflight, ...this.waiting] : this.waiting).filter((st) => st.offset < end && st.offset + st.data.length > offset);
    if (open.length === 0) return data;
    // Stores land in order: the last one the data shows landed, and every
    // one before it, did. A byte shows a store only with a value it never
    // had before that store (in the page cache before the open stores, or
    // from an earlier one): a cmd_head moved 640, 768, 896 has 896's low
    // byte at 640 too, and an entry's zeros are what the ring had. Only a
    // store written before the read that brought `data` began shows
    // anything: it is in the copy whole, or (a copy made before, under the
    // page's lock) not at all. One written since (or not yet, or held back
    // by a pull) may be in it in part, a byte of it there and the next
    // one not, so that a byte of it proves nothing of the others.
    const done = this.kernel.doneBeforeRead;
    // Per byte: its values in order (the page cache's before the open
    // stores, then each one's) and the index of the store giving each.
    const history = new Map<number, { values: number[]; by: number[] }>();
    let lastLanded = -1;
    open.forEach((st, i) => {
      const mayShow = st.seq > 0 && st.seq <= done;
      for (let at = Math.max(offset, st.offset); at < Math.min(end, st.offset + st.data.length); at++) {
        const v = st.data[at - st.offset]!;
        let h = history.get(at);
        if (!h) history.set(at, (h = { values: [st.prior[at - st.offset]!], by: [-1] }));
        if (mayShow && data[at - offset] === v && !h.values.includes(v)) lastLanded = i;
        h.values.push(v);
        h.by.push(i);
      }
    });
    // A byte may hold by now the value the last store known landed gave it
    // (the page cache's before, if none did) or a later store's: not the program's.
    const out = Uint8Array.from(data);
    for (const [at, { values, by }] of history) {
      let from = by.length - 1;
      while (from > 0 && by[from]! > lastLanded) from--;
      const seen = this.seen.get(Math.floor(at / PAGE));
      if (seen && values.indexOf(out[at - offset]!, from) >= 0) out[at - offset] = seen[at % PAGE]!;
    }
    return out;
  }

  /** Takes a program's bytes at `offset` (see the header comment). */
  private merge(offset: number, came: Uint8Array): void {
    const bytes = this.pages.bytes;
    const stop = Math.min(offset + came.length, this.end);
    for (let at = offset; at < stop; ) {
      const page = Math.floor(at / PAGE);
      const pageEnd = Math.min((page + 1) * PAGE, stop);
      // Judged page by page: pages are copied one after the other, so a
      // store one page shows may have landed after an earlier page was copied.
      const theirs = this.landed(at, came.subarray(at - offset, pageEnd - offset));
      const seen = this.seen.get(page);
      if (!seen) {
        // Not known to be cached, yet it came back: all of it is theirs.
        bytes.set(theirs, at);
        if (at === page * PAGE && pageEnd - at === PAGE) this.seen.set(page, Uint8Array.from(theirs));
      } else {
        const from = at - page * PAGE;
        if (!Buffer.from(theirs.buffer, theirs.byteOffset, theirs.length).equals(seen.subarray(from, from + theirs.length))) {
          for (let i = 0; i < theirs.length; i++) {
            const b = theirs[i]!;
            if (b !== seen[from + i]) {
              bytes[at + i] = b;
              seen[from + i] = b;
            }
          }
        }
      }
      at = pageEnd;
    }
  }

  /**
   * Fetches what programs hold of `ranges` (default: every page they hold)
   * and merges it in. A reply ends at the first page that is not cached
   * (or not up to date: fs/fuse/dev.c fuse_retrieve), and the rest is
   * asked for again past it. The retrieves go out once every store pushed
   * before has landed, and stores pushed meanwhile wait for their replies
   * (see the header). Returns undefined, at once, when no page in range
   * was ever cached.
   */
  pull(ranges?: readonly ByteRange[]): Promise<void> | undefined {
    const wanted = this.held(ranges);
    if (wanted.length === 0) return undefined;
    this.pulls++;
    const done = (): void => {
      if (--this.pulls === 0) this.release();
    };
    return this.fetchAll(wanted).then(done, (err: unknown) => {
      done();
      throw err;
    });
  }

  private async fetchAll(wanted: readonly ByteRange[]): Promise<void> {
    // Stores pushed from now on wait (this.pulls): one wait is enough.
    await this.flushPosted();
    await Promise.all(wanted.map((r) => this.fetch(r.offset, r.length)));
  }

  /** Hands the stores held back by pulls to the notifier thread, in order. */
  private release(): void {
    const stores = this.waiting;
    this.waiting = [];
    if (stores.length) this.post(stores);
    for (const r of this.released.splice(0)) r();
  }

  private async fetch(offset: number, length: number): Promise<void> {
    const end = offset + length;
    for (let at = offset; at < end; ) {
      const want = Math.min(end - at, this.kernel.maxRetrieve);
      let got: number;
      try {
        got = await this.kernel.retrieve(this.nodeid, at, want, (from, data) => this.merge(from, data));
      } catch (err) {
        // The connection ended: there is no page cache left to pull from.
        this.log.debug({ err, offset: at }, 'NOTIFY_RETRIEVE failed; nothing pulled');
        return;
      }
      if (got === want) {
        at += got;
        continue;
      }
      // Not cached (or not up to date) now; still in `seen` (see the header).
      at = (Math.floor((at + got) / PAGE) + 1) * PAGE;
    }
  }

  /**
   * Stores what the device changed into the pages programs hold, as one
   * batch for the notifier thread; flush() says when it is in. Without
   * `ranges` (the core's 'auto' sync), every byte of a held page that
   * differs from what the page cache has, and only those: a byte the
   * device did not change may hold a program's store not yet pulled.
   * With `ranges` (a model naming what it wrote, such as a tcmu entry and
   * its data), all of them: the model owns those bytes, as the kernel owns
   * a ring entry it queues. Each store is a copy taken now.
   */
  push(ranges?: readonly ByteRange[]): void {
    const bytes = this.pages.bytes;
    const stores: Store[] = [];
    const store = (at: number, end: number): void => {
      const data = Buffer.from(bytes.subarray(at, end));
      const seen = this.seen.get(Math.floor(at / PAGE))!;
      const prior = Buffer.from(seen.subarray(at % PAGE, at % PAGE + data.length));
      seen.set(data, at % PAGE);
      stores.push({ offset: at, data, prior, seq: 0 });
    };
    for (const r of this.held(ranges)) {
      for (let at = r.offset; at < r.offset + r.length; ) {
        const page = Math.floor(at / PAGE);
        const pageEnd = Math.min((page + 1) * PAGE, r.offset + r.length);
        if (ranges) store(at, pageEnd);
        else this.changedRuns(page, at, pageEnd, store);
        at = pageEnd;
      }
    }
    if (stores.length === 0) return;
    if (this.pulls > 0) this.waiting.push(...stores);
    else this.post(stores);
  }

  /** Hands `stores` to the notifier thread as one batch, numbered in its order. */
  private post(stores: Store[]): void {
    // store() queues them before it returns: they are the last ones queued then.
    const p: Promise<void> = this.kernel.store(this.nodeid, stores).then(
      () => landed(),
      (err: unknown) => {
        landed();
        this.log.warn({ err, stores: stores.length }, 'NOTIFY_STORE failed');
      },
    );
    const last = this.kernel.queued;
    stores.forEach((st, i) => (st.seq = last - stores.length + 1 + i));
    this.inflight.push(...stores);
    const landed = (): void => {
      this.pending.delete(p);
      const done = new Set(stores);
      this.inflight = this.inflight.filter((st) => !done.has(st));
    };
    this.pending.add(p);
  }

  /** Calls `store` for each run of bytes in [at, end) of `page` that differs from what the page cache has. */
  private changedRuns(page: number, at: number, end: number, store: (at: number, end: number) => void): void {
    const bytes = this.pages.bytes;
    const seen = this.seen.get(page)!;
    const base = page * PAGE;
    if (Buffer.from(bytes.buffer, bytes.byteOffset + at, end - at).equals(seen.subarray(at - base, end - base))) return;
    for (let i = at; i < end; ) {
      if (bytes[i] === seen[i - base]) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < end && bytes[j] !== seen[j - base]) j++;
      store(i, j);
      i = j;
    }
  }

  /** Stores are on their way: an answer that must follow them goes through the notifier thread too, once handedOver(). */
  get storing(): boolean {
    return !this.kernel.drained || this.waiting.length > 0;
  }

  /**
   * Settles once the stores pushed so far are with the notifier thread,
   * so that an answer queued behind them then follows them; undefined when
   * they are already (none waits for a pull).
   */
  handedOver(): Promise<void> | undefined {
    if (this.waiting.length === 0) return undefined;
    return new Promise((r) => this.released.push(r));
  }

  flush(): Promise<void> | undefined {
    const handed = this.handedOver();
    if (handed) return handed.then(() => this.flushPosted());
    return this.flushPosted();
  }

  /**
   * Settles once every store handed to the notifier thread so far is
   * written; undefined when they are. The thread's shared counter says so
   * at once (PageCacheNotifier.drained), before its message does: waiting
   * for that message costs a turn of the event loop, on every kick.
   */
  private flushPosted(): Promise<void> | undefined {
    if (this.pending.size === 0) return undefined;
    if (this.kernel.drained) {
      this.inflight = [];
      return undefined;
    }
    return Promise.all(this.pending).then(() => undefined);
  }

  /**
   * Unplug of the regions from `from` on: reads there fail already
   * (DevicePages.revokedFrom); this drops the pages programs hold, so
   * their next touch reads one and gets SIGBUS. Dirty pages are written
   * back on the way (and refused: writeback() fails EIO there).
   */
  async revoke(from: number): Promise<void> {
    for (const page of this.seen.keys()) if (page * PAGE >= from) this.seen.delete(page);
    await this.kernel.invalidate(this.nodeid, from, 0);
  }

  /**
   * The parts of `ranges` (default: all) on pages programs hold, merged
   * into runs within the readable end; each run is one retrieve (up to
   * max_write) or a series of stores.
   */
  private held(ranges?: readonly ByteRange[]): ByteRange[] {
    if (this.seen.size === 0) return [];
    const runs: ByteRange[] = [];
    const add = (at: number, end: number): void => {
      const last = runs[runs.length - 1];
      if (last && last.offset + last.length === at) last.length += end - at;
      else runs.push({ offset: at, length: end - at });
    };
    if (!ranges) {
      // Every page held, in order (a region of a GiB has few of them).
      for (const page of [...this.seen.keys()].sort((a, b) => a - b)) {
        if (page * PAGE < this.end) add(page * PAGE, Math.min((page + 1) * PAGE, this.end));
      }
      return runs;
    }
    for (const r of ranges) {
      const stop = Math.min(r.offset + r.length, this.end);
      for (let at = Math.max(0, r.offset); at < stop; ) {
        const page = Math.floor(at / PAGE);
        const pageEnd = Math.min((page + 1) * PAGE, stop);
        if (this.seen.has(page)) add(at, pageEnd);
        at = pageEnd;
      }
    }
    return runs;
  }
}

/** Copies the part of `src` (bytes at `srcOffset`) that falls within `dst` (bytes at `dstOffset`). */
function overlay(dst: Uint8Array, dstOffset: number, srcOffset: number, src: Uint8Array): void {
  const from = Math.max(dstOffset, srcOffset);
  const to = Math.min(dstOffset + dst.length, srcOffset + src.length);
  if (from < to) dst.set(src.subarray(from - srcOffset, to - srcOffset), from - dstOffset);
}
