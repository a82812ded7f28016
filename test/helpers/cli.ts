/** Runs the built cdevemu CLI (dist/, made by `npm test`'s pretest build) as a child process. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunOptions, type RunResult } from './proc.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = join(repoRoot, 'dist', 'daemon', 'cli.js');

export function cdevemu(args: string[], o: RunOptions = {}): Promise<RunResult> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npm run build\` (npm test does it first)`);
  return run(process.execPath, [cliPath, ...args], { cwd: repoRoot, ...o });
}
