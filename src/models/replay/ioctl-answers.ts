/**
 * The recorded answers to ioctls, in trace order across commands: a call
 * gets the next recorded call when it is that call (same command, same
 * input: the bytes it read from the caller, or its integer argument). Else
 * it is a repeat when a call already answered had its command and input
 * (a program asking TCGETS more often than when it was recorded, setting
 * the same termios twice), and gets the latest such call's answer again:
 * the device was asked nothing new. Else a mismatch, told to the caller:
 * a later recorded call with that input (the calls came in another order,
 * within a command or across commands) or the next call of its command
 * gives the answer. What was never answered is left over (missing()): the
 * program skipped calls the recording made.
 */
import type { IoctlEntry } from '../record/device-trace.js';

/** A recorded call, with `wrote`: the bytes of the written stream programs had written before it. */
export interface PlacedIoctl extends IoctlEntry {
  wrote: number;
}

export interface Answer {
  entry: PlacedIoctl;
  /** False when the call is neither the next recorded call nor a repeat. */
  matched: boolean;
  /** The recorded call that was due instead (unmatched only); undefined when every one was answered. */
  due?: PlacedIoctl;
  /** Where the due call was recorded among the writes, when this call is it but made elsewhere. */
  expectedOffset?: number;
}

const keyOf = (cmd: number, input: string): string => `${cmd}:${input}`;

/** Entries in trace order, taken one by one: the first not taken is found from where the last search stopped. */
class Queue {
  private readonly entries: PlacedIoctl[] = [];
  private first = 0;

  push(e: PlacedIoctl): void {
    this.entries.push(e);
  }

  /** The first entry not in `used`, or undefined. */
  next(used: ReadonlySet<PlacedIoctl>): PlacedIoctl | undefined {
    while (this.first < this.entries.length && used.has(this.entries[this.first]!)) this.first++;
    return this.entries[this.first];
  }

  get last(): PlacedIoctl {
    return this.entries.at(-1)!;
  }
}

export class IoctlAnswers {
  private readonly inOrder = new Queue();
  private readonly byKey = new Map<string, Queue>();
  private readonly byCmd = new Map<number, Queue>();
  private readonly used = new Set<PlacedIoctl>();
  /** The latest entry answered for each command and input: what a repeat gets. */
  private readonly lastAnswered = new Map<string, PlacedIoctl>();
  /** The command and input of the latest call that gave the device something. */
  private lastGiven: string | null = null;

  constructor(private readonly entries: readonly PlacedIoctl[]) {
    for (const e of entries) {
      const key = keyOf(e.cmd, inputOf(e));
      if (!this.byKey.has(key)) this.byKey.set(key, new Queue());
      if (!this.byCmd.has(e.cmd)) this.byCmd.set(e.cmd, new Queue());
      this.inOrder.push(e);
      this.byKey.get(key)!.push(e);
      this.byCmd.get(e.cmd)!.push(e);
    }
  }

  /**
   * The answer for `cmd` with `input` (inputOf's form), made once programs
   * had written `wrote` bytes; null when the trace never saw `cmd`.
   */
  answer(cmd: number, input: string, wrote: number): Answer | null {
    const ofCmd = this.byCmd.get(cmd);
    if (!ofCmd) return null;
    const key = keyOf(cmd, input);
    const a = this.find(ofCmd, key, input, wrote);
    if (input !== '') this.lastGiven = key;
    return a;
  }

  private find(ofCmd: Queue, key: string, input: string, wrote: number): Answer {
    const due = this.inOrder.next(this.used);
    if (due && keyOf(due.cmd, inputOf(due)) === key) {
      // A query may come anywhere among the writes; what gives the device something, where it was given.
      if (input === '' || due.wrote === wrote) return this.take(key, due, true);
      return { ...this.take(key, due, false, due), expectedOffset: due.wrote };
    }
    const repeated = this.lastAnswered.get(key);
    if (repeated && (input === '' || key === this.lastGiven)) return { entry: repeated, matched: true };
    const later = this.byKey.get(key)?.next(this.used);
    if (later) return this.take(key, later, false, due);
    return { entry: ofCmd.next(this.used) ?? ofCmd.last, matched: false, ...(due ? { due } : {}) };
  }

  /** The commands of the recorded calls never answered, in trace order. */
  missing(): number[] {
    return this.entries.filter((e) => !this.used.has(e)).map((e) => e.cmd);
  }

  private take(key: string, entry: PlacedIoctl, matched: boolean, due?: PlacedIoctl): Answer {
    this.used.add(entry);
    this.lastAnswered.set(key, entry);
    return { entry, matched, ...(due ? { due } : {}) };
  }
}

/** What an ioctl entry was called with: its input bytes, else its integer argument, else nothing. */
export function inputOf(e: Pick<IoctlEntry, 'in' | 'arg'>): string {
  return e.in ?? (e.arg !== undefined ? `arg=${e.arg}` : '');
}
