/**
 * A tcmu device's configuration: what configfs holds for a user backstore
 * (target_core_user.c's dev params and attributes, target_core's
 * dev_attrib), from the model's options, with the kernel's defaults.
 */
import { Errno } from '../../errno.js';
import { parseOptions } from '../options.js';
import { intOption } from '../util.js';
import { CMDR_SIZE_DEF, DATA_BLOCK_SIZE, MAX_DATA_AREA_MB_DEF, ringLayout, type RingLayout } from './abi.js';

export interface TcmuConfig {
  /** user_<hba> in configfs, the HBA's host id in the uio name. */
  hba: number;
  /** The backstore's configfs directory name (udev->name). */
  dev: string;
  /** The handler tcmu-runner picks by (the first part of dev_config). */
  subtype: string;
  /** The handler's configuration string (for the file handler, the path). */
  cfgstring: string;
  devSize: number;
  hwBlockSize: number;
  hwMaxSectors: number;
  /** ms; attrib/cmd_time_out shows seconds. */
  cmdTimeOutMs: number;
  /** ms, or -1 (use cmd_time_out). */
  qfullTimeOutMs: number;
  maxDataAreaMB: number;
  layout: RingLayout;
  /** wwn/vpd_unit_serial. */
  serial: string;
  /** attrib/emulate_write_cache. */
  writeCache: boolean;
  /** attrib/tmr_notification (TCMU_DEV_BIT_TMR_NOTIFY). */
  tmrNotification: boolean;
}

/**
 * A change of a configured device that the kernel asks the daemon about
 * first, with RECONFIG_DEVICE (tcmu_send_dev_config_event,
 * tcmu_send_dev_size_event, tcmu_send_emulate_write_cache).
 */
export type TcmuReconfig = { devConfig: string } | { devSize: bigint } | { writeCache: boolean };

/** The netlink family's side of a tcmu device: what its configfs attributes ask of the consumers. */
export interface TcmuConsumers {
  /**
   * Asks them to accept a reconfiguration (RECONFIG_DEVICE, answered by its
   * _DONE); rejects with the errno the write of the attribute fails with.
   */
  reconfigure(r: TcmuReconfig): Promise<void>;
  /** Whether a registered consumer answers events with *_DONE (SET_FEATURES' SUPP_KERN_CMD_REPLY). */
  replySupported(): boolean;
  /** The device's netlink actions (netlink_send, netlink_fault, netlink_release, netlink_faults_clear: src/tcmu/netlink.ts). */
  action(name: string, arg: Record<string, unknown>): Promise<unknown>;
}

const MODEL = 'tcmu';

/** The options of the tcmu model (docs/models.md). The map's size is needed before create() (regions()), so this runs twice. */
export function tcmuConfig(options: unknown): TcmuConfig {
  const o = parseOptions(MODEL, options, {
    hba: 'number',
    dev: 'string',
    subtype: 'string',
    cfgstring: 'string',
    devSize: 'number',
    hwBlockSize: 'number',
    hwMaxSectors: 'number',
    cmdTimeOutMs: 'number',
    qfullTimeOutMs: 'number',
    cmdAreaSize: 'number',
    maxDataAreaMB: 'number',
    dataAreaSize: 'number',
    serial: 'string',
    tmrNotification: 'boolean',
  });
  const dev = o.dev ?? 'cdevemu';
  if (dev === '' || dev.includes('/')) throw new Errno('EINVAL', `${MODEL}: option dev must be a non-empty name without '/'`);
  const subtype = o.subtype ?? 'file';
  if (subtype === '' || subtype.includes('/')) throw new Errno('EINVAL', `${MODEL}: option subtype must be a non-empty name without '/'`);
  const hwBlockSize = intOption(MODEL, 'hwBlockSize', o.hwBlockSize, 512, 512, 65536);
  if (hwBlockSize & (hwBlockSize - 1)) throw new Errno('EINVAL', `${MODEL}: option hwBlockSize must be a power of two`);
  const cmdAreaSize = intOption(MODEL, 'cmdAreaSize', o.cmdAreaSize, CMDR_SIZE_DEF, 4096, 1 << 30);
  if (cmdAreaSize % 4096) throw new Errno('EINVAL', `${MODEL}: option cmdAreaSize must be a multiple of 4096 (the data area is page aligned)`);
  const maxDataAreaMB = intOption(MODEL, 'maxDataAreaMB', o.maxDataAreaMB, MAX_DATA_AREA_MB_DEF, 1, 1 << 16);
  // dataAreaSize (bytes, whole pages) overrides the MB figure for small test rings.
  const dataSize = intOption(MODEL, 'dataAreaSize', o.dataAreaSize, maxDataAreaMB * 1024 * 1024, DATA_BLOCK_SIZE, 2 ** 40);
  if (dataSize % DATA_BLOCK_SIZE) throw new Errno('EINVAL', `${MODEL}: option dataAreaSize must be a multiple of ${DATA_BLOCK_SIZE}`);
  const hba = intOption(MODEL, 'hba', o.hba, 0, 0, 0xffffffff);
  return {
    hba,
    dev,
    subtype,
    cfgstring: o.cfgstring ?? '',
    devSize: intOption(MODEL, 'devSize', o.devSize, 64 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER),
    hwBlockSize,
    hwMaxSectors: intOption(MODEL, 'hwMaxSectors', o.hwMaxSectors, 128, 1, 0xffffffff),
    // attrib/cmd_time_out is a u32 of seconds.
    cmdTimeOutMs: intOption(MODEL, 'cmdTimeOutMs', o.cmdTimeOutMs, 30_000, 0, 0xffffffff * 1000),
    qfullTimeOutMs: intOption(MODEL, 'qfullTimeOutMs', o.qfullTimeOutMs, -1, -1, 2 ** 31 - 1),
    maxDataAreaMB: Math.max(1, Math.floor(dataSize / (1024 * 1024))),
    layout: ringLayout(cmdAreaSize, dataSize),
    serial: o.serial ?? `cdevemu-${hba}-${dev}`,
    writeCache: false,
    tmrNotification: o.tmrNotification ?? false,
  };
}

/** tcmu_update_uio_info(): "tcm-user/<hba>/<dev>/<dev_config>", dev_config being "<subtype>/<cfgstring>". */
export function uioName(c: TcmuConfig): string {
  return `tcm-user/${c.hba}/${c.dev}/${c.subtype}/${c.cfgstring}`;
}

/** configfs directory of the backstore, from the mount root. */
export function configfsDir(c: TcmuConfig): string {
  return `sys/kernel/config/target/core/user_${c.hba}/${c.dev}`;
}

/** A backstore's identity across device generations: `<hba>/<dev>`. */
export function backstoreKey(c: TcmuConfig): string {
  return `${c.hba}/${c.dev}`;
}
