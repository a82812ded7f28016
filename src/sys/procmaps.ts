/**
 * Counting the mappings other processes hold on one file, from
 * /proc/PID/maps. A FUSE passthrough mapping is listed under the FUSE
 * file (file_user_inode/file_user_path of the backing file), so the file is
 * named by its FUSE device number and inode number.
 */
import { readdir, readFile } from 'node:fs/promises';

/** `dev` as mountinfo prints it ("0:53"); maps prints it "00:35" (hex). */
export async function countMappings(dev: string, ino: bigint): Promise<number> {
  const [major, minor] = dev.split(':').map((n) => parseInt(n, 10));
  const want = `${hex2(major!)}:${hex2(minor!)}`;
  const inode = String(ino);
  const self = String(process.pid);
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d) && d !== self);
  const counts = await Promise.all(
    pids.map(async (pid) => {
      let maps: string;
      try {
        // Asynchronous: a process faulting on some FUSE mapping holds its mmap lock until this daemon answers.
        maps = await readFile(`/proc/${pid}/maps`, 'utf8');
      } catch {
        return 0; // exited meanwhile
      }
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
