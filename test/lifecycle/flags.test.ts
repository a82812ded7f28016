/**
 * f_flags as the model sees them. READ and WRITE requests carry the file's
 * current f_flags (fuse_read_args_fill); IOCTL, POLL and FSYNC carry none,
 * so they must leave the flags the model last saw alone.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { python } from '../helpers/proc.js';
import { PROBE_NONBLOCK, probeModel } from '../fixtures/probe-model.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator([probeModel(new Map())]);
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

it('an O_NONBLOCK file stays non-blocking for the model across ioctl, poll and fsync', async () => {
  await t.emu.devices.plug({ model: 'probe', name: 'flags0' });
  const r = await python(
    `import os, sys, fcntl, select, errno
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NONBLOCK)
print(fcntl.ioctl(fd, ${PROBE_NONBLOCK}))
p = select.poll(); p.register(fd, select.POLLIN); p.poll(0)
print(fcntl.ioctl(fd, ${PROBE_NONBLOCK}))
try:
    os.fsync(fd)
except OSError as e:
    print(errno.errorcode[e.errno])
print(fcntl.ioctl(fd, ${PROBE_NONBLOCK}))
fcntl.fcntl(fd, fcntl.F_SETFL, 0)
os.write(fd, b'x')
print(fcntl.ioctl(fd, ${PROBE_NONBLOCK}))`,
    [t.path('dev/flags0')],
  );
  expect(r.stderr).toBe('');
  // The last line: F_SETFL cleared O_NONBLOCK and the WRITE carried that.
  expect(r.stdout.split('\n')).toEqual(['1', '1', 'EINVAL', '1', '0', '']);
});
