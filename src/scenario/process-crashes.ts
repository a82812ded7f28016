/**
 * A crash of any process the program under test started fails the run
 * (README.md, "What a scenario checks"), not only the program's own: a
 * daemon's worker, or the client a shell script runs, that dies of
 * SIGSEGV at an unplug while the program exits 0 (or runs on until the
 * run stops it) would otherwise pass.
 *
 * The kernel reports each process's end, with its wait status, on the
 * process events connector (src/netlink/proc-events.ts). By then the
 * process is gone, and with it the /proc entry that would say whose it
 * was (tree.ts collects the tree from /proc at each signal, too late for
 * a child born and crashed between two collections). So the tree is
 * followed on the events themselves, from the program's start: the
 * program's pid is a member from the moment it is spawned, each process a
 * member forks (PROC_EVENT_FORK, parent_tgid; a new thread is no new
 * member) is one from its birth, whoever it is reparented to later (a
 * double fork's orphan stays one), and the exit of its last thread ends
 * its membership (PROC_EVENT_EXIT comes for each thread; a thread is a
 * fork whose child pid is not its tgid). Its main thread's exit is not
 * enough: a main thread that called pthread_exit() is reported with status
 * 0 at once, while the other threads run on and may still crash, which
 * their own exits then report (each ends with the group's exit code:
 * kernel/exit.c do_group_exit()). Events come in the order the
 * kernel queued them, and an exit is queued in do_exit() before the
 * parent can reap it (kernel/exit.c: proc_exit_connector() before
 * exit_notify()), so the exit of a pid's previous holder always comes
 * before the fork that reuses it. Only the program's own pid is known out
 * of that order, at its spawn: an event naming it is taken only if its
 * timestamp (CLOCK_MONOTONIC) is not earlier than the moment before the
 * spawn.
 *
 * A member's death by one of program-ends.ts's CRASH_SIGNALS that the run
 * did not send that instance of the program is a `process_crashed` event
 * (run-events.ts); the program's own end is program-ends.ts's. Each
 * fails the run unless a wait or an expectation of the scenario is about
 * it (values.ts judgedBy), which then judges it itself. Where this
 * process may not listen (an ordinary user: it needs CAP_NET_ADMIN in the
 * initial user namespace), or the kernel dropped events, the run ends
 * with a note saying that a crash may have gone unseen.
 */
import { constants } from 'node:os';
import type { DeviceEvent } from '../core/events.js';
import { ProcEventListener, type ProcEvent } from '../netlink/proc-events.js';
import { readStat } from '../sys/procstat.js';
import { crashedBy } from './program-ends.js';
import { RunEvent, runEvent } from './run-events.js';

/**
 * The `comm` of a process that exec'd and was gone before its new name
 * could be read (a short-lived client under load). Longer than any name
 * the kernel keeps (TASK_COMM_LEN), so it is never a real one, and a
 * filter cannot ask for it (check.ts refuses such a `comm`).
 */
export const NAME_UNREAD = '<exited before its name was read>';

/** A process of one instance's tree. */
interface Member {
  /** The instance of the program it belongs to (1 for the first). */
  instance: number;
  /** CLOCK_MONOTONIC ns from which events naming its pid are its own. */
  since: bigint;
  comm: string;
  ppid: number;
  /** The name of the process that started it, as it was then. */
  parentComm: string;
  /** The instance's root: the program itself, judged by program-ends.ts. */
  root: boolean;
  /** Whether the run sent that instance this signal. */
  sent: (s: NodeJS.Signals) => boolean;
  /** Its threads that have not exited, the main thread counted while it runs. */
  threads: number;
}

/**
 * The other names of a signal's number (signal(7)), which os.constants
 * lists after the name: 6 is SIGABRT, as Node names a death by it and as
 * CRASH_SIGNALS has it; taken for SIGIOT, an abort(3) was no crash.
 */
const ALIASES: ReadonlySet<string> = new Set(['SIGIOT', 'SIGPOLL']);

/** Signal number -> name. */
const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).flatMap(([name, n]) => (ALIASES.has(name) ? [] : [[n, name as NodeJS.Signals] as const])),
);

/** How many crashes the failure names; it counts the rest. */
const MAX_NAMED = 10;

export class ProcessCrashes {
  private listener: ProcEventListener | null = null;
  /** Why no process events are watched; null once listening. */
  private unavailableWhy: string | null = 'not started';
  /** Why some events may be missing (the kernel dropped some), or null. */
  private lostWhy: string | null = null;
  private readonly members = new Map<number, Member>();
  private readonly crashes: { e: DeviceEvent; instance: number; parentComm: string }[] = [];

  constructor(
    /** Whether a wait or an expectation of the scenario is about a crash: then it judges it (values.ts judgedBy). */
    private readonly judged: (e: DeviceEvent) => boolean,
    /** Each crash as it is seen, with the instance whose process it was. */
    private readonly onCrash: (e: DeviceEvent, instance: number, parentComm: string) => void,
  ) {}

  /** Starts listening, before the program starts: its fork must be among the events. */
  async start(): Promise<void> {
    const l = await ProcEventListener.open({ onEvent: (e) => this.onEvent(e), onLost: (why) => (this.lostWhy ??= why) });
    if (l instanceof ProcEventListener) {
      this.listener = l;
      this.unavailableWhy = null;
    } else this.unavailableWhy = l.unavailable;
  }

  /** Why crashes of the program's processes are not seen in this run, or null when they are. */
  get unavailable(): string | null {
    return this.unavailableWhy;
  }

  /**
   * Makes instance `instance`'s program, spawned as `pid` just after the
   * monotonic time `since` (process.hrtime.bigint()), the root of a tree.
   * Called in the same turn as the spawn: no event is read in between.
   */
  track(instance: number, pid: number | undefined, since: bigint, sent: (s: NodeJS.Signals) => boolean): void {
    if (!this.listener || pid === undefined) return;
    this.members.set(pid, { instance, since, comm: readStat(`/proc/${pid}/stat`)?.comm ?? '?', ppid: process.pid, parentComm: 'cdevemu', root: true, sent, threads: 1 });
  }

  /** Reads every event the kernel has queued by now: the exits of every process that has exited are among them. */
  sync(): void {
    this.listener?.drain();
  }

  /**
   * The processes of instance `instance`'s tree the events saw born and
   * not end, once every event queued by now is read: a pid whose holder
   * exited is no longer among them (its exit is queued before the pid can
   * be reused), so each is the member itself, for the run's stop to end
   * (tree.ts), an orphan that cleared its environment included.
   */
  processesOf(instance: number): number[] {
    this.sync();
    return [...this.members].filter(([, m]) => m.instance === instance).map(([pid]) => pid);
  }

  /** Why the run fails for crashes of the program's processes, or null. */
  failure(): string | null {
    const crashes = this.crashes.filter((c) => !this.judged(c.e));
    if (crashes.length === 0) return null;
    const instances = new Set(crashes.map((c) => c.instance)).size > 1 || crashes.some((c) => c.instance > 1);
    const lines = crashes
      .slice(0, MAX_NAMED)
      .map(({ e, instance, parentComm }) => `${describeCrash(e, parentComm)}${instances ? ` (instance ${instance} of the program)` : ''}, a signal the run did not send: it crashed`);
    if (crashes.length > MAX_NAMED) lines.push(`and ${crashes.length - MAX_NAMED} more (each a process_crashed event)`);
    lines.push('whatever the program did next (a scenario that expects this says so: expect: { event: { type: process_crashed }, count: 1 })');
    return lines.join('\n');
  }

  /** The note the run ends with when a crash may have gone unseen, or null. */
  note(): string | null {
    const why = this.unavailableWhy ?? this.lostWhy;
    if (why === null) return null;
    const what = this.unavailableWhy ? 'crashes of the processes the program started are not watched in this run' : 'a crash of a process the program started may have gone unseen';
    return `note: ${what}: ${why}; the program's own exit still shows its own crash`;
  }

  async close(): Promise<void> {
    await this.listener?.close();
    this.listener = null;
  }

  private onEvent(e: ProcEvent): void {
    switch (e.kind) {
      case 'fork': {
        if (e.childPid !== e.childTgid) {
          // A new thread of process childTgid (its parent_tgid is that process's parent, whose real_parent a thread shares).
          const m = this.member(e.childTgid, e.at);
          if (m) m.threads++;
          return;
        }
        const parent = this.member(e.parentTgid, e.at);
        if (!parent) return;
        this.members.set(e.childTgid, {
          instance: parent.instance,
          since: e.at,
          comm: parent.comm, // a child has its parent's name until it execs or renames itself
          ppid: e.parentTgid,
          parentComm: parent.comm,
          root: false,
          sent: parent.sent,
          threads: 1,
        });
        return;
      }
      case 'exec': {
        // The kernel names the process after the file it runs (fs/exec.c begin_new_exec()), and sends no comm event then: read it while it runs.
        // A process that ran and ended before this event was read is gone from /proc; its old name would be a wrong one.
        const m = this.member(e.tgid, e.at);
        if (m) m.comm = readStat(`/proc/${e.tgid}/stat`)?.comm ?? NAME_UNREAD;
        return;
      }
      case 'comm': {
        const m = e.pid === e.tgid ? this.member(e.tgid, e.at) : undefined;
        if (m) m.comm = e.comm;
        return;
      }
      case 'exit':
        return this.exited(e);
      case 'ack':
        return;
    }
  }

  /** The member holding pid `tgid` at monotonic time `at`. */
  private member(tgid: number, at: bigint): Member | undefined {
    const m = this.members.get(tgid);
    return m && at >= m.since ? m : undefined;
  }

  private exited(e: Extract<ProcEvent, { kind: 'exit' }>): void {
    const m = this.member(e.tgid, e.at);
    if (!m) return;
    // The wait status: the fatal signal in its low 7 bits, 0x80 if it dumped core (kernel/exit.c, include/uapi/linux/wait.h).
    // A fatal signal ends every thread of the process, each with it: the first to exit says it, and the process is over.
    const signal = SIGNAL_NAMES.get(e.status & 0x7f);
    if (signal || --m.threads <= 0) this.members.delete(e.tgid);
    if (m.root || !signal || !crashedBy(signal, m.sent)) return;
    const crash = runEvent(RunEvent.process_crashed, { pid: e.tgid, comm: m.comm, signal, core: (e.status & 0x80) !== 0, ppid: m.ppid });
    this.crashes.push({ e: crash, instance: m.instance, parentComm: m.parentComm });
    this.onCrash(crash, m.instance, m.parentComm);
  }
}

/** `pid 4242 (python3), started by pid 4240 (sh), was killed by SIGSEGV (core dumped)`. */
export function describeCrash(e: DeviceEvent, parentComm: string): string {
  return `pid ${String(e.pid)} (${String(e.comm)}), started by pid ${String(e.ppid)} (${parentComm}), was killed by ${String(e.signal)}${e.core ? ' (core dumped)' : ''}`;
}
