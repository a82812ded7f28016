/**
 * `cdevemu daemon`: serve devices in the foreground. The server (../serve.ts)
 * is loaded when the command runs, not when the command tree is built, so
 * that a client command starts without it.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { LOG_LEVELS } from '../../src/config/log-levels.js';
import type { DaemonFlags } from '../serve.js';
import { nonNegativeInt } from './common.js';

/** The event loop is held for that long at most per wait, so the bound is small. */
const MAX_BUSY_POLL_MICROS = 1000;

function busyPollMicros(v: string): number {
  const n = nonNegativeInt('--busy-poll')(v);
  if (n > MAX_BUSY_POLL_MICROS) throw new InvalidArgumentError(`--busy-poll: at most ${MAX_BUSY_POLL_MICROS} µs, got ${v}`);
  return n;
}

export function registerDaemonCommand(program: Command, exit: (code: number) => void): void {
  program
    .command('daemon')
    .description('mount the emulated devices and serve the control API (foreground; logs on stderr)')
    .option('--mount <dir>', 'mountpoint (default: ./cdevemu-mnt, or the config file\'s)')
    .option('--socket <path>', 'control socket (default: $CDEVEMU_SOCKET, else /run/cdevemu.sock for root, $XDG_RUNTIME_DIR/cdevemu.sock)')
    .option('--config <file>', 'YAML or JSON config file')
    .option('--model <file>', 'load a user model module (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS))
    .option('--allow-other', 'let users other than the daemon\'s open the devices (mount option allow_other)')
    .option('--no-passthrough', 'do not negotiate FUSE passthrough: device regions are mapped through the page cache, kept in step at each read and write (as without CAP_SYS_ADMIN)')
    .option(
      '--busy-poll <micros>',
      'after each request, look for the next one awake this long before sleeping (default 20; 0: sleep at once, least CPU)',
      busyPollMicros,
    )
    .action(async (o: DaemonFlags) => {
      const { runDaemon } = await import('../serve.js');
      exit(await runDaemon(o));
    });
}
