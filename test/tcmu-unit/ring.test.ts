/**
 * TcmuRing (src/models/tcmu/ring.ts) over a plain Uint8Array, driven by a
 * consumer scripted here: libtcmu's ring walk when it behaves, and every
 * way a hostile one can break the ring protocol when it does not (a
 * cmd_tail outside the entries handed out or off their boundaries, a
 * rewritten len_op, an unknown cmd_id). No mount, no root: the ring is
 * pure logic over shared bytes.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CMDR_OFF,
  HDR_CMD_ID,
  HDR_LEN_OP,
  MB_CMD_HEAD,
  MB_CMD_TAIL,
  REQ_CDB_OFF,
  REQ_IOV,
  REQ_IOV_CNT,
  RSP_SCSI_STATUS,
  TCMU_OP_CMD,
  TCMU_OP_MASK,
  TCMU_OP_PAD,
  TCMU_OP_TMR,
  TMR_CMD_CNT,
  TMR_CMD_IDS,
  TMR_TYPE,
  TcmuTmr,
  ringLayout,
} from '../../src/models/tcmu/abi.js';
import { TcmuRing, type Completion } from '../../src/models/tcmu/ring.js';
import { read, testUnitReady, write } from '../../src/models/tcmu/scsi.js';

interface Entry {
  /** Offset in the ring. */
  off: number;
  len: number;
  op: number;
  cmdId: number;
  opcode: number;
  iovs: { base: number; len: number }[];
  tmrType?: number;
  tmrIds?: number[];
}

/** A ring, its memory, and a consumer that walks it as libtcmu does. */
function setup(
  o: { cmdAreaSize?: number; dataAreaSize?: number; cmdTimeOutMs?: number; qfullTimeOutMs?: number; tmrNotification?: boolean; sync?: ConstructorParameters<typeof TcmuRing>[2]['sync'] } = {},
) {
  const layout = ringLayout(o.cmdAreaSize ?? 16384, o.dataAreaSize ?? 4 << 20);
  const mem = new Uint8Array(layout.mapSize);
  const view = new DataView(mem.buffer);
  const broken: string[] = [];
  const reaped: { type: number; cmdIds: number[]; uflags: number }[] = [];
  const expiredReaped: { cmdIds: number[]; left: number }[] = [];
  const ring = new TcmuRing(mem, layout, {
    tmrNotification: o.tmrNotification ?? false,
    onTmrReaped: (e) => reaped.push(e),
    onExpiredReaped: (e) => expiredReaped.push(e),
    cmdTimeOutMs: o.cmdTimeOutMs ?? 0,
    qfullTimeOutMs: o.qfullTimeOutMs ?? -1,
    notify: () => {},
    onBroken: (r) => broken.push(r),
    sync: o.sync,
  });
  let readPos = 0;
  const size = layout.cmdrSize;
  const entryAt = (off: number): Entry => {
    const at = CMDR_OFF + off;
    const lenOp = view.getUint32(at + HDR_LEN_OP, true);
    const iovCnt = view.getUint32(at + REQ_IOV_CNT, true);
    const op = lenOp & TCMU_OP_MASK;
    if (op === TCMU_OP_TMR) {
      const n = view.getUint32(at + TMR_CMD_CNT, true);
      return { off, len: lenOp & ~TCMU_OP_MASK, op, cmdId: 0, opcode: -1, iovs: [], tmrType: mem[at + TMR_TYPE]!, tmrIds: Array.from({ length: n }, (_, i) => view.getUint16(at + TMR_CMD_IDS + 2 * i, true)) };
    }
    return {
      off,
      len: lenOp & ~TCMU_OP_MASK,
      op,
      cmdId: view.getUint16(at + HDR_CMD_ID, true),
      opcode: op === TCMU_OP_CMD ? mem[Number(view.getBigUint64(at + REQ_CDB_OFF, true))]! : -1,
      iovs:
        op === TCMU_OP_CMD
          ? Array.from({ length: iovCnt }, (_, i) => ({
              base: Number(view.getBigUint64(at + REQ_IOV + i * 16, true)),
              len: Number(view.getBigUint64(at + REQ_IOV + i * 16 + 8, true)),
            }))
          : [],
    };
  };
  const consumer = {
    /** New entries from the private read pointer up to cmd_head, PADs included. */
    take(): Entry[] {
      const out: Entry[] = [];
      const head = view.getUint32(MB_CMD_HEAD, true);
      while (readPos !== head) {
        const e = entryAt(readPos);
        out.push(e);
        readPos = (readPos + e.len) % size;
      }
      return out;
    },
    /** tcmulib_command_complete(): skip PADs at cmd_tail, answer in the entry there (its cmd_id set to ours), advance cmd_tail. */
    complete(cmdId: number, status = 0): void {
      let tail = view.getUint32(MB_CMD_TAIL, true);
      while (entryAt(tail).op !== TCMU_OP_CMD && tail !== view.getUint32(MB_CMD_HEAD, true)) tail = (tail + entryAt(tail).len) % size;
      const e = entryAt(tail);
      view.setUint16(CMDR_OFF + tail + HDR_CMD_ID, cmdId, true);
      mem[CMDR_OFF + tail + RSP_SCSI_STATUS] = status;
      view.setUint32(MB_CMD_TAIL, (tail + e.len) % size, true);
    },
    get tail(): number {
      return view.getUint32(MB_CMD_TAIL, true);
    },
    set tail(v: number) {
      view.setUint32(MB_CMD_TAIL, v, true);
    },
    head: () => view.getUint32(MB_CMD_HEAD, true),
  };
  /** Submits and notes when (and how) the command ended. */
  const submit = (req: Parameters<TcmuRing['submit']>[0]) => {
    const r: { done?: Completion; p: Promise<Completion> } = { p: ring.submit(req) };
    void r.p.then((c) => (r.done = c));
    return r;
  };
  return { ring, mem, view, layout, consumer, broken, submit, reaped, expiredReaped };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('TcmuRing against a scripted consumer', () => {
  it('hands out the lowest free command id, as idr_alloc does: six TURs in a row each get id 1', async () => {
    const { consumer, submit, ring } = setup();
    for (let i = 0; i < 6; i++) {
      const c = submit(testUnitReady());
      const [e] = consumer.take();
      expect(e!.cmdId).toBe(1);
      consumer.complete(e!.cmdId);
      ring.kick();
      expect(await c.p).toMatchObject({ cmdId: 1, outcome: 'completed', status: 0 });
    }
    // With 1 and 2 out, 1 freed: the next is 1 again, then 3.
    const a = submit(testUnitReady());
    submit(testUnitReady());
    const [ea, eb] = consumer.take();
    expect([ea!.cmdId, eb!.cmdId]).toEqual([1, 2]);
    consumer.complete(1);
    ring.kick();
    await a.p;
    submit(testUnitReady());
    submit(testUnitReady());
    expect(consumer.take().map((e) => e.cmdId)).toEqual([1, 3]);
  });

  it('refuses a cmd_tail beyond the entries handed out: the ring breaks, and no command it never saw completes', async () => {
    const { consumer, submit, ring, broken } = setup();
    const reads = Array.from({ length: 5 }, (_, i) => submit(read(i, 1, 512)));
    const entries = consumer.take();
    expect(entries).toHaveLength(5);
    // Past cmd_head, on an 8-byte boundary: garbage entries would follow.
    consumer.tail = consumer.head() + 128;
    expect(ring.kick()).toBe(0);
    await settle();
    expect(reads.map((r) => r.done)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(broken).toEqual([expect.stringContaining('outside the entries handed out')]);
    expect(ring.stats).toMatchObject({ broken: true, inflight: 5 });
    // reset_ring 1 ends them BUSY (retryable), never "completed".
    expect(ring.reset(1)).toBe(5);
    for (const r of reads) expect(await r.p).toMatchObject({ outcome: 'busy', status: 8 });
  });

  it('refuses a cmd_tail behind the last reaped entry (a wrapped-around span) and one off an entry boundary', async () => {
    for (const hostile of ['behind', 'inside'] as const) {
      const { consumer, submit, ring, broken } = setup();
      const first = submit(testUnitReady());
      consumer.complete(consumer.take()[0]!.cmdId);
      ring.kick();
      await first.p;
      const held = [submit(testUnitReady()), submit(testUnitReady())];
      const [e1] = consumer.take();
      // behind: tail 0, i.e. before the first entry still out (the span's "other side"); inside: in the middle of the first entry.
      consumer.tail = hostile === 'behind' ? 0 : e1!.off + 8;
      expect(ring.kick()).toBe(0);
      await settle();
      expect(held.map((h) => h.done)).toEqual([undefined, undefined]);
      expect(broken).toHaveLength(1);
      expect(ring.stats.broken).toBe(true);
    }
  });

  it('walks by the length it wrote: a rewritten len_op breaks the ring instead of swallowing the next command', async () => {
    const { consumer, submit, ring, view, broken } = setup({ cmdTimeOutMs: 0 });
    const a = submit(read(0, 1, 512));
    const b = submit(read(1, 1, 512));
    const [ea, eb] = consumer.take();
    // Entry a now claims to cover b too; the tail moves past both as if one.
    view.setUint32(CMDR_OFF + ea!.off + HDR_LEN_OP, (ea!.len + eb!.len) | TCMU_OP_CMD, true);
    view.setUint16(CMDR_OFF + ea!.off + HDR_CMD_ID, ea!.cmdId, true);
    consumer.tail = (ea!.off + ea!.len + eb!.len) % 16256;
    ring.kick();
    await settle();
    expect(broken).toEqual([expect.stringContaining(`entry at ${ea!.off} has len_op`)]);
    expect([a.done, b.done]).toEqual([undefined, undefined]);
    // b still holds its data block, and is ended (not leaked) by a reset.
    expect(ring.stats.freeDataBlocks).toBe(1024 - 2);
    ring.reset(2);
    expect(await b.p).toMatchObject({ outcome: 'reset' });
    expect(ring.stats.freeDataBlocks).toBe(1024);
  });

  it('marks the ring broken for a cmd_id it never handed out', async () => {
    const { consumer, submit, ring, broken } = setup();
    const a = submit(testUnitReady());
    consumer.take();
    consumer.complete(77);
    ring.kick();
    await settle();
    expect(a.done).toBeUndefined();
    expect(broken).toEqual(['cmd_id 77 not found']);
    // Broken: new commands fail at once until reset_ring.
    expect(await ring.submit(testUnitReady())).toMatchObject({ outcome: 'rejected', status: 2 });
  });

  it('sizes an entry by its merged iovecs: a 4096-block READ on a 16 KiB command area is one 128-byte entry', async () => {
    const { consumer, submit, ring, mem } = setup({ cmdAreaSize: 16384, dataAreaSize: 4 << 20 });
    const big = submit(read(0, 4096, 512));
    const [e] = consumer.take();
    expect(e).toMatchObject({ len: 128, op: TCMU_OP_CMD, opcode: 0x28 });
    expect(e!.iovs).toEqual([{ base: 16384, len: 4096 * 512 }]);
    mem.fill(0xab, e!.iovs[0]!.base, e!.iovs[0]!.base + e!.iovs[0]!.len);
    consumer.complete(e!.cmdId);
    ring.kick();
    const c = await big.p;
    expect(c).toMatchObject({ outcome: 'completed', status: 0 });
    expect(c.data.length).toBe(4096 * 512);
    expect(c.data.every((b) => b === 0xab)).toBe(true);
  });

  it('checks ring space with the real entry size: a large READ fits a nearly full ring without waiting', async () => {
    const { consumer, submit, ring } = setup({ cmdAreaSize: 4096, dataAreaSize: 1 << 20 });
    // 3968-byte ring; 31 TURs of 120 bytes leave 3968 - 3720 - 1 = 247 bytes free.
    const turs = Array.from({ length: 31 }, () => submit(testUnitReady()));
    expect(consumer.take()).toHaveLength(31);
    // 64 blocks of 4 KiB: one-iovec-per-block sizing would want 48 + 64*16 + 16 = 1088 bytes; merged it is 128.
    const big = submit(read(0, 512, 512));
    const [e] = consumer.take();
    expect(e).toMatchObject({ len: 128, opcode: 0x28 });
    expect(ring.stats).toMatchObject({ qfull: 0, maxQfull: 0, inflight: 32 });
    for (let i = 0; i < 32; i++) consumer.complete(i + 1);
    ring.kick();
    await Promise.all([...turs, big].map((t) => t.p));
  });

  it('wraps with PAD entries, which the consumer skips, many times round', async () => {
    const { consumer, submit, ring } = setup({ cmdAreaSize: 4096, dataAreaSize: 1 << 20 });
    let pads = 0;
    for (let round = 0; round < 100; round++) {
      const batch = [submit(testUnitReady()), submit(read(round, 1, 512)), submit(testUnitReady())];
      for (const e of consumer.take()) {
        if (e.op === TCMU_OP_PAD) pads++;
        else consumer.complete(e.cmdId);
      }
      ring.kick();
      for (const b of batch) expect(await b.p).toMatchObject({ outcome: 'completed', status: 0 });
    }
    expect(pads).toBeGreaterThan(0);
    expect(ring.stats).toMatchObject({ pads, inflight: 0, broken: false, doubleEnds: 0 });
  });

  it('queues what finds no room (qfull) in order, and runs it once a kick frees room', async () => {
    const { consumer, submit, ring } = setup({ cmdAreaSize: 4096, dataAreaSize: 1 << 20 });
    const first = Array.from({ length: 33 }, () => submit(testUnitReady()));
    expect(consumer.take()).toHaveLength(33);
    const waiting = Array.from({ length: 5 }, () => submit(testUnitReady()));
    expect(ring.stats).toMatchObject({ qfull: 5, inflight: 33 });
    for (let i = 1; i <= 33; i++) consumer.complete(i);
    ring.kick();
    await Promise.all(first.map((f) => f.p));
    expect(ring.stats.qfull).toBe(0);
    const next = consumer.take().filter((e) => e.op === TCMU_OP_CMD);
    expect(next.map((e) => e.cmdId)).toEqual([1, 2, 3, 4, 5]);
    for (const e of next) consumer.complete(e.cmdId);
    ring.kick();
    for (const w of waiting) expect(await w.p).toMatchObject({ outcome: 'completed' });
  });

  it('answers TASK SET FULL when all 65534 command ids are out', async () => {
    const { consumer, submit, ring } = setup({ cmdAreaSize: 8 << 20, dataAreaSize: 4096 });
    const all = Array.from({ length: 0xfffe }, () => submit(testUnitReady()));
    expect(ring.stats.inflight).toBe(0xfffe);
    expect(await ring.submit(testUnitReady())).toMatchObject({ cmdId: 0, outcome: 'queue_full', status: 0x28 });
    const entries = consumer.take();
    expect(entries.at(-1)!.cmdId).toBe(0xfffe);
    consumer.complete(entries[0]!.cmdId);
    ring.kick();
    await all[0]!.p;
    // One id free again: the next command gets it.
    submit(testUnitReady());
    expect(consumer.take().map((e) => e.cmdId)).toEqual([1]);
  });
});

describe('TcmuRing timers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('rounds each deadline up to a whole second, as round_jiffies_up() does: commands queued in the same second time out together', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(10_250);
    const { submit, ring } = setup({ cmdTimeOutMs: 300 });
    const a = submit(testUnitReady());
    await vi.advanceTimersByTimeAsync(350);
    expect(a.done).toBeUndefined(); // 350 ms after it, past its 300
    const b = submit(testUnitReady());
    // 300 ms after each: neither is due yet (both deadlines are 11.000 s).
    await vi.advanceTimersByTimeAsync(399);
    expect([a.done, b.done]).toEqual([undefined, undefined]);
    await vi.advanceTimersByTimeAsync(1);
    expect(a.done).toMatchObject({ outcome: 'timed_out', status: 2 });
    expect(b.done).toMatchObject({ outcome: 'timed_out', status: 2 });
    expect(ring.stats.expired).toBe(2);
  });

  it('reports expired commands when the consumer completes them, with how many are left; never a command that had not expired', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(30_000);
    const { consumer, submit, ring, expiredReaped } = setup({ cmdTimeOutMs: 1000 });
    const old = [submit(read(0, 1, 512)), submit(read(1, 1, 512)), submit(read(2, 1, 512))];
    const entries = consumer.take();
    await vi.advanceTimersByTimeAsync(1000);
    for (const c of old) expect(c.done).toMatchObject({ outcome: 'timed_out' });
    const fresh = submit(testUnitReady());
    const [ef] = consumer.take();
    expect(ring.stats).toMatchObject({ expired: 3, inflight: 1 });
    // The ring's expired entries stay until the consumer passes them, one kick at a time here.
    consumer.complete(entries[0]!.cmdId);
    ring.kick();
    expect(expiredReaped).toEqual([{ cmdIds: [entries[0]!.cmdId], left: 2 }]);
    consumer.complete(entries[1]!.cmdId);
    consumer.complete(entries[2]!.cmdId);
    consumer.complete(ef!.cmdId);
    ring.kick();
    expect(expiredReaped).toEqual([
      { cmdIds: [entries[0]!.cmdId], left: 2 },
      { cmdIds: [entries[1]!.cmdId, entries[2]!.cmdId], left: 0 },
    ]);
    expect(await fresh.p).toMatchObject({ outcome: 'completed', status: 0 });
    expect(ring.stats).toMatchObject({ expired: 0, inflight: 0, freeDataBlocks: 1024 });
    // A kick with nothing expired among what it reaps reports nothing.
    const next = submit(testUnitReady());
    consumer.complete(consumer.take()[0]!.cmdId);
    ring.kick();
    await next.p;
    expect(expiredReaped).toHaveLength(2);
  });

  it('rounds a qfull_time_out deadline the same way', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(20_100);
    const { submit } = setup({ cmdAreaSize: 4096, cmdTimeOutMs: 0, qfullTimeOutMs: 1500 });
    for (let i = 0; i < 33; i++) submit(testUnitReady());
    const waiting = submit(testUnitReady());
    await vi.advanceTimersByTimeAsync(1500 + 399);
    expect(waiting.done).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.done).toMatchObject({ outcome: 'queue_full', status: 0x28 });
  });
});

describe('TcmuRing task management', () => {
  it('ABORT TASK with tmr_notification: a TMR entry names the command; it ends TASK ABORTED when userspace completes it, and the function then', async () => {
    const { consumer, submit, ring, reaped } = setup({ tmrNotification: true });
    const handle: { abort?: () => ReturnType<TcmuRing['taskManagement']> } = {};
    const aborted = ring.submit(read(0, 1, 512), handle);
    const other = submit(testUnitReady());
    const [ea, eo] = consumer.take();
    const t = handle.abort!();
    expect(t).toMatchObject({ inRing: [ea!.cmdId], fromQfull: 0, notified: true });
    const [tmr] = consumer.take();
    expect(tmr).toMatchObject({ op: TCMU_OP_TMR, len: 40, tmrType: TcmuTmr.ABORT_TASK, tmrIds: [ea!.cmdId] });
    let complete = false;
    void t.done.then(() => (complete = true));
    await settle();
    expect(complete).toBe(false);
    // Userspace completes both commands (skipping the TMR entry, as libtcmu does), then the TMR is reaped.
    consumer.complete(ea!.cmdId);
    consumer.complete(eo!.cmdId);
    consumer.tail = consumer.head();
    ring.kick();
    expect(await aborted).toMatchObject({ outcome: 'aborted', status: 0x40 });
    expect(await other.p).toMatchObject({ outcome: 'completed', status: 0 });
    await t.done;
    expect(reaped).toEqual([{ type: TcmuTmr.ABORT_TASK, cmdIds: [ea!.cmdId], uflags: 0 }]);
    expect(ring.stats).toMatchObject({ inflight: 0, broken: false, doubleEnds: 0 });
  });

  it('LUN RESET: commands waiting for room end at once TASK ABORTED, those in the ring when userspace completes them or at cmd_time_out; no entry without tmr_notification', async () => {
    const { consumer, submit, ring } = setup({ cmdAreaSize: 4096, cmdTimeOutMs: 1000 });
    const inRing = Array.from({ length: 33 }, () => submit(testUnitReady()));
    const waiting = Array.from({ length: 3 }, () => submit(testUnitReady()));
    consumer.take();
    const t = ring.taskManagement(TcmuTmr.LUN_RESET);
    expect(t).toMatchObject({ fromQfull: 3, notified: false });
    expect(t.inRing).toHaveLength(33);
    for (const w of waiting) expect(await w.p).toMatchObject({ outcome: 'aborted', status: 0x40 });
    expect(consumer.take()).toEqual([]); // no TMR entry
    // Nobody completes them: cmd_time_out ends them (aborted), and the reset with them.
    await t.done;
    for (const c of inRing) expect(await c.p).toMatchObject({ outcome: 'aborted' });
  });

  it('queues a TMR entry that finds no room, and puts it in once completions free some; reset_ring drops queued ones', async () => {
    const { consumer, submit, ring } = setup({ cmdAreaSize: 4096, tmrNotification: true });
    // 33 TURs of 120 bytes leave 7 bytes: no room for a 40-byte TMR entry.
    Array.from({ length: 33 }, () => submit(testUnitReady()));
    const entries = consumer.take();
    const t = ring.taskManagement(TcmuTmr.ABORT_TASK, entries[5]!.cmdId);
    expect(t.notified).toBe(true);
    expect(consumer.take()).toEqual([]);
    consumer.complete(entries[0]!.cmdId);
    ring.kick();
    const [tmr] = consumer.take().filter((e) => e.op !== TCMU_OP_PAD);
    expect(tmr).toMatchObject({ op: TCMU_OP_TMR, tmrIds: [entries[5]!.cmdId] });
    // Another, queued for want of room, then reset: gone with the ring's content, never written.
    ring.taskManagement(TcmuTmr.ABORT_TASK, entries[6]!.cmdId);
    ring.reset(1);
    expect(ring.kick()).toBe(0);
    expect(consumer.head()).toBe(0);
  });
});

describe('TcmuRing through a copy kept in step by pushes (page-cache mappings)', () => {
  it('pushes cmd_head after the entry and its data: a consumer that sees each pushed range land on its own never meets an entry not yet written', () => {
    // The consumer's copy of map0 (its page cache): each pushed range lands
    // on its own, in the order pushed, as a FUSE_NOTIFY_STORE does.
    let copy = new Uint8Array(0);
    let view = new DataView(copy.buffer);
    let readPos = 0;
    const met: string[] = [];
    let device: Uint8Array | null = null;
    const check = (): void => {
      const head = view.getUint32(MB_CMD_HEAD, true);
      for (let at = readPos; at !== head; ) {
        const lenOp = view.getUint32(CMDR_OFF + at + HDR_LEN_OP, true);
        const len = lenOp & ~TCMU_OP_MASK;
        const whole = Buffer.from(copy.subarray(CMDR_OFF + at, CMDR_OFF + at + len)).equals(device!.subarray(CMDR_OFF + at, CMDR_OFF + at + len));
        if (len === 0 || !whole) {
          met.push(`entry at ${at} under cmd_head ${head} not written yet`);
          return;
        }
        if ((lenOp & TCMU_OP_MASK) === TCMU_OP_CMD) {
          for (let i = 0; i < view.getUint32(CMDR_OFF + at + REQ_IOV_CNT, true); i++) {
            const base = Number(view.getBigUint64(CMDR_OFF + at + REQ_IOV + i * 16, true));
            const n = Number(view.getBigUint64(CMDR_OFF + at + REQ_IOV + i * 16 + 8, true));
            if (!Buffer.from(copy.subarray(base, base + n)).equals(device!.subarray(base, base + n))) met.push(`data of the entry at ${at} not written yet`);
          }
        }
        at = (at + len) % ring.layout.cmdrSize;
      }
    };
    const { ring, mem, submit, consumer } = setup({
      cmdAreaSize: 4096,
      tmrNotification: true,
      sync: {
        pull: () => undefined,
        push: (ranges) => {
          for (const r of ranges) {
            copy.set(mem.subarray(r.offset, r.offset + r.length), r.offset);
            check();
          }
        },
      },
    });
    device = mem;
    copy = Uint8Array.from(mem); // the mailbox as the consumer first reads it
    view = new DataView(copy.buffer);
    // Round the 4 KiB command area several times (PADs), with data out, and a TMR entry.
    for (let round = 0; round < 40; round++) {
      submit(write(round, Buffer.alloc(512, round + 1), 512));
      submit(testUnitReady());
      if (round % 10 === 3) ring.taskManagement(TcmuTmr.ABORT_TASK, 0xffff);
      const entries = consumer.take();
      readPos = view.getUint32(MB_CMD_HEAD, true);
      for (const e of entries) if (e.op === TCMU_OP_CMD) consumer.complete(e.cmdId);
      copy.set(mem.subarray(MB_CMD_TAIL, MB_CMD_TAIL + 4), MB_CMD_TAIL);
      ring.kick();
    }
    expect(met).toEqual([]);
  });
});
