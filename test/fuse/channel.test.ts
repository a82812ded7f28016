/**
 * The /dev/fuse channel's wait for the next request (src/fuse/channel.ts
 * FuseChannel.wait) on a real mount, with busy polling and ppoll turned
 * off, so that every wait goes straight to signal-driven mode, the path a
 * quiet daemon takes.
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
afterAll(() => m?.close());

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
