/**
 * A real FUSE mount served from the test process, under the run's test
 * root. Clients must be other processes (test/helpers/proc.ts): this
 * process answers the mount, so it never touches it with synchronous calls.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { afterAll } from 'vitest';
import { DeviceFs } from '../../src/fs/devicefs.js';
import { FuseServer, type ServeOptions } from '../../src/fuse/server.js';

export interface TestMount {
  dir: string;
  fs: DeviceFs;
  server: FuseServer;
  log: Logger;
  /** Absolute path of a node in the mount. */
  path(rel: string): string;
  close(): Promise<void>;
}

const open = new Set<TestMount>();
afterAll(async () => {
  await Promise.all([...open].map((m) => m.close()));
});

export function testRoot(): string {
  const root = process.env.CDEVEMU_TEST_ROOT;
  if (!root) throw new Error('CDEVEMU_TEST_ROOT is not set: run tests through vitest (test/helpers/global-setup.ts)');
  return root;
}

export function testLogger(): Logger {
  return pino({ level: process.env.CDEVEMU_TEST_LOG ?? 'silent' });
}

/** Mounts a DeviceFs; `setup` adds nodes before the kernel sees the mount; `serve` overrides the server's defaults. */
export async function mountDeviceFs(
  setup: (fs: DeviceFs) => void = () => {},
  serve: Omit<ServeOptions, 'mountpoint' | 'logger'> = {},
): Promise<TestMount> {
  const dir = await mkdtemp(join(testRoot(), 'mnt-'));
  const log = testLogger();
  const fs = new DeviceFs(log);
  setup(fs);
  const server = await FuseServer.mount(fs, { ...serve, mountpoint: dir, logger: log });
  fs.attachNotifier(server);
  let closing: Promise<void> | null = null;
  const m: TestMount = {
    dir,
    fs,
    server,
    log,
    path: (rel) => join(dir, rel),
    close: () => {
      open.delete(m);
      return (closing ??= server.close());
    },
  };
  open.add(m);
  return m;
}
