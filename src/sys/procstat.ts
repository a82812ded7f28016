/**
 * /proc/PID/stat and /proc/PID/task/TID/stat (proc_pid_stat(5); written
 * by do_task_stat() in fs/proc/array.c): "pid (comm) state ppid ...".
 * comm is whatever name the task gave itself (prctl(PR_SET_NAME), up to
 * 15 bytes), spaces and parentheses included, so it runs from the first
 * "(" to the last ")", and the other fields are counted from there.
 */
import { readFileSync } from 'node:fs';

export interface ProcStat {
  comm: string;
  /** One letter: R running, S sleeping, D uninterruptible, T stopped, t tracing stop, Z zombie, X dead... */
  state: string;
  ppid: number;
  /** Clock ticks after boot (field 22, starttime): with the pid, names one process. */
  start: number;
}

/** The fields of a stat line; null if it is not one. */
export function parseStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  // After ") ": field 3 (state), 4 (ppid) ... 22 (starttime).
  const f = text.slice(close + 2).split(' ');
  if (f.length < 20) return null;
  return { comm: text.slice(open + 1, close), state: f[0]!, ppid: Number(f[1]), start: Number(f[19]) };
}

/** The stat file at `path` (`/proc/PID/stat`, `/proc/PID/task/TID/stat`), or null if the task is gone. */
export function readStat(path: string): ProcStat | null {
  let text: string;
  try {
    // latin1: one character per byte, whatever bytes the name holds.
    text = readFileSync(path, 'latin1');
  } catch {
    return null;
  }
  return parseStat(text);
}
