/**
 * The TypeScript API for test code: an emulator on a temporary mount,
 * served from the calling process, with the waits a test needs.
 *
 *   const emu = await startEmulator();
 *   await emu.plug('echo', 'echo0');
 *   // ... run the program under test against emu.path('dev/echo0') ...
 *   await emu.unplug('echo0');
 *   await emu.released('echo0', { within: 2000 });   // the leak check
 *   await emu.stop();
 *
 * The calling process answers the mount, so it must not touch the mount
 * with synchronous fs calls; run the program under test as a child process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { DeviceError, type AnyDeviceModel, type Counters, type Holder, type Instance, type UnplugOptions, type UnplugReport } from './core/index.js';
import type { DeviceEvent } from './core/events.js';
import { Emulator } from './emulator.js';
import type { FaultRuleSpec, FaultRuleStatus } from './faults/index.js';
import { within } from './awaitable.js';

export interface StartOptions {
  /** Where to mount; default a new directory under the system temp dir, removed by stop(). */
  mountpoint?: string;
  /** Models beyond the built-in ones. */
  models?: ReadonlyArray<AnyDeviceModel>;
  /** Default unplug drain bound, ms. */
  drainTimeoutMs?: number;
  logger?: Logger;
  allowOther?: boolean;
  /** Negotiate FUSE passthrough so programs can mmap device regions; default true. */
  passthrough?: boolean;
}

/** Thrown by released() when files are still open at the deadline: the leak report. */
export class HeldOpenError extends Error {
  constructor(
    readonly device: string,
    readonly generation: number,
    readonly holders: readonly Holder[],
  ) {
    const list = holders.map((h) => `pid ${h.pid} (${h.comm || '?'}) open ${Date.now() - h.openedAt} ms`).join(', ');
    super(`${device} generation ${generation}: ${holders.length} file(s) still open: ${list}`);
    this.name = 'HeldOpenError';
  }
}

export class EmulatorHandle {
  private readonly history: DeviceEvent[] = [];

  constructor(
    /** The emulator itself, for anything this API does not cover. */
    readonly emulator: Emulator,
    private readonly ownsMountpoint: boolean,
  ) {
    emulator.devices.events.on('event', (e) => this.history.push(e));
  }

  get mountpoint(): string {
    return this.emulator.mountpoint;
  }

  /** Absolute path of a node: path('dev/echo0'). */
  path(rel: string): string {
    return join(this.mountpoint, rel);
  }

  plug(model: string, name: string, options?: unknown): Promise<Instance<unknown>> {
    return this.emulator.devices.plug({ model, name, options });
  }

  unplug(name: string, o: UnplugOptions = {}): Promise<UnplugReport> {
    return this.emulator.devices.unplug(name, o);
  }

  replug(name: string, options?: unknown): Promise<Instance<unknown>> {
    return this.emulator.devices.replug(name, options);
  }

  action(name: string, action: string, arg?: unknown): Promise<unknown> {
    return this.emulator.devices.action(name, action, arg);
  }

  /** The program using `name` has ended: the model judges the session now (DeviceModel.endSession). */
  async endSession(name: string): Promise<void> {
    await this.emulator.devices.endSession(name);
  }

  /** Adds a fault rule (README.md, "Fault injection"); returns it with its id. Throws FaultRuleError naming a bad field. */
  fault(rule: FaultRuleSpec): FaultRuleStatus {
    return this.emulator.faults.add(rule);
  }

  removeFault(id: string): boolean {
    return this.emulator.faults.remove(id);
  }

  /** The newest instance under `name`, or a given generation. */
  instance(name: string, generation?: number): Instance<unknown> | undefined {
    if (generation === undefined) return this.emulator.devices.get(name);
    return this.emulator.devices.list().find((i) => i.name === name && i.generation === generation);
  }

  /**
   * The counters of `name`'s newest generation, or of `generation`. Those of
   * a freed device stay readable until a new device is plugged under its
   * name, so a test reads them after `released()`; undefined for a name
   * never plugged, or a generation neither plugged nor the last freed.
   */
  counters(name: string, generation?: number): Counters | undefined {
    // Final counters exist only for the last generation plugged under the name: the newest.
    return this.emulator.devices.finalCounters(name, generation) ?? this.instance(name, generation)?.counters;
  }

  /** Every event since start, in order. */
  events(filter: Partial<Pick<DeviceEvent, 'type' | 'device' | 'generation'>> = {}): DeviceEvent[] {
    return this.history.filter(
      (e) =>
        (filter.type === undefined || e.type === filter.type) &&
        (filter.device === undefined || e.device === filter.device) &&
        (filter.generation === undefined || e.generation === filter.generation),
    );
  }

  /** Resolves with the first event (past or future) matching `pred`; rejects after `timeoutMs`. */
  waitEvent(pred: (e: DeviceEvent) => boolean, timeoutMs = 10_000): Promise<DeviceEvent> {
    const found = this.history.find(pred);
    if (found) return Promise.resolve(found);
    const log = this.emulator.devices.events;
    return new Promise((resolve, reject) => {
      const on = (e: DeviceEvent): void => {
        if (!pred(e)) return;
        clearTimeout(timer);
        log.off('event', on);
        resolve(e);
      };
      const timer = setTimeout(() => {
        log.off('event', on);
        reject(new Error(`no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      log.on('event', on);
    });
  }

  /**
   * Resolves when every file of `name` (its newest generation unless given)
   * has been closed; rejects with a HeldOpenError listing the holders if
   * some are still open after `within` ms. After an unplug this is the
   * check that the program under test let go of the device. Throws
   * DeviceError not_found for a name, or a generation, never plugged: a
   * leak check of a device that never was would pass whatever the program
   * holds.
   */
  async released(name: string, o: { within: number; generation?: number }): Promise<void> {
    const inst = this.instance(name, o.generation);
    if (inst) {
      await within(inst.whenReleased(), o.within, () => {
        throw new HeldOpenError(inst.name, inst.generation, inst.holders);
      });
      return;
    }
    const last = this.emulator.devices.lastGeneration(name) ?? 0;
    const gen = o.generation ?? last;
    if (!(Number.isInteger(gen) && gen >= 1 && gen <= last)) {
      const which = o.generation === undefined ? name : `${name} generation ${o.generation}`;
      throw new DeviceError('not_found', `released(): no device ${which} was ever plugged`);
    }
    // Plugged, and freed since: nothing of it is held.
  }

  /** Unplugs everything, unmounts, and removes the temporary mountpoint. */
  async stop(o: { releaseTimeoutMs?: number } = {}): Promise<void> {
    await this.emulator.stop(o);
    if (this.ownsMountpoint) await rm(this.mountpoint, { recursive: true, force: true });
  }
}

export async function startEmulator(o: StartOptions = {}): Promise<EmulatorHandle> {
  const owned = o.mountpoint === undefined;
  const mountpoint = o.mountpoint ?? (await mkdtemp(join(tmpdir(), 'cdevemu-')));
  try {
    const emulator = await Emulator.start({
      mountpoint,
      logger: o.logger ?? pino({ level: 'warn' }),
      ...(o.models ? { models: o.models } : {}),
      ...(o.drainTimeoutMs !== undefined ? { drainTimeoutMs: o.drainTimeoutMs } : {}),
      ...(o.allowOther !== undefined ? { allowOther: o.allowOther } : {}),
      ...(o.passthrough !== undefined ? { passthrough: o.passthrough } : {}),
    });
    return new EmulatorHandle(emulator, owned);
  } catch (err) {
    // A start that failed leaves no temporary mountpoint behind (FuseServer.mount unmounts what it mounted).
    if (owned) await rm(mountpoint, { recursive: true, force: true });
    throw err;
  }
}
