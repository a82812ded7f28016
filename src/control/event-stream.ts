/**
 * The subscribers of GET /v1/events (docs/control-api.md#events). Each
 * event is serialized once; the events of one event-loop turn go to every
 * subscriber as one write of one shared string. What a subscriber costs
 * is what its socket has queued and not yet sent (`writableLength`: Node's
 * buffer and libuv's), bounded by MAX_QUEUED_BYTES: a subscriber that
 * falls that far behind is dropped, its last line saying so. The number
 * of streams is capped (MAX_SUBSCRIBERS), so the memory they can hold is
 * at most their product.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { DeviceEvent, EventLog } from '../core/index.js';
import { HttpError } from './http-error.js';
import { STREAM_DROPPED, STREAM_ID_HEADER, STREAM_SYNCED, toJson, type StreamDroppedNotice, type StreamSyncedMark } from './protocol.js';

/** Bytes a subscriber's socket may hold unsent before the subscriber is dropped. */
export const MAX_QUEUED_BYTES = 1 << 20;
/** Event streams open at once, dropped ones still draining included; beyond it GET /v1/events answers 503. */
export const MAX_SUBSCRIBERS = 256;
/**
 * How long a dropped subscriber has to read what was queued and the notice
 * before its connection is closed: one that never reads again must not
 * hold its queue, or its place under the cap, for ever.
 */
const DROP_GRACE_MS = 30_000;

export interface StreamStats {
  /** Streams open now, dropped ones still draining included. */
  subscribers: number;
  /** Subscribers dropped for falling behind since the daemon started. */
  dropped: number;
  /** Bytes the streams' sockets hold unsent now. */
  queuedBytes: number;
}

export class EventStreams {
  private readonly live = new Set<ServerResponse>();
  /** Live streams by the id each was answered with (STREAM_ID_HEADER). */
  private readonly byId = new Map<number, ServerResponse>();
  private nextId = 1;
  /** Dropped, notice queued, not yet closed: still under the cap, as their queue is still in memory. */
  private readonly draining = new Set<ServerResponse>();
  /** The lines of this turn's events, written to every subscriber when the turn ends. */
  private batch: string[] = [];
  private flushQueued = false;
  private droppedCount = 0;

  constructor(
    private readonly events: EventLog,
    private readonly logger: Logger,
  ) {}

  stats(): StreamStats {
    let queuedBytes = 0;
    for (const res of this.live) queuedBytes += res.writableLength;
    for (const res of this.draining) queuedBytes += res.writableLength;
    return { subscribers: this.live.size + this.draining.size, dropped: this.droppedCount, queuedBytes };
  }

  /**
   * Streams events to `res` from now on, after the kept history if
   * `replay`; 503 when MAX_SUBSCRIBERS streams are open.
   */
  subscribe(req: IncomingMessage, res: ServerResponse, replay: boolean): void {
    if (this.live.size + this.draining.size >= MAX_SUBSCRIBERS) {
      throw new HttpError(503, 'too_many_subscribers', `${MAX_SUBSCRIBERS} event streams are open, the most the daemon serves; close one and retry`, {
        'retry-after': '1',
      });
    }
    const id = this.nextId++;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', [STREAM_ID_HEADER]: String(id) });
    res.flushHeaders();
    // The events of this turn not yet written are already in the history:
    // they go out to the other subscribers first, so the new one gets each
    // event once, from the history or from the stream.
    this.flush();
    if (replay) {
      const kept = this.events.history();
      if (kept.length) res.write(kept.map((e) => toJson(e)).join('\n') + '\n');
    }
    if (this.live.size === 0) this.events.on('event', this.onEvent);
    this.live.add(res);
    this.byId.set(id, res);
    res.once('close', () => {
      this.byId.delete(id);
      this.forget(res);
    });
    req.once('close', () => {
      if (!res.writableEnded) res.end();
    });
    this.bound(res);
  }

  /**
   * Writes a STREAM_SYNCED mark into stream `id`, behind every event
   * recorded so far (the turn's batch is flushed first): a barrier for a
   * subscriber that must judge "everything so far", such as a scenario run
   * at its end. False if there is no such live stream.
   */
  sync(id: number, token: string): boolean {
    const res = this.byId.get(id);
    if (!res || !this.live.has(res)) return false;
    this.flush();
    const mark: StreamSyncedMark = { type: STREAM_SYNCED, token };
    res.write(toJson(mark) + '\n');
    this.bound(res);
    return true;
  }

  /** Ends every stream, flushing what it has (the daemon shuts down). */
  endAll(): void {
    this.flush();
    for (const res of this.live) res.end();
    this.live.clear();
    this.events.off('event', this.onEvent);
  }

  private readonly onEvent = (e: DeviceEvent): void => {
    this.batch.push(toJson(e));
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => this.flush());
  };

  private flush(): void {
    this.flushQueued = false;
    if (this.batch.length === 0) return;
    const text = this.batch.join('\n') + '\n';
    this.batch = [];
    for (const res of this.live) {
      res.write(text);
      this.bound(res);
    }
  }

  /** Drops `res` once its socket holds more than MAX_QUEUED_BYTES unsent. */
  private bound(res: ServerResponse): void {
    const queuedBytes = res.writableLength;
    if (queuedBytes <= MAX_QUEUED_BYTES) return;
    this.live.delete(res);
    if (this.live.size === 0) this.events.off('event', this.onEvent);
    this.draining.add(res);
    this.droppedCount++;
    this.logger.warn({ queuedBytes, limit: MAX_QUEUED_BYTES }, 'event stream subscriber is not reading; dropping it');
    const notice: StreamDroppedNotice = {
      type: STREAM_DROPPED,
      at: Date.now(),
      queuedBytes,
      limitBytes: MAX_QUEUED_BYTES,
      error: `this subscriber fell ${queuedBytes} bytes behind (limit ${MAX_QUEUED_BYTES}) and was dropped; events after this line were not sent`,
    };
    res.end(toJson(notice) + '\n');
    const timer = setTimeout(() => res.destroy(), DROP_GRACE_MS).unref();
    res.once('close', () => clearTimeout(timer));
  }

  private forget(res: ServerResponse): void {
    this.draining.delete(res);
    if (this.live.delete(res) && this.live.size === 0) this.events.off('event', this.onEvent);
  }
}
