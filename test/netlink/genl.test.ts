/**
 * Golden-byte tests for the generic netlink codec (src/netlink/genl.ts)
 * and the TCM-USER messages built on it (src/tcmu/family.ts). Each buffer
 * is written field by field, little-endian, with the layout of
 * include/uapi/linux/netlink.h and genetlink.h; the TCM-USER ones are the
 * messages libtcmu's send_netlink_reply() and set_genl_features() build,
 * and the events target_core_user.c's tcmu_netlink_event_init() sends.
 */
import { describe, expect, it } from 'vitest';
import {
  ackError,
  attr,
  decodeGenl,
  encodeAck,
  encodeGenl,
  NetlinkFormatError,
  NLM_F_ACK,
  NLM_F_CAPPED,
  NLM_F_REQUEST,
  NLMSG_ERROR,
  splitMessages,
} from '../../src/netlink/genl.js';
import { encodeEvent, TcmuAttr, TcmuCmd } from '../../src/tcmu/family.js';
import { hex } from '../fuse/bytes.js';

const FAMILY = 0x1c;

describe('genl encoding', () => {
  it('encodes an ADDED_DEVICE event as the kernel sends it', () => {
    const msg = encodeEvent(FAMILY, TcmuCmd.ADDED_DEVICE, { uioName: 'tcm-user/1/d/qcow//i', minor: 3, deviceId: 7 });
    expect(msg).toEqual(
      hex(`
        40000000 1c00 0000 00000000 00000000   // nlmsghdr: len 64, type FAMILY, flags 0, seq 0, pid 0
        01 02 0000                             // genlmsghdr: cmd ADDED_DEVICE, version 2
        1900 0100                              // nla_len 25 (4 + 20 chars + NUL), DEVICE
        74636d2d757365722f312f642f71636f772f2f6900  // "tcm-user/1/d/qcow//i\\0"
        000000                                 // padding to 28
        0800 0200 03000000                     // MINOR = 3
        0800 0800 07000000                     // DEVICE_ID = 7
      `),
    );
  });

  it('encodes u8, s32 and u64 attributes with their padding', () => {
    const msg = encodeGenl({ type: FAMILY, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 5, pid: 1234, cmd: 9, version: 2 }, [
      [1, { kind: 'u8', value: 1 }],
      [2, { kind: 's32', value: -19 }],
      [3, { kind: 'u64', value: 0x1_0000_0002n }],
    ]);
    expect(msg).toEqual(
      hex(`
        30000000 1c00 0500 05000000 d2040000   // len 48, flags REQUEST|ACK, seq 5, pid 1234
        09 02 0000
        0500 0100 01 000000                    // u8 1, padded
        0800 0200 edffffff                     // s32 -19
        0c00 0300 0200000001000000             // u64
      `),
    );
  });

  it('acks a request with its header only, NLM_F_CAPPED (netlink_ack())', () => {
    const req = { len: 0x24, type: FAMILY, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 9, pid: 4321 };
    expect(encodeAck(req, 0)).toEqual(
      hex(`
        24000000 0200 0001 09000000 00000000   // NLMSG_ERROR, CAPPED, seq of the request, from the kernel (0)
        00000000                               // error 0: an ACK
        24000000 1c00 0500 09000000 e1100000   // the request's header
      `),
    );
    expect(encodeAck(req, -95).readInt32LE(16)).toBe(-95);
  });
});

describe('genl decoding', () => {
  // What libtcmu's send_netlink_reply() sends: genlmsg_put(NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0,
  // REMOVED_DEVICE_DONE, 2), CMD_STATUS, DEVICE_ID; nl_send_auto() adds REQUEST|ACK, seq and port.
  const done = hex(`
    24000000 1c00 0500 6f000000 39300000     // len 36, REQUEST|ACK, seq 111, pid 12345
    05 02 0000                               // REMOVED_DEVICE_DONE, version 2
    0800 0700 00000000                       // CMD_STATUS = 0
    0800 0800 07000000                       // DEVICE_ID = 7
  `);

  it('decodes a *_DONE reply', () => {
    const [m] = splitMessages(done);
    const g = decodeGenl(m!);
    expect(g).toMatchObject({ type: FAMILY, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 111, pid: 12345, cmd: TcmuCmd.REMOVED_DEVICE_DONE, version: 2 });
    expect(attr.s32(g.attrs.get(TcmuAttr.CMD_STATUS))).toBe(0);
    expect(attr.u32(g.attrs.get(TcmuAttr.DEVICE_ID))).toBe(7);
  });

  it('decodes SET_FEATURES, a string attribute, and an ack', () => {
    const features = hex(`
      1c000000 1c00 0500 01000000 39300000   // len 28
      07 02 0000                             // SET_FEATURES
      0500 0900 01 000000                    // SUPP_KERN_CMD_REPLY = 1
    `);
    const g = decodeGenl(splitMessages(features)[0]!);
    expect(g.cmd).toBe(TcmuCmd.SET_FEATURES);
    expect(attr.u8(g.attrs.get(TcmuAttr.SUPP_KERN_CMD_REPLY))).toBe(1);

    const ev = decodeGenl(splitMessages(encodeEvent(FAMILY, TcmuCmd.REMOVED_DEVICE, { uioName: 'tcm-user/0/x/y', minor: 0, deviceId: 1 }))[0]!);
    expect(attr.string(ev.attrs.get(TcmuAttr.DEVICE))).toBe('tcm-user/0/x/y');

    const ack = splitMessages(encodeAck({ len: 24, type: FAMILY, flags: 5, seq: 1, pid: 12345 }, -22))[0]!;
    expect(ack.type).toBe(NLMSG_ERROR);
    expect(ack.flags).toBe(NLM_F_CAPPED);
    expect(ackError(ack)).toBe(-22);
  });

  it('splits a datagram carrying two messages', () => {
    const two = Buffer.concat([done, done]);
    expect(splitMessages(two).map((m) => m.seq)).toEqual([111, 111]);
  });

  it('rejects lengths that overrun the datagram or the message', () => {
    const short = Buffer.from(done);
    short.writeUInt32LE(200, 0);
    expect(() => splitMessages(short)).toThrow(NetlinkFormatError);
    const badAttr = Buffer.from(done);
    badAttr.writeUInt16LE(60, 20); // first nla_len past the end
    expect(() => decodeGenl(splitMessages(badAttr)[0]!)).toThrow(/overruns/);
    expect(() => decodeGenl({ ...splitMessages(done)[0]!, payload: Buffer.alloc(2) })).toThrow(/genlmsghdr/);
  });

  it('reads undersized attributes as absent, as nla_policy would refuse them', () => {
    expect(attr.u32(Buffer.alloc(2))).toBeUndefined();
    expect(attr.u8(undefined)).toBeUndefined();
  });
});
