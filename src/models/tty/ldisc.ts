/**
 * The N_TTY line discipline (drivers/tty/n_tty.c) for what serial clients
 * use: input processing (ISTRIP, IUCLC, IGNCR/ICRNL/INLCR, IXON's
 * START/STOP, ISIG's INTR/QUIT/SUSP, breaks), canonical lines with their
 * editing characters (ERASE, KILL, EOF, EOL, EOL2, WERASE and LNEXT with
 * IEXTEN), raw input, echo (ECHO, ECHONL, ECHOCTL, ECHOE, ECHOK, ECHOKE)
 * and output processing (OLCUC, ONLCR, OCRNL, ONOCR, ONLRET, XTABS).
 *
 * Not here: the ISIG signals themselves (the port is nobody's controlling
 * terminal, so isig() finds no process group to signal; the character is
 * still consumed and the queues flushed), IXOFF, parity marking, PENDIN,
 * ECHOPRT, XCASE and the other delay bits.
 */
import {
  BRKINT,
  ECHO,
  ECHOCTL,
  ECHOE,
  ECHOK,
  ECHOKE,
  ECHONL,
  ICANON,
  ICRNL,
  IEXTEN,
  IGNBRK,
  IGNCR,
  INLCR,
  ISIG,
  ISTRIP,
  IUCLC,
  IXANY,
  IXON,
  NOFLSH,
  OCRNL,
  OLCUC,
  ONLCR,
  ONLRET,
  ONOCR,
  OPOST,
  PARMRK,
  TABDLY,
  VEOF,
  VEOL,
  VEOL2,
  VERASE,
  VINTR,
  VKILL,
  VLNEXT,
  VQUIT,
  VSTART,
  VSTOP,
  VSUSP,
  VWERASE,
  XTABS,
  type Termios,
} from './termios.js';

/** N_TTY_BUF_SIZE: the read buffer; a canonical line holds one byte less. */
export const N_TTY_BUF_SIZE = 4096;
/** TTYB_DEFAULT_MEM_LIMIT: what the flip buffers hold for a full read buffer before bytes are lost. */
export const FLIP_LIMIT = 65536;

const NL = 0x0a;
const CR = 0x0d;

/** One complete canonical line: its bytes (terminator included, except EOF's). */
type Line = number[];

/** What the line discipline asks of the tty: the echo and output path, and flow control. */
export interface LdiscHost {
  /** Bytes for the device, after output processing (echo). */
  echo(bytes: number[]): void;
  /** IXON: START/STOP received (stop true = output held). */
  flow(stop: boolean): void;
  /** ISIG without NOFLSH: both queues flushed (isig() -> n_tty_flush_buffer, tty_driver_flush_buffer). */
  flushOutput(): void;
}

export class LineDiscipline {
  /** Canonical: complete lines, oldest first. */
  private lines: Line[] = [];
  /** Canonical: the line being edited; raw: everything readable. */
  private edit: number[] = [];
  /** Bytes the read buffer had no room for yet (the flip buffers). */
  private flip: number[] = [];
  private lnext = false;
  /** Column of the output, for ONOCR and XTABS (n_tty's ldata->column). */
  column = 0;
  /** Bytes lost because the flip buffers were full (serial_icounter_struct.buf_overrun). */
  overruns = 0;

  constructor(private readonly host: LdiscHost) {}

  /** Canonical: a line (or an EOF) is ready; raw: at least `min` bytes are (input_available_p). */
  readable(t: Termios, min = 1): boolean {
    return t.lflag & ICANON ? this.lines.length > 0 : this.edit.length >= min;
  }

  /** What n_tty keeps: read buffer plus flip buffers. */
  get buffered(): number {
    return this.lines.reduce((n, l) => n + l.length, 0) + this.edit.length + this.flip.length;
  }

  /**
   * read(): canonical, at most one line, up to `size` bytes of it, the rest
   * of a longer line left for the next read (canon_copy_from_read_buf), an
   * EOF line giving 0 bytes; raw, what is there up to `size`. The room made
   * lets the flip buffers drain into the read buffer.
   */
  read(size: number, t: Termios): Buffer {
    let out: number[];
    if (t.lflag & ICANON) {
      const line = this.lines[0];
      out = line ? line.splice(0, size) : [];
      if (line && line.length === 0) this.lines.shift();
    } else out = this.edit.splice(0, size);
    if (this.flip.length) {
      const pending = this.flip;
      this.flip = [];
      this.receive(pending, t);
    }
    return Buffer.from(out);
  }

  /** TCIFLUSH: the read and flip buffers emptied (n_tty_flush_buffer, tty_buffer_flush). */
  flushInput(): void {
    this.lines = [];
    this.edit = [];
    this.flip = [];
    this.lnext = false;
  }

  /**
   * n_tty_set_termios(): switching ICANON makes everything buffered one
   * readable unit: to raw, the lines and the edited text run together; to
   * canonical, pending raw input becomes one line without a terminator.
   */
  setTermios(old: Termios, t: Termios): void {
    if (!((old.lflag ^ t.lflag) & ICANON)) return;
    const all = [...this.lines.flat(), ...this.edit];
    this.lines = [];
    this.edit = [];
    if (t.lflag & ICANON) {
      if (all.length) this.lines.push(all);
    } else this.edit = all;
    this.lnext = false;
  }

  /** Bytes from the device, through the receive path. */
  receive(bytes: Iterable<number>, t: Termios): void {
    for (const c of bytes) {
      if (this.room(t) <= 0 || this.flip.length > 0) {
        if (this.flip.length >= FLIP_LIMIT) this.overruns++;
        else this.flip.push(c);
        continue;
      }
      this.receiveChar(c, t);
    }
  }

  /**
   * A break condition (n_tty_receive_break): ignored with IGNBRK; with
   * BRKINT the queues flush (the SIGINT has no process group to go to);
   * otherwise it reads as \0, or \377 \0 \0 with PARMRK.
   */
  receiveBreak(t: Termios): void {
    if (t.iflag & IGNBRK) return;
    if (t.iflag & BRKINT) {
      if (!(t.lflag & NOFLSH)) this.flushBoth();
      return;
    }
    this.receive(t.iflag & PARMRK ? [0xff, 0, 0] : [0], t);
  }

  /**
   * Output processing for a write (do_output_char): returns the bytes for
   * the device. OPOST off passes them unchanged.
   */
  output(data: Iterable<number>, t: Termios): number[] {
    const out: number[] = [];
    for (const c of data) this.outputChar(c, t, out);
    return out;
  }

  /**
   * Room for one more byte: raw, in the read buffer; canonical, for the
   * line being edited, whose terminator always gets in (a full line drops
   * other characters, in put()) so that a reader waiting for it is not
   * stuck behind a line that can never end.
   */
  private room(t: Termios): number {
    const complete = this.lines.reduce((n, l) => n + l.length, 0);
    return t.lflag & ICANON ? N_TTY_BUF_SIZE - 1 - complete : N_TTY_BUF_SIZE - this.edit.length;
  }

  private lineFull(): boolean {
    return this.lines.reduce((n, l) => n + l.length, 0) + this.edit.length >= N_TTY_BUF_SIZE - 1;
  }

  private flushBoth(): void {
    this.flushInput();
    this.host.flushOutput();
  }

  private receiveChar(ch: number, t: Termios): void {
    let c = ch;
    if (t.iflag & ISTRIP) c &= 0x7f;
    if (t.iflag & IUCLC && t.lflag & IEXTEN && c >= 0x41 && c <= 0x5a) c += 0x20;
    if (this.lnext) {
      this.lnext = false;
      this.put(c, t);
      return;
    }
    const cc = t.cc;
    if (t.iflag & IXON) {
      if (c === cc[VSTART]) {
        this.host.flow(false);
        return;
      }
      if (c === cc[VSTOP]) {
        this.host.flow(true);
        return;
      }
      if (t.iflag & IXANY) this.host.flow(false);
    }
    if (t.lflag & ISIG && (c === cc[VINTR] || c === cc[VQUIT] || c === cc[VSUSP])) {
      if (!(t.lflag & NOFLSH)) this.flushBoth();
      this.echoChar(c, t);
      return;
    }
    if (c === CR) {
      if (t.iflag & IGNCR) return;
      if (t.iflag & ICRNL) c = NL;
    } else if (c === NL && t.iflag & INLCR) c = CR;
    if (!(t.lflag & ICANON)) {
      this.echoChar(c, t);
      this.edit.push(c);
      return;
    }
    if (c === cc[VERASE] || c === cc[VKILL] || (c === cc[VWERASE] && t.lflag & IEXTEN)) {
      this.erase(c, t);
      return;
    }
    if (c === cc[VLNEXT] && t.lflag & IEXTEN) {
      this.lnext = true;
      if (t.lflag & ECHO && t.lflag & ECHOCTL) this.host.echo(this.output([0x5e, 0x08], t)); // "^\b", as n_tty echoes a pending LNEXT
      return;
    }
    if (c === NL) {
      if (t.lflag & (ECHO | ECHONL)) this.host.echo(this.output([NL], t));
      this.endLine(c);
      return;
    }
    if (c === cc[VEOF]) {
      this.endLine(null);
      return;
    }
    if (c === cc[VEOL] || (c === cc[VEOL2] && t.lflag & IEXTEN)) {
      this.echoChar(c, t);
      this.endLine(c);
      return;
    }
    this.put(c, t);
  }

  /** A character into the line (canonical: the line being edited; a full line keeps its last byte for the terminator). */
  private put(c: number, t: Termios): void {
    if (t.lflag & ICANON && this.lineFull()) return;
    this.echoChar(c, t);
    this.edit.push(c);
  }

  /** A line terminator: NL, EOL and EOL2 are part of the line, EOF is not. */
  private endLine(c: number | null): void {
    const line = this.edit;
    if (c !== null) line.push(c);
    this.edit = [];
    this.lines.push(line);
  }

  /** eraser(): ERASE one character, WERASE a word, KILL the line, with their echo. */
  private erase(c: number, t: Termios): void {
    const cc = t.cc;
    if (this.edit.length === 0) return;
    const echo = t.lflag & ECHO;
    if (c === cc[VKILL] && !(t.lflag & ECHOE && t.lflag & ECHOKE)) {
      this.edit = [];
      if (echo) {
        this.echoChar(c, t);
        if (t.lflag & ECHOK) this.host.echo(this.output([NL], t));
      }
      return;
    }
    const word = c === cc[VWERASE];
    let seenAlnum = false;
    while (this.edit.length) {
      const last = this.edit[this.edit.length - 1]!;
      const alnum = /[0-9A-Za-z_]/.test(String.fromCharCode(last));
      if (word && seenAlnum && !alnum) break;
      seenAlnum ||= alnum;
      this.edit.pop();
      if (echo && t.lflag & ECHOE) {
        const width = last < 0x20 || last === 0x7f ? (t.lflag & ECHOCTL ? 2 : 0) : 1;
        for (let i = 0; i < width; i++) this.host.echo(this.output([0x08, 0x20, 0x08], t));
      } else if (echo) this.echoChar(cc[VERASE]!, t);
      if (c === cc[VERASE]) break;
    }
  }

  /** echo_char(): a control character as ^X with ECHOCTL (not TAB, NL, START, STOP). */
  private echoChar(c: number, t: Termios): void {
    if (!(t.lflag & ECHO)) return;
    const ctl = (c < 0x20 || c === 0x7f) && c !== 0x09 && c !== NL && c !== t.cc[VSTART] && c !== t.cc[VSTOP];
    if (ctl && t.lflag & ECHOCTL) this.host.echo(this.output([0x5e, c ^ 0x40], t));
    else this.host.echo(this.output([c], t));
  }

  private outputChar(ch: number, t: Termios, out: number[]): void {
    if (!(t.oflag & OPOST)) {
      out.push(ch);
      return;
    }
    let c = ch;
    switch (c) {
      case NL:
        if (t.oflag & ONLRET) this.column = 0;
        if (t.oflag & ONLCR) {
          this.column = 0;
          out.push(CR, NL);
          return;
        }
        break;
      case CR:
        if (t.oflag & ONOCR && this.column === 0) return;
        if (t.oflag & OCRNL) {
          c = NL;
          if (t.oflag & ONLRET) this.column = 0;
          break;
        }
        this.column = 0;
        break;
      case 0x09: {
        const spaces = 8 - (this.column & 7);
        if ((t.oflag & TABDLY) === XTABS) {
          this.column += spaces;
          for (let i = 0; i < spaces; i++) out.push(0x20);
          return;
        }
        this.column += spaces;
        break;
      }
      case 0x08:
        if (this.column > 0) this.column--;
        break;
      default:
        if (c >= 0x20 && c !== 0x7f) {
          if (t.oflag & OLCUC && c >= 0x61 && c <= 0x7a) c -= 0x20;
          this.column++;
        }
    }
    out.push(c);
  }
}
