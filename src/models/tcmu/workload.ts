/**
 * A background SCSI workload on one ring: `depth` commands outstanding, a
 * read/write mix over chunks of the device, every write carrying a pattern
 * that names its chunk and write number, every read of a chunk whose last
 * write was acknowledged checked against that pattern. Two commands never
 * overlap (a chunk is busy while a command on it is out), so a read's
 * expected content is known. A write that did not end GOOD makes its
 * chunk's content unknown (the backend may or may not have written it)
 * until the next acknowledged write.
 *
 * Every submission is accounted for: by outcome, as completed (GOOD),
 * failed (any other end) or timed out, and `lost` (submitted, never ended)
 * is what is left; the device's removal ends every command, so a workload
 * running across an unplug ends with lost = 0 or a bug.
 */
import { createHash } from 'node:crypto';
import type { Outcome, TcmuRing } from './ring.js';
import { read, SAM_STAT_GOOD, write } from './scsi.js';

export interface WorkloadOptions {
  /** Commands outstanding at once (default 32). */
  depth: number;
  /** Percent of commands that are reads (default 50). */
  readPercent: number;
  /** Blocks per command (default 8). */
  blocksPerCommand: number;
  /** Chunks used, from LBA 0 (default: as many as the device holds). */
  chunks: number;
  /** Stop submitting after this many commands (0: until stopped). */
  maxCommands: number;
  /** 16-byte CDBs instead of 10. */
  cdb16: boolean;
  seed: number;
}

export interface InFlightOutcome {
  seq: number;
  cmdId: number;
  op: 'read' | 'write';
  lba: number;
  outcome: Outcome;
  status: number;
}

export interface WorkloadReport {
  running: boolean;
  submitted: number;
  completed: number;
  failed: number;
  timedOut: number;
  /** Submitted and not ended (yet). */
  outstanding: number;
  /** Still not ended once the device was removed, which ends every command: should be 0. */
  lost: number;
  reads: number;
  writes: number;
  /** Writes the backend acknowledged GOOD. */
  acknowledgedWrites: number;
  /** Reads whose data matched the last acknowledged write. */
  verifiedReads: number;
  /** Reads whose data did not: an acknowledged write was lost or corrupted. */
  verifyErrors: number;
  byOutcome: Partial<Record<Outcome, number>>;
  byStatus: Record<string, number>;
}

/** Every field of a WorkloadReport (the type checks the list is whole): the tcmu_workload_done event's. */
export const WORKLOAD_REPORT_FIELDS = Object.keys({
  running: 1,
  submitted: 1,
  completed: 1,
  failed: 1,
  timedOut: 1,
  outstanding: 1,
  lost: 1,
  reads: 1,
  writes: 1,
  acknowledgedWrites: 1,
  verifiedReads: 1,
  verifyErrors: 1,
  byOutcome: 1,
  byStatus: 1,
} satisfies Record<keyof WorkloadReport, 1>);

/**
 * What a workload knew of the device's content when it ended: per chunk,
 * the number of its last acknowledged write (or UNWRITTEN / UNKNOWN). A
 * workload started with it on the next generation of the device (a
 * replug, a restarted consumer on the same backing store) checks that
 * every write acknowledged before the unplug is still there.
 */
export interface AckedContent {
  blocksPerCommand: number;
  gens: number[];
  /** Higher than every write number used, so new writes never repeat an old pattern. */
  nextGen: number;
}

/**
 * Where the content the last workload on a backstore (config.ts
 * backstoreKey) had acknowledged when its device was removed is kept, for
 * `workload_start {resume: true}` on a later device with the same
 * backstore: the model's data on this emulator (Instance.modelData).
 */
export const ackedKey = (backstore: string): string => `acked:${backstore}`;

/** One chunk in a workload_export: where it is, and what it holds. */
export interface ExportedChunk {
  chunk: number;
  lba: number;
  blocks: number;
  /** acked: the blocks hold write `write`'s pattern; unwritten: never written by the workload; unknown: a write did not end GOOD. */
  state: 'acked' | 'unwritten' | 'unknown';
  write?: number;
  /** SHA-256 of the acked content, hex. */
  sha256?: string;
}

/** The acknowledged content as chunk records. */
export function exportAcked(a: AckedContent, blockSize: number): ExportedChunk[] {
  const bytes = a.blocksPerCommand * blockSize;
  return a.gens.map((gen, chunk) => {
    const at = { chunk, lba: chunk * a.blocksPerCommand, blocks: a.blocksPerCommand };
    if (gen === UNWRITTEN) return { ...at, state: 'unwritten' };
    if (gen === UNKNOWN) return { ...at, state: 'unknown' };
    return { ...at, state: 'acked', write: gen, sha256: createHash('sha256').update(pattern(chunk, gen, bytes)).digest('hex') };
  });
}

interface ChunkState {
  busy: boolean;
  /** Write number of the last acknowledged write, -1 never written, -2 unknown. */
  gen: number;
}

/** How long the workload waits before submitting again after a command that ended without reaching the consumer. */
const RETRY_AFTER_MS = 10;
const UNWRITTEN = -1;
const UNKNOWN = -2;

/** A small LCG: the same seed gives the same command stream. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

/**
 * The content of a chunk after write `gen`: each 16-byte word names the
 * chunk, the write (all 53 bits of it, low word then high) and its own
 * position, so no two writes of any run share a pattern.
 */
export function pattern(chunk: number, gen: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  const low = gen % 2 ** 32;
  const high = Math.floor(gen / 2 ** 32);
  for (let i = 0; i + 16 <= bytes; i += 16) {
    b.writeUInt32LE(chunk, i);
    b.writeUInt32LE(low, i + 4);
    b.writeUInt32LE(high, i + 8);
    b.writeUInt32LE(i >>> 4, i + 12);
  }
  return b;
}

export class Workload {
  private readonly chunks: ChunkState[];
  private readonly random: () => number;
  private running = true;
  private seq = 0;
  private nextGen = 1;
  private readonly out = new Map<number, { op: 'read' | 'write'; lba: number }>();
  private readonly counts: Omit<WorkloadReport, 'running' | 'outstanding' | 'lost' | 'byOutcome' | 'byStatus'> = {
    submitted: 0,
    completed: 0,
    failed: 0,
    timedOut: 0,
    reads: 0,
    writes: 0,
    acknowledgedWrites: 0,
    verifiedReads: 0,
    verifyErrors: 0,
  };
  private readonly byOutcome: Partial<Record<Outcome, number>> = {};
  private readonly byStatus: Record<string, number> = {};
  /** How the commands outstanding when `markRemoval` ran ended. */
  private watch: Set<number> | null = null;
  private readonly watched: InFlightOutcome[] = [];
  private lost = 0;

  constructor(
    private readonly ring: TcmuRing,
    private readonly blockSize: number,
    private readonly o: WorkloadOptions,
    /** Called once when maxCommands commands have all ended. */
    private readonly onDone?: (r: WorkloadReport) => void,
    carried?: AckedContent,
  ) {
    this.chunks = Array.from({ length: o.chunks }, (_, i) => ({ busy: false, gen: carried?.gens[i] ?? UNWRITTEN }));
    if (carried) this.nextGen = carried.nextGen;
    this.random = rng(o.seed);
    for (let i = 0; i < Math.min(o.depth, o.chunks); i++) this.next();
  }

  private next(): void {
    if (!this.running || (this.o.maxCommands && this.counts.submitted >= this.o.maxCommands)) return;
    const free = this.pickChunk();
    if (free < 0) return;
    const chunk = this.chunks[free]!;
    chunk.busy = true;
    const lba = free * this.o.blocksPerCommand;
    const bytes = this.o.blocksPerCommand * this.blockSize;
    const isRead = this.random() * 100 < this.o.readPercent;
    const seq = ++this.seq;
    this.counts.submitted++;
    const gen = isRead ? 0 : this.nextGen++;
    const req = isRead ? read(lba, this.o.blocksPerCommand, this.blockSize, this.o.cdb16) : write(lba, pattern(free, gen, bytes), this.blockSize, this.o.cdb16);
    if (isRead) this.counts.reads++;
    else this.counts.writes++;
    this.out.set(seq, { op: isRead ? 'read' : 'write', lba });
    void this.ring.submit(req).then((c) => {
      this.out.delete(seq);
      // An expired command may still be carried out until its entry leaves
      // the ring (tcmu_check_expired_ring_cmd keeps it there): its chunk
      // stays busy until then, or a late write would fail the next read.
      if (c.entryReleased) {
        void c.entryReleased.then(() => {
          chunk.busy = false;
          if (this.out.size < this.o.depth) this.next();
        });
      } else chunk.busy = false;
      this.byOutcome[c.outcome] = (this.byOutcome[c.outcome] ?? 0) + 1;
      this.byStatus[String(c.status)] = (this.byStatus[String(c.status)] ?? 0) + 1;
      const good = c.outcome === 'completed' && c.status === SAM_STAT_GOOD;
      if (good) this.counts.completed++;
      else if (c.outcome === 'timed_out') this.counts.timedOut++;
      else this.counts.failed++;
      if (isRead && good && chunk.gen >= 0) {
        if (c.data.equals(pattern(free, chunk.gen, bytes))) this.counts.verifiedReads++;
        else this.counts.verifyErrors++;
      }
      if (!isRead) {
        chunk.gen = good ? gen : UNKNOWN;
        if (good) this.counts.acknowledgedWrites++;
      }
      if (this.watch?.delete(seq)) {
        this.watched.push({ seq, cmdId: c.cmdId, op: isRead ? 'read' : 'write', lba, outcome: c.outcome, status: c.status });
      }
      // A command the consumer never saw (BUSY while blocked, a broken or
      // removed ring) ends at once; resubmitting in the same microtask
      // chain would never yield to the event loop, and so starve the FUSE
      // requests the consumer needs answered to unblock. Retry a moment
      // later, as the SCSI midlayer does with BUSY.
      if (c.outcome === 'completed' || c.outcome === 'timed_out') this.next();
      else setTimeout(() => this.next(), RETRY_AFTER_MS);
      if (this.running && this.out.size === 0 && this.o.maxCommands && this.counts.submitted >= this.o.maxCommands) {
        this.running = false;
        this.onDone?.(this.report());
      }
    });
  }

  /** A random chunk with no command out on it, or -1. */
  private pickChunk(): number {
    const n = this.chunks.length;
    let i = Math.floor(this.random() * n);
    for (let k = 0; k < n; k++, i = (i + 1) % n) if (!this.chunks[i]!.busy) return i;
    return -1;
  }

  stop(): void {
    this.running = false;
  }

  /**
   * After the ring's removal ended every command: let their completions
   * run (they are promise callbacks), then count what is still out as lost.
   */
  async finish(): Promise<WorkloadReport> {
    this.running = false;
    await new Promise((resolve) => setImmediate(resolve));
    this.lost = this.out.size;
    return this.report();
  }

  acked(): AckedContent {
    return { blocksPerCommand: this.o.blocksPerCommand, gens: this.chunks.map((c) => c.gen), nextGen: this.nextGen };
  }

  /** From now on, note how each command now outstanding ends (what an unplug did to them). */
  markRemoval(): void {
    this.watch = new Set(this.out.keys());
  }

  /** The per-command outcomes of the commands outstanding at markRemoval(). */
  get atRemoval(): InFlightOutcome[] {
    return [...this.watched].sort((a, b) => a.seq - b.seq);
  }

  report(): WorkloadReport {
    const outstanding = this.out.size;
    return {
      running: this.running,
      ...this.counts,
      outstanding,
      lost: this.lost,
      byOutcome: { ...this.byOutcome },
      byStatus: { ...this.byStatus },
    };
  }
}
