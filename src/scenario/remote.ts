/** A scenario target reached through a daemon's control socket (`cdevemu run --socket`). */
import type { DeviceEvent } from '../core/events.js';
import type { ControlClient } from '../control/client.js';
import type { DeviceSpec } from '../config/index.js';
import type { UnplugOptions } from '../core/index.js';
import type { FaultRuleSpec } from '../faults/index.js';
import type { ScenarioTarget, StuckReport, TargetDevice } from './target.js';

export class RemoteTarget implements ScenarioTarget {
  readonly shared = true;

  private constructor(
    private readonly client: ControlClient,
    readonly mountpoint: string,
  ) {}

  /** Connects (a status call): throws DaemonUnreachableError if no daemon answers. */
  static async connect(client: ControlClient): Promise<RemoteTarget> {
    return new RemoteTarget(client, (await client.status()).mountpoint);
  }

  async plug(d: DeviceSpec): Promise<void> {
    await this.client.plug(d);
  }

  unplug(name: string, o: UnplugOptions = {}): Promise<{ stuck: StuckReport[] }> {
    return this.client.unplug(name, o);
  }

  async replug(name: string, options?: unknown): Promise<void> {
    await this.client.replug(name, options === undefined ? {} : { options });
  }

  action(name: string, action: string, arg?: unknown): Promise<unknown> {
    return this.client.action(name, action, arg);
  }

  async addFault(rule: FaultRuleSpec): Promise<void> {
    await this.client.addFault(rule);
  }

  async devices(): Promise<TargetDevice[]> {
    return (await this.client.listDevices()).map((d) => ({
      name: d.name,
      generation: d.generation,
      state: d.state,
      holders: d.holders,
      reads: d.counters.reads,
      writes: d.counters.writes,
      inFlight: d.inFlight,
    }));
  }

  /** Resolves once the daemon has answered the event stream (client.ts onOpen): from then on no event is missed. */
  subscribe(on: (e: DeviceEvent) => void, onEnd: (reason: string) => void): Promise<() => void> {
    const ac = new AbortController();
    return new Promise((resolve, reject) => {
      let open = false;
      const onOpen = (): void => {
        open = true;
        resolve(() => ac.abort());
      };
      void (async () => {
        try {
          for await (const e of this.client.events({ signal: ac.signal, onOpen })) on(e);
          if (!ac.signal.aborted) onEnd('the daemon ended it');
        } catch (err) {
          if (!open) reject(err);
          else if (!ac.signal.aborted) onEnd(err instanceof Error ? err.message : String(err));
        }
      })();
    });
  }
}
