/** A scenario target reached through a daemon's control socket (`cdevemu run --socket`). */
import type { DeviceEvent } from '../core/events.js';
import type { ControlClient } from '../control/client.js';
import type { DeviceSpec } from '../config/index.js';
import type { UnplugOptions } from '../core/index.js';
import type { FaultRuleSpec, FaultRuleStatus } from '../faults/index.js';
import type { ScenarioTarget, StuckReport, TargetDevice } from './target.js';

export class RemoteTarget implements ScenarioTarget {
  readonly shared = true;
  /** The event stream's id, once subscribed. */
  private stream: number | null = null;
  /** sync() calls waiting for their mark, by token: called with no argument at the mark, with an error if the stream ends first. */
  private readonly syncs = new Map<string, (ended?: Error) => void>();
  /** Why the event stream ended, once it has: no mark can be reached then. */
  private ended: Error | null = null;
  private nextToken = 1;

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

  endSession(name: string): Promise<void> {
    return this.client.endSession(name);
  }

  async addFault(rule: FaultRuleSpec): Promise<string> {
    return (await this.client.addFault(rule)).id;
  }

  listFaults(): Promise<FaultRuleStatus[]> {
    return this.client.listFaults();
  }

  async removeFault(id: string): Promise<void> {
    await this.client.removeFault(id);
  }

  async devices(): Promise<TargetDevice[]> {
    return (await this.client.listDevices()).map((d) => ({
      name: d.name,
      model: d.model,
      generation: d.generation,
      state: d.state,
      holders: d.holders,
      reads: d.counters.reads,
      writes: d.counters.writes,
      inFlight: d.inFlight,
    }));
  }

  /**
   * Events come over a socket of their own, behind the answers to the
   * run's requests: the daemon marks the stream behind every event it has
   * recorded (POST /v1/events/{stream}/sync), and this resolves once the
   * stream reaches the mark. Once the stream has ended it fails at once:
   * a daemon started since numbers its streams afresh, so the mark could
   * land on another subscriber's stream of the same id and never reach
   * this one.
   */
  async sync(): Promise<void> {
    if (this.stream === null) throw new Error('not subscribed to the event stream');
    if (this.ended) throw this.ended;
    const token = `sync${this.nextToken++}`;
    const reached = new Promise<void>((resolve, reject) => this.syncs.set(token, (ended) => (ended ? reject(ended) : resolve())));
    await this.client.syncEvents(this.stream, token);
    await reached;
  }

  /** Resolves once the daemon has answered the event stream (client.ts onOpen): from then on no event is missed. */
  subscribe(on: (e: DeviceEvent) => void, onEnd: (reason: string) => void): Promise<() => void> {
    const ac = new AbortController();
    return new Promise((resolve, reject) => {
      let open = false;
      const onOpen = (stream: number): void => {
        open = true;
        this.stream = stream;
        resolve(() => ac.abort());
      };
      const onSynced = (token: string): void => {
        this.syncs.get(token)?.();
        this.syncs.delete(token);
      };
      void (async () => {
        try {
          for await (const e of this.client.events({ signal: ac.signal, onOpen, onSynced })) on(e);
          if (!ac.signal.aborted) onEnd('the daemon ended it');
        } catch (err) {
          if (!open) reject(err);
          else if (!ac.signal.aborted) onEnd(err instanceof Error ? err.message : String(err));
        } finally {
          this.ended = new Error('the event stream ended before it reached the sync mark');
          for (const settle of this.syncs.values()) settle(this.ended);
          this.syncs.clear();
        }
      })();
    });
  }
}
