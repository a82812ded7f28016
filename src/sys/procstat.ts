/**
 * /proc/PID/stat and /proc/PID/task/TID/stat (proc_pid_stat(5); written
 * by do_task_stat() in fs/proc/array.c): "pid (comm) state ppid ...".
 * comm is whatever name the task gave itself (prctl(PR_SET_NAME), up to
 * 15 bytes), spaces and parentheses included, so it runs from the first
 * "(" to the last ")", and the other fields are counted from there.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  comm: string;
  /** One letter: R running, S sleeping, D uninterruptible, T stopped, t tracing stop, Z zombie, X dead... */
  state: string;
  ppid: number;
  /** Process group and session (fields 5 and 6). */
  pgrp: number;
  session: number;
  /** Clock ticks after boot (field 22, starttime): with the pid, names one process. */
  start: number;
}

/** Whether the task has exited (a zombie, Z, not yet reaped, or X): it runs nothing again, and a signal does nothing to it. */
export const exited = (s: ProcStat): boolean => s.state === 'Z' || s.state === 'X';

/** Whether task `pid` is there and has not exited (one stopped by SIGSTOP has not). */
export function taskRuns(pid: number): boolean {
  const s = readStat(`/proc/${pid}/stat`);
  return s !== null && !exited(s);
}

/** The fields of a stat line; null if it is not one. */
export function parseStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  // After ") ": field 3 (state), 4 (ppid), 5 (pgrp), 6 (session) ... 22 (starttime).
  const f = text.slice(close + 2).split(' ');
  if (f.length < 20) return null;
  return { comm: text.slice(open + 1, close), state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), start: Number(f[19]) };
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

/**
 * Every process /proc lists now, by pid (thread group leaders: a thread's
 * own id is not listed, though /proc/TID can be read).
 */
export const allProcesses = (): Map<number, ProcStat> => statsIn('/proc');

/** The threads of process `pid` (its own among them), by id; empty if it is gone. */
export const threadStats = (pid: number): Map<number, ProcStat> => statsIn(`/proc/${pid}/task`);

/** The stat of each task `dir` lists (/proc, /proc/PID/task), by id; one that exits during the listing is left out. */
function statsIn(dir: string): Map<number, ProcStat> {
  const stats = new Map<number, ProcStat>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return stats;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(`${dir}/${name}/stat`);
    if (s) stats.set(Number(name), s);
  }
  return stats;
}
