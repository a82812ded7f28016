/**
 * `cdevemu run --preset tcmu`: what an unmodified tcmu-runner needs from a
 * machine with no target_core_user, no uio and no configfs, set up in the
 * program's private mount namespace so the host's /dev, /sys, /run and
 * /etc are never touched (tcmu-runner 1.5.4, main.c and libtcmu.c):
 *
 * - /dev: a private directory (private-dev.ts) with the standard nodes and
 *   a link per emulated uio node, made as devices are plugged and removed
 *   as they are unplugged: open_devices() scans /dev for uio*.
 * - /sys/class/uio and /sys/kernel/config/target: the mount's, where the
 *   tcmu model publishes uioN/name, maps/map0/* and the backstore's
 *   configfs attributes (read_uio_name(), tcmu_cfgfs_dev_get_attr_int()).
 * - /sys/module/target_core_user: the mount's (./module-params.ts):
 *   initstate = live, and an alias line for target_core_user in
 *   /run/modprobe.d: load_our_module() asks libkmod, which has no
 *   /lib/modules here, and accepts a live module; parameters/block_netlink
 *   and reset_netlink, which tcmu-runner writes at start-up.
 * - /run: private, for /run/tcmu.lock and that alias.
 * - /etc/tcmu/tcmu.conf when the host has none: tcmu_load_config() retries
 *   and gives up without one.
 * - TCMU_LOGDIR: the log goes to a directory of the run, not /var/log.
 * - LD_PRELOAD of the netlink shim (built for this run, in a directory only
 *   the running user can write: ./shim.ts) and CDEVEMU_TCMU_NETLINK naming
 *   this emulator's TCM-USER family (./netlink.ts), which setup_netlink()
 *   needs and hot-added devices are announced on. The family answers the
 *   program under test and its descendants only (./program-tree.ts): the
 *   runner names the program once it has started it (`started`).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EmulatorHandle } from '../api.js';
import type { DeviceEvent } from '../core/events.js';
import type { Instance, Logger } from '../core/index.js';
import type { Bind } from '../scenario/bind.js';
import type { ProgramSetup } from '../scenario/runner.js';
import { PrivateDev } from '../scenario/private-dev.js';
import { attachTcmu, describeTcmu, quiesceTcmu, tcmuDeviceReplies } from './device.js';
import { TCMU_MODULE_DIR, publishTcmuModule } from './module-params.js';
import { SHIM_ENV, TcmuNetlink } from './netlink.js';
import { ProgramTree } from './program-tree.js';
import type { CheckedOutside } from './private-dir.js';
import { buildTcmuShim } from './shim.js';

const HOST_CONFIG = '/etc/tcmu/tcmu.conf';
const MODPROBE_ALIAS = 'alias target_core_user target_core_user\n';
/** The log file tcmu-runner writes in TCMU_LOGDIR (libtcmu_log.c TCMU_LOG_FILENAME). */
export const TCMU_LOG_FILE = 'tcmu-runner.log';

export interface TcmuSetup extends ProgramSetup {
  netlink: TcmuNetlink;
  /** The program under test started as `pid`: it and its descendants may speak to the netlink family. */
  started(pid: number): void;
  /** Stops following the devices and closes the netlink socket. */
  close(): Promise<void>;
}

const isUioNode = (nodePath: string): boolean => /^uio\d+$/.test(nodePath);

/**
 * Prepares the tcmu preset in `dir` (which must not exist, in a directory
 * only the running user can write) for a program run against `emu`.
 * `outside`: the run's directory as checked before its user namespace was
 * entered (./private-dir.ts), when there is one.
 */
export async function prepareTcmu(emu: EmulatorHandle, dir: string, logger: Logger, outside?: CheckedOutside): Promise<TcmuSetup> {
  mkdirSync(dir, { mode: 0o700 });
  const lib = join(dir, 'lib');
  mkdirSync(lib, { mode: 0o700 });
  const shim = await buildTcmuShim(lib, outside);
  const dev = PrivateDev.create(join(dir, 'dev'));
  const run = join(dir, 'run');
  mkdirSync(join(run, 'modprobe.d'), { recursive: true });
  writeFileSync(join(run, 'modprobe.d', 'cdevemu-tcmu.conf'), MODPROBE_ALIAS);
  const logDir = join(dir, 'log');
  mkdirSync(logDir);

  // The bind sources must exist before the program starts, devices or not.
  const tree = emu.emulator.fs.tree;
  tree.mkdirp('sys/class/uio');
  tree.mkdirp('sys/kernel/config/target');

  const binds: Bind[] = [
    ...dev.binds(),
    { host: '/run', source: run },
    { host: '/sys/module/target_core_user', source: emu.path(TCMU_MODULE_DIR) },
    { host: '/sys/class/uio', source: emu.path('sys/class/uio') },
    { host: '/sys/kernel/config/target', source: emu.path('sys/kernel/config/target') },
  ];
  if (!existsSync(HOST_CONFIG)) {
    const conf = join(dir, 'tcmu.conf');
    writeFileSync(conf, '# written by cdevemu run --preset tcmu: the host has no /etc/tcmu/tcmu.conf\n');
    binds.push({ host: HOST_CONFIG, source: conf });
  }

  // Uio nodes appear in the private /dev while plugged: linked by a plug
  // hook added before the netlink one (so the node is there when the
  // ADDED_DEVICE event goes out), unlinked when unplug starts
  // (uio_unregister_device() -> device_destroy()).
  const devices = emu.emulator.devices;
  const link = (inst: Instance<unknown>): void => {
    if (isUioNode(inst.nodePath)) dev.link(inst.nodePath, emu.path(`dev/${inst.nodePath}`));
  };
  for (const inst of devices.list()) if (inst.lifecycle === 'live') link(inst);
  const removeHooks = devices.addHooks({ plugged: link });
  const onEvent = (e: DeviceEvent): void => {
    if (e.type !== 'unplug_started') return;
    const inst = devices.list().find((i) => i.name === e.device && i.generation === e.generation);
    if (inst && isUioNode(inst.nodePath)) dev.unlink(inst.nodePath);
  };
  devices.events.on('event', onEvent);

  const program = new ProgramTree();
  const netlink = new TcmuNetlink({
    devices,
    logger,
    describe: describeTcmu,
    quiesce: quiesceTcmu,
    attach: attachTcmu,
    deviceReplies: tcmuDeviceReplies,
    accepts: (pid) => program.contains(pid),
  });
  const unpublishModule = publishTcmuModule(tree, netlink);
  const preload = [shim, process.env.LD_PRELOAD].filter(Boolean).join(':');
  return {
    binds,
    env: { LD_PRELOAD: preload, [SHIM_ENV]: netlink.shimEnv, TCMU_LOGDIR: logDir },
    logFiles: [join(logDir, TCMU_LOG_FILE)],
    netlink,
    started: (pid) => program.started(pid),
    async close() {
      removeHooks();
      devices.events.off('event', onEvent);
      await netlink.close();
      await unpublishModule();
    },
  };
}
