/**
 * `cdevemu daemon`: load the config, mount the emulator, plug the configured
 * devices, serve the control API, and shut all of it down on SIGTERM/SIGINT.
 *
 * This process answers the FUSE mount: it must never touch the mount with a
 * synchronous fs call (it would wait for itself). Creating the mountpoint
 * and finding it empty, before mounting, are the only fs calls on it.
 */
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { loadDaemonConfig, type DaemonConfigFile, type DeviceSpec } from '../src/config/daemon.js';
import type { LogLevel } from '../src/config/log-levels.js';
import { DEFAULT_DEVICES, DEFAULT_MOUNTPOINT, DEFAULT_SHUTDOWN_RELEASE_MS } from '../src/config/defaults.js';
import { ControlServer, claimSocketPath } from '../src/control/server.js';
import { resolveSocketPath } from '../src/control/socket-path.js';
import { DeviceError, SchemaError, type DeviceManager, type Instance } from '../src/core/index.js';
import { describeFault, type FaultEngine, type FaultRule } from '../src/faults/index.js';
import { Emulator } from '../src/emulator.js';
import { FSTYPE, abortConnection, checkCanMount, findMount, unmountFuse } from '../src/fuse/mount.js';
import { builtinModels } from '../src/models/index.js';
import { Exit, describeExit } from './exit.js';
import { collectWhenIdle } from './idle-gc.js';
import { tryItText } from './hint.js';
import { createLogger } from './logger.js';
import { loadUserModels } from './models.js';
import { VERSION } from './version.js';

export interface DaemonFlags {
  mount?: string;
  socket?: string;
  config?: string;
  model: string[];
  logLevel?: LogLevel;
  allowOther?: boolean;
  /** false with --no-passthrough. */
  passthrough?: boolean;
  busyPoll?: number;
}

export interface DaemonSettings {
  mountpoint: string;
  socket: string;
  allowOther: boolean;
  passthrough: boolean;
  /** --busy-poll: EmulatorOptions.busyPollMicros. */
  busyPollMicros?: number;
  drainTimeoutMs?: number;
  /** How long shutdown waits for files still open (Emulator.stop's releaseTimeoutMs). */
  shutdownReleaseMs: number;
  logLevel: LogLevel;
  models: string[];
  devices: readonly DeviceSpec[];
  /** From the config file, when it listed the devices. */
  deviceError?: DaemonConfigFile['deviceError'];
  faults: readonly Record<string, unknown>[];
}

/** Flags over the config file over the built-in defaults. */
export function settle(flags: DaemonFlags, file: DaemonConfigFile): DaemonSettings {
  const s: DaemonSettings = {
    mountpoint: flags.mount ? resolve(flags.mount) : (file.mountpoint ?? resolve(DEFAULT_MOUNTPOINT)),
    socket: flags.socket ? resolve(flags.socket) : (file.socket ?? resolveSocketPath()),
    allowOther: flags.allowOther === true || file.allowOther === true,
    passthrough: flags.passthrough !== false && file.passthrough !== false,
    shutdownReleaseMs: file.shutdownReleaseMs ?? DEFAULT_SHUTDOWN_RELEASE_MS,
    logLevel: flags.logLevel ?? file.logLevel ?? 'info',
    models: [...(file.models ?? []), ...flags.model],
    devices: file.devices ?? DEFAULT_DEVICES,
    faults: file.faults ?? [],
  };
  if (file.drainTimeoutMs !== undefined) s.drainTimeoutMs = file.drainTimeoutMs;
  if (flags.busyPoll !== undefined) s.busyPollMicros = flags.busyPoll;
  if (file.deviceError) s.deviceError = file.deviceError;
  return s;
}

/** Runs the daemon until a signal stops it; resolves with the exit code. */
export async function runDaemon(flags: DaemonFlags): Promise<number> {
  // A bad config file throws a ConfigError: exit 2 before anything is mounted.
  const settings = settle(flags, flags.config ? await loadDaemonConfig(flags.config) : {});
  const log = await createLogger(settings.logLevel);
  // A machine or user that cannot mount at all is told so first (Emulator.start checks it again for library users).
  checkCanMount({ allowOther: settings.allowOther });
  // Refuse a live daemon's socket, or one that cannot be listened on, before touching the mountpoint.
  await claimSocketPath(settings.socket);
  await canListen(settings.socket);
  const d = new Daemon(settings, log);
  return d.run();
}

/**
 * Listens on `path` once and lets go (the socket file goes with the close),
 * so that a path no socket can be made at (a read-only or special file
 * system, a directory this user may not write) is refused with nothing
 * mounted, rather than after the mount.
 */
async function canListen(path: string): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(path, resolve);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/**
 * What the start plugged and added, in one line each, so that the start-up
 * is a few lines before the hints (daemon/hint.ts); each device's own
 * line is at debug. The message says it all; JSON logs carry the same
 * under `startup`, which the pretty lines leave out (logger.ts).
 */
function startupSummary(log: Logger, devices: ReadonlyArray<Instance<unknown>>, faults: readonly FaultRule[]): void {
  const plugged = devices.map((i) => ({ device: i.name, model: i.model, generation: i.generation, nodePath: i.nodePath }));
  for (const p of plugged) log.debug(p, `plugged ${p.device} (model ${p.model}, generation ${p.generation}) at dev/${p.nodePath}`);
  const named = plugged.map((p) => (p.device === p.model ? p.device : `${p.device} (${p.model})`));
  log.info({ startup: { plugged } }, `plugged ${plugged.length} device(s): ${named.join(', ') || 'none'}`);
  if (faults.length) log.info({ startup: { faults } }, `added ${faults.length} fault rule(s): ${faults.map((r) => `${r.id} ${describeFault(r)}`).join('; ')}`);
}

class Daemon {
  private emulator: Emulator | null = null;
  private control: ControlServer | null = null;
  private stopCollector: (() => void) | null = null;
  private signals = 0;
  private readonly finished: Promise<number>;
  private finish!: (code: number) => void;
  private starting: Promise<void> = Promise.resolve();

  constructor(
    private readonly s: DaemonSettings,
    private readonly log: Logger,
  ) {
    this.finished = new Promise((r) => (this.finish = r));
  }

  async run(): Promise<number> {
    const onSignal = (sig: NodeJS.Signals): void => this.onSignal(sig);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // Model code that throws outside any request (a stray timer) is a model
    // bug: log it loudly, keep serving the other devices.
    process.on('uncaughtException', (err) => this.log.error({ err }, 'uncaught exception (model bug?); the daemon keeps running'));
    process.on('unhandledRejection', (err) => this.log.error({ err }, 'unhandled rejection (model bug?); the daemon keeps running'));

    this.starting = this.start();
    try {
      await this.starting;
    } catch (err) {
      // A start that failed in Emulator.start left nothing behind; one that
      // failed later has a mount to take down.
      if (this.emulator) await this.teardown().catch((e: unknown) => this.log.error({ err: e }, 'cleanup after a failed start failed'));
      // The user's to fix (a bad device in the config, a mountpoint taken,
      // no /dev/fuse): one line and exit 2, like a bad config file, in
      // JSON logs as on a terminal. Anything else is ours: logged with its stack.
      const { code, message } = describeExit(err);
      if (code === Exit.usage) {
        process.stderr.write(`cdevemu: ${message}\n`);
        return Exit.usage;
      }
      this.log.fatal({ err }, `cannot start: ${err instanceof Error ? err.message : String(err)}`);
      return Exit.failed;
    }
    if (this.signals === 0) process.stdout.write(tryItText(this.s, this.emulator!.devices.list()));
    return this.finished;
  }

  private async start(): Promise<void> {
    const { s, log } = this;
    const models = await loadUserModels(s.models, log, builtinModels.map((m) => m.name));
    this.emulator = await Emulator.start({
      mountpoint: s.mountpoint,
      logger: log,
      allowOther: s.allowOther,
      passthrough: s.passthrough,
      models,
      ...(s.drainTimeoutMs !== undefined ? { drainTimeoutMs: s.drainTimeoutMs } : {}),
      ...(s.busyPollMicros !== undefined ? { busyPollMicros: s.busyPollMicros } : {}),
      // The config's devices and rules before the mount: one that cannot be
      // had is refused with nothing mounted.
      beforeMount: (devices, faults) => this.plugConfigured(devices, faults),
    });
    // Said once they are reachable: a start refused after some plugs says one line, the refusal.
    startupSummary(log, this.emulator.devices.list(), this.emulator.faults.list());
    if (this.signals) return;
    this.control = await ControlServer.listen({
      socketPath: s.socket,
      devices: this.emulator.devices,
      faults: this.emulator.faults,
      mountpoint: s.mountpoint,
      version: VERSION,
      logger: log,
    });
    this.stopCollector = collectWhenIdle(log);
    log.info({ mountpoint: s.mountpoint, socket: s.socket, version: VERSION, idleGc: this.stopCollector !== null }, 'cdevemu daemon ready');
  }

  private async plugConfigured(devices: DeviceManager, faults: FaultEngine): Promise<void> {
    const { s } = this;
    for (const [i, spec] of s.devices.entries()) {
      if (this.signals) return;
      try {
        await devices.plug(spec);
      } catch (err) {
        // A device the config asks for and cannot have is a config error:
        // starting without it would hide it.
        // Options the model's schema refuses are refused before create(), as a SchemaError.
        if (!(err instanceof DeviceError || err instanceof SchemaError) || !s.deviceError) throw err;
        const field = err instanceof SchemaError || err.kind === 'probe_failed' ? 'options' : err.kind === 'unknown_model' ? 'model' : 'name';
        throw s.deviceError(i, field, `cannot plug ${spec.name}: ${err.message}`);
      }
    }
    // Validated with the config file already; only an id clash can fail here.
    for (const rule of s.faults) faults.add(rule);
  }

  private onSignal(sig: NodeJS.Signals): void {
    this.signals++;
    if (this.signals > 1) {
      this.log.warn({ signal: sig }, 'second signal: exiting now');
      this.emergencyExit();
      return;
    }
    this.log.info({ signal: sig, releaseTimeoutMs: this.s.shutdownReleaseMs }, 'shutting down: unplugging every device');
    void this.starting
      .catch(() => {})
      .then(() => this.teardown())
      .then(
        // A second signal has the last word: its exit (1) must not lose
        // to this teardown, which the aborted connection lets finish early.
        () => {
          if (this.signals === 1) this.finish(Exit.ok);
        },
        (err: unknown) => {
          this.log.error({ err }, 'shutdown failed');
          if (this.signals === 1) this.finish(Exit.failed);
        },
      );
  }

  /**
   * Unplugs everything (files still open get lateRelease when they close),
   * waits a bounded time for those closes and for running handlers, closes
   * the API, then unmounts. The API stays up (read-only) through the
   * window, so event streams see the unplugs and the closes, and an unplug
   * request in progress gets its report; it closes before the unmount
   * releases the files still open, since a client waiting for a program to
   * close its files (`unplug --wait-release`) must not take that forced
   * release for the program's close.
   */
  private async teardown(): Promise<void> {
    this.stopCollector?.();
    this.control?.refuseChanges();
    if (this.emulator) {
      await this.emulator.stop({
        releaseTimeoutMs: this.s.shutdownReleaseMs,
        beforeUnmount: async (report) => {
          for (const h of report.stuck) {
            this.log.warn(h, `${h.device} (generation ${h.generation}): ${h.op} by pid ${h.pid} (${h.comm || '?'}) still running after ${h.sinceMs} ms: stuck at shutdown, its request answered with the unplug errno`);
          }
          for (const u of report.unreleased) {
            this.log.warn(u, `${u.device} (generation ${u.generation}) still had ${u.openFiles} open file(s) at unmount; released by the unmount`);
          }
          await this.control?.close();
        },
      });
    }
    // The socket is ours to remove only once we listened on it (close() removes it).
    await this.control?.close();
    this.log.info('stopped');
  }

  /**
   * A second signal: no waiting. Abort the connection and detach the mount
   * lazily (the abort also fails a notification the notifier thread may be
   * blocked writing, which process.exit would wait for), remove the
   * socket, exit.
   */
  private emergencyExit(): void {
    const exit = (): never => {
      if (this.control) {
        try {
          rmSync(this.s.socket, { force: true });
        } catch {
          // nothing more to do
        }
      }
      process.exit(Exit.failed);
    };
    if (!this.emulator) exit();
    void (async () => {
      // Abort first: a dead connection answers umount's stat of the
      // mountpoint at once (ENOTCONN), where a live one would wait for this
      // thread, which is the one that answers.
      const m = await findMount(this.s.mountpoint).catch(() => null);
      if (m?.fstype === FSTYPE) await abortConnection(m.dev).catch(() => {});
      await unmountFuse(this.s.mountpoint, true).catch(() => {});
      // Detached: its lock file can go (the lock itself goes with the process).
      this.emulator?.claim.release();
    })().finally(exit);
  }
}
