/**
 * Errnos are the currency of every layer boundary: the transport answers a
 * request with `-errno`, models throw `Errno`, the control API names errnos
 * in fault rules. Numbers come from the host (`os.constants.errno`), so they
 * are the Linux values on Linux.
 */
import { constants } from 'node:os';

/**
 * The Linux errnos libuv does not name, so Node's os.constants lacks them
 * (include/uapi/asm-generic/errno.h): drivers return several of them
 * (spidev ESHUTDOWN, i2c bus drivers EREMOTEIO, block drivers ENOMEDIUM).
 */
const LINUX_ONLY = {
  ENOTBLK: 15, ECHRNG: 44, EL2NSYNC: 45, EL3HLT: 46, EL3RST: 47, ELNRNG: 48, EUNATCH: 49, ENOCSI: 50,
  EL2HLT: 51, EBADE: 52, EBADR: 53, EXFULL: 54, ENOANO: 55, EBADRQC: 56, EBADSLT: 57, EBFONT: 59, ENONET: 64,
  ENOPKG: 65, EREMOTE: 66, EADV: 68, ESRMNT: 69, ECOMM: 70, EDOTDOT: 73, ENOTUNIQ: 76, EBADFD: 77,
  EREMCHG: 78, ELIBACC: 79, ELIBBAD: 80, ELIBSCN: 81, ELIBMAX: 82, ELIBEXEC: 83, ERESTART: 85, ESTRPIPE: 86,
  EUSERS: 87, ESOCKTNOSUPPORT: 94, EPFNOSUPPORT: 96, ESHUTDOWN: 108, ETOOMANYREFS: 109, EHOSTDOWN: 112,
  EUCLEAN: 117, ENOTNAM: 118, ENAVAIL: 119, EISNAM: 120, EREMOTEIO: 121, ENOMEDIUM: 123, EMEDIUMTYPE: 124,
  ENOKEY: 126, EKEYEXPIRED: 127, EKEYREVOKED: 128, EKEYREJECTED: 129, EOWNERDEAD: 130, ENOTRECOVERABLE: 131,
  ERFKILL: 132, EHWPOISON: 133,
} as const;

export type ErrnoName = keyof typeof constants.errno | keyof typeof LINUX_ONLY;

const byName: Record<string, number> = { ...LINUX_ONLY, ...constants.errno };
const byNumber = new Map<number, string>();
for (const [name, num] of Object.entries(byName)) {
  // EWOULDBLOCK == EAGAIN and EDEADLOCK == EDEADLK on Linux: keep the first,
  // the name programs print through strerror.
  if (!byNumber.has(num)) byNumber.set(num, name);
}

export class Errno extends Error {
  readonly errno: number;
  readonly code: string;

  constructor(nameOrNumber: ErrnoName | number, message?: string) {
    const errno = typeof nameOrNumber === 'number' ? nameOrNumber : errnoNumber(nameOrNumber);
    const code = errnoName(errno);
    super(message ?? code);
    this.name = 'Errno';
    this.errno = errno;
    this.code = code;
  }
}

/** The number for an errno name such as 'EIO'; throws on an unknown name. */
export function errnoNumber(name: string): number {
  const n = byName[name];
  if (n === undefined) throw new Error(`unknown errno name ${JSON.stringify(name)}`);
  return n;
}

export function isErrnoName(name: string): name is ErrnoName {
  return byName[name] !== undefined;
}

export function errnoName(errno: number): string {
  return byNumber.get(errno) ?? `E${errno}`;
}

/**
 * Maps anything a handler threw to an errno. An `Errno` keeps its number; a
 * Node system error (`err.errno` negative, `err.code` a name) keeps its
 * code; anything else is a bug in the handler and becomes EIO, reported
 * through `onUnexpected` so the caller can log the stack.
 */
export function toErrno(err: unknown, onUnexpected?: (err: unknown) => void): number {
  if (err instanceof Errno) return err.errno;
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    const n = byName[err.code];
    if (n !== undefined) return n;
  }
  onUnexpected?.(err);
  return byName.EIO!;
}

export const E = {
  EPERM: byName.EPERM!,
  ENOENT: byName.ENOENT!,
  EINTR: byName.EINTR!,
  EIO: byName.EIO!,
  EBADF: byName.EBADF!,
  EAGAIN: byName.EAGAIN!,
  ENOMEM: byName.ENOMEM!,
  EACCES: byName.EACCES!,
  EFAULT: byName.EFAULT!,
  EBUSY: byName.EBUSY!,
  EEXIST: byName.EEXIST!,
  ENODEV: byName.ENODEV!,
  ENOTDIR: byName.ENOTDIR!,
  EISDIR: byName.EISDIR!,
  EINVAL: byName.EINVAL!,
  ENOTTY: byName.ENOTTY!,
  ENOSPC: byName.ENOSPC!,
  ESPIPE: byName.ESPIPE!,
  EROFS: byName.EROFS!,
  ERANGE: byName.ERANGE!,
  ENOSYS: byName.ENOSYS!,
  EPROTO: byName.EPROTO!,
  ENOTCONN: byName.ENOTCONN!,
  ETIMEDOUT: byName.ETIMEDOUT!,
  ECONNABORTED: byName.ECONNABORTED!,
  ENOBUFS: byName.ENOBUFS!,
} as const;
