/**
 * Processes run as an ordinary user, for the tests of what cdevemu does
 * without root: a daemon that mounts through fusermount3 and the clients
 * of its mount.
 *
 * Run by an ordinary user, the test's processes are that user's, in the
 * host's mount namespace, as they are. Run as root, they are uid 65534's
 * (setpriv), in a private mount namespace of the test's, held open by a
 * sleeping process and entered by every process of the test (nsenter), so
 * that they all see the same mounts: there /dev/fuse is a node of the
 * test's with Debian's mode 0666 (the host's node keeps its mode), and
 * fuse.conf and fusectl may be arranged. The namespace, with whatever
 * was mounted in it, goes when its last process does.
 */
import { chmod, chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestFunction, type TestOptions } from 'vitest';
import { Interactive, run, type RunOptions, type RunResult } from './proc.js';
import { testRoot } from './mount.js';

/** An ordinary user's PATH: no sbin directories. */
const USER_PATH = '/usr/local/bin:/usr/bin:/bin';
const NOBODY = 65534;

/** A word for sh -c. */
export const shellWord = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`;

export interface UserWorldOptions {
  /** Root only: the text of /etc/fuse.conf in the namespace. */
  fuseConf?: string;
  /** Root only: false leaves fusectl unmounted in the namespace, as where the user may not abort a connection. */
  fusectl?: boolean;
}

export const runsAsRoot = process.getuid?.() === 0;

export class UserWorld {
  private constructor(
    /** A directory of the user's (HOME and TMPDIR of its processes). */
    readonly dir: string,
    readonly uid: number,
    readonly gid: number,
    /** The process that holds the private namespace open (root only). */
    private readonly holder: Interactive | null,
  ) {}

  static async open(o: UserWorldOptions = {}): Promise<UserWorld> {
    if (!runsAsRoot) {
      if (o.fuseConf !== undefined || o.fusectl === false) throw new Error('only root can arrange fuse.conf or fusectl for the test');
      const dir = await mkdtemp(join(testRoot(), 'user-'));
      await mkdir(join(dir, 'tmp'));
      return new UserWorld(dir, process.getuid!(), process.getgid!(), null);
    }
    // Outside the test root, which only root may enter.
    const dir = await mkdtemp(join(tmpdir(), 'cdevemu-user-'));
    await chmod(dir, 0o755);
    await mkdir(join(dir, 'tmp'));
    await chown(dir, NOBODY, NOBODY);
    await chown(join(dir, 'tmp'), NOBODY, NOBODY);
    // Root's own files, on a tmpfs that only this namespace sees.
    const own = join(dir, 'root');
    const steps = [
      `mkdir ${shellWord(own)}`,
      `mount -t tmpfs -o mode=755 cdevemu-test ${shellWord(own)}`,
      `mknod -m 666 ${shellWord(join(own, 'fuse'))} c 10 229`,
      `mount --bind ${shellWord(join(own, 'fuse'))} /dev/fuse`,
    ];
    if (o.fuseConf !== undefined) {
      steps.push(`printf %s ${shellWord(o.fuseConf)} > ${shellWord(join(own, 'fuse.conf'))}`, `mount --bind ${shellWord(join(own, 'fuse.conf'))} /etc/fuse.conf`);
    }
    if (o.fusectl === false) steps.push('umount /sys/fs/fuse/connections');
    const holder = new Interactive('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `set -e; ${steps.join('; ')}; echo ready; exec sleep infinity`]);
    try {
      if ((await holder.line(30_000)) !== 'ready') throw new Error(`namespace not ready: ${holder.stderr}`);
    } catch (err) {
      holder.kill();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return new UserWorld(dir, NOBODY, NOBODY, holder);
  }

  /** `cmd` as the user, in the world's namespace, with a user's environment (no XDG_RUNTIME_DIR: files go to TMPDIR). */
  argv(cmd: readonly string[]): string[] {
    const env = ['env', '-u', 'XDG_RUNTIME_DIR', '-u', 'CDEVEMU_SOCKET', `HOME=${this.dir}`, `TMPDIR=${join(this.dir, 'tmp')}`, `PATH=${USER_PATH}`];
    if (!this.holder) return [...env, ...cmd];
    return [...this.enter(), 'setpriv', `--reuid=${this.uid}`, `--regid=${this.gid}`, '--clear-groups', ...env, ...cmd];
  }

  /** `cmd` as root, in the world's namespace (root only). */
  argvAsRoot(cmd: readonly string[]): string[] {
    if (!this.holder) throw new Error('only a test run as root has root in the namespace');
    return [...this.enter(), ...cmd];
  }

  private enter(): string[] {
    return ['nsenter', `--mount=/proc/${this.holder!.pid}/ns/mnt`, '--'];
  }

  run(cmd: readonly string[], o: RunOptions = {}): Promise<RunResult> {
    const [c, ...args] = this.argv(cmd);
    return run(c!, args, o);
  }

  spawn(cmd: readonly string[]): Interactive {
    const [c, ...args] = this.argv(cmd);
    return new Interactive(c!, args);
  }

  /** The mount table the user's processes see (/proc/PID/mounts). */
  mounts(): Promise<string> {
    return readFile(`/proc/${this.holder?.pid ?? 'self'}/mounts`, 'utf8');
  }

  /** The mount table's line for `mountpoint`, or null. */
  async mountAt(mountpoint: string): Promise<string | null> {
    return (await this.mounts()).split('\n').find((l) => l.split(' ')[1] === mountpoint) ?? null;
  }

  /** Ends the namespace (root) and removes the directory; kill the world's processes first. */
  async close(): Promise<void> {
    if (this.holder) {
      this.holder.kill();
      await this.holder.exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The directories Debian puts the device tools the tests run in (gpsd,
 * gpsdctl, i2cdetect, hwclock): an ordinary user's PATH lacks them.
 */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** `env` with the sbin directories at the end of its PATH, so the tools in them are found by name as root finds them. */
export function withSbin(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const path = (env.PATH ?? '').split(':').filter(Boolean);
  return { ...env, PATH: [...path, ...SBIN.filter((d) => !path.includes(d))].join(':') };
}

/**
 * `argv`, to be run as `cdevemu run` runs its program for this user: as
 * root in the mount namespace argv makes; as another user first in a user
 * namespace of its own, where it is uid 0 and may mount
 * (daemon/run-userns.ts does the same for the run).
 */
export function inOwnUserNamespace(argv: readonly string[]): string[] {
  return runsAsRoot ? [...argv] : ['unshare', '--user', '--map-root-user', '--', ...argv];
}

/** A test as `it` takes it: its name, its body, and its timeout or options. */
type Test = (name: string, fn: TestFunction, options?: number | TestOptions) => void;

/**
 * `it`, or, where `why` is a string, the test skipped with `why` in its
 * name, so that the run shows why it did not run here (a need of one
 * test: what a whole suite needs is in test/suites.mjs).
 */
export function itUnless(why: string | null): Test {
  if (why === null) return (name, fn, options) => it(name, fn, options);
  return (name, fn, options) => it.skip(`${name} [skipped: ${why}]`, fn, options);
}

/** `describe`, or, where `why` is a string, the block skipped with `why` in its name. */
export function describeUnless(why: string | null): (name: string, fn: () => void) => void {
  if (why === null) return (name, fn) => describe(name, fn);
  return (name, fn) => describe.skip(`${name} [skipped: ${why}]`, fn);
}

/** Why a test that needs root cannot run as this user, or null as root. */
export const needsRoot = (why: string): string | null => (runsAsRoot ? null : `needs root: ${why}`);

/**
 * `argv` where the mount of a `cdevemu run` is, given the pid of its
 * program: root's run mounts where the test runs; an ordinary user's, in
 * the user and mount namespace the run made (README "As an ordinary
 * user"), which that user may enter: with its own ids, which are the
 * namespace's root (nsenter may not set groups there: the run's
 * `unshare --map-root-user` denied setgroups).
 */
export function inMountNamespaceOf(pid: number, argv: readonly string[]): string[] {
  return runsAsRoot ? [...argv] : ['nsenter', `--target=${pid}`, '--user', '--mount', '--preserve-credentials', '--', ...argv];
}
