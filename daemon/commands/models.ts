/** `cdevemu models [NAME]`: the models the daemon has, with their options and actions, as the daemon checks them. */
import type { Command } from 'commander';
import { clientFor, withSocket, type SocketOpts } from './common.js';
import { modelsTable, modelText } from '../format-models.js';

export function registerModelsCommand(program: Command): void {
  withSocket(program.command('models'))
    .description('list the models the daemon has; with NAME, its options (type, range, default) and actions')
    .argument('[name]', 'one model')
    .option('--json', 'print the raw JSON')
    .action(async (name: string | undefined, o: SocketOpts & { json?: boolean }) => {
      const client = clientFor(o);
      const answer = name === undefined ? await client.listModels() : await client.getModel(name);
      if (o.json) process.stdout.write(JSON.stringify(answer, null, 2) + '\n');
      else process.stdout.write(Array.isArray(answer) ? modelsTable(answer) : modelText(answer));
    });
}
