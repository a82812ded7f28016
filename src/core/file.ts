/** One open file description of a device node: the model's `File<S>`. */
import { closeSync, openSync } from 'node:fs';
import { O_NONBLOCK, type OpenContext } from '../devio.js';
import { preadOrErrno } from '../sys/ffi.js';
import type { File, Instance } from './model.js';
import type { WaitQueue } from './waitqueue.js';

export class OpenFile<S> implements File<S> {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  readonly openFlags: number;
  flags: number;
  readonly comm: string;
  readonly openedAt = Date.now();
  /** Read and write calls made through this file, counted as the device's `reads` and `writes` are: who made them, where a device serves several clients. */
  reads = 0;
  writes = 0;
  private: unknown = undefined;
  /** On a device with regions, the opener's process (Instance.noteOpener): whose mappings hold the file. */
  openerProcess: number | null = null;
  /** Set by the one release; later calls on the file are refused. */
  closed = false;
  /**
   * A fault failed a poll of the file: its polls answer POLLERR until the
   * program's next read, write or ioctl on it, as a driver's error
   * condition persists until the program looks. A POLLERR of one poll
   * alone never reaches an epoll program: epoll polls again before it
   * reports an event (fs/eventpoll.c ep_send_events()).
   */
  pollFailed = false;
  /** What poll answers once unplug began, fixed when the gate closed (unplug-answers.ts freezeUnplugPoll). */
  unplugPoll: number | null = null;
  private unpoll: (() => void) | null = null;

  constructor(
    readonly id: number,
    readonly instance: Instance<S>,
    ctx: OpenContext,
  ) {
    this.pid = ctx.pid;
    this.uid = ctx.uid;
    this.gid = ctx.gid;
    this.openFlags = ctx.flags;
    this.flags = ctx.flags;
    this.comm = readComm(ctx.pid);
  }

  get nonblock(): boolean {
    return (this.flags & O_NONBLOCK) !== 0;
  }

  /**
   * One poll registration per file: a newer POLL supersedes the older one
   * (fuse keeps one poll handle per file), so a program polling in a loop
   * with a timeout does not pile up callbacks on a quiet device.
   */
  pollWait(wq: WaitQueue, notify: () => void): void {
    this.cancelPoll();
    this.unpoll = wq.pollWait(notify);
  }

  cancelPoll(): void {
    this.unpoll?.();
    this.unpoll = null;
  }
}

/** TASK_COMM_LEN is 16 with the NUL; procfs adds a newline (proc_task_name()). */
const commBuf = Buffer.alloc(64);

/**
 * Open /proc/PID/comm files of recent openers, oldest first. Such an fd
 * stays bound to its task: a read through it shows the current name (after
 * exec or PR_SET_NAME) and fails ESRCH once the task has exited, even if
 * the pid was reused (comm_show() -> get_proc_task()), so it is a cache
 * that cannot answer for the wrong process. A program that opens in a loop
 * costs one pread per open instead of open, read and close.
 */
const commFds = new Map<number, number>();
const COMM_FDS_KEPT = 32;

/**
 * Read synchronously, at open, so fault rules and events see the name from
 * the first op. procfs never touches our mount and answers at once; the
 * async API would queue on libuv's pool, which clients of the mount inside
 * this process can fill with blocked calls.
 */
export function readComm(pid: number): string {
  const kept = commFds.get(pid);
  if (kept !== undefined) {
    const name = readCommFd(kept);
    if (name !== null) return name;
    commFds.delete(pid);
    closeSync(kept);
  }
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/comm`, 'r');
  } catch {
    return ''; // the opener has exited already
  }
  const name = readCommFd(fd);
  if (name === null) {
    closeSync(fd);
    return ''; // exited between open and read
  }
  commFds.set(pid, fd);
  if (commFds.size > COMM_FDS_KEPT) {
    const [oldPid, oldFd] = commFds.entries().next().value as [number, number];
    commFds.delete(oldPid);
    closeSync(oldFd);
  }
  return name;
}

/**
 * The name through an open comm fd, or null once its task has exited
 * (ESRCH). pread through sys/ffi rather than fs.readSync: it is on every
 * OPEN's path, and readSync's argument checks and libuv request cost about
 * half a microsecond more per call (an open+close loop, measured on Node 20).
 */
function readCommFd(fd: number): string | null {
  const n = preadOrErrno(fd, commBuf, commBuf.length, 0);
  if (n < 0) return null;
  const end = n > 0 && commBuf[n - 1] === 0x0a ? n - 1 : n;
  return commBuf.toString('utf8', 0, end);
}
