/**
 * The device end of a port, for scripts and tests: what the device sends
 * (`input`), what it received (`output`), its modem lines (`modem`), a
 * break, the GPS fix, a hang-up, and the port's state (`status`).
 */
import { Errno } from '../../errno.js';
import type { Instance } from '../../core/index.js';
import { actionArg } from '../util.js';
import { fixFrom } from './nmea.js';
import { framingName, LINE_NAMES, lineNames, TIOCM_CD, TIOCM_IN, type TtyPort } from './port.js';
import { CLOCAL } from './termios.js';

function boolField(where: string, arg: Record<string, unknown>, key: string): boolean | undefined {
  const v = arg[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new Errno('EINVAL', `${where}: ${key} must be a boolean`);
  return v;
}

/** The device's input lines from `{cts?, dsr?, cd?, ri?}` (absent ones unchanged). */
export function deviceLines(where: string, cur: number, arg: Record<string, unknown>): number {
  const known = LINE_NAMES.filter(([bit]) => bit & TIOCM_IN);
  for (const key of Object.keys(arg)) {
    if (!known.some(([, name]) => name === key)) throw new Errno('EINVAL', `${where}: unknown line ${JSON.stringify(key)} (known: ${known.map(([, n]) => n).join(', ')})`);
  }
  let lines = cur;
  for (const [bit, name] of known) {
    const v = boolField(where, arg, name);
    if (v !== undefined) lines = v ? lines | bit : lines & ~bit;
  }
  return lines;
}

/** Bytes from an action argument: `text` (latin1) or `hex`. */
function bytesOf(where: string, arg: Record<string, unknown>): Buffer {
  if (typeof arg.text === 'string') return Buffer.from(arg.text, 'latin1');
  if (typeof arg.hex === 'string' && /^([0-9a-fA-F]{2})*$/.test(arg.hex)) return Buffer.from(arg.hex, 'hex');
  throw new Errno('EINVAL', `${where}: give text (a string) or hex (pairs of hex digits)`);
}

export const ttyActions: Record<string, (inst: Instance<TtyPort>, arg: unknown) => unknown> = {
  /** Bytes from the device, at its speed: `{text}` or `{hex}`. */
  input: (inst, a) => {
    const data = bytesOf('tty: action input', actionArg('tty', 'input', a));
    inst.state.rx.push(data);
    return { queued: data.length };
  },
  /** What the port transmitted (the last 4 KiB); `{clear: true}` forgets it after answering. */
  output: (inst, a) => {
    const p = inst.state;
    const clear = boolField('tty: action output', actionArg('tty', 'output', a), 'clear');
    const bytes = Buffer.from(p.sent);
    if (clear) p.sent = [];
    return { hex: bytes.toString('hex'), text: bytes.toString('latin1'), total: p.sentTotal };
  },
  /** The device's lines `{cts?, dsr?, cd?, ri?}`; CD falling on a port without CLOCAL hangs it up (usb_serial_handle_dcd_change). */
  modem: (inst, a) => {
    const p = inst.state;
    const lines = deviceLines('tty: action modem', p.lines, actionArg('tty', 'modem', a));
    const carrierLost = p.lines & TIOCM_CD && !(lines & TIOCM_CD);
    p.setLines(lines);
    if (carrierLost && !(p.termios.cflag & CLOCAL)) p.hangup('carrier lost');
    return { lines: lineNames(p.lines) };
  },
  /** A break from the device. */
  break: (inst) => {
    inst.state.icount.brk++;
    inst.state.receiveBreak();
    return {};
  },
  /** The NMEA receiver's fix: `{lat?, lon?, alt?, speed?, course?, satellites?, hdop?, valid?}`. */
  fix: (inst, a) => {
    const p = inst.state;
    p.fix = fixFrom('tty: action fix', p.fix, actionArg('tty', 'fix', a));
    return { ...p.fix };
  },
  /** tty_vhangup(): every open file is hung up; later opens get a working port. */
  hangup: (inst) => ({ files: inst.state.hangup('action') }),
  status: (inst) => {
    const p = inst.state;
    return {
      termios: p.termiosView(),
      device: { source: p.device.source, baud: p.device.baud, framing: framingName(p.device.frame), inStep: p.inStep },
      lines: lineNames(p.lines),
      opens: p.files.size,
      exclusive: p.exclusive,
      inputBuffered: p.ldisc.buffered,
      outputPending: p.tx.pending,
      outputHeld: p.tx.isHeld,
      icount: { ...p.icount },
    };
  },
};
