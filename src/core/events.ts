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
  unplug_started: 'unplug_started',
  regions_revoked: 'regions_revoked',
  stuck: 'stuck',
  drained: 'drained',
  removed: 'removed',
  late_released: 'late_released',
  freed: 'freed',
  action: 'action',
  fault_fired: 'fault_fired',
} as const;
export type CoreEventType = (typeof CoreEvent)[keyof typeof CoreEvent];

/**
 * The detail fields each core event carries beside its identity (the
 * record() calls in fops.ts, probe.ts, unplug.ts, instance.ts and
 * devices.ts; docs/control-api.md#events), so a scenario's event filter
 * naming another is refused rather than left to match nothing.
 */
export const CORE_EVENT_FIELDS: Readonly<Record<CoreEventType, readonly string[]>> = {
  plugged: ['model', 'nodePath', 'regions'],
  opened: ['file', 'pid', 'comm', 'flags'],
  released: ['file', 'pid'],
  unplug_started: ['drainTimeoutMs', 'mode'],
  regions_revoked: ['revoked', 'kept', 'mappings'],
  stuck: ['op', 'pid', 'comm', 'sinceMs'],
  drained: ['drainedInMs', 'stuck'],
  removed: [],
  late_released: ['file', 'pid'],
  freed: [],
  action: ['action'],
  fault_fired: ['rule', 'action', 'op', 'pid', 'comm'],
};

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
