/**
 * The recorded answers to ioctls, found by command and input: the same
 * command with the same input (the bytes it read from the caller, or its
 * integer argument) gets the answers recorded for it in their order, the
 * last one again once they run out (a program asking TCGETS more often
 * than when it was recorded). A command recorded only with other input is
 * a mismatch: the first such answer is given, and the caller is told.
 * What was never asked for is left over (missing()): the program skipped
 * calls the recording made.
 */
import type { IoctlEntry } from '../record/device-trace.js';

export interface Answer {
  entry: IoctlEntry;
  /** False when no recorded call had this input. */
  matched: boolean;
}

const keyOf = (cmd: number, input: string): string => `${cmd}:${input}`;

export class IoctlAnswers {
  private readonly byKey = new Map<string, IoctlEntry[]>();
  private readonly byCmd = new Map<number, IoctlEntry[]>();
  /** How many answers of each key were given. */
  private readonly given = new Map<string, number>();
  private readonly used = new Set<IoctlEntry>();

  constructor(private readonly entries: readonly IoctlEntry[]) {
    for (const e of entries) {
      const key = keyOf(e.cmd, inputOf(e));
      this.byKey.set(key, [...(this.byKey.get(key) ?? []), e]);
      this.byCmd.set(e.cmd, [...(this.byCmd.get(e.cmd) ?? []), e]);
    }
  }

  /** The answer for `cmd` with `input` (inputOf's form); null when the trace never saw `cmd`. */
  answer(cmd: number, input: string): Answer | null {
    const key = keyOf(cmd, input);
    const same = this.byKey.get(key);
    if (same) {
      const n = this.given.get(key) ?? 0;
      this.given.set(key, n + 1);
      const entry = same[Math.min(n, same.length - 1)]!;
      this.used.add(entry);
      return { entry, matched: true };
    }
    const other = this.byCmd.get(cmd);
    return other ? { entry: other[0]!, matched: false } : null;
  }

  /** The commands of the recorded calls never answered, in trace order. */
  missing(): number[] {
    return this.entries.filter((e) => !this.used.has(e)).map((e) => e.cmd);
  }
}

/** What an ioctl entry was called with: its input bytes, else its integer argument, else nothing. */
export function inputOf(e: Pick<IoctlEntry, 'in' | 'arg'>): string {
  return e.in ?? (e.arg !== undefined ? `arg=${e.arg}` : '');
}
