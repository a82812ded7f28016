/**
 * The kernel side of one TCMU command ring (drivers/target/target_core_user.c)
 * over map0's bytes: queue_cmd_ring() puts a command in the ring and raises
 * the interrupt; tcmu_irqcontrol() (a write to the uio node) reaps what
 * userspace completed; commands that find no room wait on the qfull queue;
 * per-command deadlines, tcmu_block_dev() and tcmu_reset_ring().
 *
 * Like the kernel it never trusts offsets or sizes userspace can write
 * (the SECURITY note and "UAM" comments of target_core_user.c): cmd_head
 * is kept privately and only published; cmd_tail must lie within the span
 * of entries handed out and not yet reaped, on an entry's boundary; each
 * entry's len_op must be the one written when it was queued (the walk
 * uses the recorded size, never the shared one); an entry whose cmd_id is
 * unknown marks the ring broken (tcmu_handle_completions: "ring is
 * broken"). Only data (status, sense, read_len, data in) is read back.
 */
import {
  CMDR_OFF,
  HDR_CMD_ID,
  HDR_LEN_OP,
  HDR_UFLAGS,
  IOVEC_SIZE,
  MB_CMD_HEAD,
  MB_CMD_TAIL,
  MB_CMDR_OFF,
  MB_CMDR_SIZE,
  MB_FLAGS,
  MB_VERSION,
  REQ_CDB_OFF,
  REQ_IOV,
  REQ_IOV_BIDI_CNT,
  REQ_IOV_CNT,
  REQ_IOV_DIF_CNT,
  RSP_READ_LEN,
  RSP_SCSI_STATUS,
  RSP_SENSE_BUFFER,
  TCMU_MAILBOX_FLAG_CAP_OOOC,
  TCMU_MAILBOX_FLAG_CAP_READ_LEN,
  TCMU_MAILBOX_FLAG_CAP_TMR,
  TCMU_MAILBOX_VERSION,
  TCMU_OP_CMD,
  TCMU_OP_MASK,
  TCMU_OP_PAD,
  TCMU_OP_TMR,
  TCMU_SENSE_BUFFERSIZE,
  TCMU_UFLAG_READ_LEN,
  TCMU_UFLAG_UNKNOWN_OP,
  baseCmdSize,
  cmdSize,
  TMR_CMD_CNT,
  TMR_CMD_IDS,
  TMR_TYPE,
  tmrSize,
  TcmuTmr,
  DATA_BLOCK_SIZE,
  type RingLayout,
} from './abi.js';
import { DataArea, type Iovec } from './data-area.js';
import {
  INVALID_CDB_FIELD,
  LUN_COMM_FAILURE,
  SAM_STAT_BUSY,
  SAM_STAT_CHECK_CONDITION,
  SAM_STAT_TASK_ABORTED,
  SAM_STAT_TASK_SET_FULL,
  senseLength,
  type ScsiRequest,
} from './scsi.js';

/**
 * How a command ended:
 * - completed: userspace answered it in the ring (any SCSI status);
 * - timed_out: its cmd_time_out passed first (tcmu_check_expired_ring_cmd, CHECK CONDITION);
 * - queue_full: it waited for ring space longer than qfull_time_out (tcmu_check_expired_queue_cmd, TASK SET FULL), or no command id was free;
 * - busy: the device was blocked, or blocking failed it on the qfull queue (run_qfull_queue(fail), BUSY), or reset_ring 1;
 * - reset: reset_ring 2 failed it (CHECK CONDITION);
 * - rejected: too big for the ring or the data area (TCM_INVALID_CDB_FIELD), or the ring is broken;
 * - removed: the device was unplugged with it queued or in flight (see TcmuRing.remove);
 * - aborted: a task management function aborted it (TcmuRing.taskManagement): it ends
 *   when userspace completes it or its cmd_time_out passes, TASK ABORTED, its result discarded.
 */
export type Outcome = 'completed' | 'timed_out' | 'queue_full' | 'busy' | 'reset' | 'rejected' | 'removed' | 'aborted';

export interface Completion {
  cmdId: number;
  outcome: Outcome;
  /** SAM status. */
  status: number;
  /** Sense bytes (CHECK CONDITION only), trimmed to their length. */
  sense: Buffer;
  /** Data in (READ-type commands that completed GOOD, or with READ_LEN). */
  data: Buffer;
  /**
   * timed_out only: settles when the expired entry leaves the ring (userspace
   * completed it, or reset or removal ended it). Until then userspace may
   * still carry the command out: a write may still land.
   */
  entryReleased?: Promise<void>;
}

/** What removal did: completions reaped first, then each command it ended (per command, for the event). */
export interface RemovalSummary {
  reaped: number;
  ended: { cmdId: number; opcode: number; where: 'ring' | 'qfull'; status: number }[];
}

export interface RingStats {
  /** Commands in the ring that have not ended. */
  inflight: number;
  /** Timed out, still in the ring until userspace completes them. */
  expired: number;
  qfull: number;
  freeDataBlocks: number;
  head: number;
  tail: number;
  pads: number;
  maxQfull: number;
  blocked: boolean;
  broken: boolean;
  doubleEnds: number;
}

export interface RingOptions {
  /** cmd_time_out in ms; 0 disables (the kernel's attrib/cmd_time_out is in seconds, default 30). */
  cmdTimeOutMs: number;
  /** qfull_time_out in ms; -1 means cmd_time_out, 0 fails at once when the ring is full. */
  qfullTimeOutMs: number;
  /** Raised after a command is queued (uio_event_notify). */
  notify: () => void;
  /** A command's timer ended it (in the ring: cmd_time_out; waiting for room: qfull_time_out). */
  onExpired?: (e: { cmdId: number; opcode: number; where: 'ring' | 'qfull' }) => void;
  /**
   * The consumer completed (moved cmd_tail over) commands whose
   * cmd_time_out had already ended them: the kernel only frees their data
   * blocks (tcmu_handle_completion() with TCMU_CMD_BIT_EXPIRED). One call
   * per walk of the ring; `left`: expired entries still in the ring.
   */
  onExpiredReaped?: (e: { cmdIds: number[]; left: number }) => void;
  /** The ring was found broken (the kernel's pr_err "ring is broken"); commands fail until reset_ring. */
  onBroken?: (reason: string) => void;
  /** attrib/tmr_notification: task management functions reach userspace as TMR entries. */
  tmrNotification?: boolean;
  /** A TMR entry was reaped: what userspace left in its uflags (TCMU_UFLAG_UNKNOWN_OP: it did not know the entry). */
  onTmrReaped?: (e: { type: number; cmdIds: number[]; uflags: number }) => void;
  /**
   * map0's synchronisation with a consumer that maps a copy of it (no
   * passthrough: Region.pull, Region.push): what a kick reads is pulled
   * first (pullCompletions), what a queued command wrote is pushed before
   * the interrupt.
   */
  sync?: {
    pull(ranges: readonly Range[]): Promise<void> | undefined;
    push(ranges: readonly Range[]): void;
  };
}

/** Bytes of map0, from the mailbox. */
interface Range {
  offset: number;
  length: number;
}

/**
 * cmd_head, pushed after the entry and its data, never before: the kernel
 * writes the entry (and the data out) first and moves cmd_head last, after
 * a flush (queue_cmd_ring, queue_tmr_ring: UPDATE_HEAD then
 * tcmu_flush_dcache_range of the mailbox), so a consumer that sees the new
 * head finds the entry it points past. Through the page cache each range
 * is a STORE of its own, landing in the order pushed (PageSync.push).
 */
const HEAD_RANGE: Range = { offset: MB_CMD_HEAD, length: 4 };

/** What a task management function did (TcmuRing.taskManagement). */
export interface TmrResult {
  /** Ids of the aborted commands userspace holds (the TMR entry's cmd_ids). */
  inRing: number[];
  /** Aborted commands that were waiting for ring space: ended at once, TASK ABORTED. */
  fromQfull: number;
  /** A TMR entry was queued (tmr_notification on). */
  notified: boolean;
  /** Settles when every aborted command has ended: the function is complete. */
  done: Promise<void>;
}

/**
 * A command's deadline, as tcmu_setup_cmd_timer() sets it:
 * round_jiffies_up(jiffies + msecs_to_jiffies(tmo)), a whole second of the
 * clock, on the device's cmd_timer (or qfull_timer), whose handler
 * (check_timedout_devices) ends every command past its deadline. So a
 * timeout ends at the first whole second after it runs out, and commands
 * queued within the same second end together. The wall clock stands in
 * for jiffies. The kernel takes timeouts up to 2^32-1 s; a Node timer runs
 * at most 2^31-1 ms (~24.8 days) and fires at once beyond that, so longer
 * ones wait that long.
 */
function deadline(fn: () => void, ms: number): NodeJS.Timeout {
  const now = Date.now();
  const at = Math.ceil((now + ms) / 1000) * 1000;
  return setTimeout(fn, Math.min(at - now, 2 ** 31 - 1));
}

/** drivers/target/target_core_user.c TCMU_TIME_OUT: the qfull wait when neither timeout is set. */
const TCMU_TIME_OUT_MS = 30_000;

interface RingCmd {
  req: ScsiRequest;
  cmdId: number;
  blocks: number[];
  iovs: Iovec[];
  dataLength: number;
  expired: boolean;
  /** A task management function aborted it (CMD_T_ABORTED). */
  aborted: boolean;
  /** Set when it expires: settles its Completion's entryReleased. */
  released?: () => void;
  timer: NodeJS.Timeout | null;
  settled: boolean;
  settle: (c: Completion) => void;
}

const EMPTY = Buffer.alloc(0);

export class TcmuRing {
  private readonly view: DataView;
  private readonly data: DataArea;
  /** The ring's head as we last published it (never read back from the mailbox). */
  private head = 0;
  /** udev->cmdr_last_cleaned. */
  private lastCleaned = 0;
  private readonly commands = new Map<number, RingCmd>();
  private readonly qfull: RingCmd[] = [];
  /**
   * The len_op of every entry between lastCleaned and head, by ring offset,
   * as written: what the walk follows, and what the shared copy must still say.
   */
  private readonly written = new Map<number, number>();
  /** Every id below this one is in use (allocId's search starts here). */
  private idFloor = 1;
  blocked = false;
  broken = false;
  private removed = false;
  /** Commands the ring tried to end a second time: always 0 unless the ring logic is wrong. */
  doubleEnds = 0;
  /** PAD entries written (the ring wrapped with an entry that did not fit its end). */
  pads = 0;
  /** The longest the qfull queue has been (ring-full back-pressure seen). */
  maxQfull = 0;
  /** drained() callers, resolved once nothing is outstanding. */
  private drainWaiters: (() => void)[] = [];
  /** TMR entries waiting for ring space (udev->tmr_queue). */
  private tmrQueue: { type: number; ids: number[] }[] = [];
  /** What each TMR entry in the ring carries, by ring offset, for its report when reaped. */
  private readonly tmrs = new Map<number, { type: number; ids: number[] }>();

  constructor(
    private readonly mem: Uint8Array,
    readonly layout: RingLayout,
    private readonly opts: RingOptions,
  ) {
    this.view = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    this.data = new DataArea(layout.dataOff, layout.dataSize);
    // tcmu_configure_device(): the mailbox userspace checks first.
    this.view.setUint16(MB_VERSION, TCMU_MAILBOX_VERSION, true);
    this.view.setUint16(MB_FLAGS, TCMU_MAILBOX_FLAG_CAP_OOOC | TCMU_MAILBOX_FLAG_CAP_READ_LEN | TCMU_MAILBOX_FLAG_CAP_TMR, true);
    this.view.setUint32(MB_CMDR_OFF, CMDR_OFF, true);
    this.view.setUint32(MB_CMDR_SIZE, layout.cmdrSize, true);
    this.publishHead(0);
    this.view.setUint32(MB_CMD_TAIL, 0, true);
  }

  /** Commands in the ring (expired ones included until userspace completes them) and waiting for room. */
  get stats(): RingStats {
    let expired = 0;
    for (const c of this.commands.values()) if (c.expired) expired++;
    return {
      inflight: this.commands.size - expired,
      expired,
      qfull: this.qfull.length,
      freeDataBlocks: this.data.freeBlocks,
      head: this.head,
      tail: this.view.getUint32(MB_CMD_TAIL, true),
      pads: this.pads,
      maxQfull: this.maxQfull,
      blocked: this.blocked,
      broken: this.broken,
      doubleEnds: this.doubleEnds,
    };
  }

  /** Commands that have not ended: in the ring (expired ones have ended) or waiting for room. */
  private outstanding(): number {
    let n = this.qfull.length;
    for (const c of this.commands.values()) if (!c.expired) n++;
    return n;
  }

  /**
   * Resolves once every command submitted so far has ended, however it
   * ended (completed, cmd_time_out, qfull_time_out, failed): what the
   * target core waits for before a backstore is destroyed (its LUNs
   * unlinked, their commands drained). An expired command whose entry is
   * still in the ring has ended for LIO (tcmu_check_expired_ring_cmd
   * completed it), so it does not hold the drain.
   */
  drained(): Promise<void> {
    if (this.outstanding() === 0) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  private checkDrained(): void {
    if (!this.drainWaiters.length || this.outstanding() > 0) return;
    for (const r of this.drainWaiters.splice(0)) r();
  }

  /** attrib/cmd_time_out and qfull_time_out: they apply to commands queued from now on, as the kernel arms timers at queue time. */
  setTimeouts(t: { cmdTimeOutMs: number; qfullTimeOutMs: number }): void {
    this.opts.cmdTimeOutMs = t.cmdTimeOutMs;
    this.opts.qfullTimeOutMs = t.qfullTimeOutMs;
  }

  /**
   * tcmu_queue_cmd(): settles when the command ends, however it ends.
   * `handle.abort`, once set, aborts this command (ABORT TASK) wherever it is.
   */
  submit(req: ScsiRequest, handle?: { abort?: () => TmrResult }): Promise<Completion> {
    return new Promise((settle) => {
      const cmd: RingCmd = { req, cmdId: 0, blocks: [], iovs: [], dataLength: dataLength(req), expired: false, aborted: false, timer: null, settled: false, settle };
      if (handle) handle.abort = () => this.abort(TcmuTmr.ABORT_TASK, (c) => c === cmd);
      if (this.removed) return this.end(cmd, ended(cmd, 'removed', SAM_STAT_CHECK_CONDITION, LUN_COMM_FAILURE()));
      this.queue(cmd);
    });
  }

  /**
   * queue_cmd_ring(): into the ring, onto the qfull queue, or failed. A
   * blocked or broken device fails it first, whether it is new or retried
   * from the qfull queue.
   */
  private queue(cmd: RingCmd, fromQfull = false): 'queued' | 'waiting' | 'failed' {
    if (this.blocked) return this.fail(cmd, ended(cmd, 'busy', SAM_STAT_BUSY)); // TCM_LUN_BUSY
    if (this.broken) return this.fail(cmd, ended(cmd, 'rejected', SAM_STAT_CHECK_CONDITION, LUN_COMM_FAILURE()));
    if (!fromQfull && this.qfull.length) return this.wait(cmd);
    const waitForRoom = (): 'waiting' | 'failed' => (fromQfull ? 'waiting' : this.wait(cmd));
    if (Math.ceil(cmd.dataLength / DATA_BLOCK_SIZE) * DATA_BLOCK_SIZE > this.layout.dataSize) {
      return this.fail(cmd, ended(cmd, 'rejected', SAM_STAT_CHECK_CONDITION, INVALID_CDB_FIELD()));
    }
    // queue_cmd_ring(): the data blocks first; the entry is sized by the
    // iovecs they make (adjacent blocks share one), not one per block.
    const blocks = this.data.alloc(cmd.dataLength);
    if (!blocks) return waitForRoom();
    const iovs = this.data.iovecs(blocks, cmd.dataLength);
    const size = cmdSize(iovs.length, cmd.req.cdb.length);
    if (size > this.layout.cmdrSize / 2) {
      this.data.release(blocks);
      return this.fail(cmd, ended(cmd, 'rejected', SAM_STAT_CHECK_CONDITION, INVALID_CDB_FIELD()));
    }
    if (!this.ringSpaceAvail(size)) {
      // "Don't leave commands partially setup": the blocks go back while it waits.
      this.data.release(blocks);
      return waitForRoom();
    }
    const id = this.allocId();
    if (id === 0) {
      // TCM_OUT_OF_RESOURCES, which the target core answers TASK SET FULL.
      this.data.release(blocks);
      return this.fail(cmd, ended(cmd, 'queue_full', SAM_STAT_TASK_SET_FULL));
    }
    cmd.cmdId = id;
    cmd.blocks = blocks;
    cmd.iovs = iovs;
    const written: Range[] = [];
    const padding = this.insertPadding(size);
    if (padding) written.push(padding);
    if (cmd.req.dir === 'out' && cmd.req.dataOut) {
      this.scatter(cmd.iovs, cmd.req.dataOut);
      for (const iov of cmd.iovs) written.push({ offset: iov.base, length: iov.len });
    }
    written.push({ offset: CMDR_OFF + this.head, length: size });
    this.writeEntry(cmd, size);
    this.commands.set(id, cmd);
    if (this.opts.cmdTimeOutMs > 0) cmd.timer = deadline(() => this.expireRingCmd(cmd), this.opts.cmdTimeOutMs);
    this.publishHead((this.head + size) % this.layout.cmdrSize);
    written.push(HEAD_RANGE);
    this.opts.sync?.push(written);
    this.opts.notify();
    return 'queued';
  }

  /** is_ring_space_avail(): room for the entry, and for a PAD before it if it would cross the ring's end. */
  private ringSpaceAvail(size: number): boolean {
    const toEnd = this.layout.cmdrSize - this.head;
    return this.ringFree() >= (toEnd >= size ? size : size + toEnd);
  }

  /** ring_insert_padding(): a PAD entry fills the ring's end when the next entry would cross it (entries are contiguous); returns the bytes it wrote. */
  private insertPadding(size: number): Range | null {
    const pad = this.layout.cmdrSize - this.head;
    if (pad >= size) return null;
    const at = CMDR_OFF + this.head;
    this.setLenOp(this.head, pad | TCMU_OP_PAD);
    this.view.setUint32(at + HDR_CMD_ID, 0, true); // cmd_id, kflags, uflags
    this.pads++;
    this.publishHead(0);
    return { offset: at, length: 8 };
  }

  /** Writes an entry's len_op and records it: the walk trusts the record, not the shared copy. */
  private setLenOp(offset: number, lenOp: number): void {
    this.view.setUint32(CMDR_OFF + offset + HDR_LEN_OP, lenOp, true);
    this.written.set(offset, lenOp);
  }

  private writeEntry(cmd: RingCmd, size: number): void {
    const at = CMDR_OFF + this.head;
    this.mem.fill(0, at, at + size);
    this.setLenOp(this.head, size | TCMU_OP_CMD);
    this.view.setUint16(at + HDR_CMD_ID, cmd.cmdId, true);
    this.view.setUint32(at + REQ_IOV_CNT, cmd.iovs.length, true);
    this.view.setUint32(at + REQ_IOV_BIDI_CNT, 0, true);
    this.view.setUint32(at + REQ_IOV_DIF_CNT, 0, true);
    cmd.iovs.forEach((iov, i) => {
      this.view.setBigUint64(at + REQ_IOV + i * IOVEC_SIZE, BigInt(iov.base), true);
      this.view.setBigUint64(at + REQ_IOV + i * IOVEC_SIZE + 8, BigInt(iov.len), true);
    });
    // All offsets relative to the mailbox: the CDB sits right behind the iovecs.
    const cdbOff = at + baseCmdSize(cmd.iovs.length);
    this.mem.set(cmd.req.cdb, cdbOff);
    this.view.setBigUint64(at + REQ_CDB_OFF, BigInt(cdbOff), true);
  }

  private fail(cmd: RingCmd, c: Completion): 'failed' {
    this.end(cmd, c);
    return 'failed';
  }

  /**
   * add_to_qfull_queue(). The wait is bounded: qfull_time_out, else
   * cmd_time_out, else the kernel's TCMU_TIME_OUT (30 s).
   */
  private wait(cmd: RingCmd): 'waiting' | 'failed' {
    const { qfullTimeOutMs: q, cmdTimeOutMs: c } = this.opts;
    if (q === 0) return this.fail(cmd, ended(cmd, 'queue_full', SAM_STAT_TASK_SET_FULL)); // TCM_OUT_OF_RESOURCES
    const tmo = q > 0 ? q : c > 0 ? c : TCMU_TIME_OUT_MS;
    cmd.timer = deadline(() => this.expireQueuedCmd(cmd), tmo);
    this.qfull.push(cmd);
    this.maxQfull = Math.max(this.maxQfull, this.qfull.length);
    return 'waiting';
  }

  /**
   * Pulls in what userspace may have written since the last reap, before
   * the ring reads it: cmd_tail, the entries from the last cleaned one to
   * cmd_head (completions overwrite them), and the data blocks of the
   * commands in the ring that carry data in. Only what the ring
   * references, never the whole data area. Undefined when there is
   * nothing to pull (passthrough: the pages are shared).
   */
  pullCompletions(): Promise<void> | undefined {
    const sync = this.opts.sync;
    if (!sync) return undefined;
    const ring: Range[] = [{ offset: MB_CMD_TAIL, length: 4 }];
    if (this.head >= this.lastCleaned) ring.push({ offset: CMDR_OFF + this.lastCleaned, length: this.head - this.lastCleaned });
    else ring.push({ offset: CMDR_OFF + this.lastCleaned, length: this.layout.cmdrSize - this.lastCleaned }, { offset: CMDR_OFF, length: this.head });
    for (const c of this.commands.values()) if (c.req.dir === 'in') for (const iov of c.iovs) ring.push({ offset: iov.base, length: iov.len });
    return sync.pull(ring);
  }

  /** tcmu_irqcontrol(): the consumer's write to the uio node; waiting commands get their chance only if room was freed. */
  kick(): number {
    const before = this.lastCleaned;
    const handled = this.handleCompletions();
    if (this.lastCleaned !== before) this.runQfull(false);
    return handled;
  }

  /**
   * tcmu_handle_completions(): walk from the last cleaned entry to
   * userspace's cmd_tail. The tail is checked first: it must lie within the
   * entries handed out and not yet reaped (a tail outside them would walk
   * entries userspace never completed, reading whatever bytes are there),
   * and the walk must land on it exactly. Each entry's length is the one
   * recorded when it was written; a shared len_op that no longer says so
   * (a rewritten length would swallow the next command) breaks the ring.
   */
  handleCompletions(): number {
    if (this.broken) return 0;
    const size = this.layout.cmdrSize;
    const tail = this.view.getUint32(MB_CMD_TAIL, true); // UAM
    const span = (this.head - this.lastCleaned + size) % size;
    const advance = (tail - this.lastCleaned + size) % size;
    if (tail >= size || advance > span) {
      this.markBroken(`cmd_tail ${tail} is outside the entries handed out (from ${this.lastCleaned} to cmd_head ${this.head})`);
      return 0;
    }
    let handled = 0;
    const expired: number[] = [];
    while (this.lastCleaned !== tail) {
      const lenOp = this.written.get(this.lastCleaned);
      const left = (tail - this.lastCleaned + size) % size;
      const len = lenOp === undefined ? 0 : (lenOp & ~TCMU_OP_MASK) >>> 0;
      if (lenOp === undefined || len > left) {
        this.markBroken(`cmd_tail ${tail} is not on an entry boundary`);
        break;
      }
      const at = CMDR_OFF + this.lastCleaned;
      const shared = this.view.getUint32(at + HDR_LEN_OP, true); // UAM
      if (shared !== lenOp) {
        this.markBroken(`entry at ${this.lastCleaned} has len_op 0x${shared.toString(16)}, written as 0x${lenOp.toString(16)}`);
        break;
      }
      if ((lenOp & TCMU_OP_MASK) === TCMU_OP_TMR) {
        // Reaped like a PAD; what userspace wrote in its uflags is reported.
        const tmr = this.tmrs.get(this.lastCleaned)!;
        this.tmrs.delete(this.lastCleaned);
        this.opts.onTmrReaped?.({ type: tmr.type, cmdIds: tmr.ids, uflags: this.mem[at + HDR_UFLAGS]! });
      } else if ((lenOp & TCMU_OP_MASK) === TCMU_OP_CMD) {
        const id = this.view.getUint16(at + HDR_CMD_ID, true); // UAM: looked up, never trusted
        const cmd = this.commands.get(id);
        if (!cmd) {
          this.markBroken(`cmd_id ${id} not found`);
          break;
        }
        this.releaseId(cmd.cmdId);
        if (cmd.expired) expired.push(cmd.cmdId);
        this.complete(cmd, at);
        handled++;
      }
      this.written.delete(this.lastCleaned);
      this.lastCleaned = (this.lastCleaned + len) % size;
    }
    if (expired.length) this.opts.onExpiredReaped?.({ cmdIds: expired, left: this.stats.expired });
    this.runTmrQueue();
    return handled;
  }

  private markBroken(reason: string): void {
    this.broken = true;
    this.opts.onBroken?.(reason);
  }

  /** tcmu_handle_completion(): status, sense, data in. An expired command only gives back its blocks. */
  private complete(cmd: RingCmd, at: number): void {
    this.data.release(cmd.blocks);
    if (cmd.timer) clearTimeout(cmd.timer);
    if (cmd.expired) return cmd.released?.();
    if (cmd.aborted) return this.end(cmd, ended(cmd, 'aborted', SAM_STAT_TASK_ABORTED));
    const uflags = this.mem[at + HDR_UFLAGS]!;
    if (uflags & TCMU_UFLAG_UNKNOWN_OP) return this.end(cmd, ended(cmd, 'completed', SAM_STAT_CHECK_CONDITION, LUN_COMM_FAILURE()));
    const status = this.mem[at + RSP_SCSI_STATUS]!;
    let readLen = cmd.req.dir === 'in' ? cmd.dataLength : 0;
    let readLenValid = false;
    const rl = this.view.getUint32(at + RSP_READ_LEN, true);
    if (cmd.req.dir === 'in' && uflags & TCMU_UFLAG_READ_LEN && rl) {
      readLenValid = true;
      readLen = Math.min(rl, readLen);
    }
    let sense = EMPTY;
    if (status === SAM_STAT_CHECK_CONDITION) {
      const raw = Buffer.from(this.mem.subarray(at + RSP_SENSE_BUFFER, at + RSP_SENSE_BUFFER + TCMU_SENSE_BUFFERSIZE));
      sense = raw.subarray(0, senseLength(raw));
      if (!readLenValid) readLen = 0;
    }
    const data = readLen ? this.gather(cmd.iovs, readLen) : EMPTY;
    this.end(cmd, { cmdId: cmd.cmdId, outcome: 'completed', status, sense, data });
  }

  /** run_qfull_queue(): retry waiting commands in order; with `fail`, answer them BUSY. */
  private runQfull(fail: boolean): void {
    while (this.qfull.length) {
      const cmd = this.qfull[0]!;
      if (fail) {
        this.qfull.shift();
        if (cmd.timer) clearTimeout(cmd.timer);
        this.end(cmd, ended(cmd, 'busy', SAM_STAT_BUSY));
        continue;
      }
      const timer = cmd.timer;
      cmd.timer = null;
      const r = this.queue(cmd, true);
      if (r === 'waiting') {
        cmd.timer = timer;
        return;
      }
      if (timer) clearTimeout(timer);
      this.qfull.shift();
    }
  }

  /** tcmu_check_expired_ring_cmd(): CHECK CONDITION now; the entry stays until userspace completes it. */
  private expireRingCmd(cmd: RingCmd): void {
    cmd.timer = null;
    if (cmd.expired || !this.commands.has(cmd.cmdId)) return;
    cmd.expired = true;
    const entryReleased = new Promise<void>((r) => (cmd.released = r));
    const c = cmd.aborted ? ended(cmd, 'aborted', SAM_STAT_TASK_ABORTED) : ended(cmd, 'timed_out', SAM_STAT_CHECK_CONDITION, LUN_COMM_FAILURE());
    this.end(cmd, { ...c, entryReleased });
    this.opts.onExpired?.({ cmdId: cmd.cmdId, opcode: cmd.req.cdb[0]!, where: 'ring' });
  }

  /** tcmu_check_expired_queue_cmd(): never reached the ring; TASK SET FULL. */
  private expireQueuedCmd(cmd: RingCmd): void {
    cmd.timer = null;
    const i = this.qfull.indexOf(cmd);
    if (i < 0) return;
    this.qfull.splice(i, 1);
    this.end(cmd, ended(cmd, 'queue_full', SAM_STAT_TASK_SET_FULL));
    this.opts.onExpired?.({ cmdId: 0, opcode: cmd.req.cdb[0]!, where: 'qfull' });
  }

  /**
   * tcmu_tmr_notify(): the target core aborts commands (ABORT TASK: one,
   * by its id; LUN RESET and the other set-wide functions: every command
   * of the LUN). Those still waiting for ring space never reached
   * userspace: they end at once, TASK ABORTED. Those in the ring are
   * userspace's: with tmr_notification on, a TMR entry names their ids
   * (queued like a command when the ring has no room for it); either way
   * each ends, TASK ABORTED, when userspace completes it or its
   * cmd_time_out passes, and the function is complete when the last has.
   */
  taskManagement(type: number, only?: number): TmrResult {
    return this.abort(type, only === undefined ? () => true : (c) => c.cmdId === only);
  }

  private abort(type: number, match: (c: RingCmd) => boolean): TmrResult {
    const inRing = [...this.commands.values()].filter((c) => !c.expired && !c.aborted && match(c));
    const queued = this.qfull.filter(match);
    for (const cmd of queued) {
      this.qfull.splice(this.qfull.indexOf(cmd), 1);
      if (cmd.timer) clearTimeout(cmd.timer);
      this.end(cmd, ended(cmd, 'aborted', SAM_STAT_TASK_ABORTED));
    }
    const ends = inRing.map((cmd) => {
      cmd.aborted = true;
      return new Promise<void>((r) => {
        const settle = cmd.settle;
        cmd.settle = (c) => {
          settle(c);
          r();
        };
      });
    });
    const notified = this.opts.tmrNotification === true && !this.broken;
    if (notified) this.queueTmr({ type, ids: inRing.map((c) => c.cmdId) });
    return { inRing: inRing.map((c) => c.cmdId), fromQfull: queued.length, notified, done: Promise.all(ends).then(() => undefined) };
  }

  /** attrib/tmr_notification. */
  setTmrNotification(on: boolean): void {
    this.opts.tmrNotification = on;
  }

  /** queue_tmr_ring(): into the ring after a PAD if need be, or onto the TMR queue behind others or for want of room. */
  private queueTmr(tmr: { type: number; ids: number[] }): boolean {
    const size = tmrSize(tmr.ids.length);
    if (this.tmrQueue.length || !this.ringSpaceAvail(size)) {
      this.tmrQueue.push(tmr);
      return false;
    }
    const written: Range[] = [];
    const padding = this.insertPadding(size);
    if (padding) written.push(padding);
    const at = CMDR_OFF + this.head;
    this.mem.fill(0, at, at + size);
    this.setLenOp(this.head, size | TCMU_OP_TMR);
    this.mem[at + TMR_TYPE] = tmr.type;
    this.view.setUint32(at + TMR_CMD_CNT, tmr.ids.length, true);
    tmr.ids.forEach((id, i) => this.view.setUint16(at + TMR_CMD_IDS + 2 * i, id, true));
    written.push({ offset: at, length: size });
    this.tmrs.set(this.head, tmr);
    this.publishHead((this.head + size) % this.layout.cmdrSize);
    written.push(HEAD_RANGE);
    this.opts.sync?.push(written);
    this.opts.notify();
    return true;
  }

  /** tcmu_run_tmr_queue(): after completions freed room, queued TMRs go in, in order. */
  private runTmrQueue(): void {
    const queued = this.tmrQueue;
    this.tmrQueue = [];
    for (let i = 0; i < queued.length; i++) {
      // One that finds no room goes back on the queue: the rest follow it.
      if (!this.queueTmr(queued[i]!)) return void this.tmrQueue.push(...queued.slice(i + 1));
    }
  }

  /** tcmu_block_dev() (1) and tcmu_unblock_dev() (0). */
  block(on: boolean): void {
    if (!on) {
      this.blocked = false;
      return;
    }
    if (this.blocked) return;
    this.blocked = true;
    this.handleCompletions(); // complete IO that has executed successfully
    this.runQfull(true); // fail IO waiting to be queued
  }

  /**
   * tcmu_reset_ring(): every command still in the ring is failed (level 1:
   * BUSY, "userspace was not able to start the command or it is
   * retryable"; level 2: CHECK CONDITION, hard failure), head, tail and the
   * last-cleaned mark go to 0, the broken flag clears, and the qfull queue
   * gets its chance at the empty ring.
   */
  reset(level: 1 | 2): number {
    const failed = this.failInflight(level === 1 ? 'busy' : 'reset', level === 1 ? SAM_STAT_BUSY : SAM_STAT_CHECK_CONDITION).length;
    this.lastCleaned = 0;
    this.written.clear();
    // "After a ring reset userspace should do a fresh start": queued TMRs go (tcmu_remove_all_queued_tmr).
    this.tmrs.clear();
    this.tmrQueue = [];
    this.view.setUint32(MB_CMD_TAIL, 0, true);
    this.publishHead(0);
    this.opts.sync?.push([{ offset: MB_CMD_HEAD, length: 4 }, { offset: MB_CMD_TAIL, length: 4 }]);
    this.broken = false;
    this.runQfull(false);
    return failed;
  }

  /**
   * The device goes away. The kernel never destroys a tcmu device with
   * commands outstanding (tcmu_dev_kref_release: "Upper layer should drain
   * all requests before calling this"); what drains them is tcmu's own
   * machinery, which this runs at once instead of waiting out the timers:
   * what userspace already completed is reaped (tcmu_block_dev's
   * tcmu_handle_completions), commands waiting for ring space get BUSY
   * (run_qfull_queue(udev, true): "If the device is being removed then LIO
   * core will do the right thing and fail the retry"), and commands still
   * in the ring end as their timer would end them,
   * tcmu_check_expired_ring_cmd(): CHECK CONDITION, which LIO turns into
   * NOT READY / LOGICAL UNIT COMMUNICATION FAILURE (02/08/00).
   * Commands submitted afterwards get the same.
   */
  remove(): RemovalSummary {
    const summary: RemovalSummary = { reaped: 0, ended: [] };
    if (this.removed) return summary;
    summary.reaped = this.handleCompletions();
    this.blocked = true;
    this.tmrQueue = [];
    const queued = this.qfull.splice(0);
    for (const cmd of queued) {
      if (cmd.timer) clearTimeout(cmd.timer);
      this.end(cmd, ended(cmd, 'removed', SAM_STAT_BUSY));
      summary.ended.push({ cmdId: 0, opcode: cmd.req.cdb[0]!, where: 'qfull', status: SAM_STAT_BUSY });
    }
    for (const cmd of this.failInflight('removed', SAM_STAT_CHECK_CONDITION)) {
      summary.ended.push({ cmdId: cmd.cmdId, opcode: cmd.req.cdb[0]!, where: 'ring', status: SAM_STAT_CHECK_CONDITION });
    }
    this.removed = true;
    return summary;
  }

  /** Ends every command in the ring that has not ended yet; returns them. Expired ones only give back their blocks. */
  private failInflight(outcome: Outcome, status: number): RingCmd[] {
    const failed: RingCmd[] = [];
    for (const cmd of this.commands.values()) {
      if (cmd.timer) clearTimeout(cmd.timer);
      this.data.release(cmd.blocks);
      if (cmd.expired) {
        cmd.released?.();
        continue;
      }
      failed.push(cmd);
      this.end(cmd, ended(cmd, outcome, status, status === SAM_STAT_CHECK_CONDITION ? LUN_COMM_FAILURE() : EMPTY));
    }
    this.commands.clear();
    this.idFloor = 1;
    return failed;
  }

  private end(cmd: RingCmd, c: Completion): void {
    if (cmd.settled) {
      this.doubleEnds++;
      return;
    }
    cmd.settled = true;
    cmd.settle(c);
    // Once the caller's bookkeeping (a map or queue removal) is done.
    if (this.drainWaiters.length) queueMicrotask(() => this.checkDrained());
  }

  /** spc_free(): one byte stays unused so a full ring differs from an empty one. */
  private ringFree(): number {
    const size = this.layout.cmdrSize;
    const used = (this.head - this.lastCleaned + size) % size;
    return size - used - 1;
  }

  /** idr_alloc(&udev->commands, cmd, 1, USHRT_MAX): the lowest free id in 1..65534, 0 if none. */
  private allocId(): number {
    for (let id = this.idFloor; id < 0xffff; id++) {
      if (!this.commands.has(id)) {
        this.idFloor = id + 1;
        return id;
      }
    }
    this.idFloor = 0xffff;
    return 0;
  }

  private releaseId(id: number): void {
    this.commands.delete(id);
    if (id < this.idFloor) this.idFloor = id;
  }

  private publishHead(head: number): void {
    this.head = head;
    this.view.setUint32(MB_CMD_HEAD, head, true);
  }

  private scatter(iovs: readonly Iovec[], src: Buffer): void {
    let off = 0;
    for (const iov of iovs) {
      this.mem.set(src.subarray(off, off + iov.len), iov.base);
      off += iov.len;
    }
  }

  private gather(iovs: readonly Iovec[], len: number): Buffer {
    const out = Buffer.alloc(len);
    let off = 0;
    for (const iov of iovs) {
      if (off >= len) break;
      const n = Math.min(iov.len, len - off);
      out.set(this.mem.subarray(iov.base, iov.base + n), off);
      off += n;
    }
    return out;
  }
}

/** se_cmd->data_length: the iovecs carry exactly this; the blocks behind them are whole (tcmu_cmd_get_data_length). */
function dataLength(req: ScsiRequest): number {
  return req.dir === 'out' ? (req.dataOut?.length ?? 0) : req.dir === 'in' ? (req.dataInLength ?? 0) : 0;
}

function ended(cmd: RingCmd, outcome: Outcome, status: number, sense: Buffer = EMPTY): Completion {
  return { cmdId: cmd.cmdId, outcome, status, sense, data: EMPTY };
}
