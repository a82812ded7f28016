/**
 * tcmu sysfs/configfs files on a real mount, read and written by real
 * shell commands: the layout tcmu-runner reads, writable attributes with
 * sysfs store semantics (one write = one store, errors as errnos), a
 * write-only file, read-only files refusing writes, files gone at unplug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { pythonInteractive, run } from '../helpers/proc.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([], 1000);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

// bash, not dash: dash's echo reports every failed write as "I/O error".
const sh = (script: string) => run('bash', ['-c', script]);
const small = { cmdAreaSize: 65536, dataAreaSize: 1 << 20, hba: 3, dev: 'disk1', cfgstring: '/var/tmp/x.img', devSize: 1 << 20 };

describe('tcmu files', () => {
  it('shows millisecond timeouts as the whole seconds they reach: 300 ms reads 1, never 0 (disabled)', async () => {
    const inst = await t.emu.devices.plug({ model: 'tcmu', name: 'uio%d', options: { ...small, dev: 'ms', cmdTimeOutMs: 300, qfullTimeOutMs: 1500 } });
    const d = t.path('sys/kernel/config/target/core/user_3/ms/attrib');
    expect((await sh(`cat ${d}/cmd_time_out ${d}/qfull_time_out`)).stdout).toBe('1\n2\n');
    await t.emu.devices.unplug(inst.name);
  });

  it('publishes the uio and configfs files tcmu-runner reads, with the kernel formats', async () => {
    const inst = await t.emu.devices.plug({ model: 'tcmu', name: 'uio%d', options: small });
    const u = t.path(`sys/class/uio/${inst.name}`);
    const d = t.path('sys/kernel/config/target/core/user_3/disk1');
    const r = await sh(
      `cat ${u}/name ${u}/version ${u}/maps/map0/size ${d}/attrib/hw_block_size ${d}/attrib/hw_max_sectors ${d}/info ${d}/wwn/vpd_unit_serial ${d}/action/block_dev; test -d ${d}/alua && echo alua-dir`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual([
      'tcm-user/3/disk1/file//var/tmp/x.img',
      '2',
      `0x${(65536 + (1 << 20)).toString(16).padStart(16, '0')}`,
      '512',
      '128',
      'Status: ACTIVATED  Max Queue Depth: 128  SectorSize: 512  HwMaxSectors: 128',
      `        Config: file//var/tmp/x.img Size: ${1 << 20} MaxDataAreaMB: 1`,
      'T10 VPD Unit Serial Number: cdevemu-3-disk1',
      'unblocked',
      'alua-dir',
      '',
    ]);
    await t.emu.devices.unplug(inst.name);
    const core = t.path('sys/kernel/config/target/core');
    const gone = await sh(`test -d ${core} && ls -A ${core} | wc -l; ls ${u} 2>&1`);
    // target/core stays (target_core_mod), the backstore's directory goes with the device.
    expect(gone.stdout).toMatch(/^0\n.*No such file or directory/);
  });

  it('action/block_dev and attrib/cmd_time_out take shell writes; bad values fail with EINVAL; read-only and write-only files refuse the other way', async () => {
    const inst = await t.emu.devices.plug({ model: 'tcmu', name: 'uio%d', options: { ...small, dev: 'disk2' } });
    const d = t.path('sys/kernel/config/target/core/user_3/disk2');
    expect((await sh(`echo 1 > ${d}/action/block_dev && cat ${d}/action/block_dev`)).stdout).toBe('blocked\n');
    expect(inst.state).toMatchObject({ ring: { blocked: true } });
    expect((await sh(`echo 0 > ${d}/action/block_dev && cat ${d}/action/block_dev`)).stdout).toBe('unblocked\n');
    const bad = await sh(`echo 2 > ${d}/action/block_dev`);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Invalid argument/);
    // cmd_time_out cannot change while the device is exported (tcmu_cmd_time_out_store: EINVAL).
    expect((await sh(`echo 7 > ${d}/attrib/cmd_time_out`)).stderr).toMatch(/Invalid argument/);
    expect((await sh(`cat ${d}/attrib/cmd_time_out`)).stdout).toBe('30\n');
    // nl_reply_supported takes a signed byte (kstrtos8).
    expect((await sh(`echo -1 > ${d}/attrib/nl_reply_supported && cat ${d}/attrib/nl_reply_supported`)).stdout).toBe('-1\n');
    expect((await sh(`echo 128 > ${d}/attrib/nl_reply_supported`)).stderr).toMatch(/Numerical result out of range/);
    // reset_ring is write-only (CONFIGFS_ATTR_WO): 0200, and reading it is EACCES even for root.
    expect((await sh(`stat -c %a ${d}/action/reset_ring ${d}/action/block_dev ${d}/attrib/hw_block_size`)).stdout).toBe('200\n644\n444\n');
    expect((await sh(`cat ${d}/action/reset_ring`)).stderr).toMatch(/Permission denied/);
    expect((await sh(`echo 1 > ${d}/action/reset_ring`)).code).toBe(0);
    expect((await sh(`echo 3 > ${d}/action/reset_ring`)).stderr).toMatch(/Invalid argument/);
    expect((await sh(`echo 4096 > ${d}/attrib/hw_block_size`)).stderr).toMatch(/Permission denied/);
    // control: dev_size and dev_config. On a configured device the kernel only copies
    // the string (tcmu_set_configfs_dev_params); the uio name stays as configured.
    const name = (await sh(`cat ${t.path(`sys/class/uio/${inst.name}/name`)}`)).stdout;
    await sh(`printf 'dev_size=4096,dev_config=file//tmp/y' > ${d}/control`);
    expect((await sh(`cat ${d}/attrib/dev_size ${d}/attrib/dev_config`)).stdout).toBe('4096\nfile//tmp/y\n');
    expect((await sh(`cat ${t.path(`sys/class/uio/${inst.name}/name`)}`)).stdout).toBe(name);
    expect(name).toMatch(/^tcm-user\/3\/disk2\//);
    // A file opened before the unplug: its store no longer reaches the model (kernfs_get_active fails).
    const held = pythonInteractive(
      `import os,sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\nprint("open", flush=True)\nsys.stdin.readline()\ntry:\n  os.write(fd, b"1")\n  print("wrote")\nexcept OSError as e:\n  print(e.strerror)`,
      [`${d}/action/block_dev`],
    );
    expect(await held.line()).toBe('open');
    await t.emu.devices.unplug(inst.name);
    held.send('go');
    expect(await held.line()).toBe('No such device');
  });
});
