/** `cdevemu status`: is the daemon there, and what does it serve. */
import type { Command } from 'commander';
import { duration } from '../format.js';
import { clientFor, withSocket, type SocketOpts } from './common.js';

export function registerStatusCommand(program: Command): void {
  withSocket(program.command('status'))
    .description("show the daemon's pid, mountpoint, socket, uptime and device count")
    .option('--json', 'print the raw JSON')
    .action(async (o: SocketOpts & { json?: boolean }) => {
      const s = await clientFor(o).status();
      if (o.json) {
        process.stdout.write(JSON.stringify(s, null, 2) + '\n');
        return;
      }
      process.stdout.write(
        [
          `cdevemu ${s.version}, pid ${s.pid}, up ${duration(s.uptimeMs)}`,
          `mountpoint  ${s.mountpoint}`,
          `socket      ${s.socket}`,
          `devices     ${s.live} live, ${s.devices - s.live} unplugged but not yet freed`,
        ].join('\n') + '\n',
      );
    });
}
