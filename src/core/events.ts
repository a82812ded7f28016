/**
 * The ordered event stream of all instances (GET /v1/events): emitted
 * synchronously at each lifecycle transition, so one instance's events are
 * in lifecycle order, and kept in a bounded history for late subscribers.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from './host.js';

/** Core event types; models add their own (watchdog 'expired'). */
export const CoreEvent = {
  plugged: 'plugged',
  opened: 'opened',
  released: 'released',
  unplug_notice: 'unplug_notice',
  unplug_started: 'unplug_started',
  regions_revoked: 'regions_revoked',
  stuck: 'stuck',
  drained: 'drained',
  sleeping: 'sleeping',
  sleep_ended: 'sleep_ended',
  removed: 'removed',
  late_released: 'late_released',
  freed: 'freed',
  action: 'action',
  fault_fired: 'fault_fired',
  model_error: 'model_error',
} as const;
export type CoreEventType = (typeof CoreEvent)[keyof typeof CoreEvent];

/**
 * What a detail field holds, so a scenario's comparison can be checked
 * against it before the run (a string compared with `>=` is refused);
 * `any` when it varies.
 */
export type EventFieldType = 'number' | 'string' | 'boolean' | 'list' | 'mapping' | 'any';

/**
 * A model's declaration of one event's detail fields: their names (types
 * unknown), or each name with its type.
 */
export type EventFieldsDeclaration = readonly string[] | Readonly<Record<string, EventFieldType>>;

/** The declared type of field `name`, `any` if declared without one; undefined if not declared. */
export function declaredType(d: EventFieldsDeclaration, name: string): EventFieldType | undefined {
  if (Array.isArray(d)) return d.includes(name) ? 'any' : undefined;
  const typed = d as Readonly<Record<string, EventFieldType>>;
  return Object.hasOwn(typed, name) ? typed[name] : undefined;
}

/** A declaration as field name -> type (`any` for names declared without one). */
export function declaredFields(d: EventFieldsDeclaration): ReadonlyMap<string, EventFieldType> {
  return Array.isArray(d) ? new Map(d.map((n: string) => [n, 'any'])) : new Map(Object.entries(d as Record<string, EventFieldType>));
}

/** The type a declaration would give `v` (null and undefined: none). */
export function fieldTypeOf(v: unknown): EventFieldType | null {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'mapping';
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return typeof v as 'number' | 'string' | 'boolean';
  return 'any';
}

/**
 * The detail fields each core event carries beside its identity (the
 * record() calls in fops.ts, probe.ts, unplug.ts, instance.ts and
 * devices.ts; docs/control-api.md#events), with their types, so a
 * scenario's event filter naming another, or comparing one with a value
 * of another type, is refused rather than left to match nothing.
 */
export const CORE_EVENT_FIELDS: Readonly<Record<CoreEventType, Readonly<Record<string, EventFieldType>>>> = {
  plugged: { model: 'string', nodePath: 'string', regions: 'list' },
  opened: { file: 'number', pid: 'number', comm: 'string', flags: 'number' },
  released: { file: 'number', pid: 'number', reads: 'number', writes: 'number' },
  unplug_notice: {},
  unplug_started: { drainTimeoutMs: 'number', mode: 'string' },
  regions_revoked: { revoked: 'list', kept: 'number', mappings: 'number' },
  stuck: { op: 'string', pid: 'number', comm: 'string', sinceMs: 'number' },
  drained: { drainedInMs: 'number', stuck: 'number' },
  sleeping: { op: 'string', file: 'number', pid: 'number', comm: 'string' },
  sleep_ended: { op: 'string', file: 'number', pid: 'number', errno: 'string' },
  removed: {},
  late_released: { file: 'number', pid: 'number', reads: 'number', writes: 'number' },
  freed: {},
  action: { action: 'string' },
  fault_fired: { rule: 'string', action: 'string', op: 'string', pid: 'number', comm: 'string' },
  model_error: { op: 'string', error: 'string' },
};

/**
 * The core events that come only once an unplug has begun (its
 * `unplug_started`: docs/architecture.md#unplug): a device that was never
 * unplugged has none of them, whatever its programs did.
 */
export const AFTER_UNPLUG: ReadonlySet<string> = new Set<CoreEventType>([
  CoreEvent.regions_revoked,
  CoreEvent.stuck,
  CoreEvent.drained,
  CoreEvent.sleeping,
  CoreEvent.sleep_ended,
  CoreEvent.removed,
  CoreEvent.late_released,
  CoreEvent.freed,
]);

export function isCoreEvent(type: string): type is CoreEventType {
  return Object.hasOwn(CoreEvent, type);
}

export interface DeviceEvent {
  type: string;
  device: string;
  generation: number;
  /** Epoch ms. */
  at: number;
  [detail: string]: unknown;
}

export class EventLog extends EventEmitter<{ event: [DeviceEvent] }> {
  /**
   * A ring: the oldest event is overwritten in place, where an array's
   * shift() would move the whole history on every event once it is full.
   */
  private readonly kept: DeviceEvent[] = [];
  /** Where the next event goes once the ring is full (it holds the oldest). */
  private oldest = 0;

  constructor(
    private readonly logger: Logger,
    private readonly historySize = 1000,
  ) {
    super();
  }

  history(): readonly DeviceEvent[] {
    return [...this.kept.slice(this.oldest), ...this.kept.slice(0, this.oldest)];
  }

  record(e: DeviceEvent): void {
    if (this.kept.length < this.historySize) this.kept.push(e);
    else if (this.historySize > 0) {
      this.kept[this.oldest] = e;
      this.oldest = (this.oldest + 1) % this.historySize;
    }
    // Most events have no subscriber (no control client streams them).
    if (this.listenerCount('event') === 0) return;
    // A throwing subscriber must not break the lifecycle transition that emitted.
    try {
      this.emit('event', e);
    } catch (err) {
      this.logger.error({ err, event: e }, 'event listener threw');
    }
  }
}
