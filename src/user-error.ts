/**
 * An error that is the user's to fix: a config or scenario file, a
 * mountpoint, a socket path, what the machine lacks. Its message says it
 * all in one line, so the CLI prints that line without a stack and exits 2
 * (daemon/exit.ts). The layers' own refusals extend it (ConfigError,
 * MountError, SocketInUseError), and the CLI knows them by this class
 * alone: a client command then loads none of the modules that throw them.
 */
export class UserError extends Error {}
