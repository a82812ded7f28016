/**
 * A tcmu device's configuration: what configfs holds for a user backstore
 * (target_core_user.c's dev params and attributes, target_core's
 * dev_attrib), from the model's options, with the kernel's defaults.
 */
import { defineSchema, SchemaError, type Values } from '../../core/index.js';
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

const NAME = { type: 'string', description: '' } as const;

/** The options of the tcmu model (docs/models.md#tcmu). */
export const TCMU_OPTIONS = defineSchema({
  hba: { type: 'integer', min: 0, max: 0xffffffff, default: 0, description: 'the HBA number: configfs user_<hba>' },
  dev: { ...NAME, default: 'cdevemu', description: "the backstore's name, without '/'" },
  subtype: { ...NAME, default: 'file', description: "the handler subtype in the uio name, without '/'" },
  cfgstring: { type: 'string', default: '', description: 'the handler config string in the uio name' },
  devSize: { type: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER, default: 64 * 1024 * 1024, description: 'bytes of the device' },
  hwBlockSize: { type: 'integer', min: 512, max: 65536, default: 512, description: 'the block size, a power of two' },
  hwMaxSectors: { type: 'integer', min: 1, max: 0xffffffff, default: 128, description: 'attrib/hw_max_sectors' },
  // attrib/cmd_time_out is a u32 of seconds.
  cmdTimeOutMs: { type: 'integer', min: 0, max: 0xffffffff * 1000, default: 30_000, description: "a command's time in the ring before it fails; 0 for none" },
  qfullTimeOutMs: { type: 'integer', min: -1, max: 2 ** 31 - 1, default: -1, description: "a command's wait for room in the ring; -1 for none" },
  cmdAreaSize: { type: 'integer', min: 4096, max: 1 << 30, default: CMDR_SIZE_DEF, description: 'bytes of the command ring, a multiple of 4096' },
  maxDataAreaMB: { type: 'integer', min: 1, max: 1 << 16, default: MAX_DATA_AREA_MB_DEF, description: 'MiB of the data area' },
  dataAreaSize: { type: 'integer', min: DATA_BLOCK_SIZE, max: 2 ** 40, description: `bytes of the data area, a multiple of ${DATA_BLOCK_SIZE}, instead of maxDataAreaMB (small test rings)` },
  serial: { type: 'string', description: "the unit serial number; default cdevemu-<hba>-<dev>" },
  tmrNotification: { type: 'boolean', default: false, description: 'attrib/tmr_notification: task management functions reach the ring' },
});

/** The device's configuration from its checked options. The map's size is needed before create() (regions()), so this runs twice. */
export function tcmuConfig(options: unknown): TcmuConfig {
  const o = options as Values<typeof TCMU_OPTIONS>;
  const what = `${MODEL}: option`;
  for (const key of ['dev', 'subtype'] as const) {
    if (o[key] === '' || o[key].includes('/')) throw new SchemaError(`${what} ${key} must be a non-empty name without '/', got ${JSON.stringify(o[key])}`, key);
  }
  if (o.hwBlockSize & (o.hwBlockSize - 1)) throw new SchemaError(`${what} hwBlockSize must be a power of two, got ${o.hwBlockSize}`, 'hwBlockSize');
  if (o.cmdAreaSize % 4096) throw new SchemaError(`${what} cmdAreaSize must be a multiple of 4096 (the data area is page aligned), got ${o.cmdAreaSize}`, 'cmdAreaSize');
  // dataAreaSize (bytes, whole pages) overrides the MB figure for small test rings.
  const dataSize = o.dataAreaSize ?? o.maxDataAreaMB * 1024 * 1024;
  if (dataSize % DATA_BLOCK_SIZE) throw new SchemaError(`${what} dataAreaSize must be a multiple of ${DATA_BLOCK_SIZE}, got ${dataSize}`, 'dataAreaSize');
  return {
    hba: o.hba,
    dev: o.dev,
    subtype: o.subtype,
    cfgstring: o.cfgstring,
    devSize: o.devSize,
    hwBlockSize: o.hwBlockSize,
    hwMaxSectors: o.hwMaxSectors,
    cmdTimeOutMs: o.cmdTimeOutMs,
    qfullTimeOutMs: o.qfullTimeOutMs,
    maxDataAreaMB: Math.max(1, Math.floor(dataSize / (1024 * 1024))),
    layout: ringLayout(o.cmdAreaSize, dataSize),
    serial: o.serial ?? `cdevemu-${o.hba}-${o.dev}`,
    writeCache: false,
    tmrNotification: o.tmrNotification,
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
