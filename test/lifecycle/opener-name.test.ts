/**
 * The opener's name (/proc/PID/comm) in events and holders is read at each
 * open, and is the current one: a process that renames itself
 * (PR_SET_NAME) between two opens is seen under its new name the second
 * time, though the daemon keeps its comm file open between them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.js';
import { python } from '../helpers/proc.js';

let t: TestEmulator;
beforeAll(async () => {
  t = await startTestEmulator();
});
afterAll(() => t.emu.stop({ releaseTimeoutMs: 0 }));

describe('opener name', () => {
  it('follows a rename between two opens of the same process', async () => {
    await t.emu.devices.plug({ model: 'zero', name: 'namez0' });
    const r = await python(
      `import os,sys,ctypes
os.close(os.open(sys.argv[1], os.O_RDONLY))
ctypes.CDLL(None).prctl(15, b"renamed-opener", 0, 0, 0)  # PR_SET_NAME
os.close(os.open(sys.argv[1], os.O_RDONLY))
print(os.getpid(), flush=True)`,
      [t.path('dev/namez0')],
    );
    expect(r.stderr).toBe('');
    const pid = Number(r.stdout.trim());
    const opened = t.events.filter((e) => e.device === 'namez0' && e.type === 'opened');
    expect(opened.map((e) => [e.pid, e.comm])).toEqual([
      [pid, 'python3'],
      [pid, 'renamed-opener'],
    ]);
  });
});
