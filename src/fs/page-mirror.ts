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
 * names the ranges it owns: push(ranges)). A page with no `seen` entry is
 * not cached as far as we know: a pull skips it (a program that touches it
 * reads it first), a push too.
 */
import type { Logger } from 'pino';
import type { ByteRange, DevicePages, PageSync } from '../devio.js';
import { E, Errno } from '../errno.js';
import type { PageCacheNotifier } from '../fuse/server.js';

const PAGE = 4096;

export class PageMirror implements PageSync {
  /** Page index -> the page as programs' page cache holds it, as far as we know. */
  private readonly seen = new Map<number, Uint8Array>();
  /** Stores written by the notifier thread and not yet done. */
  private readonly pending = new Set<Promise<void>>();
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
    for (let at = 0; at + PAGE <= data.length; at += PAGE) {
      if ((offset + at) % PAGE === 0) this.seen.set((offset + at) / PAGE, data.subarray(at, at + PAGE));
    }
    return data;
  }

  /** A writeback WRITE (FUSE_WRITE_CACHE): dirty pages of a program's mapping. */
  writeback(offset: number, data: Buffer): number {
    if (offset >= this.end) throw new Errno(E.EIO);
    this.merge(offset, data);
    return data.length;
  }

  /**
   * A direct write() went out: the kernel wrote back and dropped the
   * cached pages it covers before sending it (fs/fuse/file.c
   * fuse_direct_io), so they are no longer held.
   */
  dropped(offset: number, size: number): void {
    for (let p = Math.floor(offset / PAGE); p * PAGE < offset + size; p++) this.seen.delete(p);
  }

  /** Takes a program's bytes at `offset` (see the header comment). */
  private merge(offset: number, data: Uint8Array): void {
    const bytes = this.pages.bytes;
    const stop = Math.min(offset + data.length, this.end);
    for (let at = offset; at < stop; ) {
      const page = Math.floor(at / PAGE);
      const pageEnd = Math.min((page + 1) * PAGE, stop);
      const theirs = data.subarray(at - offset, pageEnd - offset);
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
   * (or not up to date: fs/fuse/dev.c fuse_retrieve): that page is no
   * longer held, and the rest is asked for again. Returns undefined, at
   * once, when no page in range is held.
   */
  pull(ranges?: readonly ByteRange[]): Promise<void> | undefined {
    const wanted = this.held(ranges);
    if (wanted.length === 0) return undefined;
    return Promise.all(wanted.map((r) => this.fetch(r.offset, r.length))).then(() => undefined);
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
      const missing = Math.floor((at + got) / PAGE);
      this.seen.delete(missing);
      at = (missing + 1) * PAGE;
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
    const stores: { offset: number; data: Buffer }[] = [];
    const store = (at: number, end: number): void => {
      const data = Buffer.from(bytes.subarray(at, end));
      this.seen.get(Math.floor(at / PAGE))!.set(data, at % PAGE);
      stores.push({ offset: at, data });
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
    const p: Promise<void> = this.kernel.store(this.nodeid, stores).then(
      () => void this.pending.delete(p),
      (err: unknown) => {
        this.pending.delete(p);
        this.log.warn({ err, stores: stores.length }, 'NOTIFY_STORE failed');
      },
    );
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

  /** Stores are on their way: an answer that must follow them goes through the notifier thread too. */
  get storing(): boolean {
    return !this.kernel.drained;
  }

  flush(): Promise<void> | undefined {
    if (this.pending.size === 0) return undefined;
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
