/**
 * Client processes for tests. Every process started here is tracked by pid
 * and killed (only it, by pid) when the test file ends, pass or fail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll } from 'vitest';

const started = new Set<ChildProcess>();

afterAll(() => {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
  }
  started.clear();
});

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, ms. */
  ms: number;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** How long a command told to stop at its timeout has before it is killed. */
const STOP_GRACE_MS = 10_000;

/**
 * Runs a command to completion. After timeoutMs (default 15 s) it is told
 * to stop, SIGTERM, and killed (SIGKILL) if it has not within
 * STOP_GRACE_MS: a `cdevemu run` stopped so ends its program and unmounts,
 * where SIGKILL would leave its mount behind, dead.
 */
export function run(cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: o.env ?? process.env, cwd: o.cwd ?? '/' });
  started.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.on('error', () => {});
  if (o.input !== undefined) child.stdin!.end(o.input);
  else child.stdin!.end();
  let kill: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    child.kill('SIGTERM');
    kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  }, o.timeoutMs ?? 15_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(kill);
      started.delete(child);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** Runs a python3 program given as source text, with argv after it. */
export function python(source: string, args: string[] = [], o: RunOptions = {}): Promise<RunResult> {
  return run('python3', ['-c', source, ...args], o);
}

/**
 * A long-running client that reports by lines on stdout and can be told
 * things on stdin: `await p.line()` waits for its next output line.
 */
export class Interactive {
  readonly child: ChildProcess;
  private buf = '';
  private lines: string[] = [];
  private waiters: Array<(l: string) => void> = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: '/', env: env ?? process.env });
    started.add(this.child);
    this.child.stdin!.on('error', () => {});
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(l);
        else this.lines.push(l);
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code, signal) => {
        started.delete(this.child);
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Whether the process has printed anything not yet taken by line() (a partial line included). */
  get printed(): boolean {
    return this.lines.length > 0 || this.buf.length > 0;
  }

  /** The next line of output; rejects after timeoutMs or if the process exits first. */
  line(timeoutMs = 10_000): Promise<string> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line within ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      const onExit = (): void => {
        clearTimeout(timer);
        reject(new Error(`process exited before printing a line; stderr: ${this.stderr}`));
      };
      this.child.once('close', onExit);
      this.waiters.push((l) => {
        clearTimeout(timer);
        this.child.off('close', onExit);
        resolve(l);
      });
    });
  }

  send(line: string): void {
    this.child.stdin!.write(line + '\n');
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** Starts a python3 program that talks by lines. */
export function pythonInteractive(source: string, args: string[] = []): Interactive {
  return new Interactive('python3', ['-u', '-c', source, ...args]);
}
