/**
 * Generic netlink messages, pure: encode and decode the three layers every
 * genl message has (include/uapi/linux/netlink.h, genetlink.h), host-endian
 * like the kernel's:
 *
 *   struct nlmsghdr  { u32 nlmsg_len; u16 nlmsg_type; u16 nlmsg_flags; u32 nlmsg_seq; u32 nlmsg_pid; }
 *   struct genlmsghdr { u8 cmd; u8 version; u16 reserved; }
 *   struct nlattr    { u16 nla_len; u16 nla_type; }  + payload, padded to NLA_ALIGNTO
 *
 * and the NLMSG_ERROR answer a request with NLM_F_ACK gets (netlink_ack()).
 * No I/O here: the socket is ./socket.ts.
 */

export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;
export const NLA_HDRLEN = 4;
const ALIGNTO = 4;

/* include/uapi/linux/netlink.h */
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
/* nlmsgerr has no payload beyond the request's header (success, or NETLINK_CAP_ACK). */
export const NLM_F_CAPPED = 0x100;
/** Netlink families with an id below this are the kernel's own (GENL_MIN_ID). */
export const GENL_MIN_ID = 16;

const align = (n: number): number => (n + ALIGNTO - 1) & ~(ALIGNTO - 1);

export interface NlHeader {
  type: number;
  flags: number;
  seq: number;
  /** nlmsg_pid: the sender's port for requests, 0 from the kernel. */
  pid: number;
}

export interface GenlMessage extends NlHeader {
  cmd: number;
  version: number;
  /** Attribute type -> raw payload (without padding). A repeated type keeps the last, like nla_parse(). */
  attrs: Map<number, Buffer>;
}

/** An attribute value to encode: u8/u32/s32/u64 by `kind`, or a string (NUL-terminated, nla_put_string). */
export type AttrValue =
  | { kind: 'u8'; value: number }
  | { kind: 'u32'; value: number }
  | { kind: 's32'; value: number }
  | { kind: 'u64'; value: bigint }
  | { kind: 'string'; value: string };

function attrPayload(v: AttrValue): Buffer {
  switch (v.kind) {
    case 'u8':
      return Buffer.from([v.value & 0xff]);
    case 'u32': {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v.value >>> 0);
      return b;
    }
    case 's32': {
      const b = Buffer.alloc(4);
      b.writeInt32LE(v.value | 0);
      return b;
    }
    case 'u64': {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v.value);
      return b;
    }
    case 'string':
      return Buffer.concat([Buffer.from(v.value, 'utf8'), Buffer.from([0])]);
  }
}

/** A `struct nlmsghdr` of a message `len` bytes long, body included. */
export function nlmsghdr(len: number, h: NlHeader): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(h.type, 4);
  b.writeUInt16LE(h.flags, 6);
  b.writeUInt32LE(h.seq >>> 0, 8);
  b.writeUInt32LE(h.pid >>> 0, 12);
  return b;
}

/** One genl message: header, genlmsghdr, then each attribute padded to 4 bytes (nla_put()). */
export function encodeGenl(h: NlHeader & { cmd: number; version: number }, attrs: ReadonlyArray<[number, AttrValue]>): Buffer {
  const parts: Buffer[] = [Buffer.from([h.cmd, h.version, 0, 0])];
  for (const [type, v] of attrs) {
    const payload = attrPayload(v);
    const a = Buffer.alloc(align(NLA_HDRLEN + payload.length));
    a.writeUInt16LE(NLA_HDRLEN + payload.length, 0);
    a.writeUInt16LE(type, 2);
    payload.copy(a, NLA_HDRLEN);
    parts.push(a);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([nlmsghdr(NLMSG_HDRLEN + body.length, h), body]);
}

/**
 * The NLMSG_ERROR answer to `req` (netlink_ack()): errno 0 is the ACK,
 * a negative errno an error. Carries only the request's header, as the
 * kernel does for an ACK (and, with NLM_F_CAPPED, for an error too).
 */
export function encodeAck(req: NlHeader & { len: number }, error: number, pid = 0): Buffer {
  const body = Buffer.alloc(4 + NLMSG_HDRLEN);
  body.writeInt32LE(error, 0);
  nlmsghdr(req.len, req).copy(body, 4);
  return Buffer.concat([nlmsghdr(NLMSG_HDRLEN + body.length, { type: NLMSG_ERROR, flags: NLM_F_CAPPED, seq: req.seq, pid }), body]);
}

export class NetlinkFormatError extends Error {}

/** One message of a datagram: its header and the bytes after it. */
export interface RawMessage extends NlHeader {
  len: number;
  payload: Buffer;
}

/** Splits a datagram into its messages (a datagram may carry several, NLMSG_NEXT()). */
export function splitMessages(buf: Buffer): RawMessage[] {
  const out: RawMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new NetlinkFormatError(`nlmsg_len ${len} at offset ${off} does not fit a ${buf.length}-byte datagram`);
    }
    out.push({
      len,
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align(len);
  }
  if (off < buf.length && buf.length - off >= ALIGNTO) throw new NetlinkFormatError(`${buf.length - off} trailing bytes after the last message`);
  return out;
}

/** A genl message from one raw message: genlmsghdr and attributes (nla_parse()). */
export function decodeGenl(m: RawMessage): GenlMessage {
  if (m.payload.length < GENL_HDRLEN) throw new NetlinkFormatError(`a ${m.payload.length}-byte payload has no genlmsghdr`);
  const attrs = new Map<number, Buffer>();
  let off = GENL_HDRLEN;
  while (off + NLA_HDRLEN <= m.payload.length) {
    const len = m.payload.readUInt16LE(off);
    // NLA_F_NESTED and NLA_F_NET_BYTEORDER live in the top bits of nla_type.
    const type = m.payload.readUInt16LE(off + 2) & 0x3fff;
    if (len < NLA_HDRLEN || off + len > m.payload.length) {
      throw new NetlinkFormatError(`attribute ${type}: nla_len ${len} overruns the message`);
    }
    attrs.set(type, m.payload.subarray(off + NLA_HDRLEN, off + len));
    off += align(len);
  }
  return { type: m.type, flags: m.flags, seq: m.seq, pid: m.pid, cmd: m.payload[0]!, version: m.payload[1]!, attrs };
}

/** The errno (0 for an ACK) of an NLMSG_ERROR message. */
export function ackError(m: RawMessage): number {
  if (m.type !== NLMSG_ERROR || m.payload.length < 4) throw new NetlinkFormatError('not an NLMSG_ERROR message');
  return m.payload.readInt32LE(0);
}

/** Attribute readers, each checking the payload size nla_policy would (NLA_U8, NLA_U32, NLA_S32, NLA_STRING). */
export const attr = {
  u8(b: Buffer | undefined): number | undefined {
    return b && b.length >= 1 ? b.readUInt8(0) : undefined;
  },
  u32(b: Buffer | undefined): number | undefined {
    return b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
  },
  s32(b: Buffer | undefined): number | undefined {
    return b && b.length >= 4 ? b.readInt32LE(0) : undefined;
  },
  string(b: Buffer | undefined): string | undefined {
    if (!b) return undefined;
    const nul = b.indexOf(0);
    return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
  },
};
