/**
 * replay: a device played from a device trace that the record model wrote
 * (docs/models.md#replay, docs/trace-format.md), where there is no such
 * device.
 *
 * - Reads: the bytes readers got, each recorded read's at its time after
 *   the first open, divided by `speed` (0: at once). A read takes what has
 *   come and is not read yet, up to its size, and blocks (or EAGAIN with
 *   O_NONBLOCK) until something comes; poll says POLLIN then. After the
 *   last of them nothing comes again, as from the device when it was
 *   recorded. A recorded read that failed fails the read that comes to it.
 * - Writes: compared with what programs wrote while recording, as one
 *   stream. A write that differs emits `replay_mismatch` with the offset
 *   of the first byte that differs; `strict` fails it with EIO, `lenient`
 *   takes it. A recorded write that failed fails the write that comes to
 *   its place in the stream; one across that place is taken up to it, as
 *   is one across the end of a recorded write the device took short.
 * - Opens fail where the recorded ones did; one more than recorded is a
 *   mismatch, as for writes.
 * - ioctls: answered from the trace in its order, across commands
 *   (ioctl-answers.ts); a call other than the next recorded one (and no
 *   repeat), or one that gives the device something made at another place
 *   among the writes, is a mismatch, as for writes. A command the trace never saw is
 *   a mismatch too, answered ENOTTY in both modes, as a driver answers a
 *   command it does not know.
 * - The recorded unplug happens once its time has come and every byte
 *   recorded before it was read and written: a surprise unplug, as the
 *   device went.
 * - What the program left of the recording (opens not made, writes not
 *   written or not failed as recorded, ioctls not issued, what came before the last recorded write
 *   and was not read, a failed read among it included) emits `replay_incomplete` when the session ends: at
 *   the release that closes the last file once the program has opened as
 *   often as recorded, else when `cdevemu run` tells the device its
 *   program ended (endSession, before the verdict), else at remove (the
 *   recorded unplug included). `strict` fails a run on it, as on a
 *   mismatch.
 *
 * Fault rules apply on top as to every model (the core runs them before
 * the model is called).
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { Errno, errnoNumber, type ErrnoName } from '../../errno.js';
import { IOC_NONE, IOC_READ, iocDir, iocSize, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, type IoctlReply, type IoctlRequest } from '../../devio.js';
import { defineSchema, type DeviceModel, type File, type Instance, type Values } from '../../core/index.js';
import { DeviceTraceError, parseDeviceTrace } from '../record/device-trace.js';
import { POINTER_IOCTLS } from '../record/pointer-ioctls.js';
import { inputOf, IoctlAnswers } from './ioctl-answers.js';
import { scriptOf, type FailedWrite, type ReplayScript } from './script.js';

const MODES = ['strict', 'lenient'] as const;
type Mode = (typeof MODES)[number];

/** Bytes of each side a mismatch event shows. */
const SHOWN = 16;

export class ReplayState {
  /** performance.now() at the first open; null before. */
  private start: number | null = null;
  /** Chunks whose time has come. */
  private released = 0;
  /** What came and is not read yet: bytes, or the errno a read failed with. */
  private readonly queue: (Buffer | string)[] = [];
  /** How many bytes readers took. */
  private readBytes = 0;
  /** How many recorded failed reads a read came to (they come in order). */
  private failedReads = 0;
  /** Where in the written stream the next write goes. */
  writeOffset = 0;
  private timer: NodeJS.Timeout | null = null;
  readonly answers: IoctlAnswers;
  /** Opens made so far, taken or failed as recorded. */
  opens = 0;
  /** The next of script.failedWrites. */
  private failedWrite = 0;
  /** The next of script.shortWriteEnds. */
  private shortWrite = 0;
  /** Whether what the program left was looked at (judge()): once a session. */
  private judged = false;

  constructor(
    private readonly inst: Instance<ReplayState>,
    readonly script: ReplayScript,
    readonly speed: number,
    readonly mode: Mode,
  ) {
    this.answers = new IoctlAnswers(script.ioctls);
  }

  /** An open: fails as the recorded one at its place did. The first starts the clock, as in the trace. */
  open(): void {
    const errno = this.script.opens[this.opens++];
    if (this.start === null) {
      this.start = performance.now();
      this.pump();
    }
    if (errno) throw new Errno(errno as ErrnoName, 'replay: the recorded open failed so');
  }

  /** How many opens the recorded program made, those the device failed included: each is part of the session. */
  get expectedOpens(): number {
    return this.script.opens.length;
  }

  /** Whether the program opened the device as often as the recorded one did (a further open is one it never made). */
  get openedAll(): boolean {
    return this.opens >= this.expectedOpens;
  }

  get readable(): boolean {
    return this.queue.length > 0;
  }

  /** Up to `size` bytes of what came, never across an end of file or a failed read; [] for that end of file. */
  take(size: number): Buffer {
    const head = this.queue[0]!;
    if (typeof head === 'string' || head.length === 0) {
      this.queue.shift();
      if (!this.queue.length) this.pump();
      if (typeof head === 'string') {
        this.failedReads++;
        throw new Errno(head as ErrnoName, 'replay: the recorded read failed so');
      }
      return head;
    }
    const parts: Buffer[] = [];
    let left = size;
    while (left > 0 && this.queue.length && typeof this.queue[0] !== 'string' && this.queue[0]!.length) {
      const c = this.queue[0];
      parts.push(c.subarray(0, left));
      if (c.length <= left) this.queue.shift();
      else this.queue[0] = c.subarray(left);
      left -= Math.min(left, c.length);
    }
    if (!this.queue.length) this.pump();
    const got = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    this.readBytes += got.length;
    return got;
  }

  /** The recorded write that failed at the written stream's offset now, taken; or null. */
  failedWriteHere(): FailedWrite | null {
    const f = this.script.failedWrites[this.failedWrite];
    if (f?.at !== this.writeOffset) return null;
    this.failedWrite++;
    if (this.wroteAll) this.pump();
    return f;
  }

  /** Whether every recorded write was made: the bytes the device took, and the writes it failed (the one that found it gone, before its unplug). */
  private get wroteAll(): boolean {
    return this.writeOffset >= this.script.written.length && this.failedWrite >= this.script.failedWrites.length;
  }

  /**
   * How much of `n` bytes written now the device takes: not past the place
   * of a recorded failed write, nor past where a recorded write was taken
   * short (the program wrote the rest again after).
   */
  takes(n: number): number {
    const { failedWrites, shortWriteEnds } = this.script;
    while (this.shortWrite < shortWriteEnds.length && shortWriteEnds[this.shortWrite]! <= this.writeOffset) this.shortWrite++;
    const stop = Math.min(failedWrites[this.failedWrite]?.at ?? Infinity, shortWriteEnds[this.shortWrite] ?? Infinity);
    return stop > this.writeOffset && stop < this.writeOffset + n ? stop - this.writeOffset : n;
  }

  /** A write of `n` bytes was taken; the last recorded byte may let the unplug come. */
  wrote(n: number): void {
    this.writeOffset += n;
    if (this.wroteAll) this.pump();
  }

  /**
   * Emits `replay_incomplete` if the program left part of the recording
   * undone; once. `when` is the moment the session was judged.
   */
  judge(when: 'release' | 'end' | 'remove'): void {
    if (this.judged) return;
    this.judged = true;
    const left = {
      opens: this.opens,
      expectedOpens: this.expectedOpens,
      writtenBytes: this.writeOffset,
      expectedBytes: this.script.written.length,
      unreadBytes: Math.max(0, this.script.readBeforeLastWrite - this.readBytes),
      missingIoctls: this.answers.missing(),
      // The errors the program was never put under: what a recording of a failure is for.
      missingFailedWrites: this.script.failedWrites.slice(this.failedWrite).map((f) => f.errno),
      // A failed read before the last write is part of the dialogue, as its bytes are: the program must have met it.
      missingFailedReads: this.script.failedReadsBeforeLastWrite.slice(this.failedReads),
    };
    if (this.openedAll && this.wroteAll && left.unreadBytes === 0 && left.missingFailedReads.length === 0 && left.missingIoctls.length === 0) return;
    // strict: a program that skipped what the recording did passes nothing
    // the device could compare, so only this can fail its run.
    this.inst.emit('replay_incomplete', { ...left, when, mode: this.mode, fails: this.mode === 'strict' });
  }

  /** ms after the first open at which something recorded at `at` comes. */
  private due(at: number): number {
    return this.speed === 0 ? 0 : at / this.speed;
  }

  /** Releases what is due, then waits for the next thing: a chunk, or the unplug. */
  private pump(): void {
    if (this.start === null || this.inst.lifecycle !== 'live') return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const now = performance.now() - this.start;
    const { chunks, unplug } = this.script;
    const before = this.released;
    while (this.released < chunks.length && this.due(chunks[this.released]!.at) <= now) {
      const c = chunks[this.released++]!;
      this.queue.push(c.errno ?? c.data);
    }
    if (this.released > before) this.inst.wq.wake();
    const next = this.released < chunks.length ? chunks[this.released]!.at : this.queue.length === 0 ? unplug?.at : undefined;
    if (next === undefined) return;
    const wait = this.due(next) - now;
    if (wait <= 0 && this.released === chunks.length) {
      // The recorded program wrote all it did before the device went, the
      // write that found it gone included; a write still to come would find
      // it gone. wrote() and failedWriteHere() pump again.
      if (this.wroteAll) this.inst.unplugSelf();
      return;
    }
    this.timer = setTimeout(() => this.pump(), Math.max(0, wait));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

type ReplayFile = File<ReplayState>;

function read(file: ReplayFile, size: number, signal: AbortSignal): Promise<Buffer> | Buffer {
  const s = file.instance.state;
  if (s.readable) return s.take(size);
  if (file.nonblock) throw new Errno('EAGAIN');
  return file.instance.wq.wait(() => s.readable, signal).then(() => s.take(size));
}

/** The offset of the first byte of `got` that differs from `expected` from `at` on, or -1. */
function firstDifference(expected: Buffer, at: number, got: Buffer): number {
  for (let i = 0; i < got.length; i++) if (at + i >= expected.length || expected[at + i] !== got[i]) return at + i;
  return -1;
}

/**
 * `expectedCmd`: an ioctl's, the command of the recorded call that was due
 * (null when none was, or for a write). `offset`, `expectedOffset` of an
 * ioctl: the bytes written before it, and before the recorded call, when
 * it was made at another place among the writes (else null).
 */
type MismatchDetails = { op: string; offset: number | null; expectedOffset: number | null; cmd: number | null; expectedCmd: number | null; expected: string; got: string };

/** Tells of a call the recording did not make; `strict` fails it EIO. */
function mismatch(file: ReplayFile, details: MismatchDetails): void {
  report(file, details);
  if (file.instance.state.mode === 'strict') throw new Errno('EIO', `replay: ${details.op} differs from the trace`);
}

function report(file: ReplayFile, details: MismatchDetails): void {
  const s = file.instance.state;
  // strict: the program did what the recording did not, which fails a run
  // even if the program shrugs off the errno (src/scenario/device-failures.ts).
  file.instance.emit('replay_mismatch', { ...details, mode: s.mode, fails: s.mode === 'strict' });
}

function write(file: ReplayFile, data: Buffer): number {
  const s = file.instance.state;
  const failed = s.failedWriteHere();
  if (failed) {
    compare(file, failed.data, 0, data, s.writeOffset);
    throw new Errno(failed.errno as ErrnoName, 'replay: the recorded write failed so');
  }
  const took = data.subarray(0, s.takes(data.length));
  compare(file, s.script.written, s.writeOffset, took, s.writeOffset);
  s.wrote(took.length);
  return took.length;
}

/** A mismatch if `got` differs from `expected` from `at` on; `offset` is `at`'s in the written stream. */
function compare(file: ReplayFile, expected: Buffer, at: number, got: Buffer, offset: number): void {
  const d = firstDifference(expected, at, got);
  if (d < 0) return;
  mismatch(file, {
    op: 'write',
    offset: offset + d - at,
    expectedOffset: null,
    cmd: null,
    expectedCmd: null,
    expected: expected.subarray(d, d + SHOWN).toString('hex'),
    got: got.subarray(d - at, d - at + SHOWN).toString('hex'),
  });
}

async function ioctl(file: ReplayFile, req: IoctlRequest): Promise<IoctlReply> {
  const s = file.instance.state;
  const encoded = iocDir(req.cmd) !== IOC_NONE && iocSize(req.cmd) > 0;
  // Neither encoded nor known: record answered ENOTTY without reading the
  // caller (docs/trace-format.md), and traced it with no input.
  const how = encoded ? null : POINTER_IOCTLS.get(req.cmd);
  const input = encoded
    ? req.in.length
      ? req.in.toString('hex')
      : ''
    : how?.kind === 'in'
      ? (await req.user.read(req.arg, how.size)).toString('hex')
      : how?.kind === 'value'
        ? `arg=${req.arg}`
        : '';
  const a = s.answers.answer(req.cmd, input, s.writeOffset);
  if (!a) {
    report(file, { op: 'ioctl', offset: null, expectedOffset: null, cmd: req.cmd, expectedCmd: null, expected: '', got: input.slice(0, SHOWN * 2) });
    throw new Errno('ENOTTY', 'replay: the trace never saw this ioctl command');
  }
  if (!a.matched) {
    const due = a.due ? { expectedCmd: a.due.cmd, expected: inputOf(a.due).slice(0, SHOWN * 2) } : { expectedCmd: null, expected: '' };
    const place = a.expectedOffset !== undefined ? { offset: s.writeOffset, expectedOffset: a.expectedOffset } : { offset: null, expectedOffset: null };
    mismatch(file, { op: 'ioctl', ...place, cmd: req.cmd, ...due, got: input.slice(0, SHOWN * 2) });
  }
  const e = a.entry;
  if (e.errno !== undefined) throw new Errno(errnoNumber(e.errno));
  const out = e.out !== undefined ? Buffer.from(e.out, 'hex') : undefined;
  if (encoded) return { result: e.result ?? 0, ...(out && iocDir(req.cmd) & IOC_READ ? { out: out.subarray(0, req.outSize) } : {}) };
  if (out && how?.kind === 'out') await req.user.write(req.arg, out.subarray(0, how.size));
  return { result: e.result ?? 0 };
}

const REPLAY_OPTIONS = defineSchema({
  trace: { type: 'string', required: true, description: 'a trace `cdevemu record` wrote; a bad one is refused with its line and the reason' },
  speed: { type: 'number', min: 0, default: 1, description: '1: the recorded pace; 2: twice as fast; 0: as fast as possible' },
  mode: { type: 'string', enum: MODES, default: 'strict', description: 'what a write or ioctl input that differs from the trace does: strict fails it EIO, lenient takes it' },
});

export const replayModel: DeviceModel<ReplayState> = {
  name: 'replay',
  description: 'plays a device trace `cdevemu record` wrote: reads at the recorded pace, writes and ioctls compared, the recorded unplug',
  options: REPLAY_OPTIONS,
  stream: true,
  events: {
    replay_mismatch: { op: 'string', offset: 'number', expectedOffset: 'number', cmd: 'number', expectedCmd: 'number', expected: 'string', got: 'string', mode: 'string', fails: 'boolean' },
    replay_incomplete: {
      opens: 'number',
      expectedOpens: 'number',
      writtenBytes: 'number',
      expectedBytes: 'number',
      unreadBytes: 'number',
      missingIoctls: 'list',
      missingFailedWrites: 'list',
      missingFailedReads: 'list',
      when: 'string',
      mode: 'string',
      fails: 'boolean',
    },
  },
  async create(inst, options) {
    const o = options as Values<typeof REPLAY_OPTIONS>;
    const { speed, mode } = o;
    const path = resolve(o.trace);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new Errno('EINVAL', `replay: cannot read the trace ${path}: ${(err as Error).message}`);
    }
    try {
      return new ReplayState(inst, scriptOf(parseDeviceTrace(text, path)), speed, mode);
    } catch (err) {
      if (err instanceof DeviceTraceError) throw new Errno('EINVAL', `replay: ${err.message}`);
      throw err;
    }
  },
  attributes(inst) {
    return { ...inst.state.script.sysfs };
  },
  open(file) {
    const s = file.instance.state;
    // The recorded program never opened the device again: an open has
    // effects of its own on a device (a tty's raises DTR, a watchdog's
    // starts it), so one more is a difference, as a write more is.
    if (s.openedAll) mismatch(file, { op: 'open', offset: null, expectedOffset: null, cmd: null, expectedCmd: null, expected: '', got: '' });
    s.open();
  },
  read,
  write,
  poll(file) {
    return POLLOUT | POLLWRNORM | (file.instance.state.readable ? POLLIN | POLLRDNORM : 0);
  },
  ioctl,
  release(file) {
    const s = file.instance.state;
    // The last file closed: the session is over, unless the recorded
    // program opened again after such a close (remove judges that one).
    if (file.instance.holders.length === 0 && s.openedAll) s.judge('release');
  },
  endSession(inst) {
    inst.state.judge('end');
  },
  remove(inst) {
    inst.state.stop();
    inst.state.judge('remove');
  },
};
