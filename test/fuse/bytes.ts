/** Byte literals for the wire tests, and the request header as the session reads it. */
import { Context } from '../../src/fuse/session.js';

/** Hex string with `// comments` and whitespace stripped, as a Buffer. */
export function hex(s: string): Buffer {
  const clean = s.replace(/\/\/[^\n]*/g, '').replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`bad hex literal: ${clean}`);
  return Buffer.from(clean, 'hex');
}

/** fuse_in_header's members as the session reads them (src/fuse/session.ts Context), by their C names. */
export function inHeader(b: Buffer): { len: number; opcode: number; unique: bigint; nodeid: bigint; uid: number; gid: number; pid: number; total_extlen: number } {
  const c = new Context(b);
  return { len: c.len, opcode: c.opcode, unique: c.unique, nodeid: c.nodeid, uid: c.uid, gid: c.gid, pid: c.pid, total_extlen: c.total_extlen };
}
