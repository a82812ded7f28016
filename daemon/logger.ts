/** The daemon's logger: JSON lines on stderr, pretty (pino-pretty) when stderr is a terminal. */
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../src/config/daemon.js';

/** pino-pretty is loaded only for a terminal: it costs a few MiB of RSS a daemon under a supervisor never uses. */
export async function createLogger(level: LogLevel, tty = process.stderr.isTTY === true): Promise<Logger> {
  const opts = { name: 'cdevemu', level, base: { pid: process.pid } };
  // Synchronous writes: the last lines before exit (or a crash) are not lost.
  if (tty) {
    const { build: pretty } = await import('pino-pretty');
    return pino(opts, pretty({ destination: 2, sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,name' }));
  }
  return pino(opts, pino.destination({ dest: 2, sync: true }));
}
