/** The control API: server, client, wire shapes and socket path rules. */
export { ApiError, ControlClient, DaemonUnreachableError, EventStreamDroppedError, type EventsOptions } from './client.js';
export * from './protocol.js';
export { ControlServer, HttpError, SocketInUseError, claimSocketPath, type ControlServerOptions } from './server.js';
export { defaultSocketPath, resolveSocketPath } from './socket-path.js';
