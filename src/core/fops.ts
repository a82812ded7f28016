/**
 * The file operations fs/ calls on a device node, and callModel(), the one
 * way from a file operation, an action or an attribute store into a model.
 * Like debugfs's full_proxy_* wrappers (fs/debugfs/file.c, which also
 * holds debugfs_file_get() and _put()), every op re-enters the instance's
 * gate, so an op on a file that outlived its device gets the model's answer
 * for it after unplug (UnplugAnswers) and never reaches the model; release
 * is never gated.
 */
import { after, type Awaitable } from '../awaitable.js';
import { Errno, type ErrnoName } from '../errno.js';
import {
  DEFAULT_POLLMASK,
  POLLERR,
  type DeviceFile,
  type DevicePages,
  type IoContext,
  type IoctlReply,
  type IoctlRequest,
  type OpenContext,
  type PollMask,
} from '../devio.js';
import { CoreEvent } from './events.js';
import { OpenFile } from './file.js';
import type { InFlightOp } from './gate.js';
import { CallingThread } from './calling-thread.js';
import type { FaultableOp, OpCall } from './host.js';
import type { DeviceInstance } from './instance.js';
import { ShieldedIo } from './sleeping-reads.js';
import { unplugIoctlOf, unplugPollNow, unplugPollOf, unplugReadOf, unplugWriteOf } from './unplug-answers.js';

/** A model method as callModel() calls it: the file (null for actions and stores), the argument, the signal. */
export type ModelMethod<F, A, R> = (file: F, arg: A, signal: AbortSignal) => R | Promise<R>;

/**
 * What callModel() does for one kind of call, besides what it does for
 * all: one constant per operation, so a call allocates nothing to say it.
 */
export interface CallKind<A, R> {
  /** The fault rules' name for it; null: no rule applies (fsync, actions, attribute stores). */
  readonly fault: FaultableOp | null;
  /** The ioctl command fault rules match on. */
  readonly cmdOf?: (arg: A) => number;
  /**
   * False for RELEASE alone: never refused by the gate (full_proxy_release()),
   * and its result is nobody's answer (__fput() ignores ->release's), so its
   * failures are logged, not counted as errors.
   */
  readonly answered: boolean;
  /** What a model without the method answers, inside the gate (vfs_read(): EINVAL; vfs_ioctl(): ENOTTY). */
  readonly missing?: ErrnoName;
  /** Else, the result a model without the method gives (poll's default mask; nothing for open, release). */
  readonly absent?: R;
  /** Checks the reply against the request; one that does not fit (a longer read) is a model bug. */
  readonly check?: (reply: R, arg: A) => R;
  /**
   * What the call answers once unplug began: a call made after the gate
   * closed, or one that unplug's cancellation ended (its wait failing with
   * inst.unplugCancel) or gave up on; the model's UnplugAnswers for the op.
   * Returns the answer (or a promise of it: a read that sleeps), or throws
   * the errno; `arg` is the call's (a read's size).
   */
  readonly afterUnplug: <S>(
    inst: DeviceInstance<S>,
    file: OpenFile<S> | null,
    io: IoContext | OpenContext | null,
    arg: A,
  ) => R | Promise<R>;
  /** Runs when the model's result is the request's answer (not when unplug gave up on the call first): the byte counters. */
  readonly answer?: <S>(inst: DeviceInstance<S>, reply: R) => void;
  /** Runs once the model's own result has settled, however late (OPEN's reference); `stuck`: unplug gave up on it. */
  readonly settled?: <S>(inst: DeviceInstance<S>, file: OpenFile<S> | null, ok: boolean, stuck: boolean) => void;
}

/** What an open, an action or an attribute store gets on a device being unplugged, as evdev_open_device() once !evdev->exist. */
const GONE = new Errno('ENODEV');
const refuse = (errno: Errno) => (): never => {
  throw errno;
};

/** Actions and attribute stores: model code run for the control API, through the gate so unplug drains it; no fault rule applies. */
export const CONTROL_CALL = { fault: null, answered: true, afterUnplug: refuse(GONE) } as const satisfies CallKind<unknown, unknown>;

/** The caller recorded for operations started through the control API (actions, attribute stores). */
const CONTROL = new CallingThread(0, { name: 'cdevemu', process: 0 });

/**
 * Who a call is made by: the request's thread; an open's name is the one
 * just read; a release has no request, so it is the opener's, as known at
 * the open; an action's or a store's, the control API's.
 */
function callerOf<S>(op: string, file: OpenFile<S> | null, io: IoContext | OpenContext | null): CallingThread {
  if (io !== null) return new CallingThread(io.pid, op === 'open' && file ? { name: file.comm } : {});
  if (file === null) return CONTROL;
  return new CallingThread(file.pid, { name: file.comm, ...(file.openerProcess !== null ? { process: file.openerProcess } : {}) });
}

/** Given to model methods that do not take a signal: it never aborts, and costs nothing. */
const NEVER_ABORTED = new AbortController().signal;

/**
 * Whether a model method is given a live signal: only if it declares its
 * third parameter (mocha and Express read Function.length the same way).
 * A method that never names the signal cannot observe it, and most (zero,
 * null, register reads) answer at once.
 */
const namesSignal = (model: (...args: never[]) => unknown): boolean => model.length >= 3;

/**
 * The file operations as callModel() sees them, one row each: the
 * fault rules' name, what a model without the method answers, the reply
 * check, and what OPEN and RELEASE do besides.
 */
const OPEN: CallKind<undefined, unknown> = {
  fault: 'open',
  answered: true,
  absent: undefined,
  // An open that unplug ended or gave up on found the device gone.
  afterUnplug: refuse(GONE),
  settled: (inst, file, ok, stuck) => {
    // do_dentry_open(): a failed ->open is never released. An OPEN that
    // unplug gave up on was answered ENODEV: nobody will release its file,
    // so close it here (it gets lateRelease).
    if (!ok) inst.refs.put();
    else if (stuck) void release(inst, file!);
  },
};
// Never refused, and its result is nobody's answer: ended by unplug, it has nothing more to say.
const RELEASE: CallKind<undefined, unknown> = { fault: 'release', answered: false, absent: undefined, afterUnplug: () => undefined };
const READ: CallKind<number, Buffer> = {
  fault: 'read',
  answered: true,
  // vfs_read(): a file without ->read is EINVAL.
  missing: 'EINVAL',
  // A longer reply would make the kernel fail the request with EIO (fuse_copy_out_args).
  check: (buf, size) => {
    if (!Buffer.isBuffer(buf) || buf.length > size) {
      throw new Error(`read returned ${Buffer.isBuffer(buf) ? `${buf.length} bytes` : typeof buf} for a ${size}-byte read`);
    }
    return buf;
  },
  answer: (inst, buf) => {
    inst.count.bytesRead += buf.length;
  },
  afterUnplug: (inst, file, io, size) => {
    const answer = unplugReadOf(inst, size);
    if (answer === 'eof') return EOF;
    if (answer === 'sleep') return inst.sleepers.sleep(file!, io as IoContext);
    if (answer instanceof Errno) throw answer;
    return answer;
  },
};
const WRITE: CallKind<Buffer, number> = {
  fault: 'write',
  answered: true,
  missing: 'EINVAL',
  check: (n, data) => {
    if (!Number.isInteger(n) || n < 0 || n > data.length) throw new Error(`write returned ${String(n)} for a ${data.length}-byte write`);
    return n;
  },
  answer: (inst, n) => {
    inst.count.bytesWritten += n;
  },
  afterUnplug: (inst, _file, _io, data) => {
    throw unplugWriteOf(inst, data.length);
  },
};
const IOCTL: CallKind<IoctlRequest, IoctlReply> = {
  fault: 'ioctl',
  cmdOf: (req) => req.cmd,
  answered: true,
  // vfs_ioctl(): no ->unlocked_ioctl is ENOTTY, which programs probe with.
  missing: 'ENOTTY',
  // More than _IOC_SIZE would overrun the caller's buffer.
  check: (reply, req) => {
    if ((reply.out?.length ?? 0) > req.outSize) throw new Error(`ioctl 0x${req.cmd.toString(16)} returned ${reply.out!.length} bytes, caller accepts ${req.outSize}`);
    return reply;
  },
  // The errno, or the character-device layer's ioctl that outlives the driver (i2cdev_ioctl()).
  afterUnplug: (inst, file, _io, req) => unplugIoctlOf(inst, file!, req),
};
const POLL: CallKind<undefined, PollMask> = { fault: 'poll', answered: true, absent: DEFAULT_POLLMASK, afterUnplug: (inst, file) => unplugPollNow(inst, file!) };

/**
 * The one way into a model, like debugfs's FULL_PROXY_FUNC. In order: the
 * gate, which once it is closed answers without the model, as
 * `kind.afterUnplug` says (RELEASE is never refused, full_proxy_release()); the fault interceptor, skipped
 * while no rule is in force; the model, given the request's signal only
 * if it names that parameter; the reply check (`kind.check`); and the
 * settling, once: a failure becomes an Errno (DeviceInstance.errnoOf), one
 * that is unplug's cancellation the answer after unplug, and an
 * asynchronous answer races unplug's abandonment, so a stuck model's
 * request is answered at once.
 *
 * A call is recorded in the gate as an InFlightOp, holding an instance
 * reference until the model's own result settles however late, only once
 * something can happen while it runs. A model that answers synchronously
 * runs to completion: no unplug, interrupt or listing can see the call in
 * between, so it is answered synchronously and records nothing, and most
 * model calls are. A call is recorded before the model runs when the
 * record may be needed during the call itself: under a fault rule (a
 * delay, a hang, an unplug from inside the call), for actions and
 * attribute stores, and for a release whose model names the signal
 * parameter: no request carries it, so its signal is the record's own.
 */
export function callModel<S, F extends OpenFile<S> | null, A, R>(
  inst: DeviceInstance<S>,
  kind: CallKind<A, R>,
  op: string,
  file: F,
  io: IoContext | OpenContext | null,
  arg: A,
  model: ModelMethod<F, A, R> | undefined,
): R | Promise<R> {
  if (kind.answered) {
    if (file?.closed) {
      inst.count.errors++;
      throw new Errno('EBADF');
    }
    if (inst.gate.closed) {
      // The VFS answers an op the driver lacks without it, device there or
      // not (vfs_write(): EINVAL; vfs_ioctl(): ENOTTY).
      if (!model && kind.missing) {
        inst.count.errors++;
        throw new Errno(kind.missing);
      }
      return answerAfterUnplug(inst, kind, op, file, io, arg);
    }
    // Only OPEN, READ and WRITE carry f_flags; the others leave the last known ones.
    if (file && io?.flags !== undefined) file.flags = io.flags;
  }
  const hook = kind.fault && file ? inst.host.interceptor : null;
  const intercepted = hook !== null && !hook.idle;
  const named = model !== undefined && namesSignal(model);
  // Actions and stores (file null) are recorded up front; a release only
  // when its model names the signal, which is then the record's own (the
  // model type's release has no such parameter). Any other release, like
  // the other file operations, is recorded once it goes asynchronous:
  // nothing can look at the gate while a synchronous one runs.
  const early = intercepted || (io === null && (file === null || named)) ? inst.gate.track(op, callerOf(op, file, io), io ?? undefined) : null;
  const signal = named ? (early ?? io!).signal : NEVER_ABORTED;
  let r: R | Promise<R>;
  try {
    r = intercepted
      ? hook.intercept(describe(inst, kind.fault!, file, early!, kind.cmdOf?.(arg)), arg, (a: A) => invoke(kind, model, file, a, signal))
      : invoke(kind, model, file, arg, signal);
    if (kind.check && !(r instanceof Promise)) r = kind.check(r, arg);
  } catch (err) {
    if (early) inst.gate.exit(early);
    const e = inst.errnoOf(err, op, early ?? undefined);
    kind.settled?.(inst, file, false, false);
    if (kind.answered) inst.count.errors++;
    throw e;
  }
  if (!(r instanceof Promise)) {
    if (early) inst.gate.exit(early);
    kind.settled?.(inst, file, true, false);
    kind.answer?.(inst, r);
    return r;
  }
  const h = early ?? inst.gate.track(op, callerOf(op, file, io), io ?? undefined, signal !== NEVER_ABORTED);
  return answerLater(inst, kind, op, file, io, arg, h, r);
}

/**
 * `kind.afterUnplug`, settled as a model's answer is: its reply checked
 * (`kind.check`: the ioctl a model keeps for after unplug, i2c-dev's, is
 * model code) and counted (`kind.answer`), a failure turned into an Errno
 * (a bug in that ioctl answered EIO) and counted as the request's error,
 * however late (a read's sleep ends).
 */
function answerAfterUnplug<S, A, R>(
  inst: DeviceInstance<S>,
  kind: CallKind<A, R>,
  op: string,
  file: OpenFile<S> | null,
  io: IoContext | OpenContext | null,
  arg: A,
): R | Promise<R> {
  const failed = (err: unknown): never => {
    if (kind.answered) inst.count.errors++;
    throw inst.errnoOf(err, op);
  };
  const answered = (r: R): R => {
    const reply = kind.check ? kind.check(r, arg) : r;
    kind.answer?.(inst, reply);
    return reply;
  };
  try {
    const r = kind.afterUnplug(inst, file, io, arg);
    return r instanceof Promise ? r.then(answered).catch(failed) : answered(r);
  } catch (err) {
    return failed(err);
  }
}

/**
 * The answer of a call that went asynchronous: the model's result, checked,
 * unless unplug gives up on the call first (InFlightOp.abandon). One
 * promise and one reaction per call: a thousand blocked readers each hold
 * their chain until unplug fails them all at once, and every link of it
 * was memory held meanwhile and a microtask at the wake-up.
 */
function answerLater<S, F extends OpenFile<S> | null, A, R>(
  inst: DeviceInstance<S>,
  kind: CallKind<A, R>,
  op: string,
  file: F,
  io: IoContext | OpenContext | null,
  arg: A,
  h: InFlightOp,
  r: Promise<R>,
): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    // Until the request has its answer: from the model, or from unplug.
    let pending = true;
    const fail = (err: Errno): void => {
      pending = false;
      if (kind.answered) inst.count.errors++;
      reject(err);
    };
    // Unplug ended the call (its cancellation) or gave up on it (stuck):
    // the request gets what a call made after unplug gets.
    const unplugged = (): void => {
      pending = false;
      let answer: R | Promise<R>;
      try {
        answer = answerAfterUnplug(inst, kind, op, file, io, arg);
      } catch (err) {
        return reject(err);
      }
      if (answer instanceof Promise) answer.then(resolve, reject);
      else resolve(answer);
    };
    h.onAbandon = () => {
      if (pending) unplugged();
    };
    // Runs once the model's own result has settled, however late: only then
    // does the handler leave the gate and drop its reference.
    const settle = (ok: boolean, value: R | Errno): void => {
      inst.gate.exit(h);
      kind.settled?.(inst, file, ok, h.stuck);
      if (!pending) return;
      if (!ok && value === inst.unplugCancel) return unplugged();
      if (!ok) return fail(value as Errno);
      pending = false;
      kind.answer?.(inst, value as R);
      resolve(value as R);
    };
    r.then(
      (v) => {
        let checked: R;
        try {
          checked = kind.check ? kind.check(v, arg) : v;
        } catch (err) {
          return settle(false, inst.errnoOf(err, op, h));
        }
        settle(true, checked);
      },
      (err: unknown) => settle(false, inst.errnoOf(err, op, h)),
    );
  });
}

/** The model's method, or what a model without it answers. */
/**
 * The model's method, or what a model without it answers. Behind the fault
 * interceptor: a rule on an op the model lacks (an ioctl rule on zero) acts
 * on the kernel's call, as a rule on any other op does.
 */
function invoke<F, A, R>(kind: CallKind<A, R>, model: ModelMethod<F, A, R> | undefined, file: F, arg: A, signal: AbortSignal): R | Promise<R> {
  if (model) return model(file, arg, signal);
  if (kind.missing) throw new Errno(kind.missing);
  return kind.absent!;
}

/** The call as the interceptor (the fault engine) sees it: the handler's, recorded before the model runs. */
function describe<S>(inst: DeviceInstance<S>, op: FaultableOp, file: OpenFile<S> | null, h: InFlightOp, cmd: number | undefined): OpCall {
  const caller = h.caller;
  return {
    op,
    get signal() {
      return h.signal;
    },
    device: inst.name,
    model: inst.model,
    generation: inst.generation,
    caller,
    ...(cmd !== undefined ? { cmd } : {}),
    fired: (details) => {
      inst.count.faults++;
      inst.record(CoreEvent.fault_fired, { ...details, op, pid: caller.tid, comm: caller.name });
      // A failed poll is only POLLERR, which the file keeps (OpenFile.pollFailed): epoll polls again before it reports it.
      if (op === 'poll' && details.action === 'fail') file!.pollFailed = true;
    },
  };
}

/**
 * OPEN. Answered synchronously when the model's open is (zero, null and
 * most models have none): only a model whose open returns a promise pays
 * for the race against unplug's abandonment.
 */
export function openFile<S>(inst: DeviceInstance<S>, ctx: OpenContext): Awaitable<DeviceFile> {
  // The node can outlive unpublish in the kernel's dentry cache, and an
  // OPEN may already be past LOOKUP: refuse like evdev_open_device() once
  // !evdev->exist.
  if (inst.lifecycle !== 'live') {
    inst.count.errors++;
    throw new Errno('ENODEV');
  }
  const file = new OpenFile(inst.nextFileId(), inst, ctx);
  if (inst.shared) file.openerProcess = inst.noteOpener(ctx.pid);
  // The file's reference is taken before the model's open runs
  // (cxl_memdev_open() holds the device across ->open), so an unplug racing
  // the open cannot free the instance under it; OPEN.settled drops it if
  // the open fails.
  inst.refs.get();
  const r = callModel(inst, OPEN, 'open', file, ctx, undefined, inst.driver.open);
  // Also reached when unplug began during the model's open: that file is a
  // normal open file of a device being removed.
  return r instanceof Promise ? r.then(() => opened(inst, file)) : opened(inst, file);
}

/** The file the model opened, counted and handed to fs/. */
function opened<S>(inst: DeviceInstance<S>, file: OpenFile<S>): DeviceFile {
  inst.files.add(file);
  // An open that completes while the device is being unplugged: its poll
  // answer is fixed now, as closeGate() fixed the others' (its own open was
  // model code, which the drain waits for, so remove() has not begun).
  if (inst.gate.closed) unplugPollOf(inst, file);
  inst.count.opens++;
  inst.record(CoreEvent.opened, { file: file.id, pid: file.pid, comm: file.comm, flags: file.openFlags });
  return new CoreFile(inst, file);
}

/**
 * The DeviceFile fs/ calls for one open file. Its methods live on the
 * prototype: an open file costs this one object, not a closure (and a
 * closure context) per operation.
 */
class CoreFile<S> implements DeviceFile {
  readonly backingFd: number | undefined;
  readonly pages: DevicePages | undefined;

  constructor(
    private readonly inst: DeviceInstance<S>,
    private readonly file: OpenFile<S>,
  ) {
    this.backingFd = inst.shared?.backingFd;
    this.pages = inst.shared ?? undefined;
  }

  // The synchronisation points of regions mapped through programs' page
  // caches (DeviceRegions.beforeKick, beforeAnswer): read answers the
  // interrupt, write kicks, ioctl may do either.

  read(size: number, io: IoContext): Awaitable<Buffer> {
    return thenAnswer(this.inst, read(this.inst, this.file, size, io));
  }

  write(data: Buffer, io: IoContext): Awaitable<number> {
    return afterKick(this.inst, () => write(this.inst, this.file, data, io));
  }

  ioctl(req: IoctlRequest, io: IoContext): Awaitable<IoctlReply> {
    return thenAnswer(this.inst, afterKick(this.inst, () => ioctl(this.inst, this.file, req, io)));
  }

  poll(_events: PollMask, wake: (() => void) | null, io: IoContext): Awaitable<PollMask> {
    return poll(this.inst, this.file, wake, io);
  }

  fsync(): Awaitable<void> {
    return fsync(this.inst, this.file);
  }

  release(): Awaitable<void> {
    return release(this.inst, this.file);
  }
}

/** Runs `op` once what programs stored in the regions is pulled in (at once when there is nothing to pull). */
function afterKick<S, T>(inst: DeviceInstance<S>, op: () => Awaitable<T>): Awaitable<T> {
  const pulled = inst.shared?.beforeKick(inst.driver.regionSync ?? 'auto');
  return pulled ? pulled.then(op) : op();
}

/** `answer`, once what the model changed in the regions is pushed to programs' page caches. */
function thenAnswer<S, T>(inst: DeviceInstance<S>, answer: Awaitable<T>): Awaitable<T> {
  const shared = inst.shared;
  if (!shared) return answer;
  return after(answer, (v) => {
    shared.beforeAnswer(inst.driver.regionSync ?? 'auto');
    return v;
  });
}

/** The answer of a read at end of file. */
const EOF = Buffer.alloc(0);

function read<S>(inst: DeviceInstance<S>, file: OpenFile<S>, size: number, io: IoContext): Awaitable<Buffer> {
  inst.count.reads++;
  file.reads++;
  file.pollFailed = false;
  // A read that may be put to sleep by unplug keeps its request's signal
  // out of unplug's reach, to learn of the caller's interrupt (ShieldedIo).
  const rio = inst.unplugAnswers.read === 'sleep' ? new ShieldedIo(io) : io;
  return callModel(inst, READ, 'read', file, rio, size, inst.driver.read);
}

function write<S>(inst: DeviceInstance<S>, file: OpenFile<S>, data: Buffer, io: IoContext): Awaitable<number> {
  inst.count.writes++;
  file.writes++;
  file.pollFailed = false;
  return callModel(inst, WRITE, 'write', file, io, data, inst.driver.write);
}

function ioctl<S>(inst: DeviceInstance<S>, file: OpenFile<S>, req: IoctlRequest, io: IoContext): Awaitable<IoctlReply> {
  inst.count.ioctls++;
  file.pollFailed = false;
  return callModel(inst, IOCTL, 'ioctl', file, io, req, inst.driver.ioctl);
}

function poll<S>(inst: DeviceInstance<S>, file: OpenFile<S>, wake: (() => void) | null, io: IoContext): Awaitable<PollMask> {
  inst.count.polls++;
  // The model's answer after unplug, fixed when the gate closed; no
  // registration is kept: nothing will make the file readable again.
  if (inst.gate.closed) return unplugPollNow(inst, file);
  // A fault failed a poll of the file: POLLERR until its next read, write or ioctl; an answer not 0 needs no wake.
  if (file.pollFailed) return POLLERR;
  // poll_wait() before computing the mask, so a wake in between is not lost.
  if (wake) file.pollWait(inst.wq, wake);
  // Poll has no errno to give: fuse_file_poll() turns a failed POLL into EPOLLERR.
  try {
    const mask = callModel(inst, POLL, 'poll', file, io, undefined, inst.driver.poll);
    return mask instanceof Promise ? mask.catch(() => POLLERR) : mask;
  } catch {
    return POLLERR;
  }
}

/**
 * vfs_fsync_range(): a file without ->fsync is EINVAL, before and after
 * unplug alike, as the VFS answers it without asking the driver; no model
 * has fsync (none of the drivers they mimic does).
 */
function fsync<S>(inst: DeviceInstance<S>, file: OpenFile<S>): never {
  inst.count.errors++;
  throw new Errno(file.closed ? 'EBADF' : 'EINVAL');
}

/** How often a release held by a mapping looks at the opener's mappings again (release()). */
const UNMAP_POLL_MS = 50;

/**
 * RELEASE; synchronous, like OPEN, when the model's release is. A mapping
 * holds its file in the kernel (mm/mmap.c: the vma's fput() at munmap, so
 * uio's release comes at the last munmap and close). Through FUSE
 * passthrough the mapping holds the backing file instead, and RELEASE
 * comes at close(): so on such a device the file stays open, its release
 * to come, while its opener, or what it forked, maps the node (a process
 * with two files of it and one mapping holds both: which file a mapping
 * came by is not in /proc/PID/maps; the opener is its process, so a
 * thread that opened, mapped and exited still holds it). RELEASE itself
 * is answered at once: the kernel queues it in the background, where one
 * held would hold up the others.
 */
function release<S>(inst: DeviceInstance<S>, file: OpenFile<S>): Awaitable<void> {
  if (file.closed) return;
  file.closed = true;
  file.cancelPoll();
  inst.sleepers.endFile(file as OpenFile<unknown>);
  if (!inst.mapsBypassFiles) return close(inst, file);
  untilUnmapped(inst, file)
    .then(() => close(inst, file))
    .catch((err: unknown) => inst.log.error({ err, device: inst.name }, 'device release failed'));
}

async function untilUnmapped<S>(inst: DeviceInstance<S>, file: OpenFile<S>): Promise<void> {
  while ((await inst.mappingsBy(file.openerProcess ?? file.pid)) > 0) await new Promise((r) => setTimeout(r, UNMAP_POLL_MS).unref());
}

/** The file's release proper: the model's release (or lateRelease, after unplug), then its event. */
function close<S>(inst: DeviceInstance<S>, file: OpenFile<S>): Awaitable<void> {
  inst.files.delete(file);
  inst.fileClosed();
  if (inst.lifecycle !== 'live') return lateRelease(inst, file);
  inst.count.releases++;
  let r: unknown;
  try {
    r = callModel(inst, RELEASE, 'release', file, null, undefined, inst.driver.release);
  } catch {
    // __fput() ignores ->release's result; call() has logged a model bug.
  }
  if (!(r instanceof Promise)) return released(inst, file, false);
  const done = (): void => released(inst, file, false);
  return r.then(done, done);
}

async function lateRelease<S>(inst: DeviceInstance<S>, file: OpenFile<S>): Promise<void> {
  inst.count.lateReleases++;
  // uio's late_release: a file closed after unregister is still cleaned
  // up (tcmu leaked its memory when release was skipped). It runs after
  // remove() so the model only ever sees it on a removed device.
  try {
    await inst.removal;
    await inst.runModel('lateRelease', () => inst.driver.lateRelease?.(file));
  } catch {
    // runModel() has logged a model bug; the file is released regardless.
  } finally {
    released(inst, file, true);
  }
}

/** The file's last act: its event, and its instance reference dropped (uio_release()'s put_device()). */
function released<S>(inst: DeviceInstance<S>, file: OpenFile<S>, late: boolean): void {
  inst.record(late ? CoreEvent.late_released : CoreEvent.released, { file: file.id, pid: file.pid, reads: file.reads, writes: file.writes });
  inst.refs.put();
}
