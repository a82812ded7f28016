/** The daemon's logger: JSON lines on stderr, pretty (pino-pretty) when stderr is a terminal. */
import { pino, type Logger } from 'pino';
import { build as pretty } from 'pino-pretty';
import type { LogLevel } from '../src/config/daemon.js';

export function createLogger(level: LogLevel, tty = process.stderr.isTTY === true): Logger {
  const opts = { name: 'cdevemu', level, base: { pid: process.pid } };
  // Synchronous writes: the last lines before exit (or a crash) are not lost.
  if (tty) {
    return pino(opts, pretty({ destination: 2, sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,name' }));
  }
  return pino(opts, pino.destination({ dest: 2, sync: true }));
}
