/**
 * The recorded answers to ioctls, by command, in trace order: a call gets
 * the next recorded call of its command when the input is the same (the
 * bytes it read from the caller, or its integer argument). Else it is a
 * repeat when a call already answered had that input (a program asking
 * TCGETS more often than when it was recorded, setting the same termios
 * twice), and gets that call's answer again; else a mismatch, told to the
 * caller: a later recorded call with that input (the calls came in
 * another order) or the next one gives the answer. What was never
 * answered is left over (missing()): the program skipped calls the
 * recording made.
 */
import type { IoctlEntry } from '../record/device-trace.js';

export interface Answer {
  entry: IoctlEntry;
  /** False when the input is not that of the next recorded call of the command, nor a repeat. */
  matched: boolean;
}

const keyOf = (cmd: number, input: string): string => `${cmd}:${input}`;

/** Entries in trace order, taken one by one: the first not taken is found from where the last search stopped. */
class Queue {
  private readonly entries: IoctlEntry[] = [];
  private first = 0;

  push(e: IoctlEntry): void {
    this.entries.push(e);
  }

  /** The first entry not in `used`, or undefined. */
  next(used: ReadonlySet<IoctlEntry>): IoctlEntry | undefined {
    while (this.first < this.entries.length && used.has(this.entries[this.first]!)) this.first++;
    return this.entries[this.first];
  }

  get last(): IoctlEntry {
    return this.entries.at(-1)!;
  }
}

export class IoctlAnswers {
  private readonly byKey = new Map<string, Queue>();
  private readonly byCmd = new Map<number, Queue>();
  private readonly used = new Set<IoctlEntry>();

  constructor(private readonly entries: readonly IoctlEntry[]) {
    for (const e of entries) {
      const key = keyOf(e.cmd, inputOf(e));
      if (!this.byKey.has(key)) this.byKey.set(key, new Queue());
      if (!this.byCmd.has(e.cmd)) this.byCmd.set(e.cmd, new Queue());
      this.byKey.get(key)!.push(e);
      this.byCmd.get(e.cmd)!.push(e);
    }
  }

  /** The answer for `cmd` with `input` (inputOf's form); null when the trace never saw `cmd`. */
  answer(cmd: number, input: string): Answer | null {
    const all = this.byCmd.get(cmd);
    if (!all) return null;
    const expected = all.next(this.used);
    const same = this.byKey.get(keyOf(cmd, input));
    if (expected && inputOf(expected) === input) return this.take(expected, true);
    const later = same?.next(this.used);
    if (later) return this.take(later, false);
    // Every call with this input was answered (a key's calls are taken in order): a repeat.
    if (same) return { entry: same.last, matched: true };
    return { entry: expected ?? all.last, matched: false };
  }

  /** The commands of the recorded calls never answered, in trace order. */
  missing(): number[] {
    return this.entries.filter((e) => !this.used.has(e)).map((e) => e.cmd);
  }

  private take(entry: IoctlEntry, matched: boolean): Answer {
    this.used.add(entry);
    return { entry, matched };
  }
}

/** What an ioctl entry was called with: its input bytes, else its integer argument, else nothing. */
export function inputOf(e: Pick<IoctlEntry, 'in' | 'arg'>): string {
  return e.in ?? (e.arg !== undefined ? `arg=${e.arg}` : '');
}
