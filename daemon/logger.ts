/**
 * The daemon's logger: JSON lines on stderr, pretty (pino-pretty) when
 * stderr is a terminal, one line a record there too (an error's stack
 * aside). A record whose message says all it holds (src/control/action-log.ts
 * `api`, serve.ts `startup`) keeps those fields for JSON readers; the
 * pretty line leaves them out.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../src/config/log-levels.js';

/** pino-pretty is loaded only for a terminal: it costs a few MiB of RSS a daemon under a supervisor never uses. */
export async function createLogger(level: LogLevel, tty = process.stderr.isTTY === true): Promise<Logger> {
  const opts = { name: 'cdevemu', level, base: { pid: process.pid } };
  // Synchronous writes: the last lines before exit (or a crash) are not lost.
  if (tty) {
    const { build: pretty } = await import('pino-pretty');
    return pino(
      opts,
      pretty({ destination: 2, sync: true, colorize: true, translateTime: 'HH:MM:ss.l', singleLine: true, ignore: 'pid,hostname,name,api,startup' }),
    );
  }
  return pino(opts, pino.destination({ dest: 2, sync: true }));
}
