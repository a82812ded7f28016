/**
 * /sys/module/target_core_user as the kernel module shows it, served from
 * the mount for `--preset tcmu` (bound over the host's path in the
 * program's namespace): `initstate` (libkmod's "live" check in tcmu-runner's
 * load_our_module()) and the module parameters a daemon writes at start-up
 * (libtcmu's tcmu_block_netlink(), tcmu_reset_netlink()), acting on the
 * emulated TCM-USER family:
 *
 *   parameters/block_netlink   rw: "blocked"/"unblocked"; 1 blocks new
 *                              events that would wait for a reply (they
 *                              fail EAGAIN), 0 unblocks; else EINVAL
 *                              (tcmu_set_block_netlink)
 *   parameters/reset_netlink   write-only: 1 fails every event waiting for
 *                              its reply with -EINTR, EBUSY unless blocked
 *                              first; else EINVAL (tcmu_set_reset_netlink)
 */
import type { NodeTree } from '../fs/tree.js';
import { kstrtoul } from '../models/tcmu/configfs.js';
import { Errno } from '../errno.js';
import type { TcmuNetlink } from './netlink.js';

/** Where the module's directory is, from the mount root. */
export const TCMU_MODULE_DIR = 'sys/module/target_core_user';

/** Publishes the module's files; returns the function that removes them. */
export function publishTcmuModule(tree: NodeTree, netlink: TcmuNetlink): () => Promise<void> {
  tree.addDir(TCMU_MODULE_DIR);
  tree.addAttribute(`${TCMU_MODULE_DIR}/initstate`, { show: () => 'live\n' });
  tree.addAttribute(`${TCMU_MODULE_DIR}/parameters/block_netlink`, {
    show: () => `${netlink.blocked ? 'blocked' : 'unblocked'}\n`,
    store: (text) => {
      const v = kstrtoul(text, 255);
      if (v > 1) throw new Errno('EINVAL');
      netlink.blocked = v === 1;
    },
  });
  tree.addAttribute(`${TCMU_MODULE_DIR}/parameters/reset_netlink`, {
    store: (text) => {
      if (kstrtoul(text, 255) !== 1) throw new Errno('EINVAL');
      netlink.resetNetlink();
    },
  });
  return () => tree.remove(TCMU_MODULE_DIR);
}
