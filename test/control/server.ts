/**
 * A ControlServer on a temporary socket over a real DeviceManager whose
 * nodes go to core's FakePublisher: the whole HTTP side, without a mount
 * or root.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ControlClient } from '../../src/control/client.js';
import { ControlServer } from '../../src/control/server.js';
import { FaultEngine } from '../../src/faults/index.js';
import { setup } from '../core/helpers.js';

/** `socketPath`: listen there (a daemon started again where another was) rather than in a directory of its own. */
export async function startServer(socketPath?: string): Promise<{
  server: ControlServer;
  socket: string;
  core: ReturnType<typeof setup> & { client: ControlClient };
  close(): Promise<void>;
}> {
  const dir = socketPath === undefined ? await mkdtemp(join(tmpdir(), 'cdevemu-control-')) : null;
  const core = setup();
  const logger = pino({ level: 'silent' });
  const faults = new FaultEngine(logger);
  faults.attach(core.mgr);
  const socket = socketPath ?? join(dir!, 'ctl.sock');
  const server = await ControlServer.listen({
    socketPath: socket,
    devices: core.mgr,
    faults,
    mountpoint: join(dir ?? tmpdir(), 'mnt'),
    version: '0.0.0-test',
    logger,
  });
  return {
    server,
    socket,
    core: { ...core, client: new ControlClient(socket) },
    async close() {
      await server.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
