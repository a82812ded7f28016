/**
 * The model author's view of the device lifecycle (DESIGN §4). The
 * vocabulary is the kernel's: a model is a driver, an instance a bound
 * device (probe -> remove), a file one open file description (struct file).
 */
import type { Errno } from '../errno.js';
import type { IoctlReply, IoctlRequest, PollMask } from '../devio.js';
import type { WaitQueue } from './waitqueue.js';

/** live -> unplugging -> gone (remove() returned) -> freed (last reference dropped). */
export type Lifecycle = 'live' | 'unplugging' | 'gone' | 'freed';

/** A sysfs-like read-only file: fixed text, or a show() function read on each access. */
export type Attribute = string | (() => string);

export interface DeviceModel<S> {
  name: string;
  /** What read/write/fsync/ioctl fail with after unplug; default EIO (evdev uses ENODEV). */
  unplugErrno?: Errno;
  /** poll answer after unplug; default POLLERR|POLLHUP. */
  unpollMask?: PollMask;
  /** Opens get FOPEN_STREAM. */
  stream?: boolean;
  /** Path of the node under MOUNT/dev, e.g. 'input/event0'; default the instance name. */
  nodePath?(inst: Instance<S>): string;
  /** Read-only files keyed by path relative to the mount root, e.g. 'sys/class/uio/uio0/name'. */
  attributes?(inst: Instance<S>): Record<string, Attribute>;
  /** probe(): returns the instance's state. */
  create(inst: Instance<S>, options: unknown): S | Promise<S>;
  open?(file: File<S>): void | Promise<void>;
  /**
   * Blocking handlers must honour `signal` (aborted on interrupt with EINTR,
   * on unplug with the unplug errno); a missing read/write is EINVAL, a
   * missing ioctl ENOTTY.
   */
  /*
   * read, write and ioctl get an AbortSignal that aborts when the caller is
   * interrupted or the device is unplugged. It is made only for a handler
   * that declares the parameter (Function.length >= 3): declare it as a
   * plain parameter (no default value, no rest) if the handler blocks.
   *
   * write's `data` (and ioctl's `req.in`) is a view of the request buffer,
   * valid until the handler returns or its promise settles: copy what must
   * outlive the call (docs/writing-a-model.md).
   */
  read?(file: File<S>, size: number, signal: AbortSignal): Promise<Buffer> | Buffer;
  write?(file: File<S>, data: Buffer, signal: AbortSignal): Promise<number> | number;
  ioctl?(file: File<S>, req: IoctlRequest, signal: AbortSignal): Promise<IoctlReply> | IoctlReply;
  /**
   * Current readiness (default DEFAULT_POLLMASK). Pollers are notified
   * through inst.wq, so every change of readiness must call inst.wq.wake().
   */
  poll?(file: File<S>): PollMask;
  /** A close while the device is live. */
  release?(file: File<S>): void | Promise<void>;
  /** A close after unplug began; runs after remove(), once per open file description. */
  lateRelease?(file: File<S>): void | Promise<void>;
  /** After it returns no model code runs for this instance except lateRelease and free. */
  remove?(inst: Instance<S>): void | Promise<void>;
  /** The last reference dropped. */
  free?(inst: Instance<S>): void;
  actions?: Record<string, (inst: Instance<S>, arg: unknown) => unknown>;
}

export interface Counters {
  opens: number;
  releases: number;
  lateReleases: number;
  reads: number;
  writes: number;
  ioctls: number;
  polls: number;
  actions: number;
  /** Calls a fault rule acted on. */
  faults: number;
  /** Requests answered with an errno. */
  errors: number;
  bytesRead: number;
  bytesWritten: number;
  /** Handlers running now. */
  inFlight: number;
  /** Handlers running now that unplug gave up on. */
  stuck: number;
}

export interface Holder {
  file: number;
  pid: number;
  comm: string;
  /** Epoch ms. */
  openedAt: number;
}

export interface InFlight {
  op: string;
  pid: number;
  comm: string;
  sinceMs: number;
  stuck: boolean;
}

export interface Instance<S> {
  readonly name: string;
  /** The model's name. */
  readonly model: string;
  readonly generation: number;
  readonly lifecycle: Lifecycle;
  /** What create() returned (dev_get_drvdata()); undefined while create() runs. */
  readonly state: S;
  readonly options: unknown;
  readonly nodePath: string;
  /** The device's wait queue (uio's idev->wait, evdev's evdev->wait); killed on unplug. */
  readonly wq: WaitQueue;
  readonly counters: Readonly<Counters>;
  readonly holders: readonly Holder[];
  readonly inFlight: readonly InFlight[];
  /** A model-defined event (watchdog 'expired'...), ordered with the lifecycle events. */
  emit(type: string, details?: Record<string, unknown>): void;
}

export interface File<S> {
  readonly id: number;
  readonly instance: Instance<S>;
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** /proc/PID/comm of the opener, read at open ('' if it had already exited). */
  readonly comm: string;
  readonly openFlags: number;
  /** f_flags as of the current call (fcntl(F_SETFL) may change O_NONBLOCK after open). */
  readonly flags: number;
  readonly nonblock: boolean;
  /** Epoch ms. */
  readonly openedAt: number;
  /** file->private_data: the model's per-open state. */
  private: unknown;
}
