/**
 * The control API (docs/control-api.md): HTTP/1.1 with JSON bodies on a
 * Unix socket, mode 0600. Every answer is JSON, errors `{error, code}`,
 * except GET /v1/events, a newline-delimited JSON stream that stays open,
 * and GET /metrics, Prometheus text (metrics.ts).
 *
 * The server runs in the process that answers the FUSE mount, so nothing
 * here touches the mount.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, lstat, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, SourceDocument, type Field } from '../config/document.js';
import { readUnplugMode } from '../config/daemon.js';
import { DeviceError, RegionLayoutError, SchemaError, type DeviceManager, type Instance } from '../core/index.js';
import { Errno } from '../errno.js';
import { MAX_DURATION_MS } from '../limits.js';
import {
  MAX_BODY_BYTES,
  toJson,
  type ActionResult,
  type DeviceView,
  type ErrorBody,
  type ModelView,
  type PlugBody,
  type StatusView,
  type UnplugReport,
} from './protocol.js';
import { FaultRuleError, type FaultEngine, type FaultRuleStatus } from '../faults/index.js';
import { METRICS_CONTENT_TYPE, metricsText } from './metrics.js';
import { ActionLog } from './action-log.js';
import { EventStreams, type StreamStats } from './event-stream.js';
import { HttpError } from './http-error.js';
import { UserError } from '../user-error.js';

export interface ControlServerOptions {
  socketPath: string;
  devices: DeviceManager;
  faults: FaultEngine;
  mountpoint: string;
  version: string;
  logger: Logger;
}

/** The socket path is taken: another daemon answers there, or it is not a socket. */
export class SocketInUseError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'SocketInUseError';
  }
}

export { HttpError };

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
}

interface Answer {
  status?: number;
  body: unknown;
}

/** A handler answers JSON, or returns null when it wrote the response itself (the event stream). */
type Handler = (ctx: Ctx) => Promise<Answer | null>;

interface Route {
  /** Path segments; ':x' captures one (URL-decoded) segment. */
  pattern: string[];
  methods: Partial<Record<string, Handler>>;
}

/**
 * Makes `path` free for a new daemon: a socket file left by a dead daemon
 * (connect gets ECONNREFUSED) is removed; one a live daemon answers on, or
 * a file that is not a socket, is refused.
 */
export async function claimSocketPath(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    return;
  }
  if (!isSocket) throw new SocketInUseError(`${path} exists and is not a socket; remove it or choose another --socket`);
  const state = await probeSocket(path);
  if (state === 'live') {
    throw new SocketInUseError(`another cdevemu daemon is already listening on ${path}; stop it first or choose another --socket`);
  }
  if (state === 'stale') await rm(path, { force: true });
}

function probeSocket(path: string): Promise<'live' | 'stale' | 'absent'> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    // A daemon that accepts but never answers still owns the socket.
    const timer = setTimeout(() => {
      s.destroy();
      resolve('live');
    }, 1000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('live');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED') resolve('stale');
      else if (err.code === 'ENOENT') resolve('absent');
      else reject(new SocketInUseError(`cannot probe ${path}: ${err.code ?? err.message}`));
    });
  });
}

export class ControlServer {
  private readonly startedAt = Date.now();
  private readonly streams: EventStreams;
  /** One log line for each thing done through the API (action-log.ts). */
  private readonly said: ActionLog;
  private readonly routes: Route[];
  private closing: Promise<void> | null = null;
  private refusing = false;

  private constructor(
    private readonly o: ControlServerOptions,
    private readonly http: Server,
  ) {
    const d = this.o.devices;
    const f = this.o.faults;
    this.streams = new EventStreams(d.events, this.o.logger);
    this.said = new ActionLog(this.o.logger, d);
    const fault = (id: string): FaultRuleStatus => {
      const rule = f.get(id);
      if (!rule) throw new HttpError(404, 'not_found', `no fault rule ${JSON.stringify(id)}`);
      return rule;
    };
    const model = (name: string): ModelView => {
      try {
        return d.model(name);
      } catch (err) {
        if (err instanceof DeviceError && err.kind === 'unknown_model') throw new HttpError(404, 'not_found', err.message);
        throw err;
      }
    };
    this.routes = [
      { pattern: ['v1', 'status'], methods: { GET: async () => ({ body: this.status() }) } },
      { pattern: ['metrics'], methods: { GET: async ({ res }) => this.metrics(res) } },
      { pattern: ['v1', 'models'], methods: { GET: async () => ({ body: d.modelList() }) } },
      { pattern: ['v1', 'models', ':model'], methods: { GET: async ({ params }) => ({ body: model(params.model!) }) } },
      {
        pattern: ['v1', 'devices'],
        methods: {
          GET: async () => ({ body: await Promise.all(d.list().map((i) => this.view(i))) }),
          POST: async ({ req }) => {
            const plug = readPlugBody(await readJson(req));
            const inst = await d.plug(plug);
            this.said.plugged(inst);
            return { status: 201, body: await this.view(inst) };
          },
        },
      },
      {
        pattern: ['v1', 'devices', ':name'],
        methods: { GET: async ({ url, params }) => ({ body: await this.view(this.find(params.name!, url)) }) },
      },
      {
        pattern: ['v1', 'devices', ':name', 'unplug'],
        methods: {
          POST: async ({ req, params }) => {
            const m = bodyFields(await readJson(req), ['drainTimeoutMs', 'mode', 'noticeTimeoutMs']);
            const drainTimeoutMs = m?.get('drainTimeoutMs').optional((f) => f.number({ min: 0, max: MAX_DURATION_MS }));
            const mode = m?.get('mode').optional(readUnplugMode);
            const noticeTimeoutMs = m?.get('noticeTimeoutMs').optional((f) => f.number({ min: 0, max: MAX_DURATION_MS }));
            const report: UnplugReport = await d.unplug(params.name!, {
              ...(drainTimeoutMs === undefined ? {} : { drainTimeoutMs }),
              ...(mode === undefined ? {} : { mode }),
              ...(noticeTimeoutMs === undefined ? {} : { noticeTimeoutMs }),
            });
            this.said.unplugged(report, mode ?? 'orderly');
            return { body: report };
          },
        },
      },
      {
        pattern: ['v1', 'devices', ':name', 'replug'],
        methods: {
          POST: async ({ req, params }) => {
            const m = bodyFields(await readJson(req), ['options']);
            // The generation the replug unplugs first, if it is still plugged (DeviceManager.replug).
            const before = d.get(params.name!);
            const unplugs = before?.lifecycle === 'live' || before?.lifecycle === 'unplugging' ? before.generation : null;
            const inst = await d.replug(params.name!, m?.get('options').value);
            this.said.replugged(params.name!, unplugs, inst);
            return { body: await this.view(inst) };
          },
        },
      },
      {
        pattern: ['v1', 'devices', ':name', 'actions', ':action'],
        methods: {
          POST: async ({ req, params }) => {
            const m = bodyFields(await readJson(req), ['arg']);
            const result = await d.action(params.name!, params.action!, m?.get('arg').value);
            this.said.action(params.name!, params.action!);
            const body: ActionResult = { result: result ?? null };
            return { body };
          },
        },
      },
      {
        pattern: ['v1', 'devices', ':name', 'end-session'],
        methods: {
          POST: async ({ req, params }) => {
            bodyFields(await readJson(req), []);
            const generation = await d.endSession(params.name!);
            this.said.sessionEnded(params.name!, generation);
            return { body: { device: params.name!, generation } };
          },
        },
      },
      { pattern: ['v1', 'events'], methods: { GET: async (ctx) => this.streamEvents(ctx) } },
      {
        pattern: ['v1', 'events', ':stream', 'sync'],
        methods: {
          POST: async ({ req, params }) => {
            const token = SourceDocument.fromValue(await readJson(req)).root().mapping(['token']).get('token').string({ nonEmpty: true });
            if (token.length > 64) throw new HttpError(400, 'bad_request', 'token: at most 64 characters');
            if (!this.streams.sync(Number(params.stream), token)) throw new HttpError(404, 'not_found', `no event stream ${params.stream} is open`);
            return { body: { stream: Number(params.stream), token } };
          },
        },
      },
      {
        pattern: ['v1', 'faults'],
        methods: {
          GET: async () => ({ body: f.list() }),
          POST: async ({ req }) => {
            const rule = f.add(await readJson(req));
            this.said.faultAdded(rule);
            return { status: 201, body: rule };
          },
          DELETE: async () => {
            const rules = f.list();
            f.clear();
            for (const r of rules) this.said.faultRemoved(r);
            return { body: { removed: rules.map((r) => r.id) } };
          },
        },
      },
      {
        pattern: ['v1', 'faults', ':id'],
        methods: {
          GET: async ({ params }) => ({ body: fault(params.id!) }),
          DELETE: async ({ params }) => {
            const rule = fault(params.id!);
            f.remove(params.id!);
            this.said.faultRemoved(rule);
            return { body: { removed: [params.id!] } };
          },
        },
      },
    ];
  }

  /** Claims the socket path (see claimSocketPath) and listens on it with mode 0600. */
  static async listen(o: ControlServerOptions): Promise<ControlServer> {
    await claimSocketPath(o.socketPath);
    const http = createServer();
    const server = new ControlServer(o, http);
    http.on('request', (req, res) => void server.handle(req, res));
    // Expect: 100-continue. Node answers "100 Continue" itself unless this
    // listener exists; a body declared too large gets its 413 instead, and
    // the client never sends it (RFC 9110 section 10.1.1).
    http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (!declaredTooLarge(req)) res.writeContinue();
      void server.handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      // bind(2) happens inside listen(); the umask makes the socket 0600 from
      // its first moment, before the chmod below makes sure of it.
      const umask = process.umask(0o177);
      try {
        http.listen(o.socketPath, () => {
          http.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
    await chmod(o.socketPath, 0o600);
    o.logger.debug({ socket: o.socketPath }, 'control API listening');
    return server;
  }

  /** From now on only GET requests are served (the daemon is shutting down: no new plugs). */
  refuseChanges(): void {
    this.refusing = true;
  }

  /** Every route as `METHOD /path/{param}`, in table order: what docs/control-api.md documents. */
  routeList(): string[] {
    return this.routes.flatMap((r) => {
      const path = '/' + r.pattern.map((p) => (p.startsWith(':') ? `{${p.slice(1)}}` : p)).join('/');
      return Object.keys(r.methods).map((m) => `${m} ${path}`);
    });
  }

  /** The event streams: how many, how many dropped, what they hold unsent (also in GET /metrics). */
  streamStats(): StreamStats {
    return this.streams.stats();
  }

  get socketPath(): string {
    return this.o.socketPath;
  }

  /**
   * Stops accepting, ends every event stream (flushing what it has), waits
   * briefly for answers in progress, then drops what is left and removes
   * the socket.
   */
  close(graceMs = 1000): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
      this.said.close();
      this.streams.endAll();
      this.http.closeIdleConnections();
      const timer = setTimeout(() => this.http.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
      await rm(this.o.socketPath, { force: true });
      this.o.logger.info({ socket: this.o.socketPath }, 'control API closed');
    })();
    return this.closing;
  }

  private status(): StatusView {
    const list = this.o.devices.list();
    return {
      pid: process.pid,
      mountpoint: this.o.mountpoint,
      socket: this.o.socketPath,
      startedAt: this.startedAt,
      uptimeMs: Date.now() - this.startedAt,
      version: this.o.version,
      devices: list.length,
      live: list.filter((i) => i.lifecycle === 'live').length,
    };
  }

  /** GET /metrics: Prometheus text (see metrics.ts). */
  private async metrics(res: ServerResponse): Promise<null> {
    const text = metricsText({
      devices: this.o.devices.list(),
      uptimeSeconds: (Date.now() - this.startedAt) / 1000,
      version: this.o.version,
      streams: this.streamStats(),
    });
    res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return null;
  }

  private async view(inst: Instance<unknown>): Promise<DeviceView> {
    const now = Date.now();
    const holders = inst.holders.map((h) => ({ file: h.file, pid: h.pid, comm: h.comm, openedAt: h.openedAt, openForMs: now - h.openedAt, reads: h.reads, writes: h.writes }));
    return {
      name: inst.name,
      model: inst.model,
      generation: inst.generation,
      state: inst.lifecycle,
      nodePath: inst.nodePath,
      path: join(this.o.mountpoint, 'dev', inst.nodePath),
      openFiles: holders.length,
      holders,
      inFlight: [...inst.inFlight],
      counters: { ...inst.counters },
      regions: inst.regions.map((r) => ({ index: r.index, name: r.name, size: r.size, offset: r.offset, onUnplug: r.onUnplug, state: r.state })),
      mappings: await inst.mappings(),
    };
  }

  /** The newest generation under `name`, or the one `?generation=N` names (zombies included). */
  private find(name: string, url: URL): Instance<unknown> {
    const g = url.searchParams.get('generation');
    if (g === null) {
      const inst = this.o.devices.get(name);
      if (!inst) throw new HttpError(404, 'not_found', `no device ${name}`);
      return inst;
    }
    const generation = Number(g);
    if (!Number.isInteger(generation) || generation < 1) {
      throw new HttpError(400, 'bad_request', `generation: expected a positive integer, got ${JSON.stringify(g)}`);
    }
    const inst = this.o.devices.list().find((i) => i.name === name && i.generation === generation);
    if (!inst) throw new HttpError(404, 'not_found', `no device ${name} generation ${generation} (never plugged, or freed)`);
    return inst;
  }

  private async streamEvents({ req, res, url }: Ctx): Promise<null> {
    const h = url.searchParams.get('history');
    this.streams.subscribe(req, res, h !== null && h !== '0' && h !== 'false');
    return null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    try {
      const url = new URL(req.url ?? '/', 'http://cdevemu');
      const { handler, params } = this.route(req.method ?? 'GET', url.pathname);
      if (this.refusing && req.method !== 'GET') throw new HttpError(503, 'shutting_down', 'the daemon is shutting down');
      // From the headers, before a byte of the body is read.
      if (declaredTooLarge(req)) throw tooLarge();
      const answer = await handler({ req, res, url, params });
      if (answer) reply(res, answer.status ?? 200, answer.body);
    } catch (err) {
      const e = toHttpError(err);
      if (e.status >= 500) this.o.logger.error({ err, method: req.method, url: req.url }, 'control request failed');
      const body: ErrorBody = { error: e.message, code: e.code };
      if (!res.headersSent) reply(res, e.status, body, e.headers);
      else res.destroy();
    } finally {
      this.o.logger.debug({ method: req.method, url: req.url, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'control request');
    }
  }

  private route(method: string, pathname: string): { handler: Handler; params: Record<string, string> } {
    const raw = pathname.split('/').slice(1);
    if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop();
    let segments: string[];
    try {
      segments = raw.map((s) => decodeURIComponent(s));
    } catch {
      throw new HttpError(400, 'bad_request', `malformed percent-encoding in ${pathname}`);
    }
    for (const r of this.routes) {
      if (r.pattern.length !== segments.length) continue;
      const params: Record<string, string> = {};
      const match = r.pattern.every((p, i) => {
        if (p.startsWith(':')) {
          params[p.slice(1)] = segments[i]!;
          return segments[i] !== '';
        }
        return p === segments[i];
      });
      if (!match) continue;
      const handler = r.methods[method];
      if (!handler) {
        const allow = Object.keys(r.methods).join(', ');
        throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${pathname} (allowed: ${allow})`, { allow });
      }
      return { handler, params };
    }
    throw new HttpError(404, 'not_found', `no route ${method} ${pathname}`);
  }
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = toJson(body) + '\n';
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  const req = res.req;
  if (req.complete || bodyNeverComes(req)) {
    res.end(text);
    return;
  }
  // An answer before the body is all in (a 413, a 404): the client may
  // still be writing it, and ending the response closes the connection
  // when the client asked for that (Connection: close), cutting off its
  // last write with EPIPE. So the answer goes out whole now, the rest of
  // the body is read and dropped, and the client, which has the whole
  // answer, closes the connection; the response ends without it only
  // EARLY_ANSWER_GRACE_MS after the body's end.
  res.write(text);
  req.resume();
  let timer: NodeJS.Timeout | undefined;
  req.once('end', () => {
    timer = setTimeout(() => res.end(), EARLY_ANSWER_GRACE_MS).unref();
  });
  req.socket.once('close', () => clearTimeout(timer));
}

/** How long an answer given before its request's body ended waits for the client to close, after that end. */
const EARLY_ANSWER_GRACE_MS = 2000;

/** A client that asked `Expect: 100-continue` and got no 100 (its body is too large) does not send the body. */
function bodyNeverComes(req: IncomingMessage): boolean {
  return req.headers.expect?.toLowerCase() === '100-continue' && declaredTooLarge(req);
}

const tooLarge = (): HttpError => new HttpError(413, 'too_large', `request body exceeds ${MAX_BODY_BYTES} bytes`);

/** A Content-Length over the limit: refused before the body is read (a chunked body has none, and is counted as it comes). */
function declaredTooLarge(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) > MAX_BODY_BYTES;
}

/** The body as JSON (undefined when empty), at most MAX_BODY_BYTES. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // A chunked body that grows past the limit is answered 413 at once;
    // the rest is still read and dropped (this listener stays), so the
    // connection is not closed under a client still writing, which would
    // then see EPIPE or a reset instead of the answer.
    req.on('data', (chunk: Buffer) => {
      if (size > MAX_BODY_BYTES) return;
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else {
        chunks.length = 0;
        reject(tooLarge());
      }
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    // A client that goes away mid-body ('aborted', ECONNRESET) is the
    // client's doing, not a server error: answered (to nobody) as a 400,
    // so it is not logged as a failure. Thousands of them must not flood the log.
    const cutShort = (): void => reject(new HttpError(400, 'bad_request', 'request body cut short'));
    req.once('error', cutShort);
    req.once('close', () => {
      if (!req.complete) cutShort();
    });
  });
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, 'bad_json', `malformed JSON body: ${(err as Error).message}`);
  }
}

/** An optional body that must be a mapping with only `known` fields; null for no body. */
function bodyFields(body: unknown, known: string[]) {
  if (body === undefined) return null;
  return SourceDocument.fromValue(body).root().mapping(known);
}

function readPlugBody(body: unknown): PlugBody {
  const m = SourceDocument.fromValue(body).root().mapping(['model', 'name', 'options']);
  const plug: PlugBody = { model: m.get('model').string({ nonEmpty: true }), name: m.get('name').string({ nonEmpty: true }) };
  const options: Field = m.get('options');
  if (options.present) plug.options = options.value;
  return plug;
}

function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ConfigError) {
    return new HttpError(400, 'bad_request', err.field ? err.message : `request body: ${err.message}`);
  }
  if (err instanceof DeviceError) {
    switch (err.kind) {
      case 'not_found':
        return new HttpError(404, 'not_found', err.message);
      case 'conflict':
        return new HttpError(409, 'conflict', err.message);
      case 'unknown_model':
        return new HttpError(400, 'unknown_model', err.message);
      case 'invalid':
        return new HttpError(400, 'invalid', err.message);
      case 'probe_failed':
        // An Errno thrown by the model's create() is the device's answer, a
        // region layout the options asked for is a bad option; anything
        // else is a model bug.
        if (err.cause instanceof SchemaError) return new HttpError(400, 'bad_request', err.message);
        if (err.cause instanceof Errno) return new HttpError(400, err.cause.code, err.message);
        if (err.cause instanceof RegionLayoutError && err.cause.option !== undefined) return new HttpError(400, 'bad_request', err.message);
        return new HttpError(500, 'probe_failed', err.message);
    }
  }
  // Options or an action argument the model's schema refuses.
  if (err instanceof SchemaError) return new HttpError(400, 'bad_request', err.message);
  if (err instanceof FaultRuleError) return new HttpError(400, 'bad_request', `fault rule: ${err.message}`);
  // A fault rule id already in use.
  if (err instanceof Errno && err.code === 'EEXIST') return new HttpError(409, 'conflict', err.message);
  if (err instanceof Errno) return new HttpError(400, err.code, err.message);
  return new HttpError(500, 'internal', err instanceof Error ? err.message : String(err));
}
