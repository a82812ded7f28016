/**
 * The daemon as a child process (`node dist/daemon/cli.js daemon`), driven
 * only through the CLI and its socket. Every daemon started here is stopped
 * when the test file ends, pass or fail: SIGTERM, then SIGKILL and a lazy
 * unmount (global teardown unmounts anything still left under the root).
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import type { DeviceEvent } from '../../src/control/protocol.js';
import { findMount } from '../../src/fuse/mount.js';
import { MountpointLock } from '../../src/fuse/mountpoint-lock.js';
import { Interactive, run, type RunResult } from '../helpers/proc.js';

export const CLI = fileURLToPath(new URL('../../dist/daemon/cli.js', import.meta.url));

export function testRoot(): string {
  const root = process.env.CDEVEMU_TEST_ROOT;
  if (!root) throw new Error('CDEVEMU_TEST_ROOT is not set: run tests through vitest (test/helpers/global-setup.ts)');
  return root;
}

/** A fresh directory under the test root. */
export function scratch(prefix: string): Promise<string> {
  return mkdtemp(join(testRoot(), `${prefix}-`));
}

/** Runs the CLI to completion. */
export function cli(args: string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return run('node', [CLI, ...args], o);
}

/** Whether `dir` is a mountpoint now (read from mountinfo; never touches the mount). */
export async function isMounted(dir: string): Promise<boolean> {
  return (await findMount(dir)) !== null;
}

const running = new Set<Daemon>();

afterAll(async () => {
  await Promise.all([...running].map((d) => d.stop()));
});

export interface DaemonOptions {
  /** Reuse a directory (mount at DIR/mnt, socket at DIR/ctl.sock); default a new one. */
  dir?: string;
  /** More arguments for `cdevemu daemon`. */
  args?: string[];
  /** The daemon's environment (default: the test's). */
  env?: NodeJS.ProcessEnv;
}

export class Daemon {
  readonly client: ControlClient;
  private stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;

  private constructor(
    readonly dir: string,
    readonly mount: string,
    readonly socket: string,
    readonly proc: Interactive,
  ) {
    this.client = new ControlClient(socket);
  }

  static async start(o: DaemonOptions = {}): Promise<Daemon> {
    const dir = o.dir ?? (await scratch('daemon'));
    const mount = join(dir, 'mnt');
    const socket = join(dir, 'ctl.sock');
    const proc = new Interactive('node', [CLI, 'daemon', '--mount', mount, '--socket', socket, ...(o.args ?? [])], o.env);
    const d = new Daemon(dir, mount, socket, proc);
    running.add(d);
    await d.ready();
    return d;
  }

  get pid(): number {
    return this.proc.pid;
  }

  dev(name: string): string {
    return join(this.mount, 'dev', name);
  }

  /** The CLI with this daemon's --socket appended. */
  cli(args: string[], o: { timeoutMs?: number } = {}): Promise<RunResult> {
    return cli([...args, '--socket', this.socket], o);
  }

  /** Resolves once the control API answers; rejects if the daemon exits first. */
  private async ready(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited: { code: number | null } | null = null;
    void this.proc.exited.then((e) => (exited = e));
    for (;;) {
      if (exited) throw new Error(`daemon exited (${JSON.stringify(exited)}) before it was ready; stderr:\n${this.proc.stderr}`);
      try {
        await this.client.status();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`daemon not ready within ${timeoutMs} ms; stderr:\n${this.proc.stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Sends `signal` and waits for the exit; after `timeoutMs` SIGKILL and a lazy unmount. */
  stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.stopping ??= (async () => {
      this.proc.kill(signal);
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
      const e = await this.proc.exited;
      clearTimeout(timer);
      running.delete(this);
      if (e.signal === 'SIGKILL' && signal !== 'SIGKILL') await lazyUnmount(this.mount);
      // A killed daemon's lock is gone with it, its lock file is not: take it and let go.
      if (e.signal === 'SIGKILL') (await MountpointLock.take(this.mount)).release();
      return e;
    })();
    return this.stopping;
  }
}

/** Detaches the mount at `dir` at once, as its owner may: umount -l for root, fusermount3 -u -z for a user (src/fuse/mount.ts). */
export function lazyUnmount(dir: string): Promise<void> {
  const [cmd, ...args] = process.getuid?.() === 0 ? ['umount', '-l'] : ['fusermount3', '-u', '-z'];
  return new Promise((resolve) => execFile(cmd!, [...args, dir], () => resolve()));
}

/** Collects the event stream in the background; `waitFor` resolves with the first matching event. */
export class EventRecorder {
  readonly events: DeviceEvent[] = [];
  private readonly ac = new AbortController();
  private readonly waiters: Array<{ pred: (e: DeviceEvent) => boolean; resolve: (e: DeviceEvent) => void }> = [];
  readonly done: Promise<void>;

  constructor(client: ControlClient, o: { history?: boolean } = {}) {
    this.done = (async () => {
      for await (const e of client.events({ history: o.history ?? false, signal: this.ac.signal })) {
        this.events.push(e);
        for (const w of [...this.waiters]) {
          if (w.pred(e)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(e);
          }
        }
      }
    })().catch(() => {});
  }

  waitFor(pred: (e: DeviceEvent) => boolean, timeoutMs = 10_000): Promise<DeviceEvent> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching event within ${timeoutMs} ms; got:\n${this.events.map((e) => JSON.stringify(e)).join('\n')}`)),
        timeoutMs,
      );
      this.waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  /** Event types of one device generation, in arrival order. */
  typesOf(device: string, generation: number): string[] {
    return this.events.filter((e) => e.device === device && e.generation === generation).map((e) => e.type);
  }

  stop(): Promise<void> {
    this.ac.abort();
    return this.done;
  }
}

/** A raw HTTP request on the socket, for what the typed client will not send (bad JSON, odd methods). */
export function rawRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: string | Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(text) as Record<string, unknown> });
        } catch (err) {
          reject(new Error(`non-JSON answer ${res.statusCode}: ${text}`, { cause: err }));
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** python3 holding a device open until told 'close' on stdin; prints 'open', then 'closed'. */
export const HOLDER = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print('open', flush=True)
sys.stdin.readline()
os.close(fd)
print('closed', flush=True)
sys.stdin.readline()
`;

/** Polls `check` until it stops throwing (FUSE RELEASE is asynchronous to close(2)). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
