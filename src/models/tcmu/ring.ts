/**
 * The kernel side of one TCMU command ring (drivers/target/target_core_user.c)
 * over map0's bytes: queue_cmd_ring() puts a command in the ring and raises
 * the interrupt; tcmu_irqcontrol() (a write to the uio node) reaps what
 * userspace completed; commands that find no room wait on the qfull queue;
 * per-command deadlines, tcmu_block_dev() and tcmu_reset_ring().
 *
 * Like the kernel it never trusts offsets userspace writes (the "UAM"
 * rule): cmd_head is kept privately and only published, cmd_tail is
 * checked before it is used, and an entry whose cmd_id is unknown marks
 * the ring broken (tcmu_handle_completions: "ring is broken").
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
  TCMU_MAILBOX_VERSION,
  TCMU_OP_ALIGN_SIZE,
  TCMU_OP_CMD,
  TCMU_OP_MASK,
  TCMU_OP_PAD,
  TCMU_SENSE_BUFFERSIZE,
  TCMU_UFLAG_READ_LEN,
  TCMU_UFLAG_UNKNOWN_OP,
  baseCmdSize,
  cmdSize,
  DATA_BLOCK_SIZE,
  type RingLayout,
} from './abi.js';
import { DataArea, type Iovec } from './data-area.js';
import {
  INVALID_CDB_FIELD,
  LUN_COMM_FAILURE,
  SAM_STAT_BUSY,
  SAM_STAT_CHECK_CONDITION,
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
 * - removed: the device was unplugged with it queued or in flight (see TcmuRing.remove).
 */
export type Outcome = 'completed' | 'timed_out' | 'queue_full' | 'busy' | 'reset' | 'rejected' | 'removed';

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
  /** The ring was found broken (the kernel's pr_err "ring is broken"); commands fail until reset_ring. */
  onBroken?: (reason: string) => void;
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
 * A command's deadline. The kernel takes timeouts up to 2^32-1 s; a Node
 * timer runs at most 2^31-1 ms (~24.8 days) and fires at once beyond that,
 * so longer ones wait that long.
 */
const deadline = (fn: () => void, ms: number): NodeJS.Timeout => setTimeout(fn, Math.min(ms, 2 ** 31 - 1));

/** drivers/target/target_core_user.c TCMU_TIME_OUT: the qfull wait when neither timeout is set. */
const TCMU_TIME_OUT_MS = 30_000;

interface RingCmd {
  req: ScsiRequest;
  cmdId: number;
  blocks: number[];
  iovs: Iovec[];
  dataLength: number;
  expired: boolean;
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
  private nextId = 1;
  blocked = false;
  broken = false;
  private removed = false;
  /** Commands the ring tried to end a second time: always 0 unless the ring logic is wrong. */
  doubleEnds = 0;
  /** PAD entries written (the ring wrapped with an entry that did not fit its end). */
  pads = 0;
  /** The longest the qfull queue has been (ring-full back-pressure seen). */
  maxQfull = 0;

  constructor(
    private readonly mem: Uint8Array,
    readonly layout: RingLayout,
    private readonly opts: RingOptions,
  ) {
    this.view = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    this.data = new DataArea(layout.dataOff, layout.dataSize);
    // tcmu_configure_device(): the mailbox userspace checks first.
    this.view.setUint16(MB_VERSION, TCMU_MAILBOX_VERSION, true);
    this.view.setUint16(MB_FLAGS, TCMU_MAILBOX_FLAG_CAP_OOOC | TCMU_MAILBOX_FLAG_CAP_READ_LEN, true);
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

  /** attrib/cmd_time_out and qfull_time_out: they apply to commands queued from now on, as the kernel arms timers at queue time. */
  setTimeouts(t: { cmdTimeOutMs: number; qfullTimeOutMs: number }): void {
    this.opts.cmdTimeOutMs = t.cmdTimeOutMs;
    this.opts.qfullTimeOutMs = t.qfullTimeOutMs;
  }

  /** tcmu_queue_cmd(): settles when the command ends, however it ends. */
  submit(req: ScsiRequest): Promise<Completion> {
    return new Promise((settle) => {
      const cmd: RingCmd = { req, cmdId: 0, blocks: [], iovs: [], dataLength: dataLength(req), expired: false, timer: null, settled: false, settle };
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
    const blocksNeeded = Math.ceil(cmd.dataLength / DATA_BLOCK_SIZE);
    // Sized for the worst case (one iovec per block), as the kernel checks space.
    const worst = cmdSize(blocksNeeded, cmd.req.cdb.length);
    if (!fromQfull && this.qfull.length) return this.wait(cmd);
    if (worst > this.layout.cmdrSize / 2 || cmd.dataLength > this.layout.dataSize) {
      return this.fail(cmd, ended(cmd, 'rejected', SAM_STAT_CHECK_CONDITION, INVALID_CDB_FIELD()));
    }
    const toEnd = this.layout.cmdrSize - this.head;
    const ringNeeded = toEnd >= worst ? worst : worst + toEnd;
    if (this.ringFree() < ringNeeded) return fromQfull ? 'waiting' : this.wait(cmd);
    const blocks = this.data.alloc(cmd.dataLength);
    if (!blocks) return fromQfull ? 'waiting' : this.wait(cmd);
    const id = this.allocId();
    if (id === 0) {
      // TCM_OUT_OF_RESOURCES, which the target core answers TASK SET FULL.
      this.data.release(blocks);
      return this.fail(cmd, ended(cmd, 'queue_full', SAM_STAT_TASK_SET_FULL));
    }
    cmd.cmdId = id;
    cmd.blocks = blocks;
    cmd.iovs = this.data.iovecs(blocks, cmd.dataLength);
    const size = cmdSize(cmd.iovs.length, cmd.req.cdb.length);
    const written: Range[] = [{ offset: MB_CMD_HEAD, length: 4 }];
    if (this.layout.cmdrSize - this.head < size) {
      // A PAD entry fills the ring's end: commands are contiguous in the ring.
      const pad = this.layout.cmdrSize - this.head;
      const at = CMDR_OFF + this.head;
      this.view.setUint32(at + HDR_LEN_OP, pad | TCMU_OP_PAD, true);
      this.view.setUint32(at + HDR_CMD_ID, 0, true); // cmd_id, kflags, uflags
      written.push({ offset: at, length: 8 });
      this.pads++;
      this.publishHead(0);
    }
    if (cmd.req.dir === 'out' && cmd.req.dataOut) {
      this.scatter(cmd.iovs, cmd.req.dataOut);
      for (const iov of cmd.iovs) written.push({ offset: iov.base, length: iov.len });
    }
    written.push({ offset: CMDR_OFF + this.head, length: size });
    this.writeEntry(cmd, size);
    this.commands.set(id, cmd);
    if (this.opts.cmdTimeOutMs > 0) cmd.timer = deadline(() => this.expireRingCmd(cmd), this.opts.cmdTimeOutMs);
    this.publishHead((this.head + size) % this.layout.cmdrSize);
    this.opts.sync?.push(written);
    this.opts.notify();
    return 'queued';
  }

  private writeEntry(cmd: RingCmd, size: number): void {
    const at = CMDR_OFF + this.head;
    this.mem.fill(0, at, at + size);
    this.view.setUint32(at + HDR_LEN_OP, size | TCMU_OP_CMD, true);
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

  /** tcmu_handle_completions(): walk from the last cleaned entry to userspace's cmd_tail. */
  handleCompletions(): number {
    if (this.broken) return 0;
    const size = this.layout.cmdrSize;
    const tail = this.view.getUint32(MB_CMD_TAIL, true);
    if (tail >= size || tail % TCMU_OP_ALIGN_SIZE) {
      this.markBroken(`cmd_tail ${tail} is outside the ring or off its ${TCMU_OP_ALIGN_SIZE}-byte alignment`);
      return 0;
    }
    let handled = 0;
    while (this.lastCleaned !== tail) {
      // A tail that is not on an entry boundary before our head can never be reached.
      const outstanding = (this.head - this.lastCleaned + size) % size;
      if (outstanding === 0) {
        this.markBroken(`cmd_tail ${tail} is not an entry boundary up to cmd_head ${this.head}`);
        break;
      }
      const at = CMDR_OFF + this.lastCleaned;
      const lenOp = this.view.getUint32(at + HDR_LEN_OP, true);
      // Unsigned: userspace may have set bit 31 (JavaScript's & is signed).
      const len = (lenOp & ~TCMU_OP_MASK) >>> 0;
      if (len === 0 || len > outstanding) {
        this.markBroken(`entry at ${this.lastCleaned} has length ${len}, with ${outstanding} bytes queued`);
        break;
      }
      if ((lenOp & TCMU_OP_MASK) === TCMU_OP_CMD) {
        const id = this.view.getUint16(at + HDR_CMD_ID, true);
        const cmd = this.commands.get(id);
        if (!cmd) {
          this.markBroken(`cmd_id ${id} not found`);
          break;
        }
        this.commands.delete(cmd.cmdId);
        this.complete(cmd, at);
        handled++;
      }
      this.lastCleaned = (this.lastCleaned + len) % size;
    }
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
    this.end(cmd, { ...ended(cmd, 'timed_out', SAM_STAT_CHECK_CONDITION, LUN_COMM_FAILURE()), entryReleased });
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
    return failed;
  }

  private end(cmd: RingCmd, c: Completion): void {
    if (cmd.settled) {
      this.doubleEnds++;
      return;
    }
    cmd.settled = true;
    cmd.settle(c);
  }

  /** spc_free(): one byte stays unused so a full ring differs from an empty one. */
  private ringFree(): number {
    const size = this.layout.cmdrSize;
    const used = (this.head - this.lastCleaned + size) % size;
    return size - used - 1;
  }

  /** idr_alloc(&udev->commands, cmd, 1, USHRT_MAX): the next free id in 1..65534, 0 if none. */
  private allocId(): number {
    for (let tries = 0; tries < 0xfffe; tries++) {
      const id = this.nextId;
      this.nextId = id >= 0xfffe ? 1 : id + 1;
      if (!this.commands.has(id)) return id;
    }
    return 0;
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
