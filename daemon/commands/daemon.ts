/** `cdevemu daemon`: serve devices in the foreground. */
import { Option, type Command } from 'commander';
import { LOG_LEVELS } from '../../src/config/daemon.js';
import { runDaemon, type DaemonFlags } from '../serve.js';


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
    .option('--no-passthrough', 'do not negotiate FUSE passthrough: device regions cannot be mapped (mmap fails ENODEV)')
    .action(async (o: DaemonFlags) => {
      exit(await runDaemon(o));
    });
}
