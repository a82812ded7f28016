/**
 * Exit codes (README.md, "Commands") and how errors map to them: 0 ok, 1 failed
 * expectation, 2 usage or bad input, 3 daemon unreachable.
 */
import { CommanderError } from 'commander';
import { ApiError, DaemonUnreachableError } from '../src/control/client.js';
import { UserError } from '../src/user-error.js';

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
  // The user's to fix (a config, a mountpoint, the machine, a socket path): one line, no stack.
  if (err instanceof UserError) return { code: Exit.usage, message: err.message };
  const refused = refusedPath(err);
  if (refused) return { code: Exit.usage, message: refused };
  return { code: Exit.failed, message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}

const NO_ACCESS = process.getuid?.() === 0 ? 'choose another path' : 'choose a path this user may use';

/** The fix for a system call refused on a path the user gave or may change. */
const PATH_FIXES: Readonly<Record<string, string>> = {
  EACCES: NO_ACCESS,
  EPERM: NO_ACCESS,
  ENOENT: 'a directory on the way is missing; create it, or choose another path',
  ENOTDIR: 'a component of the path is not a directory; choose another path',
  ELOOP: 'too many symbolic links on the way; choose another path',
  ENAMETOOLONG: 'the path is too long; choose a shorter one',
  EROFS: 'the file system is read-only; choose a path elsewhere',
  ENOSPC: 'the file system is full; free some space, or choose a path elsewhere',
  EBUSY: 'it is in use; stop what uses it, or choose another path',
  EADDRINUSE: 'another process listens there; stop it, or choose another --socket',
};

/** Node's own one-line message (`EACCES: permission denied, mkdir '/run/x'`) and the fix, for a path refused; else null. */
function refusedPath(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const e = err as NodeJS.ErrnoException & { address?: string };
  const fix = e.code === undefined ? undefined : PATH_FIXES[e.code];
  if (!fix || (e.path === undefined && e.address === undefined)) return null;
  return `${err.message}: ${fix}`;
}
