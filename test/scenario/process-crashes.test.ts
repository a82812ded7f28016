/**
 * The name a crashed process is reported under (src/scenario/process-crashes.ts)
 * when it exec'd, crashed and was reaped before the run read its exec
 * event: /proc no longer has it, and the name it had before the exec (its
 * parent's) is not its name. The run's event loop is held in spawnSync()
 * while a real child execs test/clients/crash_after_main.c and dies of
 * SIGSEGV, so every event is read only after the process is gone; the
 * listener is the real proc connector (root only: test/suites.mjs).
 */
import { spawnSync } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import type { DeviceEvent } from '../../src/core/events.js';
import { NAME_UNREAD, ProcessCrashes } from '../../src/scenario/process-crashes.js';
import { cClient } from '../helpers/cc.js';

let crashes: ProcessCrashes | null = null;
afterEach(async () => {
  await crashes?.close();
  crashes = null;
});

it('names a process that exec\'d and was gone before its exec was read as unread, not by its parent\'s name', async () => {
  const client = await cClient('crash_after_main');
  const seen: DeviceEvent[] = [];
  crashes = new ProcessCrashes(() => false, (e) => seen.push(e)); // no wait or expectation is about a crash
  await crashes.start();
  expect(crashes.unavailable).toBeNull();
  // This process is the tree's root: the sh it forks, and the child sh forks and execs, are members.
  crashes.track(1, process.pid, process.hrtime.bigint(), () => false);
  const r = spawnSync('sh', ['-c', `${client}; exit 0`]);
  expect(r.status).toBe(0);
  crashes.sync();
  expect(seen.map((e) => [e.comm, e.signal])).toEqual([[NAME_UNREAD, 'SIGSEGV']]);
  expect(crashes.failure()).toContain(`(${NAME_UNREAD}), started by pid`);
});
