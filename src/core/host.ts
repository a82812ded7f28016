/**
 * What core/ needs from the daemon that hosts it (a Publisher for the node
 * tree, a logger) and what it answers its callers. core/ never imports fs/;
 * the daemon implements Publisher on the FUSE node tree.
 */
import type { DeviceEndpoint } from '../devio.js';
import type { Attribute } from './model.js';

export interface PublishedDevice {
  readonly name: string;
  readonly generation: number;
  /** Path under MOUNT/dev. */
  readonly nodePath: string;
  readonly stream: boolean;
}

export interface Publisher {
  /** Makes the node and its attributes visible; `endpoint` is what fs calls for OPEN. */
  publish(dev: PublishedDevice, endpoint: DeviceEndpoint, attributes: Record<string, Attribute>): void;
  /** Removes them (and invalidates the kernel's caches); unplug waits for it. Gets the object publish() got. */
  unpublish(dev: PublishedDevice): Promise<void>;
}

/** The subset of pino's API core uses. */
export interface Logger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
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
