/**
 * The program under test: started in its own process group, its output
 * relayed line by line, its exit recorded. stop() ends it on every exit
 * path, with everything it started: SIGTERM to the group and to every
 * process of its tree (tree.ts: a child that left the group, by setsid(2)
 * say, is still in it), then SIGKILL if it lingers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { taskRuns } from '../sys/procstat.js';
import { MARK_VARIABLE, ProcessTree } from './tree.js';


export interface ProgramExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why the program itself never ran (it could not be spawned, or its bind namespace failed); its code is not its own then. */
  notStarted?: string;
}

export function describeExit(e: ProgramExit): string {
  if (e.notStarted) return `never started: ${e.notStarted}`;
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

export interface ProgramOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  onLine: (stream: 'out' | 'err', line: string) => void;
  /**
   * argv is a wrapper (bind.ts) that writes one byte to fd 3 when it has
   * done its part and execs the program: an exit without that byte is the
   * wrapper's failure, not an exit of the program.
   */
  readyPipe?: boolean;
  /** More of its processes than /proc can tell (ProcessTree's `known`). */
  known?: () => readonly number[];
}

export class Program {
  private readonly child: ChildProcess;
  private exitInfo: ProgramExit | null = null;
  readonly exited: Promise<ProgramExit>;
  /** What it started, collected at each signal that ends it: for the count window, which pids were this instance's (window.ts). */
  readonly tree: ProcessTree;
  /** The signals the run sent it: a death by another is its own (program-ends.ts). */
  private readonly sent = new Set<NodeJS.Signals>();

  constructor(argv: readonly string[], o: ProgramOptions) {
    this.tree = new ProcessTree(o.known);
    this.child = spawn(argv[0]!, argv.slice(1), {
      env: { ...o.env, [MARK_VARIABLE]: this.tree.mark },
      cwd: o.cwd ?? process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe', ...(o.readyPipe ? (['pipe'] as const) : [])],
      detached: true, // its own process group: stop() reaches the children that stay in it even once it has exited
    });
    this.tree.rootAt(this.child.pid);
    // Ends when the wrapper closes fd 3 before its exec, or dies: the program does not inherit it.
    const ready = o.readyPipe ? readyByte(this.child) : Promise.resolve(true);
    for (const [name, stream] of [['out', this.child.stdout!], ['err', this.child.stderr!]] as const) {
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          o.onLine(name, buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      stream.on('end', () => buf && o.onLine(name, buf));
    }
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        o.onLine('err', `cannot start ${argv[0]}: ${err.message}`);
        this.exitInfo = { code: null, signal: null, notStarted: `cannot start ${argv[0]}: ${err.message}` };
        resolve(this.exitInfo);
      });
      this.child.on('exit', (code, signal) => {
        void ready.then((started) => {
          const why = `its namespace could not be set up, or its command not executed there (${signal ? `killed by ${signal}` : `exit ${code}`}; see its output above)`;
          this.exitInfo = { code, signal, ...(started ? {} : { notStarted: why }) };
          resolve(this.exitInfo);
        });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** null while running. */
  get exit(): ProgramExit | null {
    return this.exitInfo;
  }

  /**
   * Whether it still runs: not only not reaped yet (Node learns of an exit
   * a turn of the event loop after SIGCHLD), but not a zombie either
   * (fs/proc/array.c: state Z, or X, in /proc/PID/stat, after the last
   * `)`). A program stopped by SIGSTOP has not exited: it runs.
   */
  get running(): boolean {
    if (this.exitInfo || !this.child.pid) return false;
    return taskRuns(this.child.pid);
  }

  /**
   * Ends the program and everything it started, its tree included (what
   * left its group); resolves once it has exited and the rest is gone, or
   * `graceMs` after the SIGKILL (a process in an uninterruptible sleep, a
   * FUSE request the daemon has taken and not answered, dies only when it
   * ends).
   */
  async stop(graceMs = 1000): Promise<ProgramExit> {
    if (this.exitInfo) {
      this.signalAll('SIGKILL'); // what it left behind, if any
      await this.gone(graceMs);
      return this.exitInfo;
    }
    this.signalAll('SIGTERM');
    const timer = setTimeout(() => this.signalAll('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(timer);
    this.signalAll('SIGKILL');
    await this.gone(graceMs);
    return e;
  }

  /** Whether the run sent it `signal` (a step, a stop, the end of the run). */
  wasSent(signal: NodeJS.Signals): boolean {
    return this.sent.has(signal);
  }

  /** Sends `signal` to the program alone (a `signal` step); false if it is gone. */
  send(signal: NodeJS.Signals): boolean {
    if (!this.child.pid) return false;
    this.sent.add(signal);
    try {
      process.kill(this.child.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends `signal` to the program's process group and to every process of
   * its tree, collected first: once the signal kills a parent its children
   * are reparented, out of the tree's reach (tree.ts).
   */
  signalAll(signal: NodeJS.Signals): void {
    // Once it has exited (a zombie Node has not reaped yet included) the
    // signal is for what it left behind (stop()'s SIGKILL), not the
    // program: it must not excuse a death by that signal the run did not
    // cause (the OOM killer's SIGKILL, program-ends.ts).
    if (this.running) this.sent.add(signal);
    this.tree.collect();
    this.killGroup(signal);
    this.tree.signal(signal, this.child.pid);
  }

  /** Sends `signal` to the program's process group: it and what it forked, unless that left the group. */
  private killGroup(signal: NodeJS.Signals): void {
    if (!this.child.pid) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // the group is gone
    }
  }

  /** Resolves once no process of the tree is left (zombies aside), or after `boundMs`. */
  private async gone(boundMs: number): Promise<void> {
    const end = performance.now() + boundMs;
    while (this.tree.alive().length > 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves true once fd 3 of `child` carries a byte, false if it closes without one. */
function readyByte(child: ChildProcess): Promise<boolean> {
  return new Promise((resolve) => {
    const fd3 = child.stdio[3] as NodeJS.ReadableStream | null;
    if (!fd3) return resolve(false);
    fd3.once('data', () => resolve(true));
    fd3.once('end', () => resolve(false));
    fd3.once('error', () => resolve(false));
    fd3.resume();
  });
}
