/**
 * A private /dev for the program under test: a staging directory, bound
 * over /dev in its mount namespace, holding the standard nodes (the host's
 * own, bound one by one), pts, shm and the usual links, plus links to the
 * emulated nodes (/dev/uio0 -> MOUNT/dev/uio0).
 *
 * A program that scans /dev (tcmu-runner's open_devices() looks for uio*)
 * must see the emulated nodes there and nothing of the host's devtmpfs,
 * which every mount namespace shares. The directory lives on the host side
 * and is bound, not copied, so a link made here while the program runs
 * (a device plugged later) appears in its /dev at once, like a node
 * devtmpfs creates on device_add().
 */
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bind } from './bind.js';

/** Character devices every program may open (mem_class's and tty's), bound from the host's /dev. */
const NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx'];
/** The links udev and the kernel's devtmpfs setup make. */
const LINKS: Record<string, string> = { fd: '/proc/self/fd', stdin: '/proc/self/fd/0', stdout: '/proc/self/fd/1', stderr: '/proc/self/fd/2' };

export class PrivateDev {
  private constructor(readonly dir: string) {}

  /** Creates the directory's skeleton; `dir` must not exist yet. */
  static create(dir: string): PrivateDev {
    mkdirSync(dir, { mode: 0o755 });
    for (const n of NODES) writeFileSync(join(dir, n), ''); // mount points for the binds
    mkdirSync(join(dir, 'pts'));
    mkdirSync(join(dir, 'shm'));
    chmodSync(join(dir, 'shm'), 0o1777);
    for (const [name, target] of Object.entries(LINKS)) symlinkSync(target, join(dir, name));
    return new PrivateDev(dir);
  }

  /** The binds that make it the program's /dev, in the order they must be made. */
  binds(): Bind[] {
    return [
      ...NODES.map((n) => ({ host: join(this.dir, n), source: `/dev/${n}` })),
      { host: join(this.dir, 'pts'), source: '/dev/pts' },
      { host: '/dev', source: this.dir },
    ];
  }

  /** /dev/NAME -> target, replacing a link of that name. */
  link(name: string, target: string): void {
    const path = join(this.dir, name);
    rmSync(path, { force: true });
    symlinkSync(target, path);
  }

  unlink(name: string): void {
    rmSync(join(this.dir, name), { force: true });
  }
}
