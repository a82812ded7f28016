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
import { readStat, type ProcStat } from '../sys/procstat.js';

/** Parents followed at most: deeper than any process tree a consumer builds. */
const MAX_DEPTH = 64;

/** /proc/PID/stat's ppid and starttime, or null if there is no such process. */
function procStat(pid: number): ProcStat | null {
  return readStat(`/proc/${pid}/stat`);
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
