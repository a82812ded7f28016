/**
 * `cdevemu run` as an ordinary user: the run (emulator and runner) starts
 * again in a user and mount namespace of its own, where it is uid 0 with
 * every capability over that namespace, so it can mount the FUSE file
 * system (fuse is FS_USERNS_MOUNT), tmpfs, overlays and binds, and make
 * the program's private /dev and `--bind` targets, all in mounts that no
 * other process sees. Node cannot unshare a user namespace itself (it is
 * multithreaded, and unshare(2) refuses CLONE_NEWUSER to a process with
 * threads), so this process runs util-linux's
 * `unshare --user --map-root-user --mount --propagation private` on its
 * own executable with the same arguments, relays signals to it and exits
 * with its code. README.md, "Without root", says what the program sees.
 *
 * Before that, here, with the real ids: whether this user can have such a
 * namespace at all, and /dev/fuse (one line each, with the fix); and the
 * run's directory is made and checked for what only the real ids can tell
 * (src/tcmu/private-dir.ts). The namespace maps uid and gid 0 to the
 * user's and nothing else. It gets no pid namespace, and a network
 * namespace only for the tcmu preset (NamespaceNeeds.privateNetwork): the
 * program keeps the host's pids and network otherwise (README.md, "Without
 * root", says why).
 */
import { spawn, spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { fuseDeviceOpenError, fuseDeviceProblem, userNamespaceProblem } from '../src/fuse/requirements.js';
import { hostUid } from '../src/fuse/mountpoint-lock.js';
import type { ProgramIds } from '../src/scenario/bind.js';
import { inUserNamespace } from '../src/sys/userns.js';
import { assertPrivateDir, UnsafeDirError } from '../src/tcmu/private-dir.js';
import { CliError, Exit } from './exit.js';
import { makeRunScratch } from './run-scratch.js';

/** How the outer process tells the run in the namespace who it is and where its directory is. */
const ENV = 'CDEVEMU_RUN_NAMESPACE';

/** What the run needs beside a user and mount namespace. */
export interface NamespaceNeeds {
  /** It mounts a private emulator (not --socket): /dev/fuse must open. */
  needsFuse: boolean;
  /**
   * A network namespace of its own (the tcmu preset): joining a
   * NETLINK_USERSOCK multicast group, as the TCM-USER family's consumer
   * does, needs CAP_NET_ADMIN over the socket's network namespace
   * (net/netlink/af_netlink.c netlink_allowed()), which the user has in
   * one their namespace owns and not in the host's.
   */
  privateNetwork: boolean;
}

/** The flags of the namespace, for the trial and the run alike. */
const unshareFlags = (n: NamespaceNeeds): string[] => ['--user', '--map-root-user', '--mount', '--propagation', 'private', ...(n.privateNetwork ? ['--net'] : [])];

/** A new network namespace has its loopback down: up, for a program that talks to itself over 127.0.0.1 (with iproute2's ip, when there is one). */
const LOOPBACK_UP = 'if command -v ip >/dev/null; then ip link set lo up; fi; exec "$@"';

/** What the run in the namespace is told. */
export interface RunNamespace extends ProgramIds {
  /** The run's directory, made outside with the real ids. */
  dir: string;
  /** Why `dir` is not the user's alone as the real ids show it (assertPrivateDir), or null. */
  dirProblem: string | null;
}

/**
 * In the run started in the namespace: what the outer process said, taken
 * out of the environment so that the program under test does not inherit
 * it. Taken only where it is true: in a user namespace whose uid 0 is the
 * user it names, an ordinary one (root, given it in its environment,
 * ignores it).
 */
export function takeRunNamespace(): RunNamespace | null {
  const text = process.env[ENV];
  delete process.env[ENV];
  if (text === undefined || process.getuid?.() !== 0 || !inUserNamespace()) return null;
  let told: Partial<RunNamespace>;
  try {
    told = JSON.parse(text) as Partial<RunNamespace>;
  } catch {
    return null;
  }
  const { uid, gid, dir, dirProblem } = told;
  if (typeof uid !== 'number' || uid === 0 || uid !== hostUid(0) || typeof gid !== 'number' || typeof dir !== 'string') return null;
  return { uid, gid, dir, dirProblem: typeof dirProblem === 'string' ? dirProblem : null };
}

/**
 * Throws CliError (exit 2) unless this user can have the namespace: the
 * sysctls that close user namespaces, then one trial of the run's own
 * flags (src/fuse/requirements.js userNamespaceProblem).
 */
function checkUserNamespace(needs: NamespaceNeeds): void {
  const trial = (): string | null => {
    const r = spawnSync('unshare', [...unshareFlags(needs), 'true'], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new CliError(Exit.usage, 'unshare is missing, needed to run as an ordinary user: install util-linux (apt-get install util-linux) or run as root');
    }
    if (r.status === 0) return null;
    return r.stderr.trim().split('\n')[0] || (r.error ? r.error.message : `exit ${r.status}`);
  };
  const problem = userNamespaceProblem(undefined, trial);
  if (problem) throw new CliError(Exit.usage, `cdevemu run as an ordinary user runs in a user namespace of its own: ${problem}; or run as root`);
}

/**
 * The signals that interrupt a run (../run-scenario.ts): it stops the
 * program, takes its mount down and fails. SIGHUP is a closed terminal or
 * ssh session. Here they are relayed to the run in the namespace; any
 * other signal that ends this process ends that run through its death
 * signal (below), which stops the program as an interrupt does.
 */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Runs this same command again in the namespace and resolves to its exit code. */
export async function runInUserNamespace(needs: NamespaceNeeds): Promise<number> {
  checkUserNamespace(needs);
  const fuse = needs.needsFuse ? fuseDeviceProblem(fuseDeviceOpenError(), false) : null;
  if (fuse) throw new CliError(Exit.usage, fuse);
  const dir = await makeRunScratch();
  try {
    let dirProblem: string | null = null;
    try {
      assertPrivateDir(dir);
    } catch (err) {
      if (!(err instanceof UnsafeDirError)) throw err;
      dirProblem = err.message;
    }
    const told: RunNamespace = { uid: process.getuid!(), gid: process.getgid!(), dir, dirProblem };
    const self = [process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
    // The run ends with this process, however it ends (SIGKILL included): SIGTERM when its parent
    // dies, once for each of this process's threads as it exits (kernel/exit.c forget_original_parent()
    // hands the child to the next thread, and signals it each time).
    const pdeath = ['setpriv', '--pdeathsig', 'SIGTERM', '--'];
    const argv = [...unshareFlags(needs), '--', ...pdeath, ...(needs.privateNetwork ? ['sh', '-c', LOOPBACK_UP, 'cdevemu-net'] : []), ...self];
    // Same process group: a terminal's Ctrl-C reaches the run as it would without the namespace.
    const child = spawn('unshare', argv, { stdio: 'inherit', env: { ...process.env, [ENV]: JSON.stringify(told) } });
    const relay = (signal: NodeJS.Signals): void => void child.kill(signal);
    for (const s of STOP_SIGNALS) process.on(s, relay);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
      });
    } finally {
      for (const s of STOP_SIGNALS) process.off(s, relay);
    }
  } finally {
    // The run removes it; this is for a run that was killed. Its mounts were in its namespace, gone with it.
    await rm(dir, { recursive: true, force: true });
  }
}
