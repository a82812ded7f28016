/**
 * `cdevemu events`: the daemon's event stream, one JSON line per event, until
 * interrupted (exit 0); a daemon that stops or dies meanwhile is exit 3.
 */
import type { Command } from 'commander';
import { toJson } from '../../src/control/protocol.js';
import { CliError, Exit } from '../exit.js';
import { clientFor, withSocket, type SocketOpts } from './common.js';

export function registerEventsCommand(program: Command): void {
  withSocket(program.command('events'))
    .description('print lifecycle events as JSON lines until interrupted')
    .option('--history', 'replay the events the daemon kept before following')
    .action(async (o: SocketOpts & { history?: boolean }) => {
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // A closed pipe (events | head -1) is a normal way to stop.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') ac.abort();
      });
      const client = clientFor(o);
      try {
        for await (const e of client.events({ history: o.history === true, signal: ac.signal })) {
          if (ac.signal.aborted) break;
          process.stdout.write(toJson(e) + '\n');
        }
        // Only the daemon's shutdown ends a stream it serves: the events a script waits for will not come.
        if (!ac.signal.aborted) throw new CliError(Exit.unreachable, `the cdevemu daemon at ${client.socketPath} ended the event stream (it was stopped)`);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
