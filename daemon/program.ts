/**
 * The command tree of the cdevemu executable, built apart from cli.ts so
 * that its usage errors can be checked without running a command.
 */
import { registerDaemonCommand } from './commands/daemon.js';
import { registerDeviceCommands } from './commands/devices.js';
import { registerEventsCommand } from './commands/events.js';
import { registerFaultCommands } from './commands/faults.js';
import { registerModelsCommand } from './commands/models.js';
import { registerRecordCommand } from './commands/record.js';
import { registerRunCommand } from './commands/run.js';
import { registerStatusCommand } from './commands/status.js';
import { CliCommand } from './command.js';
import { VERSION } from './version.js';

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
  registerModelsCommand(program);
  registerFaultCommands(program);
  registerEventsCommand(program);
  registerStatusCommand(program);
  registerRunCommand(program);
  registerRecordCommand(program);
  program.addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 failed expectation, 2 usage or bad input, 3 daemon unreachable.\n' +
      'Client commands find the daemon through --socket PATH, else $CDEVEMU_SOCKET, else the default path.',
  );
  return program;
}
