/**
 * Builds the LD_PRELOAD shim (./shim/tcmu-netlink-shim.c) with the system's
 * C compiler against libnl's headers, once per run, into a directory of
 * that run. The library is loaded into the program under test, as root:
 * whoever can write or replace it runs code as root. So:
 *
 * - the directory must be the running user's alone (./private-dir.ts),
 *   checked before the build; then nobody else can touch the file until
 *   the run removes it. Nothing is kept between runs: a shared cache was
 *   the hole (another user's file, or a symbolic link to where they chose,
 *   under a name anyone can compute from the source), and a build costs
 *   about 0.1 s of gcc;
 * - the compiler and pkg-config see PATH alone from the environment:
 *   CPATH, C_INCLUDE_PATH, LIBRARY_PATH, GCC_EXEC_PREFIX, COMPILER_PATH,
 *   PKG_CONFIG_PATH or TMPDIR from a user's environment (`sudo -E` keeps
 *   them) would choose what gets compiled into it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { assertPrivateDir, UnsafeDirError, type CheckedOutside } from './private-dir.js';

const run = promisify(execFile);
const SOURCE_NAME = 'tcmu-netlink-shim.c';
export const SHIM_NAME = 'tcmu-netlink-shim.so';
const LIBNL_HEADER = '/usr/include/libnl3/netlink/genl/genl.h';
const FALLBACK_FLAGS = { cflags: ['-I/usr/include/libnl3'], libs: ['-lnl-genl-3', '-lnl-3'] };

/** The shim cannot be built here; the message says why and what to do. */
export class ShimBuildError extends Error {}

/** The C source: next to this module in the source tree, or in src/ of the package when run from dist/. */
function sourcePath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'shim', SOURCE_NAME), join(here, '..', '..', '..', 'src', 'tcmu', 'shim', SOURCE_NAME)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new ShimBuildError(`the shim's source ${SOURCE_NAME} is not in ${candidates.join(' or ')}`);
  return found;
}

/** libnl-genl's compiler and linker flags: pkg-config's, else the Debian paths when its headers are there. */
async function libnlFlags(env: NodeJS.ProcessEnv): Promise<{ cflags: string[]; libs: string[] }> {
  try {
    const { stdout: c } = await run('pkg-config', ['--cflags', 'libnl-genl-3.0'], { env });
    const { stdout: l } = await run('pkg-config', ['--libs', 'libnl-genl-3.0'], { env });
    return { cflags: c.trim().split(/\s+/).filter(Boolean), libs: l.trim().split(/\s+/).filter(Boolean) };
  } catch {
    if (existsSync(LIBNL_HEADER)) return FALLBACK_FLAGS;
    throw new ShimBuildError(`libnl's headers are missing (${LIBNL_HEADER}): install libnl-genl-3-dev (apt-get install libnl-genl-3-dev)`);
  }
}

/**
 * Builds the shim into `dir` (which must exist and be the running user's
 * alone; `outside`: see assertPrivateDir) and returns its path.
 */
export async function buildTcmuShim(dir: string, outside?: CheckedOutside): Promise<string> {
  try {
    assertPrivateDir(dir, outside);
  } catch (err) {
    if (!(err instanceof UnsafeDirError)) throw err;
    throw new ShimBuildError(`${err.message}: the netlink shim is preloaded into the program under test, so it is built only where no other user can change it; set TMPDIR to a directory of root's or yours`);
  }
  const src = sourcePath();
  // Temporary files of the compiler go to the private directory too.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: dir, LC_ALL: 'C' };
  const flags = await libnlFlags(env);
  const out = join(dir, SHIM_NAME);
  const args = ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', ...flags.cflags, '-o', out, src, ...flags.libs, '-ldl'];
  try {
    await run('gcc', args, { env });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new ShimBuildError('gcc is missing, needed to build the tcmu netlink shim: install gcc (apt-get install gcc)');
    throw new ShimBuildError(`building the tcmu netlink shim failed (is libnl-genl-3-dev installed?):\n${e.stderr ?? e.message}`);
  }
  return out;
}
