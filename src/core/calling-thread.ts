/**
 * The thread a model call came from: what fault rules match (README.md,
 * "Fault injection") and what in-flight listings and `stuck` reports
 * name. A rule's `pid` and `comm` name a process, and a call comes
 * from a thread, the one in the FUSE request's header
 * (fuse_in_header.pid is current->pid: fs/fuse/dev.c fuse_force_creds()).
 * A program's worker thread, or a child it forked with the descriptor,
 * calls on a file another thread opened; the rule is about who calls.
 *
 * What /proc says is read only when a rule asks (the interceptor runs only
 * while rules are in force), once per call, and at the call: a thread
 * renamed since the open (PR_SET_NAME) shows its name of now.
 */
import { processOfSync } from '../sys/procmaps.js';
import { readComm } from './file.js';

export class CallingThread {
  private process: number | null | undefined;

  /**
   * `name` and `process`, where the caller knows them already: an open's
   * (read as it opens), a release's (the opener's, the kernel sends no
   * caller for it).
   */
  constructor(
    readonly tid: number,
    private known: { name?: string; process?: number | null } = {},
  ) {
    this.process = known.process ?? undefined;
  }

  /** The thread's name ('' once it has exited). */
  get name(): string {
    return (this.known.name ??= readComm(this.tid));
  }

  /** Whether this is thread `pid`, or a thread of process `pid`. */
  of(pid: number): boolean {
    return this.tid === pid || this.processId() === pid;
  }

  /** Whether this thread, or the process it is a thread of, is named `comm`. */
  named(comm: string): boolean {
    if (this.name === comm) return true;
    const p = this.processId();
    return p !== null && p !== this.tid && readComm(p) === comm;
  }

  private processId(): number | null {
    if (this.process === undefined) this.process = processOfSync(this.tid);
    return this.process;
  }
}
