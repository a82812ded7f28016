/**
 * The program under test and its descendants, as /proc shows them now:
 * who may act as the TCM-USER family's consumer (./netlink.ts). The kernel
 * lets only CAP_NET_ADMIN talk to the family (GENL_ADMIN_PERM on every
 * command in target_core_user.c tcmu_genl_ops); the emulated one sits on
 * NETLINK_USERSOCK, which any process of the network namespace can reach,
 * so it asks instead whether a datagram's sender (the pid the kernel
 * recorded when it was sent, SCM_CREDENTIALS) belongs to the program.
 *
 * A pid is in the tree if following its parents (/proc/PID/stat, ppid)
 * reaches the program's pid, with the program's start time (a pid the
 * program left and another process took is not the program). The walk
 * stops at the first process that started before the program: none of
 * the program's descendants can have, so a stranger costs a read or two.
 */
import { readFileSync } from 'node:fs';

/** Parents followed at most: deeper than any process tree a consumer builds. */
const MAX_DEPTH = 64;

interface ProcStat {
  ppid: number;
  /** Clock ticks after boot (proc_pid_stat(5) field 22, starttime): with the pid, names one process. */
  start: number;
}

/** /proc/PID/stat's ppid and starttime, or null if there is no such process. */
function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // fields are counted from the last ")". Field 4 (ppid) is the second
  // after it, field 22 (starttime) the twentieth.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), start: Number(f[19]) };
}

export class ProgramTree {
  private root: { pid: number; start: number } | null = null;

  /** The program under test has started as `pid`; until then no pid is in the tree. */
  started(pid: number): void {
    const s = procStat(pid);
    this.root = s ? { pid, start: s.start } : null;
  }

  /** Whether `pid` is the program or one of its descendants, now. */
  contains(pid: number): boolean {
    const root = this.root;
    if (!root || pid <= 0) return false;
    let p = pid;
    for (let depth = 0; depth < MAX_DEPTH && p > 0; depth++) {
      const s = procStat(p);
      if (!s || s.start < root.start) return false;
      if (p === root.pid) return s.start === root.start;
      p = s.ppid;
    }
    return false;
  }
}
