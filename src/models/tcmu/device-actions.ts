/**
 * The device's own actions (target_core_user's action/ directory), one
 * path whether a consumer writes the configfs file or a test calls the
 * model action, each recorded as an event, so a scenario can see a
 * consumer reopen a device (tcmu-runner: block_dev 1, reset_ring, open,
 * block_dev 0).
 */
import { after, type Awaitable } from '../../awaitable.js';
import type { TcmuInstance } from './model.js';

/** tcmu_block_dev() (true) / tcmu_unblock_dev() (false); `tcmu_block_dev {blocked}`. */
export function blockDev(inst: TcmuInstance, on: boolean): Awaitable<boolean> {
  const block = (): boolean => {
    inst.state.ring.block(on);
    inst.emit('tcmu_block_dev', { blocked: inst.state.ring.blocked });
    return inst.state.ring.blocked;
  };
  // Unblocking reaps what userspace completed meanwhile: a consumer's copy of the ring is read first.
  return after(inst.state.ring.pullCompletions(), block);
}

/**
 * tcmu_reset_ring(); `tcmu_reset_ring {level, failed}`; gives the commands
 * it failed once the new head and tail are where programs read them. The
 * kernel resets the mailbox in place before the write returns, and a
 * consumer reopening the device reads cmd_tail right after (libtcmu
 * device_add: reset_ring, then open, mmap and dev->cmd_tail =
 * mb->cmd_tail). Through the page cache they are STOREs still on their
 * way, and a page fault meanwhile is answered with the page as it was
 * before them (src/fs/page-mirror.ts): the answer waits until they are in.
 */
export function resetRing(inst: TcmuInstance, level: 1 | 2): Awaitable<number> {
  const failed = inst.state.ring.reset(level);
  inst.emit('tcmu_reset_ring', { level, failed });
  return after(inst.regions[0]!.flush(), () => failed);
}
