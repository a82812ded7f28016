/**
 * An emulator: one FUSE mount serving the device instances of one
 * DeviceManager. This is the wiring of the layers (fs + core, see
 * docs/architecture.md#layers), kept in the library so the daemon, `cdevemu run`, the benchmarks and test
 * code all assemble it the same way.
 */
import { pino, type Logger } from 'pino';
import { DeviceManager, type AnyDeviceModel, type StuckHandler, type UnplugReport } from './core/index.js';
import { FaultEngine } from './faults/index.js';
import { DeviceFs } from './fs/devicefs.js';
import { TreePublisher } from './fs/publisher.js';
import { checkCanMount, prepareMountpoint } from './fuse/mount.js';
import { MountpointLock } from './fuse/mountpoint-lock.js';
import { FuseServer } from './fuse/server.js';
import { builtinModels } from './models/index.js';
import { within } from './awaitable.js';

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
  /**
   * Runs once the models are registered and before anything is mounted:
   * plug the devices and add the fault rules the start needs here, so that
   * one that cannot be had fails the start with nothing mounted.
   */
  beforeMount?: (devices: DeviceManager, faults: FaultEngine) => Promise<void>;
}

export interface StopReport {
  /** Instances still waiting for a last close when the mount was torn down. */
  unreleased: Array<{ device: string; generation: number; openFiles: number }>;
  /** Handlers still running when the window closed, the unplugs' own and those of unplugs already in progress. */
  stuck: Array<{ device: string; generation: number } & StuckHandler>;
}

export interface StopOptions {
  /** How long after the call unplugs may drain and open files may close; default 2000 ms. */
  releaseTimeoutMs?: number;
  /**
   * Runs when the window has closed, before the unmount releases the files
   * still open: a close forced there is not the program's, and whoever
   * watches for closes (a control API) must not see it as one.
   */
  beforeUnmount?: (report: StopReport) => Promise<void>;
}

export class Emulator {
  private stopping: Promise<StopReport> | null = null;

  private constructor(
    readonly mountpoint: string,
    readonly devices: DeviceManager,
    readonly faults: FaultEngine,
    /** @internal The mount's node tree (src/fs), for the wiring in this repository. */
    readonly fs: DeviceFs,
    /** @internal The FUSE session serving the mount (src/fuse). */
    readonly server: FuseServer,
    readonly log: Logger,
    /** @internal The claim on the mountpoint (MountpointLock), released by stop(). */
    readonly claim: MountpointLock,
  ) {}

  /**
   * Checks what a mount needs and claims the mountpoint (one emulator per
   * mountpoint: MountpointLock, held until stop()), prepares it, runs
   * beforeMount, then mounts. A start that fails leaves nothing mounted,
   * no device plugged and the claim released.
   */
  static async start(o: EmulatorOptions): Promise<Emulator> {
    checkCanMount({ allowOther: o.allowOther ?? false });
    const lock = await MountpointLock.take(o.mountpoint);
    const log = o.logger ?? pino({ level: 'info' });
    const fs = new DeviceFs(log.child({ layer: 'fs' }), o.passthrough ?? true);
    const faults = new FaultEngine(log.child({ layer: 'faults' }));
    const publisher = new TreePublisher(fs.tree, () => fs.pagesShared());
    const devices = new DeviceManager({
      publisher,
      logger: log.child({ layer: 'core' }),
      interceptor: faults,
      ...(o.drainTimeoutMs !== undefined ? { drainTimeoutMs: o.drainTimeoutMs } : {}),
    });
    try {
      await prepareMountpoint(o.mountpoint);
      fs.tree.mkdirp('dev');
      fs.tree.mkdirp('sys/class');
      faults.attach(devices);
      for (const model of [...builtinModels, ...(o.models ?? [])]) devices.registerModel(model);
      // Nothing is mounted yet: what is plugged here is published on the
      // tree alone, and the kernel finds it by lookup once mounted.
      await o.beforeMount?.(devices, faults);
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
      return new Emulator(o.mountpoint, devices, faults, fs, server, log, lock);
    } catch (err) {
      await unplugAll(devices, 0);
      lock.release();
      throw err;
    }
  }

  /**
   * Unplugs every device (so files still open get lateRelease when they
   * close), waits for those closes until `releaseTimeoutMs` after the call,
   * then unmounts. That window bounds the unplugs too, those already in
   * progress included: handlers still running when it closes are reported
   * stuck. Files still open then are released by the connection's end
   * (DeviceFs.destroy), so every instance whose handlers have returned
   * reaches free; the connection is aborted at once, since a lazy unmount
   * cannot end it while files are open.
   */
  stop(o: StopOptions = {}): Promise<StopReport> {
    this.stopping ??= (async () => {
      const windowMs = o.releaseTimeoutMs ?? 2000;
      const deadline = performance.now() + windowMs;
      const reports = await unplugAll(this.devices, Math.min(this.devices.drainTimeoutMs, windowMs));
      const released = Promise.all(this.devices.list().map((i) => i.whenReleased()));
      await within(released, Math.max(0, deadline - performance.now()), () => []);
      const report: StopReport = {
        unreleased: this.devices
          .list()
          .filter((i) => i.holders.length > 0)
          .map((i) => ({ device: i.name, generation: i.generation, openFiles: i.holders.length })),
        stuck: reports.flatMap((r) => r.stuck.map((h) => ({ device: r.device, generation: r.generation, ...h }))),
      };
      await o.beforeUnmount?.(report);
      await this.server.close(report.unreleased.length > 0 ? 0 : undefined);
      this.claim.release();
      return report;
    })();
    return this.stopping;
  }
}

/**
 * Unplugs every device at once, each drained for at most `drainTimeoutMs`
 * from now: a live one starts its unplug, one already unplugging has its
 * bound brought forward (DeviceManager.unplug). Resolves with the reports.
 */
async function unplugAll(devices: DeviceManager, drainTimeoutMs: number): Promise<UnplugReport[]> {
  const plugged = devices.list().filter((i) => i.lifecycle === 'live' || i.lifecycle === 'unplugging');
  const settled = await Promise.allSettled(plugged.map((i) => devices.unplug(i.name, { drainTimeoutMs })));
  return settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}
