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

/** When `p` last changed: its ctime too, since a package upgrade replaces a header but keeps the package's mtime. */
async function changed(p: string): Promise<number> {
  try {
    const st = await stat(p);
    return Math.max(st.mtimeMs, st.ctimeMs);
  } catch {
    return -1;
  }
}

/**
 * Path of the compiled client `name` (test/clients/name.c), rebuilt once it
 * or one of `headers` changed; with `shared`, a shared object to preload
 * (name.so).
 */
export async function cClient(name: string, headers: string[] = [], o: { shared?: boolean } = {}): Promise<string> {
  const src = join(srcDir, `${name}.c`);
  const bin = join(outDir, o.shared ? `${name}.so` : name);
  const built = await changed(bin);
  const inputs = await Promise.all([src, ...headers].map(changed));
  if (built >= 0 && inputs.every((t) => built >= t)) return bin;
  await mkdir(outDir, { recursive: true });
  // Build to a temporary name: test files compile in parallel.
  const tmp = `${bin}.${process.pid}`;
  const r = await run('gcc', ['-O2', '-Wall', '-Werror', ...(o.shared ? ['-shared', '-fPIC'] : []), '-o', tmp, src]);
  if (r.code !== 0) throw new Error(`gcc ${name}.c failed:\n${r.stderr}`);
  await run('mv', ['-f', tmp, bin]);
  return bin;
}
