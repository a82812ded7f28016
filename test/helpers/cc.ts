/**
 * Builds the small C clients in test/clients/ with gcc -O2, once per
 * source change, into test/.build/ (git-ignored).
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, '..', 'clients');
const outDir = join(here, '..', '.build');

async function mtime(p: string): Promise<number> {
  try {
    return (await stat(p)).mtimeMs;
  } catch {
    return -1;
  }
}

/** Path of the compiled client `name` (test/clients/name.c). */
export async function cClient(name: string): Promise<string> {
  const src = join(srcDir, `${name}.c`);
  const bin = join(outDir, name);
  if ((await mtime(bin)) >= (await mtime(src))) return bin;
  await mkdir(outDir, { recursive: true });
  // Build to a temporary name: test files compile in parallel.
  const tmp = `${bin}.${process.pid}`;
  const r = await run('gcc', ['-O2', '-Wall', '-Werror', '-o', tmp, src]);
  if (r.code !== 0) throw new Error(`gcc ${name}.c failed:\n${r.stderr}`);
  await run('mv', ['-f', tmp, bin]);
  return bin;
}
