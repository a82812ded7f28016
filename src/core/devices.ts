/**
 * The device manager: registered models, the instances (zombies included
 * until freed), plug/unplug/replug, model actions, and the event stream.
 */
import { Errno } from '../errno.js';
import { CoreEvent, EventLog, type DeviceEvent } from './events.js';
import { DeviceError, type LifecycleHooks, type Logger, type OpInterceptor, type PublishedDevice, type Publisher, type UnplugOptions, type UnplugReport } from './host.js';
import { callModel, CONTROL_CALL } from './fops.js';
import { DeviceInstance } from './instance.js';
import type { ActionEntry, Counters, DeviceModel, Instance } from './model.js';
import { describeModel, type ModelView } from './model-view.js';
import { regionActions } from './region-actions.js';
import { checkValues } from './schema.js';
import { didYouMean } from '../suggest.js';
import { MAX_DURATION_MS } from '../limits.js';
import { expandName } from './names.js';
import { probe } from './probe.js';
import { unplugInstance } from './unplug.js';
import { UnplugBound } from './unplug-bound.js';

export interface DeviceManagerOptions {
  publisher: Publisher;
  logger?: Logger;
  /** Events kept for late subscribers; default 1000. */
  historySize?: number;
  /** Default for unplug; 5000. */
  drainTimeoutMs?: number;
  /** Runs around every model file operation: the fault engine. */
  interceptor?: OpInterceptor;
}

export interface PlugRequest {
  model: string;
  /** May contain one '%d': the lowest number not used by a live or unplugging instance. */
  name: string;
  options?: unknown;
}

/** A model of any state type: models are stored type-erased, and each instance is typed by its own model. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the one place the erasure is spelled
export type AnyDeviceModel = DeviceModel<any>;

const consoleLogger: Logger = {
  warn: (obj, msg) => console.warn(msg, obj),
  error: (obj, msg) => console.error(msg, obj),
};

export class DeviceManager {
  readonly events: EventLog;
  private readonly publisher: Publisher;
  private readonly logger: Logger;
  /** The drain bound unplug uses when not given one. */
  readonly drainTimeoutMs: number;
  private readonly interceptor: OpInterceptor | null;
  private readonly models = new Map<string, AnyDeviceModel>();
  /** Not yet freed, in plug order. */
  private readonly instances = new Set<DeviceInstance>();
  /** Names held by plugs whose create() is still running. */
  private readonly probing = new Set<string>();
  /**
   * The last plug under each name, kept after free: (name, generation)
   * never repeats, replug works on a device already gone, and its final
   * counters stay readable until the name is plugged again.
   */
  private readonly plugged = new Map<string, { model: string; options: unknown; generation: number; finalCounters?: Counters }>();
  private readonly hooks: LifecycleHooks[] = [];
  /** Instance.modelData, by model name. */
  private readonly modelData = new Map<string, Map<string, unknown>>();

  constructor(opts: DeviceManagerOptions) {
    this.publisher = opts.publisher;
    this.logger = opts.logger ?? consoleLogger;
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 5000;
    this.interceptor = opts.interceptor ?? null;
    this.events = new EventLog(this.logger, opts.historySize);
  }

  registerModel<S>(model: DeviceModel<S>): void {
    if (this.models.has(model.name)) throw new DeviceError('conflict', `model ${model.name} is already registered`);
    this.models.set(model.name, model);
  }

  /** Every registered model, as GET /v1/models lists it, in registration order. */
  modelList(): ModelView[] {
    return [...this.models.values()].map(describeModel);
  }

  /** One model as GET /v1/models/{model} shows it; unknown_model, listing the models, when there is none. */
  model(name: string): ModelView {
    return describeModel(this.registered(name));
  }

  private registered(name: string): AnyDeviceModel {
    const model = this.models.get(name);
    if (model) return model;
    const known = [...this.models.keys()];
    throw new DeviceError('unknown_model', `no model named ${JSON.stringify(name)}${didYouMean(name, known)}; models: ${known.join(', ')}`);
  }

  /** Adds lifecycle hooks (see LifecycleHooks); returns the function that removes them. */
  addHooks(h: LifecycleHooks): () => void {
    this.hooks.push(h);
    return () => {
      const i = this.hooks.indexOf(h);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** Runs the hooks in order; returns the Errno a `plugged` hook refused the device with (the rest do not run). */
  private async runHooks(which: keyof LifecycleHooks, inst: Instance<unknown>, notice: { noticeTimeoutMs?: number } = {}): Promise<Errno | null> {
    for (const h of [...this.hooks]) {
      try {
        await h[which]?.(inst, notice);
      } catch (err) {
        if (which === 'plugged' && err instanceof Errno) return err;
        this.logger.error({ err, device: inst.name, generation: inst.generation }, `${which} hook failed`);
      }
    }
    return null;
  }

  async plug(req: PlugRequest): Promise<Instance<unknown>> {
    const model = this.registered(req.model);
    // Checked here, before a name is taken: create() and regions() see inst.options with the defaults filled in.
    const options = model.options ? checkValues(`${model.name}: option`, model.options, req.options) : req.options;
    const name = expandName(req.name, (n) => this.busy(n));
    if (this.busy(name)) throw new DeviceError('conflict', `device ${name} exists`);
    const generation = (this.plugged.get(name)?.generation ?? 0) + 1;
    let modelData = this.modelData.get(model.name);
    if (!modelData) this.modelData.set(model.name, (modelData = new Map()));
    const inst: DeviceInstance = new DeviceInstance(model, name, generation, options, {
      logger: this.logger,
      modelData,
      interceptor: this.interceptor,
      record: (e: DeviceEvent) => this.events.record(e),
      unplug: (self) => {
        if (!this.instances.has(self)) return;
        this.unplug(self.name, { mode: 'surprise' }).catch((err: unknown) => this.logger.error({ err, device: self.name }, 'unplug the device asked for failed'));
      },
      onFreed: (freed) => {
        this.instances.delete(freed);
        const last = this.plugged.get(freed.name);
        if (last?.generation === freed.generation) last.finalCounters = freed.counters;
      },
      ...(this.publisher.mappings ? { mappings: (dev: PublishedDevice, openers: Set<number>) => this.publisher.mappings!(dev, openers) } : {}),
    });
    this.probing.add(name);
    try {
      await probe(inst, this.publisher);
    } finally {
      this.probing.delete(name);
    }
    this.plugged.set(name, { model: model.name, options: req.options, generation });
    this.instances.add(inst);
    const refused = await this.runHooks('plugged', inst);
    if (refused) {
      await this.unplug(name, { mode: 'surprise' });
      throw new DeviceError('probe_failed', `${name}: refused: ${refused.message}`, { cause: refused });
    }
    return inst;
  }

  /**
   * Resolves when the instance is drained and removed; a second call joins
   * the first, and its drainTimeoutMs, when shorter than what is left of
   * the first's, becomes the bound. An orderly unplug (the default) runs the `unplugging` hooks
   * first; a surprise unplug skips them.
   */
  async unplug(name: string, opts: UnplugOptions = {}): Promise<UnplugReport> {
    const inst = this.newest(name);
    if (!inst || inst.lifecycle === 'gone' || inst.lifecycle === 'freed') {
      throw new DeviceError('not_found', `no device ${name} to unplug`);
    }
    const timeout = opts.drainTimeoutMs ?? this.drainTimeoutMs;
    if (!(timeout >= 0 && timeout <= MAX_DURATION_MS)) throw new DeviceError('invalid', `drainTimeoutMs: expected 0 to ${MAX_DURATION_MS} ms, got ${timeout}`);
    if (inst.unplugging) {
      // Joining the unplug in progress: a shorter drain timeout brings its bound forward.
      if (opts.drainTimeoutMs !== undefined) inst.unplugBound?.shorten(timeout);
      return inst.unplugging;
    }
    const mode = opts.mode ?? 'orderly';
    const notice = opts.noticeTimeoutMs;
    if (notice !== undefined && !(notice >= 0 && notice <= MAX_DURATION_MS)) throw new DeviceError('invalid', `noticeTimeoutMs: expected 0 to ${MAX_DURATION_MS} ms, got ${notice}`);
    const bound = (inst.unplugBound = new UnplugBound(timeout));
    // Without hooks to run, the unplug starts in this call: an open racing
    // it already sees the device unplugging.
    const notify = mode === 'orderly' && this.hooks.some((h) => h.unplugging);
    if (notify) inst.record(CoreEvent.unplug_notice, {});
    inst.unplugging = notify
      ? this.runHooks('unplugging', inst, notice === undefined ? {} : { noticeTimeoutMs: notice }).then(() => unplugInstance(inst, this.publisher, timeout, bound, mode))
      : unplugInstance(inst, this.publisher, timeout, bound, mode);
    return inst.unplugging;
  }

  /**
   * Unplugs the newest instance of `name` if it is still plugged, then plugs
   * a new generation with the same model and (unless given) options. The old
   * generation may still wait for its last close.
   */
  async replug(name: string, options?: unknown): Promise<Instance<unknown>> {
    const last = this.plugged.get(name);
    if (!last) throw new DeviceError('not_found', `no device ${name}`);
    const cur = this.newest(name);
    if (cur?.lifecycle === 'live' || cur?.lifecycle === 'unplugging') await this.unplug(name);
    return this.plug({ model: last.model, name, options: options === undefined ? last.options : options });
  }

  /** The newest generation under `name`, zombie or not. */
  get(name: string): Instance<unknown> | undefined {
    return this.newest(name);
  }

  /**
   * The counters a freed device ended with: of the last generation plugged
   * under `name` (or only if it is `generation`), until a new device is
   * plugged under that name.
   */
  finalCounters(name: string, generation?: number): Counters | undefined {
    const last = this.plugged.get(name);
    return generation === undefined || last?.generation === generation ? last?.finalCounters : undefined;
  }

  /** The newest generation ever plugged under `name` (freed or not): generations 1 to it were; undefined if none was. */
  lastGeneration(name: string): number | undefined {
    return this.plugged.get(name)?.generation;
  }

  /** Every instance not yet freed, zombies included, in plug order. */
  list(): Instance<unknown>[] {
    return [...this.instances];
  }

  async action(name: string, action: string, arg?: unknown): Promise<unknown> {
    const inst = this.newest(name);
    if (!inst || inst.lifecycle !== 'live') throw new DeviceError('not_found', `no live device ${name}`);
    const entry = inst.driver.actions?.[action] ?? (inst.shared ? regionActions[action] : undefined);
    if (!entry) {
      const known = [...Object.keys(inst.driver.actions ?? {}), ...(inst.shared ? Object.keys(regionActions) : [])];
      throw new DeviceError('not_found', `model ${inst.model} has no action ${JSON.stringify(action)}${didYouMean(action, known)}; actions: ${known.join(', ') || 'none'}`);
    }
    const fn = actionRunner(inst.model, action, entry, arg);
    inst.count.actions++;
    inst.record(CoreEvent.action, { action });
    // Model code like any op: through the gate, so unplug drains it.
    return callModel(inst, CONTROL_CALL, `action:${action}`, null, null, undefined, () => fn(inst));
  }

  /**
   * Tells the device `name` that the program using it has ended
   * (DeviceModel.endSession). Nothing for a model without the hook, nor
   * once unplug has begun: remove() ends the session then. Resolves to the
   * generation told.
   */
  async endSession(name: string): Promise<number> {
    const inst = this.newest(name);
    if (!inst) throw new DeviceError('not_found', `no device ${name}`);
    const end = inst.driver.endSession;
    // Model code like any op: through the gate, so unplug drains it.
    if (end && inst.lifecycle === 'live') await callModel(inst, CONTROL_CALL, 'endSession', null, null, undefined, () => end(inst));
    return inst.generation;
  }

  /** A name is busy while an instance under it is plugged or being unplugged (zombies free it). */
  private busy(name: string): boolean {
    if (this.probing.has(name)) return true;
    const inst = this.newest(name);
    return inst !== undefined && (inst.lifecycle === 'live' || inst.lifecycle === 'unplugging');
  }

  private newest(name: string): DeviceInstance | undefined {
    let found: DeviceInstance | undefined;
    for (const inst of this.instances) if (inst.name === name) found = inst;
    return found;
  }
}

/**
 * The action's call with its argument checked against its `args` (a bad
 * argument is refused here, before the action is counted or run); a bare
 * function gets the argument as given.
 */
function actionRunner(model: string, action: string, entry: ActionEntry<never>, arg: unknown): (inst: DeviceInstance) => unknown {
  if (typeof entry === 'function') return (inst) => entry(inst as never, arg);
  const args = checkValues(`${model}: action ${action}: argument`, entry.args ?? {}, arg);
  return (inst) => entry.run(inst as never, args as never);
}
