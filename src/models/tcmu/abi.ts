/**
 * The shared-memory ABI of target_core_user (include/uapi/linux/
 * target_core_user.h), as byte offsets into map0. Names are the header's.
 *
 * struct tcmu_mailbox is packed but cmd_tail is __aligned__(64), so the
 * struct is 128 bytes long and the command ring starts right after it
 * (CMDR_OFF = sizeof(struct tcmu_mailbox) in target_core_user.c).
 *
 * struct tcmu_cmd_entry is packed, but the req/rsp structs inside its
 * union are not: req.cdb_off (a __u64) sits at 24, not 20, and req.iov[]
 * at 48; sizeof(struct tcmu_cmd_entry) is 112 (the rsp side: 8 + 8 + 96).
 */

export const TCMU_MAILBOX_VERSION = 2;
export const TCMU_MAILBOX_FLAG_CAP_OOOC = 1 << 0;
export const TCMU_MAILBOX_FLAG_CAP_READ_LEN = 1 << 1;
/** TMR notifications (tcmu_configure_device sets it; entries come only with attrib/tmr_notification 1). */
export const TCMU_MAILBOX_FLAG_CAP_TMR = 1 << 2;

/** struct tcmu_mailbox field offsets. */
export const MB_VERSION = 0;
export const MB_FLAGS = 2;
export const MB_CMDR_OFF = 4;
export const MB_CMDR_SIZE = 8;
export const MB_CMD_HEAD = 12;
export const MB_CMD_TAIL = 64;
/** sizeof(struct tcmu_mailbox). */
export const CMDR_OFF = 128;

export const TCMU_OP_PAD = 0;
export const TCMU_OP_CMD = 1;
export const TCMU_OP_TMR = 2;
export const TCMU_OP_MASK = 0x7;
/** TCMU_OP_ALIGN_SIZE: every entry length is a multiple of sizeof(__u64). */
export const TCMU_OP_ALIGN_SIZE = 8;

export const TCMU_UFLAG_UNKNOWN_OP = 0x1;
export const TCMU_UFLAG_READ_LEN = 0x2;

/** struct tcmu_cmd_entry_hdr, relative to the entry. */
export const HDR_LEN_OP = 0;
export const HDR_CMD_ID = 4;
export const HDR_KFLAGS = 6;
export const HDR_UFLAGS = 7;
/** req. */
export const REQ_IOV_CNT = 8;
export const REQ_IOV_BIDI_CNT = 12;
export const REQ_IOV_DIF_CNT = 16;
export const REQ_CDB_OFF = 24;
export const REQ_IOV = 48;
/** sizeof(struct iovec) on 64-bit: iov_base then iov_len, both 8 bytes. */
export const IOVEC_SIZE = 16;
/** rsp. */
export const RSP_SCSI_STATUS = 8;
export const RSP_READ_LEN = 12;
export const RSP_SENSE_BUFFER = 16;
export const TCMU_SENSE_BUFFERSIZE = 96;
/** sizeof(struct tcmu_cmd_entry). */
export const CMD_ENTRY_SIZE = 112;

/** struct tcmu_tmr_entry (packed), relative to the entry: hdr, tmr_type, two pads, cmd_cnt, two u64 pads, then cmd_ids[] (u16). */
export const TMR_TYPE = 8;
export const TMR_CMD_CNT = 12;
export const TMR_CMD_IDS = 32;

/** TCMU_TMR_*: the task management function an entry reports (tcmu_tmr_type()). */
export const TcmuTmr = {
  UNKNOWN: 0,
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LUN_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  LUN_RESET_PRO: 128,
} as const;

/** queue_tmr_ring(): the entry with its ids, 8-byte aligned. */
export function tmrSize(cmdCnt: number): number {
  return roundUp(TMR_CMD_IDS + 2 * cmdCnt, TCMU_OP_ALIGN_SIZE);
}

/** The kernel's defaults: an 8 MiB command area (mailbox included) and DATA_AREA_PAGES_DEF (256Ki) pages of data. */
export const CMDR_SIZE_DEF = 8 * 1024 * 1024;
export const DATA_BLOCK_SIZE = 4096;
export const MAX_DATA_AREA_MB_DEF = 1024;

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** tcmu_cmd_get_base_cmd_size(): the entry with its iovecs, never less than the response needs. */
export function baseCmdSize(iovCnt: number): number {
  return Math.max(REQ_IOV + iovCnt * IOVEC_SIZE, CMD_ENTRY_SIZE);
}

/** tcmu_cmd_get_cmd_size(): the base size plus the CDB, which the kernel copies into the ring right behind the iovecs. */
export function cmdSize(iovCnt: number, cdbLength: number): number {
  return baseCmdSize(iovCnt) + roundUp(cdbLength, TCMU_OP_ALIGN_SIZE);
}

/** Where map0's parts lie: the mailbox at 0, the ring at CMDR_OFF, data from dataOff (tcmu_configure_device). */
export interface RingLayout {
  /** Bytes of command ring (mb->cmdr_size): the command area minus the mailbox. */
  readonly cmdrSize: number;
  /** Offset of the data area from the mailbox (udev->data_off = the command area's size). */
  readonly dataOff: number;
  readonly dataSize: number;
  /** The whole of map0 (udev->ring_size). */
  readonly mapSize: number;
}

export function ringLayout(cmdAreaSize: number, dataSize: number): RingLayout {
  return { cmdrSize: cmdAreaSize - CMDR_OFF, dataOff: cmdAreaSize, dataSize, mapSize: cmdAreaSize + dataSize };
}
