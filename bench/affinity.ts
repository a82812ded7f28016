/**
 * CPU pinning for the pinned ping-pong workloads, with taskset(1)
 * (util-linux): sched_setaffinity(2) on every thread of a server for the
 * length of a run, and on a client from its start.
 *
 * Why pin at all: on a small VM a FUSE round trip costs what the wake-ups
 * cost, and a wake-up costs ten times more when it must bring another,
 * idle vCPU out of halt than when the woken task runs on the waker's CPU.
 * Unpinned, the scheduler moves client and server between those two
 * placements at will (select_idle_sibling() in kernel/sched/fair.c picks
 * an idle CPU when there is one), so a server's figure says as much about
 * where its threads happened to run as about its code. Pinned, each
 * placement is measured on its own.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A process's affinity list as taskset prints it ("current affinity list: 0-1,4"). */
async function affinityList(pid: number): Promise<string> {
  const { stdout } = await run('taskset', ['-c', '-p', String(pid)]);
  return stdout.slice(stdout.lastIndexOf(':') + 1).trim();
}

/** The CPUs this process may run on. */
export async function allowedCpus(): Promise<number[]> {
  return (await affinityList(process.pid)).split(',').flatMap((part) => {
    const [lo, hi = lo] = part.split('-').map(Number) as [number, number?];
    return Array.from({ length: hi! - lo + 1 }, (_, i) => lo + i);
  });
}

/**
 * Runs `fn` with every thread of process `pid` pinned to `cpu`, then gives
 * them back the affinity list the process had: also when `fn` fails.
 */
export async function withPinned<T>(pid: number, cpu: number, fn: () => Promise<T>): Promise<T> {
  const before = await affinityList(pid);
  await run('taskset', ['-a', '-c', '-p', String(cpu), String(pid)]);
  try {
    return await fn();
  } finally {
    await run('taskset', ['-a', '-c', '-p', before, String(pid)]);
  }
}

/** The command line that starts `cmd` pinned to `cpu`. */
export const pinnedCommand = (cpu: number, cmd: string, args: string[]): [string, string[]] => ['taskset', ['-c', String(cpu), cmd, ...args]];
