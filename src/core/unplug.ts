/**
 * Hot-unplug of one instance, in the kernel's order (docs/architecture.md#unplug). Unregister is not free:
 * the state stays until the last reference drops (instance.ts free()).
 */
import { CoreEvent } from './events.js';
import type { Publisher, StuckHandler, UnplugMode, UnplugReport } from './host.js';
import type { DeviceInstance } from './instance.js';
import type { DeviceRegions } from './regions.js';
import { keepUnplugIoctl, keepUnplugMaxIoSize, keepUnplugReadData, unplugPollOf } from './unplug-answers.js';
import type { UnplugBound } from './unplug-bound.js';

/** `bound` is the drain timeout's (unplug-bound.ts): the waits of steps 1 and 4 give up when it is reached. */
export async function unplugInstance(
  inst: DeviceInstance,
  publisher: Publisher,
  drainTimeoutMs: number,
  bound: UnplugBound,
  mode: UnplugMode,
): Promise<UnplugReport> {
  bound.start();
  try {
    await unpublishNode(inst, publisher, drainTimeoutMs, bound, mode);
    closeGate(inst);
    if (inst.shared) await revokeRegions(inst, inst.shared, bound);
    await cancelWaiters(inst);
    const { stuck, drainedInMs } = await drainHandlers(inst, bound);
    await removeDevice(inst);
    dropPlugReference(inst);
    return { device: inst.name, generation: inst.generation, stuck, drainedInMs };
  } finally {
    bound.stop();
  }
}

/**
 * 1. No new opens: the node and its attributes leave the tree
 * (cdev_device_del() / device_del() before the driver is detached), and an
 * OPEN already past lookup sees the lifecycle and fails ENODEV.
 *
 * Waiting for the kernel to drop its cached entry is bounded by the drain
 * timeout too: the invalidation can wait on a directory lock held by a
 * request in progress. Our lookups stop finding the node at once, and an
 * OPEN through the stale entry fails ENODEV, so going on is safe.
 */
async function unpublishNode(inst: DeviceInstance, publisher: Publisher, drainTimeoutMs: number, bound: UnplugBound, mode: UnplugMode): Promise<void> {
  inst.lifecycle = 'unplugging';
  inst.record(CoreEvent.unplug_started, { drainTimeoutMs, mode });
  const timedOut = bound.reached.then(() => 'timeout' as const);
  try {
    const r = await Promise.race([publisher.unpublish(inst.published), timedOut]);
    if (r === 'timeout') {
      inst.log.warn({ device: inst.name, generation: inst.generation, drainTimeoutMs }, 'the kernel has not dropped the node within the drain timeout; unplugging anyway');
    }
  } catch (err) {
    // A node left behind by the tree is the fs's bug; the device still goes away behind it.
    inst.log.error({ err, device: inst.name, generation: inst.generation }, 'unpublish failed');
  }
}

/**
 * 2. No new handler invocations: debugfs's removal makes debugfs_file_get()
 * fail; cdev generic shutdown. From here calls are answered by the model's
 * UnplugAnswers; each open file's poll answer, the device's data for
 * reads, the driver's limit on a read or write (spidev's bufsiz), and what
 * ioctls answer are fixed now, while model code may still run
 * (evdev_poll() after disconnect reports what the client still has
 * queued; rtc_dev_read() still hands out the irq_data counted before
 * unregister; i2cdev_ioctl() still answers from the adapter struct), and nothing new
 * reaches a gone device. Before cancelWaiters: a read blocked now is
 * answered as one made after unplug, so it gets that data too.
 */
function closeGate(inst: DeviceInstance): void {
  inst.gate.close();
  keepUnplugReadData(inst);
  keepUnplugMaxIoSize(inst);
  keepUnplugIoctl(inst);
  for (const file of inst.files) unplugPollOf(inst, file);
}

/**
 * 2b. Programs lose their 'revoke' mappings: the next touch gets SIGBUS,
 * as uio_vma_fault() answers once uio_unregister_device() cleared
 * idev->info. 'keep' regions stay mapped (target_core_user's data area).
 */
async function revokeRegions(inst: DeviceInstance, shared: DeviceRegions, bound: UnplugBound): Promise<void> {
  let revoked: string[];
  try {
    revoked = shared.revoke();
    // Pages programs hold in their page caches (no passthrough) are dropped
    // too. Bounded like the drain: dropping a dirty page waits for its
    // writeback, which the main thread answers.
    await Promise.race([shared.revokeMappings(), bound.reached]);
  } catch (err) {
    inst.log.error({ err, device: inst.name, generation: inst.generation }, 'revoking regions failed');
    return;
  }
  // Counted after the cut: the mappings are still listed, only dead.
  const mappings = await inst.mappings();
  inst.record(CoreEvent.regions_revoked, { revoked, kept: shared.list.length - revoked.length, mappings });
}

/**
 * 3. Every sleeper is woken by the cancellation (inst.unplugCancel), which
 * its call then answers as one made after unplug (UnplugAnswers: an errno,
 * 0 bytes, or a read put back to sleep without the model): the wait queue is killed
 * (uio_unregister_device() clears idev->info and wakes idev->wait,
 * evdev_hangup() wakes its readers; pollers re-poll and get the unplug
 * mask), and every handler's AbortSignal aborts (debugfs cancellations).
 *
 * The signals abort one event-loop turn after the kill: the failed waits'
 * replies are written in the microtasks that follow it, and aborting a
 * signal dispatches an Event (about 10 µs in Node 20), so with a thousand
 * blocked readers aborting first held their wake-ups back by ~10 ms. The
 * gate is closed, so nothing new starts in between; handlers that finished
 * meanwhile are still aborted if their signal exists.
 */
async function cancelWaiters(inst: DeviceInstance): Promise<void> {
  const reason = inst.unplugCancel;
  const inFlight = inst.gate.handlers;
  inst.wq.kill(reason);
  await new Promise<void>((resolve) => setImmediate(resolve));
  inst.gate.cancel(reason, inFlight);
}

/**
 * 4. Drain (debugfs remove_one() waiting for active_users to reach zero),
 * bounded: handlers still running at the bound are reported stuck and
 * their requests answered now, as calls made after unplug; they keep their
 * references, so the state is freed only when they really return.
 */
async function drainHandlers(inst: DeviceInstance, bound: UnplugBound): Promise<{ stuck: StuckHandler[]; drainedInMs: number }> {
  const started = performance.now();
  const left = await inst.gate.drain(bound.reached);
  const now = performance.now();
  const stuck = left.map((h) => {
    h.abandon();
    const report = { op: h.op, pid: h.caller.tid, comm: h.caller.name, sinceMs: Math.round(now - h.startedAt) };
    inst.record(CoreEvent.stuck, report);
    return report;
  });
  const drainedInMs = Math.round(now - started);
  inst.record(CoreEvent.drained, { drainedInMs, stuck: stuck.length });
  return { stuck, drainedInMs };
}

/**
 * 5. The model's remove(): after it returns no model code runs for this
 * instance except lateRelease and free. Late releases queued behind it start now.
 */
async function removeDevice(inst: DeviceInstance): Promise<void> {
  await inst.runModel('remove', () => inst.driver.remove?.(inst));
  inst.lifecycle = 'gone';
  inst.record(CoreEvent.removed);
  inst.markRemoved();
}

/** 6. Drop the plug reference (the put_device() of device_unregister() in uio_unregister_device()); free() runs on the last put. */
function dropPlugReference(inst: DeviceInstance): void {
  inst.refs.put();
}
