/**
 * The JSON shapes of the control API (docs/control-api.md), shared by the server and
 * the client.
 */
import type { ActionView, Counters, DeviceEvent, FieldView, InFlight, Lifecycle, ModelView, Region, StuckHandler, UnplugMode, UnplugOptions, UnplugPolicy, UnplugReport } from '../core/index.js';

/** GET /v1/models answers ModelView[], GET /v1/models/{model} one ModelView. */
export type { ActionView, DeviceEvent, FieldView, ModelView, StuckHandler, UnplugMode, UnplugReport };

export const API_PREFIX = '/v1';
/** Request bodies above this are refused with 413. */
export const MAX_BODY_BYTES = 1 << 20;

export interface HolderView {
  /** The file's number, as the events of its open and release carry it (`file`). */
  file: number;
  pid: number;
  comm: string;
  /** Epoch ms. */
  openedAt: number;
  openForMs: number;
  /** Read and write calls made through the file so far. */
  reads: number;
  writes: number;
}

export interface DeviceView {
  name: string;
  model: string;
  generation: number;
  /** The instance's lifecycle: live, unplugging, gone (a zombie waiting for its last close), freed. */
  state: Lifecycle;
  /** Path of the node relative to MOUNT/dev. */
  nodePath: string;
  /** Absolute path of the node (gone once unplug began). */
  path: string;
  openFiles: number;
  holders: HolderView[];
  inFlight: InFlight[];
  counters: Counters;
  /** Shared memory regions programs can mmap (uio maps); empty if none. */
  regions: RegionView[];
  /** Mappings programs hold on the regions now (mapped regions outlive close, and with 'keep' the device). */
  mappings: number;
}

export interface RegionView {
  index: number;
  name: string;
  size: number;
  /** The mmap offset that maps it. */
  offset: number;
  onUnplug: UnplugPolicy;
  state: Region['state'];
}

export interface StatusView {
  pid: number;
  mountpoint: string;
  socket: string;
  /** Epoch ms. */
  startedAt: number;
  uptimeMs: number;
  version: string;
  /** Instances not yet freed, zombies included. */
  devices: number;
  live: number;
}

export interface PlugBody {
  model: string;
  name: string;
  options?: unknown;
}

/** mode orderly (default): the driver tells its consumers first; surprise: no notice. */
export type UnplugBody = UnplugOptions;

export interface ReplugBody {
  options?: unknown;
}

export interface ActionBody {
  arg?: unknown;
}

export interface ActionResult {
  result: unknown;
}

/**
 * The `type` of the line POST /v1/events/{stream}/sync writes into that
 * stream, after every event recorded before the request: once a
 * subscriber reads it, it has read them all. Not an event.
 */
export const STREAM_SYNCED = 'stream_synced';

export interface StreamSyncedMark {
  type: typeof STREAM_SYNCED;
  /** The token the request gave. */
  token: string;
}

/** The header GET /v1/events answers with: the stream's id, for POST /v1/events/{stream}/sync. */
export const STREAM_ID_HEADER = 'x-cdevemu-stream';

/** The `type` of the last line of an event stream the daemon dropped for falling behind. */
export const STREAM_DROPPED = 'subscriber_dropped';

/** That last line: not an event; the stream ends after it. */
export interface StreamDroppedNotice {
  type: typeof STREAM_DROPPED;
  /** Epoch ms. */
  at: number;
  /** What the subscriber's socket held unsent. */
  queuedBytes: number;
  /** The most it may hold. */
  limitBytes: number;
  error: string;
}

/** Every error answer. `code` is stable: not_found, conflict, bad_request, bad_json, ... or an errno name. */
export interface ErrorBody {
  error: string;
  code: string;
}

/** JSON.stringify that survives model values: bigints become decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
