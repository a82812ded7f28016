/**
 * What core/ needs from the daemon that hosts it (a Publisher for the node
 * tree, a logger) and what it answers its callers. core/ never imports fs/;
 * the daemon implements Publisher on the FUSE node tree.
 */
import type { DeviceEndpoint } from '../devio.js';
import type { CallingThread } from './calling-thread.js';
import type { Attribute, Instance } from './model.js';

export interface PublishedDevice {
  readonly name: string;
  readonly generation: number;
  /** Path under MOUNT/dev. */
  readonly nodePath: string;
  readonly stream: boolean;
  /** Bytes of shared regions a program can mmap (stat's st_size, as python's mmap checks it); 0 without regions. */
  readonly size: number;
}

export interface Publisher {
  /** Makes the node and its attributes visible; `endpoint` is what fs calls for OPEN. */
  publish(dev: PublishedDevice, endpoint: DeviceEndpoint, attributes: Record<string, Attribute>): void;
  /** Removes them (and invalidates the kernel's caches); unplug waits for it. Gets the object publish() got. */
  unpublish(dev: PublishedDevice): Promise<void>;
  /**
   * How many mappings programs hold on the node's regions now, before or
   * after unpublish: those of the processes in `openers` (the pids that
   * opened the node) and their descendants. The publisher may update
   * `openers` in place: drop processes that exited, add descendants found.
   */
  mappings?(dev: PublishedDevice, openers: Set<number>): Promise<number>;
  /**
   * true when programs map the regions' very pages (FUSE passthrough),
   * else why not: they then map a copy kept in step at the synchronisation
   * points (RegionSync). Known before the mount, as plugs come first.
   */
  pagesShared?(): true | string;
}

/** The file operations a fault rule can target. */
export type FaultableOp = 'open' | 'read' | 'write' | 'ioctl' | 'poll' | 'release';

/** A model call about to run, as an interceptor (the fault engine) sees it. */
export interface OpCall {
  readonly op: FaultableOp;
  readonly device: string;
  readonly model: string;
  readonly generation: number;
  /** Who made the call (the opener, for a release). */
  readonly caller: CallingThread;
  /** The ioctl command, for op 'ioctl'. */
  readonly cmd?: number;
  /** Aborts on interrupt or unplug: what a delay or hang waits on. */
  readonly signal: AbortSignal;
  /** Records that a rule acted on this call: a `fault_fired` event and the instance's `faults` counter. */
  fired(details: Record<string, unknown>): void;
}

/**
 * Sits between the op gate and the model (docs/architecture.md#request-path,
 * step 7: faults apply in the core's op path, not in models). It may call `proceed` with the same or a
 * changed argument (read size, write data), transform the result, delay,
 * or fail instead of calling the model at all. It runs inside the gate, so
 * unplug's drain waits for it and its signal aborts on interrupt or unplug.
 * The argument and result types depend on the op: read (size -> Buffer),
 * write (data -> count), ioctl (IoctlRequest -> IoctlReply), poll and
 * open/release (undefined -> mask / void).
 */
export interface OpInterceptor {
  /**
   * True while no call can be intercepted (no rule in force): the core then
   * calls the model directly, without describing the call.
   */
  readonly idle: boolean;
  intercept<A, R>(call: OpCall, arg: A, proceed: (arg: A) => R | Promise<R>): R | Promise<R>;
}

/** The subset of pino's API core uses. */
export interface Logger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * How a device goes away. `orderly` is a driver's own teardown: it tells
 * its consumers first (target_core_user's tcmu_destroy_device() sends
 * REMOVED_DEVICE and waits for the reply before uio_unregister_device()).
 * `surprise` is the hardware vanishing: the device is unregistered with no
 * notice. Both then follow the same unplug steps.
 */
export type UnplugMode = 'orderly' | 'surprise';

/** How to unplug (devices.unplug, the control API's body, `cdevemu unplug`, a scenario's unplug step). */
export interface UnplugOptions {
  /** How long running handlers may take before they are reported stuck. */
  drainTimeoutMs?: number;
  mode?: UnplugMode;
  /**
   * A bound on each wait of an orderly unplug's notice (the `unplugging`
   * hooks): for tcmu, the drain of the commands and the wait for
   * REMOVED_DEVICE_DONE. Unset: no bound, as the kernel waits.
   */
  noticeTimeoutMs?: number;
}

/**
 * Code outside the models that takes part in a device's life, the way a
 * subsystem notifies userspace (target_core_user's netlink events). Hooks
 * run in the order added; one that throws is logged and does not stop the
 * plug or unplug.
 */
export interface LifecycleHooks {
  /**
   * After the node is published, before plug() resolves. Throwing an Errno
   * refuses the device, as a subsystem's configure step failing does
   * (target_core_user's tcmu_configure_device() on a negative
   * ADDED_DEVICE_DONE): it is unplugged without notice and plug() fails
   * with that errno. Anything else thrown is logged and ignored.
   */
  plugged?(inst: Instance<unknown>): void | Promise<void>;
  /**
   * At the start of an orderly unplug, while the device still works; not
   * for a surprise unplug. `noticeTimeoutMs` bounds each of its waits (none if unset).
   */
  unplugging?(inst: Instance<unknown>, notice: { noticeTimeoutMs?: number }): void | Promise<void>;
}

export interface StuckHandler {
  op: string;
  pid: number;
  comm: string;
  /** How long it had been running when reported. */
  sinceMs: number;
}

export interface UnplugReport {
  device: string;
  generation: number;
  stuck: StuckHandler[];
  drainedInMs: number;
}

export type DeviceErrorKind = 'unknown_model' | 'conflict' | 'not_found' | 'invalid' | 'probe_failed';

/** A refused manager request, typed so the control API can map it to a status code. */
export class DeviceError extends Error {
  constructor(
    readonly kind: DeviceErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DeviceError';
  }
}
