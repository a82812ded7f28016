/**
 * The TCM-USER generic netlink family as drivers/target/target_core_user.c
 * defines it (include/uapi/linux/target_core_user.h): commands, attributes,
 * version 2, one multicast group "config". The kernel sends ADDED, REMOVED
 * and RECONFIG (tcmu_netlink_event_init(): DEVICE, MINOR, DEVICE_ID, plus
 * the reconfigured attribute); the daemon answers each with its *_DONE
 * (CMD_STATUS, DEVICE_ID) and announces itself with SET_FEATURES
 * (SUPP_KERN_CMD_REPLY).
 */
import type { TcmuReconfig } from '../models/tcmu/config.js';
import { encodeGenl, type AttrValue } from '../netlink/genl.js';

/** tcmu_genl_family.version; libtcmu's TCMU_NL_VERSION. Version 2 carries DEVICE_ID and expects *_DONE replies. */
export const TCMU_NL_VERSION = 2;

export const TcmuCmd = {
  ADDED_DEVICE: 1,
  REMOVED_DEVICE: 2,
  RECONFIG_DEVICE: 3,
  ADDED_DEVICE_DONE: 4,
  REMOVED_DEVICE_DONE: 5,
  RECONFIG_DEVICE_DONE: 6,
  SET_FEATURES: 7,
} as const;
export type TcmuCmdName = keyof typeof TcmuCmd;

export const TcmuAttr = {
  DEVICE: 1,
  MINOR: 2,
  DEV_CFG: 4,
  DEV_SIZE: 5,
  WRITECACHE: 6,
  CMD_STATUS: 7,
  DEVICE_ID: 8,
  SUPP_KERN_CMD_REPLY: 9,
} as const;

export function cmdName(cmd: number): string {
  return Object.entries(TcmuCmd).find(([, v]) => v === cmd)?.[0] ?? `cmd ${cmd}`;
}

/** The *_DONE command that answers an event. */
export const DONE_OF = {
  [TcmuCmd.ADDED_DEVICE]: TcmuCmd.ADDED_DEVICE_DONE,
  [TcmuCmd.REMOVED_DEVICE]: TcmuCmd.REMOVED_DEVICE_DONE,
  [TcmuCmd.RECONFIG_DEVICE]: TcmuCmd.RECONFIG_DEVICE_DONE,
} as const;
export type EventCmd = keyof typeof DONE_OF;

/** What the kernel knows a tcmu device by in its events. */
export interface TcmuDeviceRef {
  /** udev->uio_info.name: "tcm-user/<hba id>/<device name>/<subtype>/<cfgstring>" (tcmu_update_uio_info). */
  uioName: string;
  /** The uio minor: N of /dev/uioN. */
  minor: number;
  /** se_dev.dev_index, which the *_DONE reply echoes. */
  deviceId: number;
}

/** The attribute a reconfiguration adds to RECONFIG_DEVICE (tcmu_send_*_event()). */
function reconfigAttr(r: TcmuReconfig): [number, AttrValue] {
  if ('devConfig' in r) return [TcmuAttr.DEV_CFG, { kind: 'string', value: r.devConfig }];
  if ('devSize' in r) return [TcmuAttr.DEV_SIZE, { kind: 'u64', value: r.devSize }];
  return [TcmuAttr.WRITECACHE, { kind: 'u8', value: r.writeCache ? 1 : 0 }];
}

/** An event as the kernel multicasts it: genlmsg_put(skb, 0, 0, family, 0, cmd), so seq 0, pid 0, no flags. */
export function encodeEvent(familyId: number, cmd: EventCmd, dev: TcmuDeviceRef, reconfig?: TcmuReconfig): Buffer {
  const attrs: Array<[number, AttrValue]> = [
    [TcmuAttr.DEVICE, { kind: 'string', value: dev.uioName }],
    [TcmuAttr.MINOR, { kind: 'u32', value: dev.minor }],
    [TcmuAttr.DEVICE_ID, { kind: 'u32', value: dev.deviceId }],
  ];
  if (reconfig) attrs.push(reconfigAttr(reconfig));
  return encodeGenl({ type: familyId, flags: 0, seq: 0, pid: 0, cmd, version: TCMU_NL_VERSION }, attrs);
}
