/**
 * Exit codes (README.md, "Commands") and how errors map to them: 0 ok, 1 failed
 * expectation, 2 usage or bad input, 3 daemon unreachable.
 */
import { CommanderError } from 'commander';
import { ConfigError } from '../src/config/document.js';
import { ApiError, DaemonUnreachableError } from '../src/control/client.js';
import { SocketInUseError } from '../src/control/server.js';
import { MountpointError } from '../src/fuse/mount.js';

export const Exit = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** An error the CLI reports as one line and an exit code, without a stack. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The exit code for `err` and the line to print on stderr ('' when already printed). */
export function describeExit(err: unknown): { code: number; message: string } {
  if (err instanceof CommanderError) {
    // Commander printed its own message (or the help/version text).
    const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0;
    return { code: ok ? Exit.ok : Exit.usage, message: '' };
  }
  if (err instanceof CliError) return { code: err.exitCode, message: err.message };
  if (err instanceof DaemonUnreachableError) return { code: Exit.unreachable, message: err.message };
  if (err instanceof ApiError) {
    return { code: err.status >= 400 && err.status < 500 ? Exit.usage : Exit.failed, message: `${err.message} (${err.code})` };
  }
  if (err instanceof ConfigError || err instanceof SocketInUseError || err instanceof MountpointError) return { code: Exit.usage, message: err.message };
  return { code: Exit.failed, message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}
