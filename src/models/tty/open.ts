/**
 * open(2) of a port, as tty_open() and usb-serial's serial_open() ->
 * tty_port_open() -> tty_port_block_til_ready() do it: TIOCEXCL, the port
 * activated, then, for a blocking open of a port without CLOCAL, a wait
 * for the carrier (a driver with carrier detect: pl2303_carrier_raised()
 * reads DCD, TIOCM_CD).
 */
import { Errno } from '../../errno.js';
import type { File } from '../../core/index.js';
import { CAP_SYS_ADMIN, threadCapable } from '../util.js';
import { hungUp, TIOCM_CD, type TtyPort } from './port.js';
import { CLOCAL } from './termios.js';

/**
 * tty_open(). A wait that a hang-up ends (tty_port_block_til_ready()'s
 * -ERESTARTSYS with no signal pending: usb-serial never sets
 * ASYNC_HUP_NOTIFY, which would make it EAGAIN) releases the file and
 * opens the port again from the start, so the caller keeps waiting.
 */
export async function ttyOpen(file: File<TtyPort>, _: undefined, signal: AbortSignal): Promise<void> {
  const p = file.instance.state;
  for (;;) {
    // tty_reopen(): TTY_EXCLUSIVE refuses all but capable(CAP_SYS_ADMIN),
    // the opening thread's capability (root in a container, or a service
    // whose bounding set drops it, is refused).
    if (p.exclusive && !(await threadCapable(file.pid, CAP_SYS_ADMIN))) throw new Errno('EBUSY');
    p.opened(file);
    if (await blockTilReady(file, signal)) return;
    p.closed(file);
  }
}

/**
 * tty_port_block_til_ready(): true once the open may complete, false when
 * a hang-up ended the wait. A signal (EINTR) or unplug (its cancellation,
 * which the core answers ENODEV, as the kernel's retried open gets from
 * serial_install() or serial_port_activate() once the adapter is
 * disconnected) ends it with the port released, as tty_open() releases a
 * failed open.
 *
 * Its tty_io_error() case is never met here: TTY_IO_ERROR is set by
 * tty_port_hangup() and tty_port_close(), which leave the port
 * uninitialized, and tty_port_open() clears it before activating one.
 * C_BAUD only decides whether DTR and RTS go up (TtyPort.raiseOut()); a
 * port at B0 waits like any other.
 *
 * The kernel's loop raises DTR and RTS on each pass, before its checks:
 * the first (TtyPort.opened() here), and each wake-up of port->open_wait
 * or of the sleeper, which for usb-serial are the carrier rising
 * (usb_serial_handle_dcd_change()), a signal, a hang-up and the port's
 * last close. The last two leave the port uninitialized, so that pass
 * raises nothing; the first two raise them again, undoing a TIOCMBIC made
 * meanwhile, before the wait ends.
 */
async function blockTilReady(file: File<TtyPort>, signal: AbortSignal): Promise<boolean> {
  const p = file.instance.state;
  // do_clocal is read once, before the wait: setting CLOCAL from another
  // file meanwhile does not end it.
  if (file.nonblock || p.termios.cflag & CLOCAL) return true;
  const carrier = (): boolean => (p.lines & TIOCM_CD) !== 0;
  p.blockedOpens++;
  try {
    // The hang-up is checked before the carrier, as in the kernel's loop.
    await file.instance.wq.wait(() => hungUp(file) || carrier(), signal);
  } catch (err) {
    // A signal's pass raises them; unplug hangs the port up (usb_serial_disconnect()), whose pass does not.
    if (file.instance.lifecycle === 'live') p.raiseOut();
    p.closed(file);
    throw err;
  } finally {
    p.blockedOpens--;
  }
  if (hungUp(file)) return false;
  p.raiseOut();
  return true;
}
