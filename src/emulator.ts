/**
 * An emulator: one FUSE mount serving the device instances of one
 * DeviceManager. This is the wiring of the layers (fs + core, see
 * docs/architecture.md#layers), kept in the library so the daemon, `cdevemu run`, the benchmarks and test
 * code all assemble it the same way.
 */
import { pino, type Logger } from 'pino';
import { DeviceManager, type AnyDeviceModel } from './core/index.js';
import { FaultEngine } from './faults/index.js';
import { DeviceFs } from './fs/devicefs.js';
import { TreePublisher } from './fs/publisher.js';
import { FuseServer } from './fuse/server.js';
import { builtinModels } from './models/index.js';

export interface EmulatorOptions {
  mountpoint: string;
  logger?: Logger;
  /** Mount with allow_other so users other than the daemon's can open the devices. */
  allowOther?: boolean;
  /** Models beyond the built-in ones (user-written, loaded by the daemon with --model). */
  models?: ReadonlyArray<AnyDeviceModel>;
  /** Default drain bound for unplug (docs/architecture.md#unplug, step 4); 5000 ms. */
  drainTimeoutMs?: number;
  /** See ChannelOptions.busyPollMicros (src/fuse/channel.ts); default 20. */
  busyPollMicros?: number;
  /** See ChannelOptions.pollMicros; default 50. */
  pollMicros?: number;
  /** Negotiate FUSE passthrough so programs can mmap device regions; default true. */
  passthrough?: boolean;
}

export interface StopReport {
  /** Instances still waiting for a last close when the mount was torn down. */
  unreleased: Array<{ device: string; generation: number; openFiles: number }>;
}

export class Emulator {
  private stopping: Promise<StopReport> | null = null;

  private constructor(
    readonly mountpoint: string,
    readonly devices: DeviceManager,
    readonly faults: FaultEngine,
    readonly fs: DeviceFs,
    readonly server: FuseServer,
    readonly log: Logger,
  ) {}

  static async start(o: EmulatorOptions): Promise<Emulator> {
    const log = o.logger ?? pino({ level: 'info' });
    const fs = new DeviceFs(log.child({ layer: 'fs' }));
    fs.tree.mkdirp('dev');
    fs.tree.mkdirp('sys/class');
    const faults = new FaultEngine(log.child({ layer: 'faults' }));
    const publisher = new TreePublisher(fs.tree);
    const devices = new DeviceManager({
      publisher,
      logger: log.child({ layer: 'core' }),
      interceptor: faults,
      ...(o.drainTimeoutMs !== undefined ? { drainTimeoutMs: o.drainTimeoutMs } : {}),
    });
    faults.attach(devices);
    for (const model of [...builtinModels, ...(o.models ?? [])]) devices.registerModel(model);
    const server = await FuseServer.mount(fs, {
      mountpoint: o.mountpoint,
      logger: log.child({ layer: 'fuse' }),
      ...(o.allowOther !== undefined ? { allowOther: o.allowOther } : {}),
      ...(o.busyPollMicros !== undefined ? { busyPollMicros: o.busyPollMicros } : {}),
      ...(o.pollMicros !== undefined ? { pollMicros: o.pollMicros } : {}),
      ...(o.passthrough !== undefined ? { passthrough: o.passthrough } : {}),
    });
    fs.attachNotifier(server);
    publisher.attachMount(server.deviceNumber);
    return new Emulator(o.mountpoint, devices, faults, fs, server, log);
  }

  /**
   * Unplugs every live device (so files still open get lateRelease when
   * they close), waits for those closes until `releaseTimeoutMs` after the
   * call, then unmounts. That window bounds the unplugs too: handlers still
   * running when it closes are reported stuck. Files still open then are
   * released by the connection's end (DeviceFs.destroy), so every instance
   * reaches free; the connection is aborted at once, since a lazy unmount
   * cannot end it while files are open.
   */
  stop(o: { releaseTimeoutMs?: number } = {}): Promise<StopReport> {
    this.stopping ??= (async () => {
      const windowMs = o.releaseTimeoutMs ?? 2000;
      const deadline = performance.now() + windowMs;
      const live = this.devices.list().filter((i) => i.lifecycle === 'live');
      const drainTimeoutMs = Math.min(this.devices.drainTimeoutMs, windowMs);
      await Promise.allSettled(live.map((i) => this.devices.unplug(i.name, { drainTimeoutMs })));
      while (this.devices.list().some((i) => i.holders.length > 0) && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const unreleased = this.devices
        .list()
        .filter((i) => i.holders.length > 0)
        .map((i) => ({ device: i.name, generation: i.generation, openFiles: i.holders.length }));
      await this.server.close(unreleased.length > 0 ? 0 : undefined);
      return { unreleased };
    })();
    return this.stopping;
  }
}
