/**
 * The device end of a port, for scripts and tests: what the device sends
 * (`input`), what it received (`output`), its modem lines (`modem`), a
 * break, the GPS fix, a hang-up, and the port's state (`status`).
 */
import { defineSchema, SchemaError, type ModelAction, type Schema, type Values } from '../../core/index.js';
import { FIX_FIELDS, fixFrom } from './nmea.js';
import { framingName, LINE_NAMES, lineNames, TIOCM_CD, TIOCM_IN, type TtyPort } from './port.js';
import { CLOCAL } from './termios.js';

/** The device's input lines, as the option `lines` and the action `modem` take them. */
const INPUT_LINES = LINE_NAMES.filter(([bit]) => bit & TIOCM_IN);
export const LINES: Schema = Object.fromEntries(INPUT_LINES.map(([, name]) => [name, { type: 'boolean', description: `${name.toUpperCase()}: raised (true) or dropped (false)` }]));

/** The device's input lines from `{cts?, dsr?, cd?, ri?}`, checked (absent ones unchanged). */
export function deviceLines(cur: number, arg: Record<string, unknown>): number {
  let lines = cur;
  for (const [bit, name] of INPUT_LINES) {
    const v = arg[name];
    if (v !== undefined) lines = v ? lines | bit : lines & ~bit;
  }
  return lines;
}

const BYTES = defineSchema({
  text: { type: 'string', description: 'the bytes as latin1 text' },
  hex: { type: 'string', format: 'hex', description: 'the bytes as hex' },
});

/** Bytes from an action argument: `text` (latin1) or `hex`. */
function bytesOf(where: string, a: Values<typeof BYTES>): Buffer {
  if (a.text !== undefined && a.hex === undefined) return Buffer.from(a.text, 'latin1');
  if (a.hex !== undefined && a.text === undefined) return Buffer.from(a.hex, 'hex');
  throw new SchemaError(`${where}: give text (a string) or hex (pairs of hex digits), one of them`, 'text');
}

export const ttyActions: Record<string, ModelAction<TtyPort>> = {
  input: {
    description: 'bytes from the device, at its speed: text or hex',
    args: BYTES,
    run(inst, a: Values<typeof BYTES>) {
      const data = bytesOf('tty: action input: argument', a);
      inst.state.rx.push(data);
      return { queued: data.length };
    },
  },
  output: {
    description: 'what the port transmitted (the last 4 KiB)',
    args: defineSchema({ clear: { type: 'boolean', default: false, description: 'forget it after answering' } }),
    run(inst, a: { clear: boolean }) {
      const p = inst.state;
      const bytes = Buffer.from(p.sent);
      if (a.clear) p.sent = [];
      return { hex: bytes.toString('hex'), text: bytes.toString('latin1'), total: p.sentTotal };
    },
  },
  modem: {
    description: "the device's lines; CD falling on a port without CLOCAL hangs it up (usb_serial_handle_dcd_change)",
    args: LINES,
    run(inst, a: Record<string, unknown>) {
      const p = inst.state;
      const lines = deviceLines(p.lines, a);
      const carrierLost = p.lines & TIOCM_CD && !(lines & TIOCM_CD);
      p.setLines(lines);
      if (carrierLost && !(p.termios.cflag & CLOCAL)) p.hangup('carrier lost');
      return { lines: lineNames(p.lines) };
    },
  },
  break: {
    description: 'a break from the device',
    run(inst) {
      inst.state.icount.brk++;
      inst.state.receiveBreak();
      return {};
    },
  },
  fix: {
    description: "the NMEA receiver's fix (absent fields unchanged)",
    args: FIX_FIELDS,
    run(inst, a: Values<typeof FIX_FIELDS>) {
      const p = inst.state;
      p.fix = fixFrom(p.fix, a);
      return { ...p.fix };
    },
  },
  hangup: { description: 'tty_vhangup(): every open file is hung up; later opens get a working port', run: (inst) => ({ files: inst.state.hangup('action') }) },
  status: {
    description: "the port's termios, device side, lines, opens, buffers and counters",
    run(inst) {
    const p = inst.state;
    return {
      termios: p.termiosView(),
      device: { source: p.device.source, baud: p.device.baud, framing: framingName(p.device.frame), inStep: p.inStep },
      lines: lineNames(p.lines),
      opens: p.files.size - p.blockedOpens,
      blockedOpens: p.blockedOpens,
      exclusive: p.exclusive,
      inputBuffered: p.ldisc.buffered,
      outputPending: p.tx.pending,
      outputHeld: p.tx.isHeld,
      icount: { ...p.icount },
    };
    },
  },
};
