/**
 * Every process an instance of the program under test started, found by
 * its parent links (/proc/PID/stat, ppid; procstat.ts), for stop() to end
 * and for the count window (window.ts) to tell its events from the next
 * instance's. Its process group is not enough: a child can leave it
 * (setsid(2), setpgid(2)) and would outlive the stop and the run.
 *
 * The parent links hold only while the parent lives: once it has exited,
 * its children are reparented to a subreaper or init (kernel/exit.c
 * forget_original_parent()). So the tree is collected before each signal,
 * from the program and from every member still alive, and kept: a member
 * whose parent the signal killed is still signalled later. A process
 * orphaned before the first collection (the program had exited on its
 * own, a daemon's double fork) is found by its environment instead: the
 * program is started with MARK_VARIABLE set to this tree's `mark`, which
 * what it starts inherits (/proc/PID/environ, as it was at its exec); one
 * that cleared its environment and then lost its parent is found only
 * where the run follows the kernel's process events (`known`: as root,
 * process-crashes.ts), which saw it born.
 *
 * Each member is kept with its start time (field 22), which with the pid
 * names one process: a pid that exited and was taken by another process
 * is never signalled, nor taken for the member.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { allProcesses, exited, readStat, threadStats, type ProcStat } from '../sys/procstat.js';

/** The environment variable that marks the program's processes (see the top of this file). */
export const MARK_VARIABLE = 'CDEVEMU_PROGRAM_TREE';

export class ProcessTree {
  /** The value of MARK_VARIABLE in the program's environment. */
  readonly mark = randomUUID();
  private root: { pid: number; start: number } | null = null;
  /** Each process found in the tree: pid -> start time. */
  private readonly members = new Map<number, number>();
  /**
   * Each thread of those processes (its process's own id among them) ->
   * the thread's start time: an event's `pid` is a thread's id where the
   * kernel gave it (a FUSE request's header: fs/fuse/dev.c
   * fuse_force_creds(), task_pid(current)).
   */
  private readonly tasks = new Map<number, number>();

  /** `known`: processes of the tree known otherwise than by /proc, alive or not (the kernel's process events). */
  constructor(private readonly known: () => readonly number[] = () => []) {}

  /** Roots the tree at `pid`, just spawned with the mark (its start time is read now). */
  rootAt(pid: number | undefined): void {
    const s = pid ? readStat(`/proc/${pid}/stat`) : null;
    this.root = pid && s ? { pid, start: s.start } : null;
  }

  /**
   * Adds what /proc shows now: the program if it is still there, every
   * descendant of it and of each member still alive, and their threads.
   */
  collect(): void {
    const all = allProcesses();
    const children = new Map<number, number[]>();
    for (const [pid, s] of all) {
      const of = children.get(s.ppid);
      if (of) of.push(pid);
      else children.set(s.ppid, [pid]);
    }
    const found: number[] = [];
    const seen = new Set<number>();
    const visit = (pid: number, s: ProcStat): void => {
      if (seen.has(pid)) return;
      seen.add(pid);
      this.members.set(pid, s.start);
      found.push(pid);
    };
    const same = (pid: number, start: number): ProcStat | undefined => (all.get(pid)?.start === start ? all.get(pid) : undefined);
    const root = this.root ? same(this.root.pid, this.root.start) : undefined;
    if (this.root && root) visit(this.root.pid, root);
    for (const [pid, start] of this.members) {
      const s = same(pid, start);
      if (s) visit(pid, s);
    }
    // Orphans, by the mark or as the process events knew them: only processes started since the program can be its.
    const marked = `${MARK_VARIABLE}=${this.mark}`;
    const since = (s: ProcStat | undefined): s is ProcStat => this.root !== null && s !== undefined && s.start >= this.root.start;
    for (const pid of this.known()) if (since(all.get(pid))) visit(pid, all.get(pid)!);
    for (const [pid, s] of all) if (since(s) && !seen.has(pid) && carries(pid, marked)) visit(pid, s);
    // Breadth first: the children of a process found are its own, as it is the process collected.
    for (let i = 0; i < found.length; i++) {
      for (const c of children.get(found[i]!) ?? []) visit(c, all.get(c)!);
    }
    for (const pid of found) for (const [tid, t] of threadStats(pid)) this.tasks.set(tid, t.start);
  }

  /**
   * Sends `signal` to each member that is still the process collected and
   * has not exited, but those in process group `signalled`: a signal sent
   * to the group reached them, and a second could be taken for a second
   * request (a program that ends at once on another SIGTERM).
   */
  signal(signal: NodeJS.Signals, signalled: number | undefined): void {
    for (const [pid, s] of this.live()) {
      if (s.pgrp === signalled) continue;
      try {
        process.kill(pid, signal);
      } catch {
        // exited since
      }
    }
  }

  /** The members still running or able to (not exited; the same process as collected). */
  alive(): number[] {
    return this.live().map(([pid]) => pid);
  }

  /** Those members, each with its stat as read now. */
  private live(): [number, ProcStat][] {
    return [...this.members].flatMap(([pid, start]): [number, ProcStat][] => {
      const s = readStat(`/proc/${pid}/stat`);
      return s && s.start === start && !exited(s) ? [[pid, s]] : [];
    });
  }

  /**
   * Whether `id` (a process's or a thread's) was one of the tree's when
   * collected, or is its root (known from the start: a program that exits
   * before any collection still had its own process), and no other task
   * has taken it since.
   */
  had(id: number): boolean {
    const start = this.tasks.get(id) ?? (id === this.root?.pid ? this.root.start : undefined);
    if (start === undefined) return false;
    const now = readStat(`/proc/${id}/stat`);
    return now === null || now.start === start;
  }
}

/** Whether the environment `pid` was started with holds `entry` (KEY=VALUE, one of its NUL-separated entries); false where it cannot be read (another user's). */
function carries(pid: number, entry: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(entry);
  } catch {
    return false;
  }
}
