/**
 * The servers the bench compares, each in a process of its own so that
 * its CPU time and memory can be read from procfs without the bench's own
 * counted in:
 *
 *   cdevemu  the real daemon (`dist/daemon/cli.js daemon`), as a user runs
 *            it, plugging zero, null and echo, with the bench's own model
 *            modules loaded by `--model` (bench/peer/ring-model.ts); the
 *            bench drives it through its control socket (plug and unplug
 *            for the unplug and ring workloads).
 *   C        bench/peer/devserver.c, a libfuse3 low-level server with the
 *            same tree and semantics, on one thread (fuse_session_loop).
 *   C-mt     the same binary with --mt: libfuse's default multithreaded
 *            loop (fuse_session_loop_mt), the only difference.
 *   floor    (--floor) bench/peer/floor.ts: cdevemu's FUSE transport under a
 *            dozen-line filesystem, without the device layers.
 *
 * All serve MOUNT/dev/{zero,null,echo}. stop() unmounts them (SIGTERM:
 * each unmounts on it), and makes sure with a lazy unmount if a server died.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../src/control/client.js';
import { findMount, mountsAsRoot } from '../src/fuse/mount.js';
import { LineClient, run } from './clients.js';

export type ServerName = CServerName | 'cdevemu' | 'floor';
/** The two C servers: one thread, and libfuse's multithreaded loop. */
export type CServerName = 'C' | 'C-mt';
export const C_SERVERS: readonly CServerName[] = ['C', 'C-mt'];

export interface Server {
  name: ServerName;
  pid: number;
  mountpoint: string;
  /** MOUNT/dev/NAME */
  dev(name: string): string;
  stop(): Promise<void>;
}

export interface CdevemuServer extends Server {
  control: ControlClient;
}

const READY_MS = 60_000;

function serverOf(name: ServerName, proc: LineClient, mountpoint: string): Server {
  let stopping: Promise<void> | null = null;
  return {
    name,
    pid: proc.pid,
    mountpoint,
    dev: (n) => join(mountpoint, 'dev', n),
    stop: () =>
      (stopping ??= (async () => {
        proc.kill('SIGTERM');
        const exited = await Promise.race([proc.exited.then(() => true, () => true), sleep(10_000).then(() => false)]);
        if (!exited) {
          console.error(`bench: ${name} server did not stop in 10 s after SIGTERM; killing it`);
          proc.kill('SIGKILL');
          await proc.exited.catch(() => {});
        }
        await unmount(mountpoint);
      })()),
  };
}

/** A lazy unmount: umount(8) for root, fusermount3 for any other user, whose mounts it made (as src/fuse/mount.ts unmountFuse). */
const [LAZY_UNMOUNT, ...LAZY_UNMOUNT_ARGS] = mountsAsRoot() ? ['umount', '-l'] : ['fusermount3', '-u', '-z'];

/** A lazy unmount if something is mounted at `mountpoint` (a server that died, or was killed before it could unmount). */
async function unmount(mountpoint: string): Promise<void> {
  if ((await findMount(mountpoint)) !== null) await run(LAZY_UNMOUNT!, [...LAZY_UNMOUNT_ARGS, mountpoint], 10_000, true);
}

/**
 * Unmounts whatever is still mounted on a directory in `dir`: the mount of
 * a server killed while it started, before the bench knew it was serving.
 * Reads only names (d_type), never stats what may be a dead mount.
 */
export async function unmountLeft(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) if (e.isDirectory()) await unmount(join(dir, e.name));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Starts one server on MOUNT (`dir/sub`, created) and waits for its first
 * line of output, its "mounted and serving" sign; stops it on a failure.
 */
async function start(name: ServerName, mountpoint: string, cmd: string, args: string[], ready: (line: string) => boolean): Promise<Server> {
  await mkdir(mountpoint);
  const proc = new LineClient(cmd, args);
  const s = serverOf(name, proc, mountpoint);
  try {
    const line = await proc.line(READY_MS);
    if (!ready(line)) throw new Error(`${name} server said ${JSON.stringify(line)} instead of being ready`);
  } catch (err) {
    await s.stop();
    throw err;
  }
  return s;
}

/** The node flags of the cli's `#!/usr/bin/env -S node FLAGS` line: the daemon runs as the installed executable would. */
async function shebangFlags(cli: string): Promise<string[]> {
  const first = (await readFile(cli, 'utf8')).split('\n', 1)[0]!;
  const m = /^#!\S*env -S node(.*)$/.exec(first);
  return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
}

/**
 * `models`: user model modules (compiled .js) the daemon loads with
 * `--model`. `passthrough: false` starts it with `--no-passthrough`, so
 * device regions are mapped through the page cache, as for a daemon
 * without CAP_SYS_ADMIN; it gets a mountpoint and socket of its own.
 */
export async function startCdevemu(dir: string, cli: string, models: readonly string[], o: { passthrough?: boolean } = {}): Promise<CdevemuServer> {
  const own = o.passthrough === false ? 'cdevemu-nopt' : 'cdevemu';
  const mountpoint = join(dir, own);
  const socket = join(dir, `${own}.sock`);
  const config = join(dir, `${own}.json`);
  const devices = ['zero', 'null', 'echo'].map((m) => ({ model: m, name: m }));
  await writeFile(config, JSON.stringify({ devices }));
  const args = [...(await shebangFlags(cli)), cli, 'daemon', '--mount', mountpoint, '--socket', socket, '--config', config, '--log-level', 'warn'];
  if (o.passthrough === false) args.push('--no-passthrough');
  for (const m of models) args.push('--model', m);
  const s = await start('cdevemu', mountpoint, process.execPath, args, (l) => l.startsWith('cdevemu serves 3 device'));
  return { ...s, control: new ControlClient(socket) };
}

/** bench/peer/floor.js, with the daemon's node flags. */
export async function startFloor(dir: string, script: string, cli: string): Promise<Server> {
  const mountpoint = join(dir, 'floor');
  return start('floor', mountpoint, process.execPath, [...(await shebangFlags(cli)), script, mountpoint], (l) => l === 'ready');
}

/** bench/peer/devserver on MOUNT `dir/c` (one thread) or `dir/c-mt` (`--mt`). */
export async function startPeer(dir: string, bin: string, name: CServerName): Promise<Server> {
  const mountpoint = join(dir, name.toLowerCase());
  return start(name, mountpoint, bin, [...(name === 'C-mt' ? ['--mt'] : []), mountpoint], (l) => l === 'ready');
}
