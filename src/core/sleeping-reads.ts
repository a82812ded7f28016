/**
 * Reads that sleep on after unplug (UnplugAnswers.read 'sleep'), as
 * drivers/rtc/dev.c rtc_dev_read() does once rtc_device_unregister() has
 * run: it never looks at rtc->ops, and waits on rtc->irq_queue for an
 * interrupt that no longer comes. Only a signal ends the wait
 * (-ERESTARTSYS: EINTR for the caller), and with O_NONBLOCK the read fails
 * EAGAIN at once.
 *
 * The core keeps such a request unanswered, and no model code runs for
 * it: it is not in the op gate (unplug completes without it, and it is no
 * handler in flight), it holds no instance reference of its own (its file
 * does: the kernel holds the file for the read's duration, so the state is
 * freed only once the read has ended and the file is closed). It ends with
 * its request's signal: EINTR on the caller's interrupt
 * (docs/fuse-protocol.md#interrupt), ENODEV when the connection ends. Each
 * sleep is an event, `sleeping` (and `sleep_ended`), and is listed among
 * the device's calls in flight: the program is stuck in it, as it would
 * be on a real machine, and a scenario's noStuck says so.
 */
import { Errno } from '../errno.js';
import { O_NONBLOCK, type IoContext } from '../devio.js';
import { CallingThread } from './calling-thread.js';
import { CoreEvent } from './events.js';
import type { OpenFile } from './file.js';
import { abortErrno } from './waitqueue.js';

/**
 * A read's context on a model whose reads sleep on after unplug: the model
 * is handed a signal of the call's own, which follows the request's (an
 * interrupt, the connection's end) and which unplug aborts alone
 * (OpGate.cancel), so that the request's signal is left to tell a read put
 * to sleep of the caller's interrupt.
 */
export class ShieldedIo implements IoContext {
  private ac: AbortController | null = null;

  constructor(readonly request: IoContext) {}

  get pid(): number {
    return this.request.pid;
  }
  get uid(): number {
    return this.request.uid;
  }
  get gid(): number {
    return this.request.gid;
  }
  get flags(): number | undefined {
    return this.request.flags;
  }
  set flags(flags: number | undefined) {
    this.request.flags = flags;
  }
  get signal(): AbortSignal {
    return this.controller().signal;
  }
  abort(reason: Error): void {
    this.controller().abort(reason);
  }

  private controller(): AbortController {
    if (this.ac) return this.ac;
    const ac = (this.ac = new AbortController());
    const request = this.request.signal;
    if (request.aborted) ac.abort(request.reason);
    else request.addEventListener('abort', () => ac.abort(request.reason), { once: true });
    return ac;
  }
}

/** One read asleep. */
export interface SleepingRead {
  readonly file: OpenFile<unknown>;
  readonly caller: CallingThread;
  readonly startedAt: number;
  /** Ends the sleep with `errno` as the read's answer. */
  end(errno: Errno): void;
}

export class SleepingReads {
  private readonly asleep = new Set<SleepingRead>();

  /** `record` records an event of the device (DeviceInstance.record). */
  constructor(private readonly record: (type: string, details: Record<string, unknown>) => void) {}

  /** The reads asleep now, oldest first. */
  get list(): readonly SleepingRead[] {
    return [...this.asleep];
  }

  /**
   * A read of `file` after unplug: EAGAIN with O_NONBLOCK (the flags of
   * this call), else a promise that settles only when the caller is
   * interrupted or the connection ends, rejecting with that errno.
   */
  sleep<S>(file: OpenFile<S>, io: IoContext): Promise<Buffer> {
    if (((io.flags ?? file.flags) & O_NONBLOCK) !== 0) return Promise.reject(new Errno('EAGAIN'));
    const signal = io instanceof ShieldedIo ? io.request.signal : io.signal;
    if (signal.aborted) return Promise.reject(abortErrno(signal));
    const record = this.record;
    return new Promise<Buffer>((_resolve, reject) => {
      const read: SleepingRead = {
        file: file as OpenFile<unknown>,
        caller: new CallingThread(io.pid),
        startedAt: performance.now(),
        end: (errno) => {
          if (!this.asleep.delete(read)) return;
          signal.removeEventListener('abort', onAbort);
          record(CoreEvent.sleep_ended, { op: 'read', file: file.id, pid: io.pid, errno: errno.code });
          reject(errno);
        },
      };
      const onAbort = (): void => read.end(abortErrno(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      this.asleep.add(read);
      record(CoreEvent.sleeping, { op: 'read', file: file.id, pid: io.pid, comm: read.caller.name });
    });
  }

  /**
   * The file is released: its reads asleep end. The kernel holds a file
   * for a read's duration, so none should be left by then; this keeps a
   * release that comes anyway (the connection's end releasing every file)
   * from leaving a sleeper behind. Nobody waits for their answer.
   */
  endFile(file: OpenFile<unknown>): void {
    for (const read of this.asleep) if (read.file === file) read.end(new Errno('EBADF'));
  }
}
