/**
 * How the ioctls FUSE cannot size are carried, for the classes that have a
 * model (the tty's, src/models/tty/ioctls.ts): the old tty commands
 * (include/uapi/asm-generic/ioctls.h) have no _IOC encoding, so FUSE copies
 * nothing and the structure lies at `arg` in the caller's memory
 * (docs/writing-a-model.md#user-memory). The recorder and the replayer
 * both read from here what each one reads from the caller and writes back.
 *
 * Left out on purpose: TIOCMIWAIT (it sleeps until a modem line changes,
 * and the real ioctl would hold the daemon's only thread), and the job
 * control and pty commands (a FUSE file cannot be anyone's controlling
 * terminal). Any command not here and not encoded is answered ENOTTY and
 * never reaches the real device: its argument may be a pointer into the
 * caller, which must not be handed to the daemon's own ioctl(2).
 */
import {
  ICOUNTER_SIZE,
  SERIAL_STRUCT_SIZE,
  TCFLSH,
  TCGETA,
  TCGETS,
  TCSBRK,
  TCSBRKP,
  TCSETA,
  TCSETAF,
  TCSETAW,
  TCSETS,
  TCSETSF,
  TCSETSW,
  TCXONC,
  TIOCCBRK,
  TIOCEXCL,
  TIOCGETD,
  TIOCGICOUNT,
  TIOCGSERIAL,
  TIOCGSOFTCAR,
  TIOCGWINSZ,
  TIOCMBIC,
  TIOCMBIS,
  TIOCMGET,
  TIOCMSET,
  TIOCNXCL,
  TIOCOUTQ,
  TIOCSBRK,
  TIOCSETD,
  TIOCSSERIAL,
  TIOCSSOFTCAR,
  TIOCSWINSZ,
} from '../tty/ioctls.js';
import { TERMIO_SIZE, TERMIOS_SIZE } from '../tty/termios.js';

/**
 * - none: the argument is unused (TIOCEXCL);
 * - value: the argument is an integer, passed as it is (TCFLSH's queue);
 * - in: the command reads `size` bytes at arg (copy_from_user);
 * - out: the command writes `size` bytes at arg (copy_to_user).
 */
export type PointerIoctl = { kind: 'none' } | { kind: 'value' } | { kind: 'in'; size: number } | { kind: 'out'; size: number };

const none = { kind: 'none' } as const;
const value = { kind: 'value' } as const;
const inBytes = (size: number): PointerIoctl => ({ kind: 'in', size });
const outBytes = (size: number): PointerIoctl => ({ kind: 'out', size });
/** struct winsize: four unsigned shorts. */
const WINSIZE_SIZE = 8;

export const POINTER_IOCTLS: ReadonlyMap<number, PointerIoctl> = new Map<number, PointerIoctl>([
  [TCGETS, outBytes(TERMIOS_SIZE)],
  [TCSETS, inBytes(TERMIOS_SIZE)],
  [TCSETSW, inBytes(TERMIOS_SIZE)],
  [TCSETSF, inBytes(TERMIOS_SIZE)],
  [TCGETA, outBytes(TERMIO_SIZE)],
  [TCSETA, inBytes(TERMIO_SIZE)],
  [TCSETAW, inBytes(TERMIO_SIZE)],
  [TCSETAF, inBytes(TERMIO_SIZE)],
  [TCSBRK, value],
  [TCSBRKP, value],
  [TCXONC, value],
  [TCFLSH, value],
  [TIOCEXCL, none],
  [TIOCNXCL, none],
  [TIOCSBRK, none],
  [TIOCCBRK, none],
  [TIOCOUTQ, outBytes(4)],
  [TIOCGWINSZ, outBytes(WINSIZE_SIZE)],
  [TIOCSWINSZ, inBytes(WINSIZE_SIZE)],
  [TIOCMGET, outBytes(4)],
  [TIOCMSET, inBytes(4)],
  [TIOCMBIS, inBytes(4)],
  [TIOCMBIC, inBytes(4)],
  [TIOCGSOFTCAR, outBytes(4)],
  [TIOCSSOFTCAR, inBytes(4)],
  [TIOCGETD, outBytes(4)],
  [TIOCSETD, inBytes(4)],
  [TIOCGSERIAL, outBytes(SERIAL_STRUCT_SIZE)],
  [TIOCSSERIAL, inBytes(SERIAL_STRUCT_SIZE)],
  [TIOCGICOUNT, outBytes(ICOUNTER_SIZE)],
]);
