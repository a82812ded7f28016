/**
 * Which socket holds each port of a netlink protocol in this network
 * namespace, from /proc/net/netlink (net/netlink/af_netlink.c
 * netlink_seq_show(): "sk Eth Pid Groups Rmem Wmem Dump Locks Drops
 * Inode", one socket a line). A port is only a number: once its socket
 * closes, any process may bind it, so a receiver that must keep talking to
 * one socket remembers the inode it saw and checks it before each send.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Port -> socket inode, for the bound sockets of `protocol`. */
export function boundPorts(protocol: number): Map<number, number> {
  const ports = new Map<number, number>();
  for (const line of readFileSync('/proc/net/netlink', 'latin1').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || Number(f[1]) !== protocol) continue;
    const port = Number(f[2]);
    if (port !== 0) ports.set(port, Number(f[9]));
  }
  return ports;
}

/** Whether process `pid` has socket `inode` open: one of its /proc/PID/fd links reads "socket:[INODE]". */
export function holdsSocket(pid: number, inode: number): boolean {
  const want = `socket:[${inode}]`;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === want;
    } catch {
      return false; // closed meanwhile
    }
  });
}
