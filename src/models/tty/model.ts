/**
 * tty: a USB serial port (/dev/ttyUSBn: drivers/usb/serial/usb-serial.c
 * under drivers/tty/tty_io.c and tty_ioctl.c, with the N_TTY line
 * discipline) and the device on its other end (docs/models.md#tty).
 *
 * - port.ts: the port's settings, lines and counters, and the line in both
 *   directions at its character rate; the device is `none` (it speaks only
 *   through the `input` action), `loopback` (TX wired to RX) or `nmea` (a
 *   GPS receiver, nmea.ts).
 * - ldisc.ts: N_TTY, canonical and raw. io.ts: read, write and poll.
 *   ioctls.ts: termios, modem lines, flushing, breaks, exclusivity, serial
 *   info, through the caller's memory. actions.ts: the device end.
 * - Hang-up (carrier loss without CLOCAL, TIOCVHANGUP, the `hangup`
 *   action) and unplug give the files open then hung_up_tty_fops: read 0,
 *   write and ioctl EIO, poll POLLIN|POLLOUT|POLLERR|POLLHUP|RDNORM|WRNORM.
 *   A read blocked then returns 0, or what a raw reader had already taken.
 */
import { Errno } from '../../errno.js';
import type { DeviceModel } from '../../core/index.js';
import { parseOptions } from '../options.js';
import { intOption } from '../util.js';
import { deviceLines, ttyActions } from './actions.js';
import { ttyIoctl } from './ioctls.js';
import { ttyPoll, ttyRead, ttyWrite } from './io.js';
import { DEFAULT_FIX, fixFrom } from './nmea.js';
import { HUNG_UP_POLL, privileged, TIOCM_CD, TIOCM_CTS, TIOCM_DSR, TtyPort, type Source } from './port.js';
import { parseFraming } from './termios.js';

const SOURCES: readonly Source[] = ['none', 'loopback', 'nmea'];

export const ttyModel: DeviceModel<TtyPort> = {
  name: 'tty',
  stream: true,
  unplugRead: 'eof',
  unpollMask: HUNG_UP_POLL,
  events: {
    tty_termios: ['ispeed', 'ospeed', 'framing', 'canonical', 'iflag', 'oflag', 'cflag', 'lflag', 'vmin', 'vtime'],
    tty_modem: ['lines'],
    tty_break: ['ms', 'on'],
    tty_hangup: ['files', 'why'],
  },
  create(inst, options) {
    const o = parseOptions('tty', options, { source: 'string', baud: 'number', framing: 'string', fix: 'object', intervalMs: 'number', lines: 'object' });
    const source = (o.source ?? 'none') as Source;
    if (!SOURCES.includes(source)) throw new Errno('EINVAL', `tty: source must be one of ${SOURCES.join(', ')}, got ${JSON.stringify(o.source)}`);
    const frame = parseFraming(o.framing ?? '8N1');
    if (frame === null) throw new Errno('EINVAL', `tty: framing is data bits 5-8, parity N, E or O, stop bits 1-2 (e.g. 8N1), got ${JSON.stringify(o.framing)}`);
    return new TtyPort(inst, {
      source,
      baud: intOption('tty', 'baud', o.baud, 9600, 50, 4_000_000),
      frame,
      fix: fixFrom('tty: option fix', DEFAULT_FIX, (o.fix ?? {}) as Record<string, unknown>),
      intervalMs: intOption('tty', 'intervalMs', o.intervalMs, 1000, 100, 60_000),
      lines: deviceLines('tty: option lines', TIOCM_CTS | TIOCM_DSR | TIOCM_CD, (o.lines ?? {}) as Record<string, unknown>),
    });
  },
  open(file) {
    const p = file.instance.state;
    // tty_open(): TTY_EXCLUSIVE refuses all but CAP_SYS_ADMIN.
    if (p.exclusive && !privileged(file)) throw new Errno('EBUSY');
    p.opened(file);
  },
  release(file) {
    file.instance.state.closed(file);
  },
  read: ttyRead,
  write: ttyWrite,
  ioctl: ttyIoctl,
  poll: ttyPoll,
  remove(inst) {
    inst.state.remove();
  },
  actions: ttyActions,
};
