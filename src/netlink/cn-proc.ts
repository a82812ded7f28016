/**
 * The process events connector's messages, pure (no I/O: the socket is
 * ./proc-events.ts). The kernel multicasts one message per process event
 * to the CN_IDX_PROC group of NETLINK_CONNECTOR (drivers/connector/cn_proc.c),
 * each a netlink message (type NLMSG_DONE) carrying, host-endian
 * (include/uapi/linux/connector.h, cn_proc.h):
 *
 *   struct cn_msg { struct cb_id { u32 idx; u32 val; } id; u32 seq; u32 ack; u16 len; u16 flags; u8 data[]; }   20 bytes
 *   struct proc_event { u32 what; u32 cpu; u64 timestamp_ns (aligned 8); union event_data (at 16); }
 *
 * with, in event_data:
 *
 *   fork: pid_t parent_pid, parent_tgid, child_pid, child_tgid;
 *   exec: pid_t process_pid, process_tgid;
 *   comm: pid_t process_pid, process_tgid; char comm[16];
 *   exit: pid_t process_pid, process_tgid; u32 exit_code, exit_signal; pid_t parent_pid, parent_tgid;
 *   ack:  u32 err   (what == PROC_EVENT_NONE)
 *
 * The ids are the initial pid namespace's: "pid" is a thread's id, "tgid"
 * its process's. An exit's `exit_code` is the task's wait status
 * (kernel/exit.c do_exit(): the fatal signal in the low 7 bits, 0x80 if it
 * dumped core, else the exit code << 8); its `exit_signal` is not the
 * fatal signal but the one its parent is sent (SIGCHLD; -1 for a thread).
 * `timestamp_ns` is ktime_get_ns(): CLOCK_MONOTONIC, the clock of
 * process.hrtime.bigint().
 *
 * A listener asks for the events with PROC_CN_MCAST_LISTEN sent to the
 * kernel (port 0), a u32 in a cn_msg addressed to CN_IDX_PROC/CN_VAL_PROC;
 * cn_proc_mcast_ctl() answers it on the group with a PROC_EVENT_NONE
 * whose `err` says whether it was taken (EPERM without CAP_NET_ADMIN)
 * and whose cn_msg `ack` is the request's `ack` plus one (cn_proc_ack()):
 * the token by which a listener knows the answer is to its own request
 * (the answer goes to every listener of the group). A
 * request from outside the initial user and pid namespaces is dropped
 * unanswered.
 */
import { NLMSG_DONE, NLMSG_HDRLEN, nlmsghdr, splitMessages } from './genl.js';

/* include/uapi/linux/connector.h */
export const CN_IDX_PROC = 0x1;
const CN_VAL_PROC = 0x1;
const CN_MSG_SIZE = 20;

/* include/uapi/linux/cn_proc.h */
export const PROC_CN_MCAST_LISTEN = 1;
export const PROC_CN_MCAST_IGNORE = 2;
const PROC_EVENT_NONE = 0x0;
const PROC_EVENT_FORK = 0x1;
const PROC_EVENT_EXEC = 0x2;
const PROC_EVENT_COMM = 0x200;
const PROC_EVENT_EXIT = 0x80000000;
/** Where event_data starts in struct proc_event, and the bytes each kind needs of it. */
const EVENT_DATA = 16;
const TASK_COMM_LEN = 16;

/** The events a listener of the program's processes uses; the kernel's other kinds (uid, sid, ptrace...) are left out. */
export type ProcEvent =
  /** The kernel's answer to a request whose cn_msg `ack` was `token`. */
  | { kind: 'ack'; token: number; err: number }
  /** A new task: a process when childPid == childTgid, else a thread of childTgid. */
  | { kind: 'fork'; at: bigint; parentTgid: number; childPid: number; childTgid: number }
  | { kind: 'exec'; at: bigint; pid: number; tgid: number }
  /** prctl(PR_SET_NAME) renamed a thread. */
  | { kind: 'comm'; at: bigint; pid: number; tgid: number; comm: string }
  /** A task ended; `status` is its wait status. */
  | { kind: 'exit'; at: bigint; pid: number; tgid: number; status: number; parentTgid: number };

/** The request to start (PROC_CN_MCAST_LISTEN) or stop (PROC_CN_MCAST_IGNORE) the events, from port `port`, answered with `token`. */
export function encodeMcastOp(op: number, token: number, port: number): Buffer {
  const cn = Buffer.alloc(CN_MSG_SIZE + 4);
  cn.writeUInt32LE(CN_IDX_PROC, 0);
  cn.writeUInt32LE(CN_VAL_PROC, 4);
  cn.writeUInt32LE(token >>> 0, 12); // ack: the answer's seq
  cn.writeUInt16LE(4, 16);
  cn.writeUInt32LE(op, CN_MSG_SIZE);
  return Buffer.concat([nlmsghdr(NLMSG_HDRLEN + cn.length, { type: NLMSG_DONE, flags: 0, seq: 0, pid: port }), cn]);
}

/** The process events of one datagram; messages of other connectors, other kinds, and short ones are skipped. */
export function decodeProcEvents(datagram: Buffer): ProcEvent[] {
  const out: ProcEvent[] = [];
  for (const m of splitMessages(datagram)) {
    const cn = m.payload;
    if (cn.length < CN_MSG_SIZE || cn.readUInt32LE(0) !== CN_IDX_PROC || cn.readUInt32LE(4) !== CN_VAL_PROC) continue;
    const data = cn.subarray(CN_MSG_SIZE, CN_MSG_SIZE + cn.readUInt16LE(16));
    const e = decodeEvent(data, (cn.readUInt32LE(12) - 1) >>> 0);
    if (e) out.push(e);
  }
  return out;
}

/** One struct proc_event (`token`: its cn_msg's `ack` less one, an answer's token). */
function decodeEvent(d: Buffer, token: number): ProcEvent | null {
  if (d.length < EVENT_DATA + 4) return null;
  const what = d.readUInt32LE(0);
  const at = d.readBigUInt64LE(8);
  const has = (bytes: number): boolean => d.length >= EVENT_DATA + bytes;
  const i32 = (off: number): number => d.readInt32LE(EVENT_DATA + off);
  switch (what) {
    case PROC_EVENT_NONE:
      return { kind: 'ack', token, err: d.readUInt32LE(EVENT_DATA) };
    case PROC_EVENT_FORK:
      return has(16) ? { kind: 'fork', at, parentTgid: i32(4), childPid: i32(8), childTgid: i32(12) } : null;
    case PROC_EVENT_EXEC:
      return has(8) ? { kind: 'exec', at, pid: i32(0), tgid: i32(4) } : null;
    case PROC_EVENT_COMM: {
      if (!has(8 + TASK_COMM_LEN)) return null;
      const name = d.subarray(EVENT_DATA + 8, EVENT_DATA + 8 + TASK_COMM_LEN);
      const nul = name.indexOf(0);
      return { kind: 'comm', at, pid: i32(0), tgid: i32(4), comm: name.subarray(0, nul < 0 ? name.length : nul).toString('utf8') };
    }
    case PROC_EVENT_EXIT:
      return has(24) ? { kind: 'exit', at, pid: i32(0), tgid: i32(4), status: d.readUInt32LE(EVENT_DATA + 8), parentTgid: i32(20) } : null;
    default:
      return null;
  }
}
