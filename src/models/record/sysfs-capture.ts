/**
 * A device's sysfs attributes, captured as umockdev-record captures them:
 * the readable files of its directory (/sys/dev/char/MAJ:MIN leads there,
 * drivers/base/core.c device_create_sys_dev_entry()), keyed by the path the
 * emulated device publishes them under, sys/class/CLASS/NAME/ATTR. A
 * device without one (a pty: devpts has no struct device) has none.
 */
import { readdir, readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** sysfs shows at most a page (PAGE_SIZE, fs/sysfs/file.c); more is not an attribute. */
const MAX_ATTRIBUTE = 4096;

export async function captureSysfs(major: number, minor: number, root = '/sys'): Promise<Record<string, string>> {
  let dir: string;
  let cls: string;
  try {
    dir = await realpath(join(root, 'dev', 'char', `${major}:${minor}`));
    cls = basename(await realpath(join(dir, 'subsystem')));
  } catch {
    return {};
  }
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isFile()) continue;
    try {
      const text = await readFile(join(dir, e.name), 'utf8');
      if (text.length <= MAX_ATTRIBUTE) out[`sys/class/${cls}/${basename(dir)}/${e.name}`] = text;
    } catch {
      // Write-only or refusing attributes (EACCES, EIO, EINVAL) are not part of what a program reads.
    }
  }
  return out;
}
