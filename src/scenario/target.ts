/**
 * What a scenario acts on: an emulator in this process (the default), or a
 * daemon reached through its control socket (`cdevemu run --socket`).
 */
import type { DeviceEvent } from '../core/events.js';
import type { EmulatorHandle } from '../api.js';
import type { DeviceSpec } from '../config/index.js';
import type { InFlight, UnplugOptions } from '../core/index.js';
import type { FaultRuleSpec, FaultRuleStatus } from '../faults/index.js';

export interface TargetHolder {
  /** The file's number, as its events carry it. */
  file: number;
  pid: number;
  comm: string;
  openedAt: number;
  /** Read and write calls made through the file so far. */
  reads: number;
  writes: number;
}

export interface TargetDevice {
  name: string;
  model: string;
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
  /** The program using the device `name` has ended: its model judges the session now (DeviceModel.endSession). */
  endSession(name: string): Promise<void>;
  /** Adds a rule; resolves to its id. */
  addFault(rule: FaultRuleSpec): Promise<string>;
  /** The rules in force, with what each has matched and fired. */
  listFaults(): Promise<FaultRuleStatus[]>;
  removeFault(id: string): Promise<void>;
  /** Instances not yet freed, zombies included. */
  devices(): Promise<TargetDevice[]>;
  /**
   * Every event from the moment the promise resolves (none is missed after
   * that); resolves to the unsubscribe function. `onEnd` is called if the
   * stream ends before it is unsubscribed: events after that are unknown.
   */
  subscribe(on: (e: DeviceEvent) => void, onEnd: (reason: string) => void): Promise<() => void>;
  /** Resolves once every event recorded before the call has reached the subscriber. */
  sync(): Promise<void>;
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

  endSession(name: string): Promise<void> {
    return this.emu.endSession(name);
  }

  async addFault(rule: FaultRuleSpec): Promise<string> {
    return this.emu.fault(rule).id;
  }

  async listFaults(): Promise<FaultRuleStatus[]> {
    return this.emu.emulator.faults.list();
  }

  async removeFault(id: string): Promise<void> {
    this.emu.removeFault(id);
  }

  async devices(): Promise<TargetDevice[]> {
    return this.emu.emulator.devices.list().map((i) => ({
      name: i.name,
      model: i.model,
      generation: i.generation,
      state: i.lifecycle,
      holders: [...i.holders],
      reads: i.counters.reads,
      writes: i.counters.writes,
      inFlight: i.inFlight,
    }));
  }

  /** Events reach the subscriber as they are recorded: nothing is ever on the way. */
  async sync(): Promise<void> {}

  /** The emulator's own event log: it never ends before the run does. */
  async subscribe(on: (e: DeviceEvent) => void): Promise<() => void> {
    const log = this.emu.emulator.devices.events;
    log.on('event', on);
    return () => log.off('event', on);
  }
}
