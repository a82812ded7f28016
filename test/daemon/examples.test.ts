/**
 * The example config and the user-written model in examples/: the daemon
 * loads them as a user would (`--config examples/config.yaml`, with the
 * mount and socket moved into the test root by flags).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { python, pythonInteractive, run } from '../helpers/proc.js';
import { repoRoot } from '../helpers/cli.js';
import { Daemon, eventually } from './harness.js';

let d: Daemon;
beforeAll(async () => {
  d = await Daemon.start({ args: ['--config', join(repoRoot, 'examples/config.yaml'), '--log-level', 'warn'] });
});
afterAll(() => d.stop());

it('plugs the devices and fault rules the example config lists', async () => {
  const names = (await d.client.listDevices()).map((x) => `${x.name}:${x.model}`);
  expect(names).toEqual(['uio0:uio', 'event0:evdev', 'echo0:echo', 'temp0:thermometer']);
  expect(await d.client.listFaults()).toMatchObject([{ device: 'echo0', every: 5, action: 'delay' }]);
  expect((await run('cat', [join(d.mount, 'sys/class/uio/uio0/name')])).stdout).toBe('tcmu-example\n');
});

it('serves the user-written thermometer model: readings, actions, attributes, unplug', async () => {
  const dev = d.dev('temp0');
  const first = await python(`import os,sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint(os.read(fd, 64).decode(), end="")`, [dev]);
  expect(first.stdout).toBe('temp=36.6\n');

  const act = await d.cli(['action', 'temp0', 'set', '41.5']);
  expect(JSON.parse(act.stdout)).toEqual({ celsius: 41.5 });
  expect((await run('cat', [join(d.mount, 'sys/class/hwmon/temp0/temp1_input')])).stdout).toBe('41500\n');

  // A blocking reader gets each new reading once, from the next one on; the
  // unplug ends its read EIO whether the read is already blocked or starts
  // after the unplug.
  const reader = pythonInteractive(
    `import os,sys,errno
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.read(fd, 64).decode(), end="")
while True:
    try: os.read(fd, 64); print("data")
    except OSError as e: print(errno.errorcode[e.errno]); break`,
    [dev],
  );
  expect(await reader.line()).toBe('temp=41.5'); // the next reading, within intervalMs
  await d.client.unplug('temp0');
  let after = await reader.line();
  while (after === 'data') after = await reader.line();
  expect(after).toBe('EIO');
  await reader.exited;
  // Freed once the reader's file is released (remove() stopped the model's timer).
  await eventually(async () => expect((await d.client.listDevices()).map((x) => x.name)).not.toContain('temp0'));
});

it('a thermometer with nothing new since open: a non-blocking read is EAGAIN, a blocked one is woken EIO by the unplug', async () => {
  // An hour between readings, so nothing arrives during the test however
  // loaded the machine is (temp0's 200 ms could pass between open and read).
  await d.client.plug({ model: 'thermometer', name: 'temp1', options: { intervalMs: 3_600_000 } });
  const reader = pythonInteractive(
    `import os,sys,errno,fcntl
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
try: os.read(fd, 64); print("data")
except OSError as e: print(errno.errorcode[e.errno])
fcntl.fcntl(fd, fcntl.F_SETFL, 0)
print("blocking")
try: os.read(fd, 64); print("data")
except OSError as e: print(errno.errorcode[e.errno])`,
    [d.dev('temp1')],
  );
  expect(await reader.line()).toBe('EAGAIN');
  expect(await reader.line()).toBe('blocking');
  await eventually(async () => expect((await d.client.getDevice('temp1')).inFlight).toHaveLength(1));
  await d.client.unplug('temp1');
  expect(await reader.line()).toBe('EIO');
  await reader.exited;
  await eventually(async () => expect((await d.client.listDevices()).map((x) => x.name)).not.toContain('temp1'));
});
