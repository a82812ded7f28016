/**
 * A tcmu scenario through `cdevemu run`: the C consumer as the program
 * under test, the workload started and checked by scenario steps (action,
 * wait on the model's events), then an unplug with 32 commands in flight
 * whose per-command outcomes the tcmu_removed event summarizes.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cClient } from '../helpers/cc.js';
import { cdevemu } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';

describe('tcmu in a scenario', () => {
  it('runs a verified workload, unplugs under load, and the consumer lets go', async () => {
    const dir = await mkdtemp(join(testRoot(), 'tcmu-scenario-'));
    const disk = join(dir, 'disk.img');
    await writeFile(disk, Buffer.alloc(1 << 20));
    const bin = await cClient('tcmu_consumer');
    const file = join(dir, 'tcmu.yaml');
    await writeFile(
      file,
      `name: tcmu consumer under load loses nothing at unplug
devices:
  - model: tcmu
    name: uio0
    options: { cfgstring: ${JSON.stringify(disk)}, devSize: 1048576, cmdAreaSize: 65536, dataAreaSize: 1048576 }
program:
  command: [${JSON.stringify(bin)}, "{mount}", uio0]
timeline:
  - wait: { opened: uio0, timeout: 5s }
  - action: { device: uio0, action: workload_start, arg: { depth: 32, maxCommands: 400, chunks: 64 } }
  - wait: { event: { type: tcmu_workload_done, device: uio0, completed: 400, verifyErrors: 0 }, timeout: 30s }
  - action: { device: uio0, action: workload_start, arg: { depth: 32, chunks: 64 } }
  - unplug: uio0
  - wait: { event: { type: tcmu_removed, device: uio0, lost: 0, verifyErrors: 0, doubleEnds: 0 }, timeout: 5s }
  - expect: { released: uio0, within: 5s }
  - expect: { exit: 0, within: 5s }
  - expect: { noStuck: true }
`,
    );
    const r = await cdevemu(['run', file], { timeoutMs: 60_000 });
    expect(r.stdout).toMatch(/ok {4}wait event \{"type":"tcmu_removed"/);
    // Whichever of its read() or kick write() meets the unplug first fails EIO.
    expect(r.stdout).toMatch(/(read|kick) errno EIO/);
    expect(r.stdout).toMatch(/^PASS /m);
    expect(r.code).toBe(0);
  });
});
