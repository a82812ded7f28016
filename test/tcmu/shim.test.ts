/**
 * The LD_PRELOAD shim (src/tcmu/shim/): built on first use into a cache
 * keyed by its source, a clear error naming the package when the compiler
 * is missing, and, preloaded into a real libnl client, the four calls
 * changed only when CDEVEMU_TCMU_NETLINK names an emulator.
 */
import { mkdtemp, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShimBuildError, tcmuShim } from '../../src/tcmu/shim.js';
import { repoRoot } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';
import { run } from '../helpers/proc.js';

let dir: string;
let probe: string;

beforeAll(async () => {
  dir = await mkdtemp(join(testRoot(), 'shim-'));
  probe = join(dir, 'genl_probe');
  const src = join(repoRoot, 'test', 'clients', 'genl_probe.c');
  const r = await run('gcc', ['-O2', '-Wall', '-Werror', '-I/usr/include/libnl3', '-o', probe, src, '-lnl-genl-3', '-lnl-3']);
  expect(r.code, r.stderr).toBe(0);
});

describe('the tcmu netlink shim', () => {
  it('is built once per source into the cache', async () => {
    const cache = join(dir, 'cache');
    const so = await tcmuShim(cache);
    expect(so).toMatch(/tcmu-netlink-shim-[0-9a-f]{16}\.so$/);
    const built = (await stat(so)).mtimeMs;
    expect(await tcmuShim(cache)).toBe(so);
    expect((await stat(so)).mtimeMs).toBe(built);
  });

  it('names the package to install when the compiler is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = dir; // no gcc, no pkg-config here
    try {
      await expect(tcmuShim(join(dir, 'nocc'))).rejects.toThrow(ShimBuildError);
      await expect(tcmuShim(join(dir, 'nocc'))).rejects.toThrow(/gcc is missing.*apt-get install gcc/);
    } finally {
      process.env.PATH = path;
    }
  });

  it('leaves libnl alone without the variable, and points the four calls at the emulator with it', async () => {
    const so = await tcmuShim(join(dir, 'cache'));
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
