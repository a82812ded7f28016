/**
 * The opcode table: for each FUSE operation, its name, whether it is
 * answered, and how its body is decoded, handed to the filesystem, and its
 * answer encoded. The session dispatches through this table only (as
 * go-fuse's opcode.go and libfuse's fuse_ll_ops[] do). Opcodes missing here
 * are answered ENOSYS. INIT, INTERRUPT, FORGET and DESTROY concern the
 * connection itself and are handled by the session.
 */
import { FUSE_GETATTR_FH, Opcode } from './abi.js';
import { after, type Awaitable } from '../awaitable.js';
import type { FuseFilesystem, RequestContext } from './filesystem.js';
import {
  decodeAccessIn,
  decodeFlushIn,
  decodeFsyncIn,
  decodeGetattrIn,
  decodeIoctlIn,
  decodeName,
  decodeOpenIn,
  decodePollIn,
  decodeReadIn,
  decodeReleaseIn,
  decodeSetattrIn,
  decodeWriteIn,
  encodeAttrOut,
  encodeDirents,
  encodeEntryOut,
  encodeIoctlOut,
  encodeOpenOut,
  encodePollOut,
  encodeStatfsOut,
  encodeWriteOut,
} from './wire.js';

/** A reply body: one buffer, several (sent with one writev), or nothing (header only). */
export type ReplyBody = Buffer | Buffer[] | null;

export interface OpSpec {
  name: string;
  /** FORGET and BATCH_FORGET: the kernel expects no reply (fuse_reply_none). */
  noReply?: boolean;
  /**
   * The decoded request holds views of the request buffer (WRITE's data,
   * IOCTL's input), so a handler that goes asynchronous keeps the buffer
   * until it settles. Every other decoder copies what it needs.
   */
  keepsBody?: boolean;
  /**
   * No process waits for the answer, which is a header only: the kernel
   * sends RELEASE and RELEASEDIR in the background once the file is closed
   * (fs/fuse/file.c fuse_file_put, synchronous only for fuseblk's
   * fc->destroy). So a synchronous answer is written once the channel has
   * no request to read (FuseSession.sendHeld), not ahead of the request
   * behind it: an open+close loop's next OPEN is queued right after the
   * RELEASE of its close.
   */
  unwaited?: boolean;
  run?(fs: FuseFilesystem, ctx: RequestContext, body: Buffer): Awaitable<ReplyBody>;
  /**
   * Undoes a successful answer the kernel never received (the request was
   * interrupted and answered EINTR first, or the write found it gone). For
   * OPEN this releases the fh: the kernel will never send RELEASE for a
   * handle it never learned (libfuse's fuse_reply_open does the same when
   * the reply fails).
   */
  orphan?(fs: FuseFilesystem, ctx: RequestContext, reply: ReplyBody): void;
  /**
   * The kernel reads ENOSYS as "this filesystem has no such operation", for
   * the whole connection (fs/fuse/file.c fuse_file_open(): fc->no_open, and
   * every later open succeeds unseen): a handler's ENOSYS, meant as an
   * error, is answered EIO instead.
   */
  enosysForGood?: boolean;
}

const releaseOrphan = (fs: FuseFilesystem, ctx: RequestContext, reply: ReplyBody, dir: boolean): void => {
  const fh = (reply as Buffer).readBigUInt64LE(0); // fuse_open_out.fh
  const arg = { fh, flags: 0, release_flags: 0, lock_owner: 0n };
  void (dir ? fs.releasedir(ctx, arg) : fs.release(ctx, arg));
};

const empty = (): null => null;

export const OPS: ReadonlyMap<number, OpSpec> = new Map<number, OpSpec>([
  [Opcode.LOOKUP, { name: 'LOOKUP', run: (fs, ctx, b) => after(fs.lookup(ctx, ctx.nodeid, decodeName(b).name), encodeEntryOut) }],
  [Opcode.FORGET, { name: 'FORGET', noReply: true }],
  [Opcode.BATCH_FORGET, { name: 'BATCH_FORGET', noReply: true }],
  [
    Opcode.GETATTR,
    {
      name: 'GETATTR',
      run: (fs, ctx, b) => {
        const a = decodeGetattrIn(b);
        return after(fs.getattr(ctx, a.getattr_flags & FUSE_GETATTR_FH ? a.fh : null), encodeAttrOut);
      },
    },
  ],
  [Opcode.SETATTR, { name: 'SETATTR', run: (fs, ctx, b) => after(fs.setattr(ctx, decodeSetattrIn(b)), encodeAttrOut) }],
  [
    Opcode.OPEN,
    {
      name: 'OPEN',
      enosysForGood: true,
      run: (fs, ctx, b) => after(fs.open(ctx, decodeOpenIn(b)), encodeOpenOut),
      orphan: (fs, ctx, reply) => releaseOrphan(fs, ctx, reply, false),
    },
  ],
  [Opcode.READ, { name: 'READ', run: (fs, ctx, b) => fs.read(ctx, decodeReadIn(b)) }],
  [Opcode.WRITE, { name: 'WRITE', keepsBody: true, run: (fs, ctx, b) => after(fs.write(ctx, decodeWriteIn(b)), encodeWriteOut) }],
  [Opcode.STATFS, { name: 'STATFS', run: (fs, ctx) => after(fs.statfs(ctx), encodeStatfsOut) }],
  [Opcode.RELEASE, { name: 'RELEASE', unwaited: true, run: (fs, ctx, b) => after(fs.release(ctx, decodeReleaseIn(b)), empty) }],
  [Opcode.FSYNC, { name: 'FSYNC', run: (fs, ctx, b) => after(fs.fsync(ctx, decodeFsyncIn(b)), empty) }],
  [Opcode.FLUSH, { name: 'FLUSH', run: (fs, ctx, b) => after(fs.flush(ctx, decodeFlushIn(b)), empty) }],
  [
    Opcode.OPENDIR,
    {
      name: 'OPENDIR',
      enosysForGood: true,
      run: (fs, ctx, b) => after(fs.opendir(ctx, decodeOpenIn(b)), encodeOpenOut),
      orphan: (fs, ctx, reply) => releaseOrphan(fs, ctx, reply, true),
    },
  ],
  [Opcode.READDIR, { name: 'READDIR', run: (fs, ctx, b) => readdir(fs, ctx, b, false) }],
  [Opcode.READDIRPLUS, { name: 'READDIRPLUS', run: (fs, ctx, b) => readdir(fs, ctx, b, true) }],
  [Opcode.RELEASEDIR, { name: 'RELEASEDIR', unwaited: true, run: (fs, ctx, b) => after(fs.releasedir(ctx, decodeReleaseIn(b)), empty) }],
  [Opcode.ACCESS, { name: 'ACCESS', run: (fs, ctx, b) => after(fs.access(ctx, decodeAccessIn(b)), empty) }],
  [
    Opcode.IOCTL,
    { name: 'IOCTL', keepsBody: true, run: (fs, ctx, b) => after(fs.ioctl(ctx, decodeIoctlIn(b)), (r) => encodeIoctlOut(r.result, r.out)) },
  ],
  [Opcode.POLL, { name: 'POLL', run: (fs, ctx, b) => after(fs.poll(ctx, decodePollIn(b)), encodePollOut) }],
  [Opcode.INIT, { name: 'INIT' }],
  [Opcode.INTERRUPT, { name: 'INTERRUPT' }],
  [Opcode.DESTROY, { name: 'DESTROY' }],
]);

function readdir(fs: FuseFilesystem, ctx: RequestContext, b: Buffer, plus: boolean): Awaitable<Buffer> {
  const arg = decodeReadIn(b);
  return after(fs.readdir(ctx, arg, plus), (entries) => {
    const { buf, count } = encodeDirents(entries, arg.size, plus);
    if (plus) fs.direntplusSent(entries.slice(0, count));
    return buf;
  });
}

/** Names for opcodes the table lacks, for logs ("opcode 52" is less useful than "STATX"). */
export function opName(opcode: number): string {
  return OPS.get(opcode)?.name ?? Opcode[opcode] ?? `opcode ${opcode}`;
}
