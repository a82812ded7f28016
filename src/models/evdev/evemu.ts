/**
 * The text format of evemu-describe and evemu-record (libevemu's
 * evemu_write() and evemu_write_event(); evemu_read() and
 * evemu_read_event() read it back), which libinput and evemu users trade
 * device descriptions and recordings in:
 *
 *     # EVEMU 1.3                       the file format version, first line (1.0 without it)
 *     N: <name>                         the rest of the line, '#' included
 *     I: <bustype> <vendor> <product> <version>     hex
 *     P: <8 hex bytes>                  INPUT_PROP_* bitmap, 8 bytes a line
 *     B: <type> <8 hex bytes>           a type's code bitmap, 8 bytes a line, in order
 *     A: <axis> <min> <max> <fuzz> <flat> <resolution>   resolution from 1.2 on
 *     L: <led> <state>                  LEDs that are on (1.3)
 *     S: <switch> <state>               switches that are on (1.3)
 *     E: <sec>.<usec> <type> <code> <value>   events; type and code hex, value decimal
 *
 * Lines come in that order; '#' starts a comment anywhere but in N:. A
 * bitmap's bytes are the kernel's bitmap as bytes in memory order: byte k
 * holds codes 8k to 8k+7, its least significant bit the lowest code (so
 * KEY_A, 30, is bit 6 of byte 3: "B: 01 00 00 00 40 ..."). B: 00, EV_SYN's
 * own codes, is written as a constant and says nothing.
 *
 * Parsing is stricter than evemu_read(), which skips what it cannot use:
 * a line that would be ignored or misread is refused, with its number and
 * what is wrong, so that a device is never silently not the one described.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { Errno } from '../../errno.js';
import { EV_ABS, EV_FF, EV_LED, EV_MAX, EV_REP, EV_SW, EV_SYN, INPUT_PROP_MAX, MAX, SYN_MAX, typeName } from './codes.js';
import { absProblem, type DeviceSpec } from './spec.js';

/** The newest file format this reader knows (libevemu 2.x writes 1.3). */
const FORMAT_MINOR = 3;

export interface EvemuEvent {
  /** The line it came from, for messages. */
  line: number;
  /** The timestamp in microseconds. */
  us: number;
  type: number;
  code: number;
  value: number;
}

export interface EvemuText {
  description: DeviceSpec | null;
  events: EvemuEvent[];
}

/** A description line's letter, in the order they must come. */
const ORDER = 'NIPBALS';

const INT32 = /^[+-]?\d+$/;
const HEX = (digits: number): RegExp => new RegExp(`^[0-9a-fA-F]{1,${digits}}$`);
const HEX2 = HEX(2);
const HEX4 = HEX(4);

/**
 * evemu text given inline (several lines) or as the absolute path of a
 * file (the daemon reads it, and its working directory is not the
 * caller's), parsed. `what` names the option or argument in messages.
 */
export async function loadEvemu(value: unknown, what: string): Promise<EvemuText> {
  if (typeof value !== 'string') throw new Errno('EINVAL', `${what} must be evemu text or the absolute path of an evemu file`);
  if (value.includes('\n')) return parseEvemu(value, what);
  if (!isAbsolute(value))
    throw new Errno('EINVAL', `${what}: ${JSON.stringify(value)} is neither evemu text (several lines) nor an absolute path`);
  let text: string;
  try {
    text = await readFile(value, 'utf8');
  } catch (err) {
    throw new Errno('EINVAL', `${what}: cannot read ${value} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseEvemu(text, value);
}

/**
 * Parses evemu text: an optional description, then events. `source` names
 * it in messages (a path, or the option for inline text).
 */
export function parseEvemu(text: string, source: string): EvemuText {
  return new Reader(text, source).read();
}

class Reader {
  private readonly lines: string[];
  private minor = 0;
  private readonly bitmaps = new Map<number, { bytes: number[]; line: number }>();
  private propBytes: number[] = [];
  private desc: DeviceSpec | null = null;
  private readonly events: EvemuEvent[] = [];

  constructor(
    text: string,
    private readonly source: string,
  ) {
    this.lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  }

  read(): EvemuText {
    const first = this.lines.findIndex((l) => l.trim() !== '');
    let last = -1; // index in ORDER of the last description line; ORDER.length once events began
    for (let i = 0; i < this.lines.length; i++) {
      const n = i + 1;
      const raw = this.lines[i]!;
      if (raw.trim() === '') continue;
      if (raw.trimStart().startsWith('#')) {
        if (i === first) this.version(n, raw);
        continue;
      }
      const m = /^([A-Z]):(.*)$/.exec(raw);
      const letter = m?.[1] ?? '';
      if (letter === 'E') {
        if (last === 0) throw this.bad(n, raw, 'an event where the I: line (bustype vendor product version) must follow the N: line');
        if (last >= 0 && last < ORDER.length) this.finish();
        last = ORDER.length;
        this.event(n, raw, fields(m![2]!));
        continue;
      }
      const at = letter ? ORDER.indexOf(letter) : -1;
      if (at < 0) throw this.bad(n, raw, 'not an evemu line (N:, I:, P:, B:, A:, L:, S: or E:, or a # comment)');
      if (last === ORDER.length) throw this.bad(n, raw, `${letter}: after the events (the description comes first)`);
      if (last < 0 && letter !== 'N') throw this.bad(n, raw, 'a description starts with N: (the device name)');
      if (last === 0 && letter !== 'I') throw this.bad(n, raw, 'the I: line (bustype vendor product version) must follow the N: line');
      if (last > 0 && (at < last || at === 1))
        throw this.bad(n, raw, `${letter}: after ${ORDER[last]}: (the order is N:, I:, then P:, B:, A:, L:, S: lines)`);
      last = at;
      this.descriptionLine(n, raw, letter, m![2]!);
    }
    if (last === 0) throw this.bad(this.lines.length, '', 'the description ends before its I: line');
    if (last >= 0 && last < ORDER.length) this.finish();
    return { description: this.desc, events: this.events };
  }

  /** "# EVEMU major.minor" on the first line; any other comment there means 1.0 (evemu's parse_file_format_version()). */
  private version(n: number, raw: string): void {
    const m = /^#\s*EVEMU\s+(\d+)\.(\d+)\s*$/.exec(raw);
    if (!m) return;
    const [major, minor] = [Number(m[1]), Number(m[2])];
    if (major !== 1 || minor > FORMAT_MINOR)
      throw this.bad(n, raw, `file format ${major}.${minor} is not one this reader knows (1.0 to 1.${FORMAT_MINOR})`);
    this.minor = minor;
  }

  private descriptionLine(n: number, raw: string, letter: string, rest: string): void {
    if (letter === 'N') {
      // evemu's parse_name(): sscanf("N: %m[^\n\r]"), the rest of the line, comments included.
      const name = rest.trimStart();
      if (name === '') throw this.bad(n, raw, 'N: needs the device name');
      this.desc = { name, id: [0, 0, 0, 0], props: [], codes: new Map(), abs: new Map(), ledsOn: [], switchesOn: [] };
      return;
    }
    const f = fields(rest);
    const d = this.desc!;
    switch (letter) {
      case 'I':
        if (f.length !== 4 || !f.every((x) => HEX4.test(x)))
          throw this.bad(n, raw, 'I: needs 4 hex numbers of up to 4 digits: bustype vendor product version');
        d.id = f.map((x) => parseInt(x, 16)) as [number, number, number, number];
        return;
      case 'P': {
        this.propBytes.push(...this.bytes(n, raw, f, 'P: needs 8 hex bytes'));
        const past = bitsOf(this.propBytes).find((p) => p > INPUT_PROP_MAX);
        if (past !== undefined) throw this.bad(n, raw, `property ${past} is past INPUT_PROP_MAX (${INPUT_PROP_MAX})`);
        return;
      }
      case 'B': {
        if (f.length !== 9 || !f.every((x) => HEX2.test(x)))
          throw this.bad(n, raw, 'B: needs the event type and 8 bytes, each 2 hex digits');
        const type = parseInt(f[0]!, 16);
        if (type > EV_MAX) throw this.bad(n, raw, `event type 0x${f[0]} is past EV_MAX (0x1f)`);
        const map = this.bitmaps.get(type) ?? { bytes: [], line: n };
        map.bytes.push(...this.bytes(n, raw, f.slice(1), 'B: needs 8 hex bytes after the type'));
        map.line = n;
        this.bitmaps.set(type, map);
        this.checkBits(n, raw, type, map.bytes);
        return;
      }
      case 'A':
        return this.axis(n, raw, f);
      case 'L':
      case 'S':
        return this.state(n, raw, letter === 'L' ? EV_LED : EV_SW, f);
    }
  }

  private bytes(n: number, raw: string, f: string[], problem: string): number[] {
    if (f.length !== 8 || !f.every((x) => HEX2.test(x))) throw this.bad(n, raw, `${problem}, each 2 hex digits`);
    return f.map((x) => parseInt(x, 16));
  }

  /** A set bit the model cannot have is refused where it is set. */
  private checkBits(n: number, raw: string, type: number, bytes: number[]): void {
    const set = bitsOf(bytes);
    if (set.length === 0 || type === EV_SYN) return;
    if (type === EV_FF) throw this.bad(n, raw, 'force feedback (EV_FF) is not emulated by the evdev model');
    if (type === EV_REP) throw this.bad(n, raw, 'autorepeat (EV_REP) is not emulated by the evdev model');
    const max = MAX[type];
    if (max === undefined) throw this.bad(n, raw, `${typeName(type)} (0x${type.toString(16)}) has no codes the evdev model emulates`);
    const past = set.find((c) => c > max);
    if (past !== undefined)
      throw this.bad(n, raw, `${typeName(type)} code 0x${past.toString(16)} is past the type's highest code 0x${max.toString(16)}`);
  }

  private axis(n: number, raw: string, f: string[]): void {
    // evemu's parse_abs(): the resolution came with format 1.2.
    const want = this.minor >= 2 ? 6 : 5;
    if (f.length !== want || !HEX2.test(f[0]!) || !f.slice(1).every((x) => INT32.test(x))) {
      throw this.bad(
        n,
        raw,
        `A: needs the axis (hex) and ${want - 1} integers: min max fuzz flat${want === 6 ? ' resolution' : ''} (format 1.${this.minor})`,
      );
    }
    const code = parseInt(f[0]!, 16);
    const [min, max, fuzz, flat, resolution = 0] = f.slice(1).map(Number) as number[];
    if ([min, max, fuzz, flat, resolution].some((v) => v! < -(2 ** 31) || v! > 2 ** 31 - 1))
      throw this.bad(n, raw, 'a value does not fit in 32 bits');
    if (!bitsOf(this.bitmaps.get(EV_ABS)?.bytes ?? []).includes(code))
      throw this.bad(n, raw, `axis 0x${f[0]} is not in the B: 03 (EV_ABS) bitmap`);
    const d = this.desc!;
    if (d.abs.has(code)) throw this.bad(n, raw, `a second A: line for axis 0x${f[0]}`);
    const problem = absProblem(code, min!, max!, flat!);
    if (problem) throw this.bad(n, raw, problem);
    // A device made from a description starts with every value 0: evemu_read() leaves it so, and uinput takes it.
    d.abs.set(code, [0, min!, max!, fuzz!, flat!, resolution]);
  }

  private state(n: number, raw: string, type: number, f: string[]): void {
    const letter = type === EV_LED ? 'L' : 'S';
    if (f.length !== 2 || !HEX2.test(f[0]!) || !INT32.test(f[1]!)) throw this.bad(n, raw, `${letter}: needs the code (hex) and its state`);
    const code = parseInt(f[0]!, 16);
    if (!bitsOf(this.bitmaps.get(type)?.bytes ?? []).includes(code)) {
      throw this.bad(n, raw, `${typeName(type)} code 0x${f[0]} is not in the B: ${type.toString(16).padStart(2, '0')} bitmap`);
    }
    const on = type === EV_LED ? this.desc!.ledsOn : this.desc!.switchesOn;
    if (on.includes(code)) throw this.bad(n, raw, `a second ${letter}: line for code 0x${f[0]}`);
    if (Number(f[1]) !== 0) on.push(code);
  }

  /** The description is complete: every axis has its A: line; the bitmaps become code lists. */
  private finish(): void {
    const d = this.desc!;
    for (const [type, map] of this.bitmaps) {
      if (type === EV_SYN) continue;
      const codes = bitsOf(map.bytes);
      if (type === EV_ABS) {
        const missing = codes.find((c) => !d.abs.has(c));
        if (missing !== undefined)
          throw this.bad(
            map.line,
            this.lines[map.line - 1]!,
            `axis 0x${missing.toString(16).padStart(2, '0')} is in the bitmap but has no A: line`,
          );
      } else if (codes.length) {
        d.codes.set(type, codes);
      }
    }
    d.props = bitsOf(this.propBytes);
  }

  /** evemu_read_event(): "E: %lu.%06u %04x %04x %d"; the time as evemu-record writes it, 6 digits of microseconds. */
  private event(n: number, raw: string, f: string[]): void {
    const t = /^(\d+)\.(\d{6})$/.exec(f[0] ?? '');
    if (f.length !== 4 || !t || !HEX4.test(f[1]!) || !HEX4.test(f[2]!) || !INT32.test(f[3]!)) {
      throw this.bad(n, raw, 'E: needs SEC.USEC (6 digits of microseconds), the type and code in hex and the value in decimal');
    }
    const us = Number(t[1]) * 1e6 + Number(t[2]);
    const [type, code, value] = [parseInt(f[1]!, 16), parseInt(f[2]!, 16), Number(f[3])];
    if (!Number.isSafeInteger(us)) throw this.bad(n, raw, 'the time is too large');
    if (value < -(2 ** 31) || value > 2 ** 31 - 1) throw this.bad(n, raw, 'the value does not fit in 32 bits');
    const max = type === EV_SYN ? SYN_MAX : MAX[type];
    if (type > EV_MAX || max === undefined) throw this.bad(n, raw, `event type 0x${f[1]} is not one the evdev model has`);
    if (code > max) throw this.bad(n, raw, `${typeName(type)} code 0x${f[2]} is past the type's highest code 0x${max.toString(16)}`);
    const prev = this.events.at(-1);
    if (prev && us < prev.us) throw this.bad(n, raw, `the time goes back (${f[0]} is before the event on line ${prev.line})`);
    this.events.push({ line: n, us, type, code, value });
  }

  private bad(n: number, raw: string, problem: string): Errno {
    const shown = raw.length > 80 ? `${raw.slice(0, 77)}...` : raw;
    return new Errno('EINVAL', `${this.source} line ${n}: ${problem}${raw ? `: ${JSON.stringify(shown)}` : ''}`);
  }
}

/** A data line's fields: whitespace-separated, up to a '#' comment. */
function fields(rest: string): string[] {
  const hash = rest.indexOf('#');
  return (hash < 0 ? rest : rest.slice(0, hash)).split(/\s+/).filter(Boolean);
}

/** The set bits of a byte-ordered bitmap (byte k, bit j: code 8k + j), ascending. */
function bitsOf(bytes: readonly number[]): number[] {
  const out: number[] = [];
  bytes.forEach((b, k) => {
    for (let j = 0; j < 8; j++) if (b & (1 << j)) out.push(8 * k + j);
  });
  return out;
}
