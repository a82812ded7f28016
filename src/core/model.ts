/**
 * The model author's view of the device lifecycle (docs/writing-a-model.md). The
 * vocabulary is the kernel's: a model is a driver, an instance a bound
 * device (probe -> remove), a file one open file description (struct file).
 */
import type { Errno } from '../errno.js';
import type { IoctlReply, IoctlRequest, PollMask, SYS_DIR } from '../devio.js';
import type { WaitQueue } from './waitqueue.js';
import type { EventFieldsDeclaration } from './events.js';
import type { Schema } from './schema.js';

/** live -> unplugging -> gone (remove() returned) -> freed (last reference dropped). */
export type Lifecycle = 'live' | 'unplugging' | 'gone' | 'freed';

/**
 * A sysfs-like file: fixed text, a show() function read on each open, or
 * an object with show() and/or store(). store() gets the whole text of one
 * write() (sysfs store semantics: each write is one store, newline
 * included) and throws an Errno to fail that write; a file with store() and
 * no show() is write-only (configfs CONFIGFS_ATTR_WO, mode 0200).
 * SYS_DIR makes an empty directory (configfs groups such as alua/).
 */
export type Attribute = string | (() => string) | AttributeOps | typeof SYS_DIR;

export interface AttributeOps {
  show?(): string;
  store?(text: string): void | Promise<void>;
}

/**
 * What unplug does to the programs' mappings of a region. `revoke`: the
 * next touch of any mapping gets SIGBUS (BUS_ADRERR), as uio_vma_fault
 * after uio_unregister_device(). `keep`: the pages stay valid in every
 * mapping until its munmap, as target_core_user's data area.
 */
export type UnplugPolicy = 'revoke' | 'keep';

/** A shared memory region a model declares (a uio map). */
export interface RegionSpec {
  /** Shown in sys/class/uio/uioN/maps/mapN/name; default `map<index>`. */
  name?: string;
  /** Bytes, at least 1. The mapping is page-granular, as on a real device. */
  size: number;
  /** Default 'revoke'. */
  onUnplug?: UnplugPolicy;
  /**
   * The model option this region is configured by (uio's `maps[1]`). A
   * spec the layout refuses then names the option, and the plug is refused
   * as the plugger's error (400 bad_request); without it, as a model bug.
   */
  option?: string;
}

/** A byte range within one region. */
export interface RegionRange {
  offset: number;
  length: number;
}

/**
 * How a model's regions stay in step with programs' mappings when the
 * daemon cannot hand programs the very pages (no FUSE passthrough: the
 * programs map a copy, their page cache; docs/models.md#shared-memory-mmap).
 * - 'auto' (default): at every write and ioctl on the node the core pulls
 *   in what programs stored before the model's handler runs, and at every
 *   read and ioctl it pushes what the model changed before the answer goes
 *   out: a kick and an interrupt, as uio's protocol has them.
 * - 'manual': the model calls Region.pull() and Region.push() itself, with
 *   the ranges its protocol names (tcmu: the ring entries and data blocks);
 *   the core still waits for its pushes before answering a read or ioctl.
 * - 'shared': the model needs programs to see its stores as it makes them,
 *   with no kick or interrupt between (it polls the memory): without
 *   passthrough the plug is refused, saying so.
 */
export type RegionSync = 'auto' | 'manual' | 'shared';

/**
 * A declared region as the model sees it: `bytes` and `data` are views
 * over the very pages programs map, with no copy and no system call per
 * access. A program's store is visible at once, and the model's as well
 * (ordering between the two sides is the model's protocol, as with real
 * shared memory: use a kick such as write() or an irq to say "look now").
 */
export interface Region {
  readonly index: number;
  readonly name: string;
  readonly size: number;
  /** The mmap() offset that maps this region: index * page size (uio's convention). */
  readonly offset: number;
  readonly onUnplug: UnplugPolicy;
  /** live; revoked (programs' mappings get SIGBUS; the model's copy is private now); freed (views dropped). */
  readonly state: 'live' | 'revoked' | 'freed';
  /** `size` bytes over the shared pages. Throws once the device is freed. */
  readonly bytes: Uint8Array;
  /** The same bytes as a DataView (little-endian helpers for rings and mailboxes). */
  readonly data: DataView;
  /**
   * Without passthrough: merges into `bytes` what programs stored in
   * `ranges` (default: the whole region) of the pages they hold. Settles
   * once it is in; undefined, at once, when there is nothing to fetch
   * (passthrough, or no program holds a page in range).
   */
  pull(ranges?: readonly RegionRange[]): Promise<void> | undefined;
  /**
   * Without passthrough: sends programs the bytes of `ranges` (default:
   * the whole region) the model changed since they last saw them; a read
   * or ioctl of the node is answered only once they are in. No-op with
   * passthrough.
   */
  push(ranges?: readonly RegionRange[]): void;
  /**
   * Without passthrough: settles once everything pushed so far is in
   * programs' page caches; undefined when nothing is on its way (always
   * with passthrough). For an answer that must not reach its program
   * before the bytes do, on a node other than this device's (a read or
   * ioctl of the device itself already waits): the kernel changes shared
   * memory in place, before the call that changed it returns.
   */
  flush(): Promise<void> | undefined;
}

/**
 * The sizes a driver's read or write takes: `exact` bytes, or `atLeast`
 * bytes or more (rtc_dev_read(): `{ exact: 4, atLeast: 8 }`). A driver
 * refuses any other with EINVAL before it looks at its device.
 */
export interface IoSizes {
  exact?: number;
  atLeast?: number;
}

/**
 * What a file operation on an unplugged device answers, as its driver's
 * code answers once the device is unregistered. Blocked calls that unplug
 * ends (the wait queue killed, the signal aborted) answer the same, unless
 * the model ends them with an answer of its own.
 */
export interface UnplugAnswers<S> {
  /**
   * An errno (default EIO: uio_read() once idev->info is NULL; evdev_read()
   * ENODEV once !evdev->exist); 'eof', 0 bytes, as a hung-up tty's read
   * (drivers/tty/tty_io.c hung_up_tty_read()); or 'sleep': the caller
   * sleeps on, as in rtc_dev_read(), which waits for an interrupt that no
   * longer comes, until a signal ends the read with EINTR; with O_NONBLOCK
   * it fails EAGAIN. A sleeping read holds its file, and with it the
   * device's state, and is reported (`sleeping`) as a call the program is
   * stuck in.
   */
  read?: Errno | 'eof' | 'sleep';
  /**
   * The sizes the driver's read takes, checked before it looks at its
   * device: after unplug a read of another size fails EINVAL at once,
   * before `readPending` and `read` (uio_read(): exactly sizeof(s32);
   * rtc_dev_read(): sizeof(unsigned int), or sizeof(unsigned long) and
   * more). Without it a read of any size gets those. Use the same value in
   * your read (`ioSizeFits`), so both check one rule.
   */
  readSizes?: IoSizes;
  /**
   * The bytes the device holds for its next read when unplug begins, or
   * null: called once, when the gate closes (before remove(), while model
   * code may run). The first read after unplug (of a size `readSizes`
   * takes) gets them, cut to its size, without sleeping; later reads get
   * `read`. They are the device's, not a file's: one read of any file
   * takes them (rtc_dev_read() takes rtc->irq_data, which the driver never
   * clears at unregister, and sleeps only once it is 0). Until then poll
   * adds POLLIN|POLLRDNORM to every file's mask (rtc_dev_poll()).
   */
  readPending?: (inst: Instance<S>) => Uint8Array | null;
  /**
   * The sizes the driver's write takes, checked before it looks at its
   * device, as `readSizes` for a read: after unplug a write of another size
   * fails EINVAL before `write` (evdev_write(): 0, or one input_event and
   * more, before its !evdev->exist check).
   */
  writeSizes?: IoSizes;
  /** Default EIO (uio_write() answers EINVAL once idev->info is NULL). */
  write?: Errno;
  /**
   * The most bytes one read or write takes, by a limit of the driver that
   * outlives the device (spidev's bufsiz, a module parameter): after
   * unplug a longer read or write fails EMSGSIZE before anything else, as
   * spidev_read() and spidev_write() check count > bufsiz before
   * spidev_sync() finds spidev->spi NULL. Called once, when the gate closes
   * (before remove(), while model code may run).
   */
  maxIoSize?: (inst: Instance<S>) => number;
  /**
   * An errno for every command (default EIO; rtc_dev_ioctl() answers ENODEV
   * once rtc->ops is NULL); or, for a device whose character-device layer
   * is not its driver's and outlives it, a function called once when the
   * gate closes (before remove(), while model code may run) that returns
   * that layer's ioctl (UnplugIoctl). The kernel still runs i2cdev_ioctl()
   * on a file of an adapter i2c_del_adapter() is removing: I2C_SLAVE and
   * the flags answer from i2c-dev's own structures, and only what reaches
   * the bus driver (a transfer; I2C_FUNCS through i2c-tiny-usb's
   * usb_func()) meets hardware that is gone. What the function
   * needs of the device it captures then; the ioctl it returns uses only
   * that and the file's own state, never the removed device's state.
   */
  ioctl?: Errno | ((inst: Instance<S>) => UnplugIoctl<S>);
  /**
   * The poll mask: a constant (default POLLERR|POLLHUP; rtc_dev_poll() 0),
   * or a function of the file, called once for each file open when the
   * gate closes (before remove(), while model code may run), or when an
   * open in flight then completes; its answer is then the file's for good
   * (with POLLIN|POLLRDNORM while `readPending`'s data is untaken).
   * evdev_poll() after disconnect: EPOLLHUP|EPOLLERR, plus EPOLLIN|EPOLLRDNORM
   * while the client still has a complete packet queued.
   */
  poll?: PollMask | ((file: File<S>) => PollMask);
}

/**
 * The ioctl of a file after unplug, as UnplugAnswers.ioctl's function
 * returns it: code of the character-device layer that stays (i2c-dev's,
 * not the adapter's), which the core calls for every ioctl after unplug,
 * after remove() too, without a signal (nothing it does may block on the
 * gone device). Answers as a model's ioctl does: a reply, or throws an
 * Errno.
 */
export type UnplugIoctl<S> = (file: File<S>, req: IoctlRequest) => IoctlReply | Promise<IoctlReply>;

/**
 * An action a model offers (control API, `cdevemu action`, scenarios):
 * `args` declares its argument's fields, checked before run() is called
 * with the checked values (defaults filled in); without `args` it takes
 * none. A bare function is an action whose argument is passed unchecked.
 */
export interface ModelAction<S> {
  description: string;
  args?: Schema;
  // Method syntax: run() may take the Values<> of its own `args`.
  run(inst: Instance<S>, args: never): unknown;
}

export type ActionEntry<S> = ModelAction<S> | ((inst: Instance<S>, arg: unknown) => unknown);

export interface DeviceModel<S> {
  name: string;
  /** One line for people: GET /v1/models, `cdevemu models`. */
  description?: string;
  /**
   * The options create() takes: checked against this, defaults filled in,
   * before create() runs, and create() gets the checked values. Without
   * it, create() gets the options unchecked.
   */
  options?: Schema;
  /**
   * What calls on a file still open answer once unplug began, op by op, as
   * the driver's checks after unregister answer them; the model is not
   * called (docs/writing-a-model.md#after-unplug).
   */
  unplugged?: UnplugAnswers<S>;
  /** Opens get FOPEN_STREAM. */
  stream?: boolean;
  /** Path of the node under MOUNT/dev, e.g. 'input/event0'; default the instance name. */
  nodePath?(inst: Instance<S>): string;
  /** sysfs-like files keyed by path relative to the mount root, e.g. 'sys/class/uio/uio0/name'. */
  attributes?(inst: Instance<S>): Record<string, Attribute>;
  /**
   * The shared memory regions programs may mmap(), in order (region N is
   * mapped at offset N * page size). Called once, before create(), which
   * finds them zeroed in inst.regions and may fill them.
   */
  regions?(inst: Instance<S>): RegionSpec[];
  /** How the regions follow programs' mappings without passthrough; default 'auto' (see RegionSync). */
  regionSync?: RegionSync;
  /** probe(): returns the instance's state. `options` are checked against the model's `options` schema when it has one. */
  create(inst: Instance<S>, options: unknown): S | Promise<S>;
  /**
   * An open that waits (a tty without CLOCAL waiting for carrier) declares
   * the request's signal as its third parameter, as a blocking read does;
   * the second is always undefined (the core calls every file operation
   * as `(file, arg, signal)`, and open has no argument).
   */
  open?(file: File<S>, _?: undefined, signal?: AbortSignal): void | Promise<void>;
  /**
   * Blocking handlers must honour `signal` (aborted on interrupt with EINTR,
   * on unplug with its cancellation, which the core answers as
   * `unplugged` says); a missing read/write is EINVAL, a missing ioctl
   * ENOTTY.
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
  /**
   * The program that used the device has ended: `cdevemu run` calls it on
   * each live device of the run once the program under test has exited and
   * its files were released, before its verdict (a caller of the control
   * API may too: POST /v1/devices/{name}/end-session). A model that judges
   * a whole session by what the program left undone (replay) judges it
   * here, emitting its events now: at remove() they would come after the
   * verdict. The device stays plugged.
   */
  endSession?(inst: Instance<S>): void | Promise<void>;
  /** After it returns no model code runs for this instance except lateRelease, free, and the ioctl `unplugged.ioctl` returned. */
  remove?(inst: Instance<S>): void | Promise<void>;
  /** The last reference dropped. */
  free?(inst: Instance<S>): void;
  actions?: Record<string, ActionEntry<S>>;
  /**
   * The events the model emits (inst.emit()), each with the detail fields
   * it may carry: their names, or each name with its type
   * (`{ expired: { timeout: 'number', count: 'number' } }`). Once declared,
   * emitting another type or field, or a typed field's value of another
   * type, throws, and `cdevemu run` refuses a scenario whose event filter
   * names one the model does not declare, or compares a typed field with a
   * value of another type; without it, such filters are taken unchecked.
   */
  events?: Readonly<Record<string, EventFieldsDeclaration>>;
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
  /** Read and write calls made through the file so far. */
  reads: number;
  writes: number;
}

export interface InFlight {
  op: string;
  /** The thread that made the call (the opener, for a release; 0, `cdevemu`, for an action). */
  pid: number;
  comm: string;
  sinceMs: number;
  stuck: boolean;
  /**
   * A read asleep after unplug (UnplugAnswers.read 'sleep'), not a
   * handler: the caller waits for a signal, as on a real machine.
   */
  sleeping: boolean;
}

export interface Instance<S> {
  readonly name: string;
  /** The model's name. */
  readonly model: string;
  readonly generation: number;
  readonly lifecycle: Lifecycle;
  /** What create() returned (dev_get_drvdata()); undefined while create() runs. */
  readonly state: S;
  /** The options plugged with: checked, defaults filled in, when the model declares an `options` schema. */
  readonly options: unknown;
  readonly nodePath: string;
  /** The device's wait queue (uio's idev->wait, evdev's evdev->wait); killed on unplug. */
  readonly wq: WaitQueue;
  readonly counters: Readonly<Counters>;
  readonly holders: readonly Holder[];
  /** Resolves once no file of the device is open (at once if none is). */
  whenReleased(): Promise<void>;
  readonly inFlight: readonly InFlight[];
  /** The regions regions() declared; empty if none. */
  readonly regions: readonly Region[];
  /** How many mappings programs hold on the regions now (counted in /proc/PID/maps); 0 without regions. */
  mappings(): Promise<number>;
  /** A model-defined event (watchdog 'expired'...), ordered with the lifecycle events. */
  emit(type: string, details?: Record<string, unknown>): void;
  /**
   * The device went away by itself, as a USB device does when it is pulled
   * (usb_disconnect() -> device_del()): a surprise unplug of this instance,
   * begun once the calling handler has returned, so the handler may still
   * answer its own call. Used by models in front of something that can
   * vanish (record: the real node failed ENODEV; replay: the recorded
   * unplug). Does nothing once unplug has begun.
   */
  unplugSelf(): void;
  /**
   * What the model's devices on this emulator share across generations (a
   * backing store's content outliving its device), by a key the model
   * chooses: one map per model and emulator, gone with the emulator.
   */
  readonly modelData: Map<string, unknown>;
}

export interface File<S> {
  readonly id: number;
  readonly instance: Instance<S>;
  /** The opener's ids: who opened the file, not who calls now (a permission check asks the caller; see callerCapable). */
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
