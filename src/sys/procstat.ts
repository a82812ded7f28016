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
  /** Clock ticks after boot (field 22, starttime): with the pid, names one process. */
  start: number;
}

/** The fields of a stat line; null if it is not one. */
export function parseStat(text: string): ProcStat | null {
  const f = fieldsAfterComm(text);
  if (!f) return null;
  return { comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), state: f[0]!, ppid: Number(f[1]), start: Number(f[19]) };
}

/** The stat file at `path` (`/proc/PID/stat`, `/proc/PID/task/TID/stat`), or null if the task is gone. */
export function readStat(path: string): ProcStat | null {
  const text = readStatText(path);
  return text === null ? null : parseStat(text);
}

/** The process group of process `pid` (field 5, pgrp), or null if it is gone. */
export function readProcessGroup(pid: number): number | null {
  const text = readStatText(`/proc/${pid}/stat`);
  const f = text === null ? null : fieldsAfterComm(text);
  return f ? Number(f[2]) : null;
}

/** After ") ": field 3 (state), 4 (ppid), 5 (pgrp) ... 22 (starttime); null if `text` is not a stat line. */
function fieldsAfterComm(text: string): string[] | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const f = text.slice(close + 2).split(' ');
  return f.length < 20 ? null : f;
}

function readStatText(path: string): string | null {
  try {
    // latin1: one character per byte, whatever bytes the name holds.
    return readFileSync(path, 'latin1');
  } catch {
    return null;
  }
}

/**
 * Every process /proc lists now (thread group leaders: a thread's own id is
 * not listed, though /proc/TID can be read), by pid; one that exits during
 * the listing is left out.
 */
export function allProcesses(): Map<number, ProcStat> {
  const all = new Map<number, ProcStat>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return all;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(`/proc/${name}/stat`);
    if (s) all.set(Number(name), s);
  }
  return all;
}

/** The ids of the threads of process `pid` (its own among them, /proc/PID/task), each with its stat; empty if it is gone. */
export function threadStats(pid: number): Map<number, ProcStat> {
  const threads = new Map<number, ProcStat>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    const s = readStat(`/proc/${pid}/task/${tid}/stat`);
    if (s) threads.set(Number(tid), s);
  }
  return threads;
}
