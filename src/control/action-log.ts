/**
 * What the daemon did through the control API, one info line each (plug,
 * unplug with its mode, replug, action, session end, fault rule added or
 * removed), and
 * what an unplug found: a warning for each handler stuck at its drain, and
 * for the files still open when it answered, a line once the last of them
 * is closed (a program that never closes them leaves that line out; at
 * shutdown the daemon warns of them, daemon/serve.ts). README.md, "Logs".
 *
 * The message says it all, for the pretty log on a terminal; JSON logs
 * carry the same under `api`, `{action, device, ...}`, for a program to
 * read. daemon/logger.ts leaves `api` out of the pretty lines.
 */
import type { Logger } from 'pino';
import type { DeviceEvent } from '../core/events.js';
import type { DeviceManager, Holder, Instance, UnplugMode, UnplugReport } from '../core/index.js';
import { describeFault, type FaultRule } from '../faults/index.js';

/** The holders named in one line, at most; the rest are counted. */
const MAX_NAMED = 5;

const ms = (n: number): string => (n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`);

function holdersText(holders: readonly Holder[]): string {
  const named = holders.slice(0, MAX_NAMED).map((h) => `pid ${h.pid} (${h.comm || '?'})`);
  if (holders.length > MAX_NAMED) named.push(`${holders.length - MAX_NAMED} more`);
  return named.join(', ');
}

/** An unplugged generation whose files were still open when its unplug answered. */
interface Watched {
  inst: Instance<unknown>;
  unpluggedAt: number;
}

export class ActionLog {
  private readonly watched = new Map<string, Watched>();
  private readonly onEvent = (e: DeviceEvent): void => this.follow(e);

  constructor(
    private readonly log: Logger,
    private readonly devices: DeviceManager,
  ) {
    devices.events.on('event', this.onEvent);
  }

  /** Stops following released files (the control API closed). */
  close(): void {
    this.devices.events.off('event', this.onEvent);
    this.watched.clear();
  }

  plugged(inst: Instance<unknown>): void {
    const api = { action: 'plug', device: inst.name, model: inst.model, generation: inst.generation, nodePath: inst.nodePath };
    this.log.info({ api }, `plugged ${inst.name} (model ${inst.model}, generation ${inst.generation})`);
  }

  /**
   * An unplug answered: the line, a warning for each stuck handler, and,
   * when files of the generation are still open, the watch for their close.
   */
  unplugged(report: UnplugReport, mode: UnplugMode): void {
    const { device, generation } = report;
    const inst = this.devices.list().find((i) => i.name === device && i.generation === generation);
    const holders = inst?.holders ?? [];
    const open = holders.length ? `; ${holders.length} file(s) still open: ${holdersText(holders)}` : '; no file open';
    const stuck = report.stuck.length ? `; ${report.stuck.length} handler(s) stuck` : '';
    const api = {
      action: 'unplug',
      device,
      generation,
      mode,
      drainedInMs: report.drainedInMs,
      stuck: report.stuck.length,
      openFiles: holders.length,
    };
    this.log.info({ api }, `unplugged ${device} (generation ${generation}, ${mode}): drained in ${ms(report.drainedInMs)}${stuck}${open}`);
    for (const h of report.stuck) {
      this.log.warn(
        { api: { action: 'unplug', device, generation, stuck: h } },
        `${device} (generation ${generation}): ${h.op} by pid ${h.pid} (${h.comm || '?'}) stuck: running for ${ms(h.sinceMs)} when the unplug's drain gave up`,
      );
    }
    const key = `${device}\0${generation}`;
    if (inst && holders.length && !this.watched.has(key)) this.watched.set(key, { inst, unpluggedAt: Date.now() });
  }

  replugged(name: string, previous: number | null, inst: Instance<unknown>): void {
    const before = previous === null ? '' : `generation ${previous} unplugged, `;
    const api = { action: 'replug', device: name, model: inst.model, generation: inst.generation, unplugged: previous };
    this.log.info({ api }, `replugged ${name} (model ${inst.model}): ${before}generation ${inst.generation} plugged`);
  }

  action(device: string, action: string): void {
    const generation = this.devices.get(device)?.generation;
    const api = { action: 'action', device, generation, name: action };
    this.log.info({ api }, `action ${action} on ${device} (generation ${generation ?? '?'})`);
  }

  sessionEnded(device: string, generation: number): void {
    const api = { action: 'end-session', device, generation };
    this.log.info({ api }, `session on ${device} (generation ${generation}) ended`);
  }

  faultAdded(rule: FaultRule): void {
    this.log.info({ api: { action: 'fault_add', rule } }, `fault ${rule.id} added: ${describeFault(rule)}`);
  }

  faultRemoved(rule: FaultRule): void {
    this.log.info({ api: { action: 'fault_remove', rule } }, `fault ${rule.id} removed: ${describeFault(rule)}`);
  }

  /** The close of the last file of a watched generation: `freed` comes once no file holds it (docs/control-api.md#events). */
  private follow(e: DeviceEvent): void {
    // Every event comes here, two per open+close: the key is made only for the one that can matter.
    if (e.type !== 'freed' || this.watched.size === 0) return;
    const key = `${e.device}\0${e.generation}`;
    const w = this.watched.get(key);
    if (!w) return;
    this.watched.delete(key);
    const after = Date.now() - w.unpluggedAt;
    const late = w.inst.counters.lateReleases;
    const api = { action: 'unplug', device: e.device, generation: e.generation, releasedAfterMs: after, lateReleases: late };
    this.log.info(
      { api },
      `${e.device} (generation ${e.generation}): every file closed, the last ${ms(after)} after the unplug answered (${late} late release(s) in all)`,
    );
  }
}
