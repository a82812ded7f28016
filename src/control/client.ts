/**
 * A typed client for the control API, used by the CLI and the tests: one
 * method per route, the event stream as an async iterator. A refused
 * request throws ApiError (status and code from the answer); a daemon that
 * is not there throws DaemonUnreachableError.
 */
import { statSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { dirname } from 'node:path';
import {
  API_PREFIX,
  STREAM_DROPPED,
  STREAM_ID_HEADER,
  STREAM_SYNCED,
  toJson,
  type ActionResult,
  type DeviceEvent,
  type DeviceView,
  type ErrorBody,
  type ModelView,
  type PlugBody,
  type StatusView,
  type StreamDroppedNotice,
  type StreamSyncedMark,
  type UnplugBody,
  type UnplugReport,
} from './protocol.js';
import type { FaultRuleSpec, FaultRuleStatus } from '../faults/index.js';

/** The daemon answered with an error. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** not_found, conflict, bad_request, bad_json, unknown_model, an errno name... */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * No daemon answers on the socket (ENOENT: no socket file; ECONNREFUSED:
 * nobody listening), or this user may not connect (EACCES, EPERM).
 */
export class DaemonUnreachableError extends Error {
  constructor(
    readonly socketPath: string,
    readonly code: string,
  ) {
    super(
      code === 'EACCES' || code === 'EPERM'
        ? `permission denied on ${socketPath}: the daemon's socket (mode 0600) is ${owner(socketPath)}'s; run this command as that user ` +
            `(e.g. with sudo), or start the daemon with --socket PATH somewhere you can reach`
        : `cannot reach the cdevemu daemon at ${socketPath} (${code}); is \`cdevemu daemon\` running? (--socket PATH or $CDEVEMU_SOCKET)`,
    );
    this.name = 'DaemonUnreachableError';
  }
}

/** Who owns the socket, or the nearest directory above it this user can see: "root (uid 0)". */
function owner(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    try {
      const uid = statSync(p).uid;
      return uid === 0 ? 'root' : `uid ${uid}`;
    } catch {
      if (p === dirname(p)) return 'another user';
    }
  }
}

/**
 * The daemon dropped the event stream because this client fell too far
 * behind (docs/control-api.md#events): events after `notice.at` were not
 * sent. An ApiError (503, code subscriber_dropped): the daemon could not
 * go on serving the request.
 */
export class EventStreamDroppedError extends ApiError {
  constructor(readonly notice: StreamDroppedNotice) {
    super(503, STREAM_DROPPED, `the daemon dropped the event stream: ${notice.error}`);
    this.name = 'EventStreamDroppedError';
  }
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK', 'EACCES', 'EPERM', 'ENOTDIR']);

const seg = (s: string): string => encodeURIComponent(s);

export interface EventsOptions {
  /** Replay the daemon's kept history first. */
  history?: boolean;
  /** Ends the iteration. */
  signal?: AbortSignal;
  /**
   * Called once the daemon has answered, with the stream's id: every event
   * from then on is in the stream (server.ts subscribes as it answers).
   */
  onOpen?: (stream: number) => void;
  /** Called with the token of each sync mark ({@link ControlClient.syncEvents}) as the stream reaches it. */
  onSynced?: (token: string) => void;
}

/**
 * The control API of a running daemon on its Unix socket: one method per
 * route (docs/control-api.md), the event stream as an async iterator
 * ({@link ControlClient.events}). A request the daemon refuses throws an
 * {@link ApiError} with its status and code; a daemon that is not there
 * (or a socket this user may not open) throws a
 * {@link DaemonUnreachableError}. {@link resolveSocketPath} finds the socket
 * as the CLI does.
 */
export class ControlClient {
  constructor(readonly socketPath: string) {}

  status(): Promise<StatusView> {
    return this.call('GET', '/status');
  }

  /** Every model the daemon has, with its options and actions as the daemon checks them. */
  listModels(): Promise<ModelView[]> {
    return this.call('GET', '/models');
  }

  /** One model; an ApiError 404 `not_found`, listing the models, when the daemon has none of that name. */
  getModel(name: string): Promise<ModelView> {
    return this.call('GET', `/models/${seg(name)}`);
  }

  listDevices(): Promise<DeviceView[]> {
    return this.call('GET', '/devices');
  }

  /** The newest generation of `name`, or an older (zombie) one with `generation`. */
  getDevice(name: string, o: { generation?: number } = {}): Promise<DeviceView> {
    const q = o.generation !== undefined ? `?generation=${o.generation}` : '';
    return this.call('GET', `/devices/${seg(name)}${q}`);
  }

  plug(req: PlugBody): Promise<DeviceView> {
    return this.call('POST', '/devices', req);
  }

  /** Resolves when the device is drained and removed. */
  unplug(name: string, o: UnplugBody = {}): Promise<UnplugReport> {
    return this.call('POST', `/devices/${seg(name)}/unplug`, o);
  }

  replug(name: string, o: { options?: unknown } = {}): Promise<DeviceView> {
    return this.call('POST', `/devices/${seg(name)}/replug`, o);
  }

  async action(name: string, action: string, arg?: unknown): Promise<unknown> {
    const r = await this.call<ActionResult>('POST', `/devices/${seg(name)}/actions/${seg(action)}`, arg === undefined ? {} : { arg });
    return r.result;
  }

  /** The program using `name` has ended: its model judges the session now (docs/control-api.md#routes). */
  async endSession(name: string): Promise<void> {
    await this.call('POST', `/devices/${seg(name)}/end-session`, {});
  }

  /** Fault rules (docs/control-api.md#routes), with what each has matched and fired. */
  listFaults(): Promise<FaultRuleStatus[]> {
    return this.call('GET', '/faults');
  }

  /** Adds a rule (README.md, "Fault injection"); answers it with its id. */
  addFault(rule: FaultRuleSpec): Promise<FaultRuleStatus> {
    return this.call('POST', '/faults', rule);
  }

  /** Removes one rule, or every rule when `id` is omitted. */
  removeFault(id?: string): Promise<{ removed: string[] }> {
    return this.call('DELETE', id === undefined ? '/faults' : `/faults/${seg(id)}`);
  }

  /**
   * Asks the daemon to mark event stream `stream` (the id `events()` gave
   * onOpen) behind every event recorded so far: its onSynced gets `token`
   * once the stream has delivered them all.
   */
  async syncEvents(stream: number, token: string): Promise<void> {
    await this.call('POST', `/events/${stream}/sync`, { token });
  }

  /**
   * Every event from now on (and the kept history first, if asked), until
   * the signal aborts or the daemon ends the stream. Throws
   * EventStreamDroppedError if the daemon dropped the stream for falling
   * behind: events were lost then.
   */
  async *events(o: EventsOptions = {}): AsyncGenerator<DeviceEvent, void, undefined> {
    const res = await this.open('GET', `${API_PREFIX}/events${o.history ? '?history=1' : ''}`);
    o.onOpen?.(Number(res.headers[STREAM_ID_HEADER]));
    const onAbort = (): void => {
      res.destroy();
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    let buf = '';
    try {
      res.setEncoding('utf8');
      for await (const chunk of res as AsyncIterable<string>) {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line.trim()) continue;
          const e = JSON.parse(line) as DeviceEvent | StreamDroppedNotice | StreamSyncedMark;
          if (e.type === STREAM_DROPPED) throw new EventStreamDroppedError(e as StreamDroppedNotice);
          if (e.type === STREAM_SYNCED) o.onSynced?.((e as StreamSyncedMark).token);
          else yield e as DeviceEvent;
        }
      }
    } catch (err) {
      // Destroying the response is how an abort ends the stream.
      if (!o.signal?.aborted || err instanceof EventStreamDroppedError) throw err;
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      res.destroy();
    }
  }

  /** One request to `/v1${path}`; the parsed JSON answer. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.open(method, API_PREFIX + path, body === undefined ? undefined : toJson(body));
    const text = await readAll(res);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.statusCode ?? 0, 'bad_response', `the daemon answered ${method} ${path} with non-JSON: ${text.slice(0, 200)}`);
    }
  }

  /** Sends a request and resolves with a 2xx response; a non-2xx answer is thrown as ApiError. */
  private open(method: string, path: string, body?: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { accept: 'application/json' };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      // agent: false: one connection per request, so an idle keep-alive
      // socket never holds a CLI process open.
      const req = request({ socketPath: this.socketPath, path, method, headers, agent: false }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        readAll(res).then((text) => {
          let e: Partial<ErrorBody> = {};
          try {
            e = JSON.parse(text) as ErrorBody;
          } catch {
            // not JSON: report the text
          }
          reject(new ApiError(status, e.code ?? `http_${status}`, e.error ?? (text.trim() || `HTTP ${status}`)));
        }, reject);
      });
      req.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code && UNREACHABLE.has(err.code) ? new DaemonUnreachableError(this.socketPath, err.code) : err);
      });
      req.end(body);
    });
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (text += d));
    res.once('end', () => resolve(text));
    res.once('error', reject);
  });
}
