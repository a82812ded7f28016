/**
 * What a scenario acts on: an emulator in this process (the default), or a
 * daemon reached through its control socket (`cdevemu run --socket`).
 */
import type { DeviceEvent } from '../core/events.js';
import type { EmulatorHandle } from '../api.js';
import type { DeviceSpec } from '../config/index.js';
import type { InFlight, UnplugOptions } from '../core/index.js';
import type { FaultRuleSpec } from '../faults/index.js';

export interface TargetHolder {
  pid: number;
  comm: string;
  openedAt: number;
}

export interface TargetDevice {
  name: string;
  generation: number;
  /** live, unplugging, gone (freed instances are not listed). */
  state: string;
  holders: TargetHolder[];
  reads: number;
  writes: number;
  /** Model calls running now (those that went asynchronous). */
  inFlight: readonly InFlight[];
}

export interface StuckReport {
  op: string;
  pid: number;
  comm: string;
  sinceMs: number;
}

export interface ScenarioTarget {
  readonly mountpoint: string;
  /** Whether others may use its devices too (a daemon's): a run then answers only for the devices it names. */
  readonly shared: boolean;
  plug(d: DeviceSpec): Promise<void>;
  unplug(name: string, o?: UnplugOptions): Promise<{ stuck: StuckReport[] }>;
  replug(name: string, options?: unknown): Promise<void>;
  action(name: string, action: string, arg?: unknown): Promise<unknown>;
  addFault(rule: FaultRuleSpec): Promise<void>;
  /** Instances not yet freed, zombies included. */
  devices(): Promise<TargetDevice[]>;
  /**
   * Every event from the moment the promise resolves (none is missed after
   * that); resolves to the unsubscribe function. `onEnd` is called if the
   * stream ends before it is unsubscribed: events after that are unknown.
   */
  subscribe(on: (e: DeviceEvent) => void, onEnd: (reason: string) => void): Promise<() => void>;
}

/** The in-process emulator. */
export class LocalTarget implements ScenarioTarget {
  readonly shared = false;

  constructor(private readonly emu: EmulatorHandle) {}

  get mountpoint(): string {
    return this.emu.mountpoint;
  }

  async plug(d: DeviceSpec): Promise<void> {
    await this.emu.plug(d.model, d.name, d.options);
  }

  unplug(name: string, o: UnplugOptions = {}): Promise<{ stuck: StuckReport[] }> {
    return this.emu.unplug(name, o);
  }

  async replug(name: string, options?: unknown): Promise<void> {
    await this.emu.replug(name, options);
  }

  action(name: string, action: string, arg?: unknown): Promise<unknown> {
    return this.emu.action(name, action, arg);
  }

  async addFault(rule: FaultRuleSpec): Promise<void> {
    this.emu.fault(rule);
  }

  async devices(): Promise<TargetDevice[]> {
    return this.emu.emulator.devices.list().map((i) => ({
      name: i.name,
      generation: i.generation,
      state: i.lifecycle,
      holders: [...i.holders],
      reads: i.counters.reads,
      writes: i.counters.writes,
      inFlight: i.inFlight,
    }));
  }

  /** The emulator's own event log: it never ends before the run does. */
  async subscribe(on: (e: DeviceEvent) => void): Promise<() => void> {
    const log = this.emu.emulator.devices.events;
    log.on('event', on);
    return () => log.off('event', on);
  }
}
