/**
 * The SCSI an initiator needs to drive a TCMU device: CDB builders for the
 * commands the workload and the actions send (SPC-4 / SBC-3 layouts), SAM
 * status codes, and sense data in both formats (SPC-4 4.5: fixed, response
 * codes 70h/71h; descriptor, 72h/73h).
 */
import { Errno } from '../../errno.js';

/** SAM status codes (include/scsi/scsi_proto.h SAM_STAT_*). */
export const SAM_STAT_GOOD = 0x00;
export const SAM_STAT_CHECK_CONDITION = 0x02;
export const SAM_STAT_BUSY = 0x08;
export const SAM_STAT_TASK_SET_FULL = 0x28;
export const SAM_STAT_TASK_ABORTED = 0x40;

export const TEST_UNIT_READY = 0x00;
export const INQUIRY = 0x12;
export const READ_CAPACITY_10 = 0x25;
export const READ_10 = 0x28;
export const WRITE_10 = 0x2a;
export const READ_16 = 0x88;
export const WRITE_16 = 0x8a;
export const SERVICE_ACTION_IN_16 = 0x9e;
export const SAI_READ_CAPACITY_16 = 0x10;

export const SENSE_NOT_READY = 0x02;
export const SENSE_ILLEGAL_REQUEST = 0x05;

export type DataDirection = 'none' | 'in' | 'out';

/** A command as the initiator hands it to the device: CDB, direction, and data out or the length of data in. */
export interface ScsiRequest {
  cdb: Buffer;
  dir: DataDirection;
  dataOut?: Buffer;
  dataInLength?: number;
}

export function testUnitReady(): ScsiRequest {
  return { cdb: Buffer.alloc(6), dir: 'none' };
}

export function inquiry(allocationLength = 96): ScsiRequest {
  const cdb = Buffer.alloc(6);
  cdb[0] = INQUIRY;
  cdb.writeUInt16BE(allocationLength, 3);
  return { cdb, dir: 'in', dataInLength: allocationLength };
}

export function readCapacity10(): ScsiRequest {
  const cdb = Buffer.alloc(10);
  cdb[0] = READ_CAPACITY_10;
  return { cdb, dir: 'in', dataInLength: 8 };
}

export function readCapacity16(allocationLength = 32): ScsiRequest {
  const cdb = Buffer.alloc(16);
  cdb[0] = SERVICE_ACTION_IN_16;
  cdb[1] = SAI_READ_CAPACITY_16;
  cdb.writeUInt32BE(allocationLength, 10);
  return { cdb, dir: 'in', dataInLength: allocationLength };
}

function rw10(opcode: number, lba: number, blocks: number): Buffer {
  if (lba > 0xffffffff || blocks > 0xffff) throw new Errno('EINVAL', `LBA ${lba} / ${blocks} blocks do not fit a 10-byte CDB`);
  const cdb = Buffer.alloc(10);
  cdb[0] = opcode;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}

function rw16(opcode: number, lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = opcode;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

export function read(lba: number, blocks: number, blockSize: number, cdb16 = false): ScsiRequest {
  return { cdb: cdb16 ? rw16(READ_16, lba, blocks) : rw10(READ_10, lba, blocks), dir: 'in', dataInLength: blocks * blockSize };
}

export function write(lba: number, data: Buffer, blockSize: number, cdb16 = false): ScsiRequest {
  if (data.length === 0 || data.length % blockSize) throw new Errno('EINVAL', `write data must be a positive multiple of the ${blockSize}-byte block`);
  const blocks = data.length / blockSize;
  return { cdb: cdb16 ? rw16(WRITE_16, lba, blocks) : rw10(WRITE_10, lba, blocks), dir: 'out', dataOut: data };
}

/** READ CAPACITY(10)/(16) parameter data: the last LBA and the block length. */
export function decodeCapacity(data: Buffer): { lastLba: number; blockSize: number; blocks: number } {
  const long = data.length >= 12;
  const lastLba = long ? Number(data.readBigUInt64BE(0)) : data.readUInt32BE(0);
  const blockSize = long ? data.readUInt32BE(8) : data.readUInt32BE(4);
  return { lastLba, blockSize, blocks: lastLba + 1 };
}

export interface Sense {
  format: 'fixed' | 'descriptor';
  responseCode: number;
  key: number;
  asc: number;
  ascq: number;
}

/** Decodes sense data of either format; null when there is none (empty, or response code not 70h-73h). */
export function decodeSense(buf: Buffer): Sense | null {
  if (buf.length < 1) return null;
  const responseCode = buf[0]! & 0x7f;
  if (responseCode === 0x70 || responseCode === 0x71) {
    if (buf.length < 14) return null;
    return { format: 'fixed', responseCode, key: buf[2]! & 0x0f, asc: buf[12]!, ascq: buf[13]! };
  }
  if (responseCode === 0x72 || responseCode === 0x73) {
    if (buf.length < 4) return null;
    return { format: 'descriptor', responseCode, key: buf[1]! & 0x0f, asc: buf[2]!, ascq: buf[3]! };
  }
  return null;
}

/** The bytes of sense data a buffer holds: 8 plus the additional length (byte 7 in both formats). */
export function senseLength(buf: Buffer): number {
  return buf.length < 8 ? buf.length : Math.min(buf.length, 8 + buf[7]!);
}

/** Fixed-format current sense (70h), as the target core builds it (scsi_build_sense_buffer). */
export function fixedSense(key: number, asc: number, ascq: number): Buffer {
  const b = Buffer.alloc(18);
  b[0] = 0x70;
  b[2] = key;
  b[7] = 10;
  b[12] = asc;
  b[13] = ascq;
  return b;
}

/**
 * What LIO reports for a command a backend completed with CHECK CONDITION
 * but no sense of its own (a tcmu timeout or reset): target_complete_cmd()
 * sends it to target_complete_failure_work(), which fails it with
 * TCM_LOGICAL_UNIT_COMMUNICATION_FAILURE: NOT READY, 08h/00h
 * (sense_detail_table in target_core_transport.c).
 */
export const LUN_COMM_FAILURE = (): Buffer => fixedSense(SENSE_NOT_READY, 0x08, 0x00);

/** TCM_INVALID_CDB_FIELD: ILLEGAL REQUEST, INVALID FIELD IN CDB (24h/00h). */
export const INVALID_CDB_FIELD = (): Buffer => fixedSense(SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
