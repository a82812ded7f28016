/**
 * Builds the LD_PRELOAD shim (./shim/tcmu-netlink-shim.c) on first use with
 * the system's C compiler against libnl's headers, into a cache directory
 * keyed by the source's hash, so a changed source is rebuilt and an
 * unchanged one never is. Concurrent builds (parallel tests) each write a
 * temporary file and rename it into place.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SOURCE_NAME = 'tcmu-netlink-shim.c';
const LIBNL_HEADER = '/usr/include/libnl3/netlink/genl/genl.h';
const FALLBACK_FLAGS = { cflags: ['-I/usr/include/libnl3'], libs: ['-lnl-genl-3', '-lnl-3'] };

/** The shim cannot be built here; the message names the Debian package to install. */
export class ShimBuildError extends Error {}

/** The C source: next to this module in the source tree, or in src/ of the package when run from dist/. */
function sourcePath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'shim', SOURCE_NAME), join(here, '..', '..', '..', 'src', 'tcmu', 'shim', SOURCE_NAME)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new ShimBuildError(`the shim's source ${SOURCE_NAME} is not in ${candidates.join(' or ')}`);
  return found;
}

export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cdevemu');
}

/** libnl-genl's compiler and linker flags: pkg-config's, else the Debian paths when its headers are there. */
async function libnlFlags(): Promise<{ cflags: string[]; libs: string[] }> {
  try {
    const { stdout: c } = await run('pkg-config', ['--cflags', 'libnl-genl-3.0']);
    const { stdout: l } = await run('pkg-config', ['--libs', 'libnl-genl-3.0']);
    return { cflags: c.trim().split(/\s+/).filter(Boolean), libs: l.trim().split(/\s+/).filter(Boolean) };
  } catch {
    if (existsSync(LIBNL_HEADER)) return FALLBACK_FLAGS;
    throw new ShimBuildError(`libnl's headers are missing (${LIBNL_HEADER}): install libnl-genl-3-dev (apt-get install libnl-genl-3-dev)`);
  }
}

/** Path of the built shim, building it if this source has not been built yet. */
export async function tcmuShim(cacheDir = defaultCacheDir()): Promise<string> {
  const src = sourcePath();
  const source = await readFile(src);
  const flags = await libnlFlags();
  const key = createHash('sha256').update(source).update(JSON.stringify(flags)).digest('hex').slice(0, 16);
  const out = join(cacheDir, `tcmu-netlink-shim-${key}.so`);
  if (existsSync(out)) return out;
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const args = ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', ...flags.cflags, '-o', tmp, src, ...flags.libs, '-ldl'];
  try {
    await run('gcc', args);
  } catch (err) {
    await rm(tmp, { force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new ShimBuildError('gcc is missing, needed to build the tcmu netlink shim: install gcc (apt-get install gcc)');
    throw new ShimBuildError(`building the tcmu netlink shim failed (is libnl-genl-3-dev installed?):\n${e.stderr ?? e.message}`);
  }
  await rename(tmp, out);
  return out;
}
