/**
 * The command tree of the cdevemu executable, built apart from cli.ts so
 * that its usage errors can be checked without running a command.
 */
import { Command } from 'commander';
import { registerDaemonCommand } from './commands/daemon.js';
import { registerDeviceCommands } from './commands/devices.js';
import { registerEventsCommand } from './commands/events.js';
import { registerFaultCommands } from './commands/faults.js';
import { registerRunCommand } from './commands/run.js';
import { registerStatusCommand } from './commands/status.js';
import { closestFlags } from './suggest.js';
import { VERSION } from './version.js';

const longFlags = (cmd: Command): string[] => cmd.createHelp().visibleOptions(cmd).flatMap((o) => (o.long ? [o.long] : []));

/**
 * commander's Command with a "did you mean" for every unknown flag
 * commander's own guess misses: it suggests only within three edits, so
 * `--mountpoint` got nothing for `--mount`. Subcommands are made by
 * createCommand, so every command of the tree gets it.
 */
export class CliCommand extends Command {
  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  /** commander calls this for a flag no command on the path declares (lib/command.js unknownOption). */
  unknownOption(flag: string): void {
    // This command's flags and its parents', as commander looks for them.
    const flags = longFlags(this);
    for (let cmd = this.parent; cmd; cmd = cmd.parent) flags.push(...longFlags(cmd));
    const guess = flag.startsWith('--') ? closestFlags(flag, flags) : [];
    // The wording of commander's own suggestion (lib/suggestSimilar.js).
    const hint = guess.length > 1 ? `\n(Did you mean one of ${guess.join(', ')}?)` : guess.length ? `\n(Did you mean ${guess[0]}?)` : '';
    this.error(`error: unknown option '${flag}'${hint}`, { code: 'commander.unknownOption' });
  }
}

/** The whole tree; `exit` ends the process once the daemon stops. */
export function buildProgram(exit: (code: number) => void): CliCommand {
  const program = new CliCommand('cdevemu')
    .description('Emulate Linux character devices over FUSE, and hot-unplug them under the programs that use them')
    .version(VERSION)
    // Usage errors throw instead of exiting, so they get exit code 2 (exit.ts).
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    // The program's own options (--version, --help) come before the command,
    // so a command gets its arguments as typed, `--` included (`run` needs it).
    .enablePositionalOptions();
  registerDaemonCommand(program, exit);
  registerDeviceCommands(program);
  registerFaultCommands(program);
  registerEventsCommand(program);
  registerStatusCommand(program);
  registerRunCommand(program);
  program.addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 failed expectation, 2 usage or bad input, 3 daemon unreachable.\n' +
      'Client commands find the daemon through --socket PATH, else $CDEVEMU_SOCKET, else the default path.',
  );
  return program;
}
