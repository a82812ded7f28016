/**
 * The bench's C clients: built from bench/clients/*.c with gcc at start, and
 * run as child processes. The bench process serves the FUSE mount on its
 * main thread, so every access to the mount happens in a child started with
 * an asynchronous spawn; this process only waits for their output.
 *
 * Every child is tracked by pid so that a failure or a SIGINT kills exactly
 * the processes the bench started (killChildren()).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

const children = new Set<ChildProcess>();
let shuttingDown = false;

/**
 * SIGKILLs every child still running but those in `spare`, by pid, and
 * refuses to start more.
 */
export function killChildren(spare: ReadonlySet<number> = new Set()): void {
  shuttingDown = true;
  for (const child of children) {
    if (child.pid !== undefined && !spare.has(child.pid) && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function track(cmd: string, args: string[], duringShutdown = false): ChildProcess {
  if (shuttingDown && !duringShutdown) throw new Error('the bench is shutting down');
  // cwd '/' so that no child ever holds the mount (or the repo) as its cwd.
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
  children.add(child);
  child.on('close', () => children.delete(child));
  return child;
}

/**
 * Runs a command to completion; SIGKILLed after timeoutMs. Refused once
 * killChildren() ran, unless `duringShutdown` (the cleanup's own umount).
 */
export function run(cmd: string, args: string[], timeoutMs: number, duringShutdown = false): Promise<Exit> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = track(cmd, args, duringShutdown);
    } catch (err) {
      reject(err);
      return;
    }
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[bench: killed after ${timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function describe(cmd: string, args: string[], e: Exit): string {
  const how = e.signal ? `signal ${e.signal}` : `exit ${e.code}`;
  return `${cmd.split('/').pop()} ${args.join(' ')}: ${how}: ${e.stderr.trim() || '(no stderr)'}`;
}

/** Runs a client that prints one JSON object as its last line of output. */
export async function runJson<T>(cmd: string, args: string[], timeoutMs: number): Promise<T> {
  const e = await run(cmd, args, timeoutMs);
  if (e.code !== 0) throw new Error(describe(cmd, args, e));
  const last = e.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${describe(cmd, args, e)}: unparsable output ${JSON.stringify(e.stdout)}`);
  }
}

/** A client that reports by lines while it runs. */
export class LineClient {
  private readonly child: ChildProcess;
  private buf = '';
  private readonly lines: string[] = [];
  private waiter: ((l: string | null) => void) | null = null;
  private stderr = '';
  private closed = false;
  readonly exited: Promise<Exit>;

  constructor(
    private readonly cmd: string,
    private readonly args: string[],
  ) {
    this.child = track(cmd, args);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
      this.deliver();
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        this.closed = true;
        this.deliver();
        resolve({ code, signal, stdout: this.buf, stderr: this.stderr });
      });
    });
    this.exited.catch(() => {});
  }

  private deliver(): void {
    if (!this.waiter) return;
    const l = this.lines.shift();
    if (l !== undefined) {
      const w = this.waiter;
      this.waiter = null;
      w(l);
    } else if (this.closed) {
      const w = this.waiter;
      this.waiter = null;
      w(null);
    }
  }

  /** The next line; rejects if the client exits first or after timeoutMs. */
  line(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`${this.cmd.split('/').pop()} ${this.args.join(' ')}: no output within ${timeoutMs} ms; stderr: ${this.stderr.trim()}`));
      }, timeoutMs);
      this.waiter = (l) => {
        clearTimeout(timer);
        if (l === null) reject(new Error(`${this.cmd.split('/').pop()} ${this.args.join(' ')} exited early; stderr: ${this.stderr.trim()}`));
        else resolve(l);
      };
      this.deliver();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill(signal);
    }
  }
}

const found = async (cmd: string, args: string[]): Promise<boolean> =>
  run(cmd, args, 30_000).then((e) => e.code === 0, () => false);

/**
 * Makes sure gcc, pkg-config and libfuse3's headers are there: installed
 * with apt-get when missing and running as root, else a clear error naming
 * what is missing.
 */
export async function ensureBuildTools(): Promise<void> {
  const missing = async (): Promise<string[]> => {
    const m: string[] = [];
    if (!(await found('gcc', ['--version']))) m.push('gcc');
    if (!(await found('pkg-config', ['--version']))) m.push('pkg-config');
    else if (!(await found('pkg-config', ['--exists', 'fuse3']))) m.push('libfuse3-dev');
    return m;
  };
  let m = await missing();
  if (m.length === 0) return;
  if (process.getuid?.() !== 0 || !(await found('apt-get', ['--version']))) {
    throw new Error(`the bench needs ${m.join(', ')} (e.g. apt-get install ${m.join(' ')}); not root or no apt-get, so not installing`);
  }
  console.error(`bench: installing ${m.join(' ')} with apt-get`);
  const install = (): Promise<Exit> => run('apt-get', ['install', '-y', '--no-install-recommends', ...m], 600_000);
  let e = await install();
  if (e.code !== 0) {
    await run('apt-get', ['update'], 600_000);
    e = await install();
  }
  m = await missing();
  if (m.length) throw new Error(`apt-get install did not provide ${m.join(', ')}:\n${e.stderr}`);
}

async function gcc(src: string, bin: string, flags: string[]): Promise<void> {
  const tmp = `${bin}.tmp-${process.pid}`;
  const e = await run('gcc', ['-O2', '-Wall', '-Werror', '-pthread', '-o', tmp, src, ...flags], 60_000);
  if (e.code !== 0) {
    await rm(tmp, { force: true });
    throw new Error(`gcc ${src} failed:\n${e.stderr}`);
  }
  await rename(tmp, bin);
}

/**
 * Compiles every bench/clients/NAME.c into bench/bin/NAME with
 * `gcc -O2 -Wall -Werror -pthread`, and bench/peer/devserver.c against
 * libfuse3, in parallel. Returns NAME -> path (the peer as "devserver").
 */
export async function buildClients(benchDir: string): Promise<Record<string, string>> {
  await ensureBuildTools();
  const srcDir = join(benchDir, 'clients');
  const binDir = join(benchDir, 'bin');
  await mkdir(binDir, { recursive: true });
  const fuse3 = (await run('pkg-config', ['--cflags', '--libs', 'fuse3'], 30_000)).stdout.trim().split(/\s+/);
  const sources = (await readdir(srcDir)).filter((f) => f.endsWith('.c'));
  const out: Record<string, string> = { devserver: join(binDir, 'devserver') };
  await Promise.all([
    ...sources.map(async (file) => {
      const name = file.slice(0, -2);
      out[name] = join(binDir, name);
      await gcc(join(srcDir, file), out[name]!, []);
    }),
    gcc(join(benchDir, 'peer', 'devserver.c'), out.devserver!, fuse3),
  ]);
  return out;
}
