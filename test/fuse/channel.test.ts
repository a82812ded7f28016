/**
 * The /dev/fuse channel's wait for the next request (src/fuse/channel.ts
 * FuseChannel.wait) on a real mount: with busy polling and ppoll turned
 * off, so that every wait goes straight to signal-driven mode, the path a
 * quiet daemon takes; and a SIGIO that brings no request, which must not
 * start a busy poll (FuseChannel.wake).
 *
 * A file of its own: the signal does not say which descriptor is ready, so
 * a SIGIO meant for another mount served by the same process would call
 * this channel's watch too (src/sys/sigio.ts) and hide a request the
 * channel itself failed to read.
 */
import { afterAll, expect, it } from 'vitest';
import { zeroDevice } from '../fixtures/devices.js';
import { mountDeviceFs, type TestMount } from '../helpers/mount.js';
import { run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';

let m: TestMount | undefined;
let busy: TestMount | undefined;
afterAll(async () => {
  await m?.close();
  await busy?.close();
});

it('reads INIT, which mount(2) queued before O_ASYNC was set, then serves requests that arrive while it sleeps', async () => {
  // mount(2) queues INIT itself (fs/fuse/inode.c fuse_fill_super ->
  // fuse_send_init) before the channel starts. Setting O_ASYNC only joins
  // the fasync list (fs/fuse/dev.c fuse_dev_fasync): a request already
  // queued raises no SIGIO. The read right after arming is all that finds
  // it; without that read the mount is never ready.
  let failed: unknown;
  void mountDeviceFs(
    (fs) => {
      fs.tree.mkdirp('dev');
      fs.tree.addDevice('dev/zero', zeroDevice());
    },
    { busyPollMicros: 0, pollMicros: 0 },
  ).then(
    (mounted) => (m = mounted),
    (err: unknown) => (failed = err ?? 'mount failed'),
  );
  await until(() => m !== undefined || failed !== undefined, 10_000, 'INIT read and answered (the mount ready)');
  expect(failed).toBeUndefined();
  // Each request comes while the channel sleeps in signal-driven mode (the
  // client is a new process each time): SIGIO wakes it.
  for (let i = 0; i < 3; i++) expect((await run('head', ['-c', '3', m!.path('dev/zero')])).stdout).toBe('\0\0\0');
});

it('takes a SIGIO that brings no request with one read and stays asleep; it busy-polls only after serving a request', async () => {
  busy = await mountDeviceFs(
    (fs) => {
      fs.tree.mkdirp('dev');
      fs.tree.addDevice('dev/zero', zeroDevice());
    },
    { busyPollMicros: 1000, pollMicros: 0 },
  );
  const server = busy.server;
  await until(() => server.channelStats.asleep, 10_000, 'the channel asleep after INIT');
  // A request served: the wait after it begins with a busy poll. stat
  // answers LOOKUP and GETATTR before it exits, and leaves no RELEASE to
  // come later.
  const served = server.channelStats;
  await run('stat', ['-c', '%n', busy.path('dev/zero')]);
  await until(() => server.channelStats.asleep, 10_000, 'the channel asleep after the stat');
  const before = server.channelStats;
  expect(before.requests).toBeGreaterThan(served.requests);
  expect(before.spins).toBeGreaterThan(served.spins);
  // SIGIO with no request queued, as a netlink datagram under --preset
  // tcmu raises it. A late request of the kernel's own (a FORGET) could
  // fold into the same signal and make the wake not bare, so the signal is
  // sent until one wake was bare; whatever came, no wait may have spun
  // more often than requests were served.
  let after = before;
  for (let i = 0; i < 5 && after.bareWakes === before.bareWakes; i++) {
    const woken = after.wakes;
    process.kill(process.pid, 'SIGIO');
    await until(() => server.channelStats.wakes > woken && server.channelStats.asleep, 10_000, 'the SIGIO taken');
    after = server.channelStats;
  }
  expect(after.bareWakes).toBeGreaterThan(before.bareWakes);
  expect(after.spins - before.spins).toBeLessThanOrEqual(after.requests - before.requests);
  // One read per bare wake, plus whatever serving the requests took (none, usually).
  if (after.requests === before.requests) expect(after.reads - before.reads).toBe(after.wakes - before.wakes);
  expect((await run('head', ['-c', '3', busy.path('dev/zero')])).stdout).toBe('\0\0\0');
});
