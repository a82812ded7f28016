/**
 * The LD_PRELOAD shim (src/tcmu/shim/): built per run, only into a
 * directory nobody but the running user can change; a clear error naming
 * the package when the compiler is missing; and, preloaded into a real
 * libnl client, the four calls changed only when CDEVEMU_TCMU_NETLINK
 * names an emulator.
 *
 * Then `cdevemu run --preset tcmu` against what another user (uid 65534)
 * planted: a library under the cache name anyone can compute from the
 * source, a cache directory that is a symbolic link, a header on CPATH, a
 * TMPDIR of theirs. Each planted library writes a marker file when it is
 * loaded; the marker must never appear.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, lchown, mkdir, mkdtemp, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTcmuShim, ShimBuildError } from '../../src/tcmu/shim.js';
import { describeUnless, itUnless, needsRoot } from '../helpers/as-user.js';
import { cdevemu, repoRoot } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';
import { run } from '../helpers/proc.js';

const NOBODY = 65534;

let dir: string;
let probe: string;

/** A directory of the running user's alone, as the run makes one. */
async function privateDir(name: string): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { mode: 0o700 });
  return d;
}

beforeAll(async () => {
  dir = await mkdtemp(join(testRoot(), 'shim-'));
  probe = join(dir, 'genl_probe');
  const src = join(repoRoot, 'test', 'clients', 'genl_probe.c');
  const r = await run('gcc', ['-O2', '-Wall', '-Werror', '-I/usr/include/libnl3', '-o', probe, src, '-lnl-genl-3', '-lnl-3']);
  expect(r.code, r.stderr).toBe(0);
});

describe('the tcmu netlink shim', () => {
  it('is built into a private directory', async () => {
    const d = await privateDir('ok');
    const so = await buildTcmuShim(d);
    expect(so).toBe(join(d, 'tcmu-netlink-shim.so'));
    expect((await stat(so)).isFile()).toBe(true);
    expect(readdirSync(d)).toEqual(['tcmu-netlink-shim.so']); // the compiler's temporary files are gone
  });

  /** Each case makes a directory; buildTcmuShim must refuse it, saying why, and write nothing there. */
  async function refused(cases: Array<[string, () => Promise<string>, RegExp]>): Promise<void> {
    for (const [what, make, message] of cases) {
      const d = await make();
      await expect(buildTcmuShim(d), what).rejects.toThrow(ShimBuildError);
      await expect(buildTcmuShim(d), what).rejects.toThrow(message);
      expect(readdirSync(d), what).toEqual([]); // nothing written there
    }
  }

  it('is not built where another user could change it', async () => {
    await refused([
      ['a directory others may enter', async () => {
        const d = await privateDir('open');
        await chmod(d, 0o755);
        return d;
      }, /open has mode 755: others may use it/],
      ['a symbolic link to a private directory', async () => {
        const link = join(dir, 'link');
        await symlink(await privateDir('target'), link);
        return link;
      }, /link is a symbolic link/],
      ['a private directory inside one anybody may write to', async () => {
        const shared = await privateDir('shared');
        await chmod(shared, 0o777);
        return privateDir('shared/mine');
      }, /shared is writable by group or others \(mode 777\) and not sticky/],
    ]);
  });

  itUnless(needsRoot('it gives directories to uid 65534 (chown)'))('is not built in a directory of another user, nor in one inside it', async () => {
    await refused([
      ['a directory of uid 65534', async () => {
        const d = await privateDir('theirs');
        await chown(d, NOBODY, NOBODY);
        return d;
      }, /theirs is owned by uid 65534, not by uid 0/],
      ['a private directory inside one of uid 65534', async () => {
        const theirs = await privateDir('home');
        await chown(theirs, NOBODY, NOBODY);
        return privateDir('home/mine');
      }, /home is owned by uid 65534, neither root nor uid 0/],
    ]);
  });

  it('names the package to install when the compiler is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = dir; // no gcc, no pkg-config here
    try {
      const d = await privateDir('nocc');
      await expect(buildTcmuShim(d)).rejects.toThrow(ShimBuildError);
      await expect(buildTcmuShim(d)).rejects.toThrow(/gcc is missing.*apt-get install gcc/);
    } finally {
      process.env.PATH = path;
    }
  });

  it('leaves libnl alone without the variable, and points the four calls at the emulator with it', async () => {
    const so = await buildTcmuShim(await privateDir('probe'));
    const env = { ...process.env, LD_PRELOAD: so };
    delete env.CDEVEMU_TCMU_NETLINK;
    // The kernel's own controller family: real genl, NETLINK_GENERIC (16), id GENL_ID_CTRL (16), group notify.
    const real = await run(probe, ['nlctrl', 'notify'], { env });
    expect(real.stdout).toMatch(/^protocol 16 peer 0 ops 0 id 16 group \d+$/m);
    const shimmed = await run(probe, ['TCM-USER', 'config'], { env: { ...env, CDEVEMU_TCMU_NETLINK: '4242:28:1' } });
    expect(shimmed.stdout).toMatch(/^protocol 2 peer 4242 ops 0 id 28 group 1$/m); // NETLINK_USERSOCK
    // Other families on that socket still go to the real libnl (which finds nothing on USERSOCK).
    const other = await run(probe, ['nlctrl', 'notify'], { env: { ...env, CDEVEMU_TCMU_NETLINK: '4242:28:1' }, timeoutMs: 5000 });
    expect(other.stdout).not.toMatch(/ops 0 id 16/);
  });
});

describeUnless(needsRoot('it plants files as uid 65534 (chown)'))('cdevemu run --preset tcmu with files another user planted', () => {
  let scenario: string;
  let marker: string;
  let planted: string;

  /**
   * The name a shared cache keyed the shim by: a hash of the source and of
   * libnl's flags, which anyone can compute.
   */
  function cacheName(): string {
    const flags = (args: string[]): string[] => execFileSync('pkg-config', args).toString().trim().split(/\s+/).filter(Boolean);
    const source = readFileSync(join(repoRoot, 'src', 'tcmu', 'shim', 'tcmu-netlink-shim.c'));
    const key = createHash('sha256')
      .update(source)
      .update(JSON.stringify({ cflags: flags(['--cflags', 'libnl-genl-3.0']), libs: flags(['--libs', 'libnl-genl-3.0']) }))
      .digest('hex')
      .slice(0, 16);
    return `tcmu-netlink-shim-${key}.so`;
  }

  /** A directory of uid 65534's, holding `files` (copies of the planted library, or empty). */
  async function theirs(path: string, files: string[] = []): Promise<string> {
    await mkdir(path, { recursive: true });
    for (const f of files) await writeFile(join(path, f), await readFile(planted), { mode: 0o755 });
    for (const p of [path, ...files.map((f) => join(path, f))]) await chown(p, NOBODY, NOBODY);
    return path;
  }

  async function runWith(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
    const r = await cdevemu(['run', scenario, '--preset', 'tcmu'], { env: { ...process.env, ...env }, timeoutMs: 60_000 });
    return { code: r.code, out: r.stdout + r.stderr };
  }

  beforeAll(async () => {
    const base = await mkdtemp(join(dir, 'planted-'));
    marker = join(base, 'MARKER');
    // A library whose constructor leaves the marker in whatever process loads it.
    const src = join(base, 'planted.c');
    await writeFile(src, `#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void planted(void) { close(open("${marker}", O_CREAT | O_WRONLY, 0644)); }\n`);
    planted = join(base, 'planted.so');
    const cc = await run('gcc', ['-shared', '-fPIC', '-o', planted, src]);
    expect(cc.code, cc.stderr).toBe(0);
    scenario = join(base, 'true.yaml');
    await writeFile(scenario, 'name: the program runs under the tcmu preset\npreset: tcmu\nprogram:\n  command: ["true"]\ntimeline:\n  - expect: { exit: 0, within: 30s }\n');
  });

  it('never loads a library planted in the cache under the computable name', async () => {
    const xdg = await theirs(join(dir, 'xdg-planted'));
    await theirs(join(xdg, 'cdevemu'), [cacheName()]);
    const r = await runWith({ XDG_CACHE_HOME: xdg, HOME: xdg });
    expect(r.code, r.out).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  it('follows no cache directory that is a symbolic link, to a planted library or to where root would write', async () => {
    const elsewhere = await theirs(join(dir, 'elsewhere'), [cacheName()]);
    const empty = await theirs(join(dir, 'empty'));
    for (const target of [elsewhere, empty]) {
      const xdg = await theirs(join(dir, `xdg-link-${target === empty ? 'empty' : 'planted'}`));
      await symlink(target, join(xdg, 'cdevemu'));
      await lchown(join(xdg, 'cdevemu'), NOBODY, NOBODY);
      const r = await runWith({ XDG_CACHE_HOME: xdg, HOME: xdg });
      expect(r.code, r.out).toBe(0);
    }
    expect(existsSync(marker)).toBe(false);
    expect(readdirSync(empty)).toEqual([]); // root wrote nothing where the link pointed
  });

  it('compiles no header planted on CPATH into the shim', async () => {
    // stdio.h from CPATH comes before the system's (gcc: CPATH is searched as -I).
    const include = await theirs(join(dir, 'include'));
    await writeFile(
      join(include, 'stdio.h'),
      `#include_next <stdio.h>\n#ifndef PLANTED\n#define PLANTED\n#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void planted(void) { close(open("${marker}", O_CREAT | O_WRONLY, 0644)); }\n#endif\n`,
    );
    await chown(join(include, 'stdio.h'), NOBODY, NOBODY);
    // An empty cache of root's own: a cached build cannot hide the compile.
    const r = await runWith({ CPATH: include, XDG_CACHE_HOME: await privateDir('fresh-cache') });
    expect(r.code, r.out).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses, in one line, to build the shim under a TMPDIR of another user', async () => {
    const tmp = await theirs(join(dir, 'tmpdir'));
    await chmod(tmp, 0o755);
    const r = await runWith({ TMPDIR: tmp });
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(new RegExp(`preset tcmu: ${tmp} is owned by uid 65534, neither root nor uid 0 who runs cdevemu: .*set TMPDIR to a directory of root's or yours`));
    expect(r.out).not.toMatch(/\n\s+at /); // no stack
    expect(existsSync(marker)).toBe(false);
  });
});
