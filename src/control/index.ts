/**
 * The control API of a running `cdevemu daemon` (ESM only): the typed
 * client, the wire shapes of its routes and events, the server, and the
 * socket path rules.
 *
 * ```ts
 * import { ControlClient, resolveSocketPath } from 'cdevemu/control';
 *
 * const client = new ControlClient(resolveSocketPath());   // $CDEVEMU_SOCKET, else the default socket
 * await client.plug({ model: 'echo', name: 'echo1' });
 * for await (const e of client.events()) console.log(e.type, e.device);
 * ```
 *
 * Start with {@link ControlClient}; every route is in docs/control-api.md
 * in the package.
 *
 * @module cdevemu/control
 */
export { ApiError, ControlClient, DaemonUnreachableError, EventStreamDroppedError, type EventsOptions } from './client.js';
export * from './protocol.js';
export { ControlServer, HttpError, SocketInUseError, claimSocketPath, type ControlServerOptions } from './server.js';
export type { StreamStats } from './event-stream.js';
export { defaultSocketPath, resolveSocketPath } from './socket-path.js';
