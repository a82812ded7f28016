/**
 * Counting the mappings processes hold on one file, from /proc/PID/maps,
 * for the processes that can hold one: never the whole host.
 *
 * A FUSE passthrough mapping is listed under the FUSE file
 * (file_user_inode/file_user_path of the backing file), so the file is
 * named by its FUSE device number and inode number. Who can map a device
 * node: a process that opened it (and may have closed it since, the
 * mapping staying), and a process that inherited such a mapping or the
 * descriptor by fork(), a descendant of one. The caller keeps the first
 * (the openers it saw, `candidates`); the count adds the second, found
 * through /proc/PID/task/TID/children, and keeps the descendants it finds
 * among the candidates, so one still counts after its parent exited.
 * Not counted: a descendant reparented (its forking parent exited) before
 * any count saw it, and a process that got the descriptor over a Unix
 * socket and mapped it without ever opening the node.
 *
 * Each maps file is read asynchronously, and once for all the counts that
 * want it at the same time: concurrent requests share the reads in flight.
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { within } from '../awaitable.js';

/**
 * A process whose maps are not read within this bound is not counted: its
 * mmap lock is held (by a page fault that may itself wait for this daemon,
 * e.g. a MAP_PRIVATE read of a device node), and unplug must not wait on it.
 */
const READ_BOUND_MS = 300;

/** The most processes one count looks at (openers and their descendants): a fork bomb under a device costs no more. */
export const MAX_COUNTED_PROCESSES = 4096;

/**
 * What counting has read, for tests and diagnostics: status, children and
 * maps files; and, while a test sets `mapsOf` to a set, the pids whose
 * maps were read.
 */
export const procReads: { status: number; children: number; maps: number; mapsOf: Set<number> | null } = { status: 0, children: 0, maps: 0, mapsOf: null };

/** Reads of /proc/PID/maps in flight, by pid: a count joins one another count started. */
const inflight = new Map<number, Promise<string | null>>();

function readMaps(pid: number): Promise<string | null> {
  let read = inflight.get(pid);
  if (!read) {
    procReads.maps++;
    procReads.mapsOf?.add(pid);
    read = within<string | null>(readFile(`/proc/${pid}/maps`, 'latin1'), READ_BOUND_MS, () => null)
      .catch(() => null) // exited meanwhile
      .finally(() => inflight.delete(pid));
    inflight.set(pid, read);
  }
  return read;
}

/** The Tgid line of a /proc/PID/status text. */
function tgidIn(status: string): number | null {
  const tgid = /^Tgid:\s*(\d+)$/m.exec(status)?.[1];
  return tgid === undefined ? null : Number(tgid);
}

/**
 * The process (thread group) of a pid FUSE reported, which is a thread's
 * (fuse_in_header.pid is current->pid); null once it exited. Threads
 * share one mm: counted once, by process.
 */
async function processOf(pid: number): Promise<number | null> {
  procReads.status++;
  return tgidIn(await readFile(`/proc/${pid}/status`, 'latin1').catch(() => ''));
}

/**
 * processOf, read at once: for the thread that is opening a device, which
 * waits in open(2) for our answer, so it cannot have exited yet. Its
 * mappings outlive it (a worker thread that opens, maps and exits), so
 * they are looked up by its process, which /proc/TID no longer leads to
 * once the thread is gone. procfs never touches our mount.
 */
export function processOfSync(tid: number): number | null {
  procReads.status++;
  try {
    return tgidIn(readFileSync(`/proc/${tid}/status`, 'latin1'));
  } catch {
    return null;
  }
}

/** The children of every thread of process `tgid` (fork() makes a child of the calling thread). */
async function childrenOf(tgid: number): Promise<number[]> {
  const tids = await readdir(`/proc/${tgid}/task`).catch(() => []);
  procReads.children += tids.length;
  const lists = await Promise.all(tids.map((tid) => readFile(`/proc/${tgid}/task/${tid}/children`, 'latin1').catch(() => '')));
  return lists.flatMap((l) => l.split(' ').filter(Boolean).map(Number));
}

/**
 * The mappings of (`dev`, `ino`) held by the processes in `candidates` and
 * their descendants. `candidates` is updated in place: a process that
 * exited leaves it, a descendant found joins it (up to
 * MAX_COUNTED_PROCESSES). `dev` as mountinfo prints it ("0:53"); maps
 * prints it "00:35" (hex).
 */
export async function countMappings(dev: string, ino: bigint, candidates: Set<number>): Promise<number> {
  const [major, minor] = dev.split(':').map((n) => parseInt(n, 10));
  const want = `${hex2(major!)}:${hex2(minor!)}`;
  const inode = String(ino);
  const seen = new Set<number>([process.pid]);
  const roots = await Promise.all(
    [...candidates].map(async (pid) => {
      const tgid = pid > 0 ? await processOf(pid) : null;
      if (tgid === null) candidates.delete(pid);
      return tgid;
    }),
  );
  // Breadth first from the candidates' processes, each once.
  let level = [...new Set(roots)].filter((tgid): tgid is number => tgid !== null && !seen.has(tgid));
  let total = 0;
  while (level.length > 0 && seen.size <= MAX_COUNTED_PROCESSES) {
    level = level.slice(0, MAX_COUNTED_PROCESSES + 1 - seen.size);
    for (const tgid of level) seen.add(tgid);
    const found = await Promise.all(level.map(async (tgid) => ({ n: count(await readMaps(tgid), want, inode), children: await childrenOf(tgid) })));
    const next: number[] = [];
    for (const f of found) {
      total += f.n;
      for (const child of f.children) {
        if (seen.has(child)) continue;
        next.push(child);
        // Kept: it still counts once its parent exits and it is reparented.
        if (candidates.size < MAX_COUNTED_PROCESSES) candidates.add(child);
      }
    }
    level = next;
  }
  return total;
}

function count(maps: string | null, want: string, inode: string): number {
  if (maps === null) return 0;
  let n = 0;
  for (const line of maps.split('\n')) {
    // address perms offset dev inode path
    const f = line.split(' ', 5);
    if (f[3] === want && f[4] === inode) n++;
  }
  return n;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

