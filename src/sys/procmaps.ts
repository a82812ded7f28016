/**
 * Counting the mappings other processes hold on one file, from
 * /proc/PID/maps. A FUSE passthrough mapping is listed under the FUSE
 * file (file_user_inode/file_user_path of the backing file), so the file is
 * named by its FUSE device number and inode number.
 */
import { readdir, readFile } from 'node:fs/promises';

/**
 * A process whose maps are not read within this bound is not counted: its
 * mmap lock is held (by a page fault that may itself wait for this daemon,
 * e.g. a MAP_PRIVATE read of a device node), and unplug must not wait on it.
 */
const READ_BOUND_MS = 300;

/** `dev` as mountinfo prints it ("0:53"); maps prints it "00:35" (hex). */
export async function countMappings(dev: string, ino: bigint): Promise<number> {
  const [major, minor] = dev.split(':').map((n) => parseInt(n, 10));
  const want = `${hex2(major!)}:${hex2(minor!)}`;
  const inode = String(ino);
  const self = String(process.pid);
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d) && d !== self);
  const counts = await Promise.all(
    pids.map(async (pid) => {
      let maps: string | null;
      try {
        // Asynchronous, and bounded: see READ_BOUND_MS.
        maps = await Promise.race([readFile(`/proc/${pid}/maps`, 'utf8'), bound()]);
      } catch {
        return 0; // exited meanwhile
      }
      if (maps === null) return 0;
      let n = 0;
      for (const line of maps.split('\n')) {
        // address perms offset dev inode path
        const f = line.split(/\s+/, 5);
        if (f[3] === want && f[4] === inode) n++;
      }
      return n;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

const bound = (): Promise<null> => new Promise((r) => setTimeout(() => r(null), READ_BOUND_MS).unref());
