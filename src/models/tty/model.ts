/**
 * tty: a USB serial port (/dev/ttyUSBn: drivers/usb/serial/usb-serial.c
 * under drivers/tty/tty_io.c and tty_ioctl.c, with the N_TTY line
 * discipline) and the device on its other end (docs/models.md#tty).
 *
 * - port.ts: the port's settings, lines and counters, and the line in both
 *   directions at its character rate; the device is `none` (it speaks only
 *   through the `input` action), `loopback` (TX wired to RX) or `nmea` (a
 *   GPS receiver, nmea.ts).
 * - open.ts: open, which without CLOCAL waits for carrier (DCD) unless
 *   O_NONBLOCK. ldisc.ts: N_TTY, canonical and raw. io.ts: read, write
 *   and poll.
 *   ioctls.ts: termios, modem lines, flushing, breaks, exclusivity, serial
 *   info, through the caller's memory. actions.ts: the device end.
 * - Hang-up (carrier loss without CLOCAL, TIOCVHANGUP, the `hangup`
 *   action) and unplug give the files open then hung_up_tty_fops: read 0,
 *   write and ioctl EIO, poll POLLIN|POLLOUT|POLLERR|POLLHUP|RDNORM|WRNORM.
 *   A read blocked then returns 0, or what a raw reader had already taken.
 */
import { defineSchema, SchemaError, type DeviceModel, type Values } from '../../core/index.js';
import { deviceLines, LINES, ttyActions } from './actions.js';
import { ttyIoctl } from './ioctls.js';
import { ttyPoll, ttyRead, ttyWrite } from './io.js';
import { ttyOpen } from './open.js';
import { DEFAULT_FIX, FIX_FIELDS, fixFrom } from './nmea.js';
import { HUNG_UP_POLL, TIOCM_CD, TIOCM_CTS, TIOCM_DSR, TtyPort, type Source } from './port.js';
import { parseFraming } from './termios.js';

const SOURCES: readonly Source[] = ['none', 'loopback', 'nmea'];

const OPTIONS = defineSchema({
  source: { type: 'string', enum: SOURCES, default: 'none', description: 'what the device sends: nothing, what it received (loopback), or NMEA sentences of the fix' },
  baud: { type: 'integer', min: 50, max: 4_000_000, default: 9600, description: "the device side's speed" },
  framing: { type: 'string', default: '8N1', description: 'data bits 5-8, parity N, E or O, stop bits 1-2' },
  fix: { type: 'object', fields: FIX_FIELDS, description: 'the NMEA fix, over the default one' },
  intervalMs: { type: 'integer', min: 100, max: 60_000, default: 1000, description: 'nmea: ms between fixes' },
  lines: { type: 'object', fields: LINES, description: "the device's input lines; CTS, DSR and CD raised by default" },
});

export const ttyModel: DeviceModel<TtyPort> = {
  name: 'tty',
  description: 'a serial port (/dev/ttyUSBn): termios, line discipline, modem lines, break and hang-up; loopback or an NMEA GPS on the device side',
  options: OPTIONS,
  stream: true,
  // hung_up_tty_fops: read 0 bytes (hung_up_tty_read()), write and ioctl EIO, poll hung up.
  unplugged: { read: 'eof', poll: HUNG_UP_POLL },
  events: {
    tty_termios: ['ispeed', 'ospeed', 'framing', 'canonical', 'iflag', 'oflag', 'cflag', 'lflag', 'vmin', 'vtime'],
    tty_modem: ['lines'],
    tty_break: ['ms', 'on'],
    tty_hangup: ['files', 'why'],
  },
  create(inst, options) {
    const o = options as Values<typeof OPTIONS>;
    const frame = parseFraming(o.framing);
    if (frame === null) throw new SchemaError(`tty: option framing is data bits 5-8, parity N, E or O, stop bits 1-2 (e.g. 8N1), got ${JSON.stringify(o.framing)}`, 'framing');
    return new TtyPort(inst, {
      source: o.source as Source,
      baud: o.baud,
      frame,
      fix: fixFrom(DEFAULT_FIX, o.fix ?? {}),
      intervalMs: o.intervalMs,
      lines: deviceLines(TIOCM_CTS | TIOCM_DSR | TIOCM_CD, o.lines ?? {}),
    });
  },
  open: ttyOpen,
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
