/**
 * Which file descriptors of a process point into the mount: the "held fd"
 * in a leak report. Read from /proc/PID/fd; procfs answers readlink itself
 * and never sends a request to our mount.
 */
import { readdirSync, readlinkSync } from 'node:fs';

export function heldFds(pid: number, mountpoint: string): Array<{ fd: number; path: string }> {
  const prefix = mountpoint.endsWith('/') ? mountpoint : mountpoint + '/';
  const out: Array<{ fd: number; path: string }> = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out; // exited, or not ours to read
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith(prefix)) out.push({ fd: Number(fd), path: target });
    } catch {
      // closed meanwhile
    }
  }
  return out.sort((a, b) => a.fd - b.fd);
}
