/**
 * Stopping the daemon while clients wait on it: an unplug in progress
 * whose handler never returns, and `unplug --wait-release` on a program
 * that keeps its file open. The shutdown window bounds the unplug in
 * progress; the daemon logs the stuck handler before it closes its API and
 * unmounts; the waiting client is told the daemon went away (exit 3), and
 * never takes the unmount's forced release for the program's close.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Interactive, pythonInteractive } from '../helpers/proc.js';
import { CLI, Daemon, EventRecorder, HOLDER, isMounted, scratch } from './harness.js';

/** The order of the daemon's log lines, by message. */
function logOrder(stderr: string, ...patterns: RegExp[]): number[] {
  const lines = stderr.split('\n');
  return patterns.map((p) => lines.findIndex((l) => p.test(l)));
}

const noStack = (text: string): void => {
  expect(text).not.toMatch(/^\s+at .+:\d+/m);
  expect(text).not.toContain('socket hang up');
};

describe('a signal while clients wait', () => {
  it('Ctrl-C during an unplug that drains a stuck handler: the daemon logs it before it exits; the client says the daemon went away', async () => {
    const dir = await scratch('stuckstop');
    // A read that never returns and ignores its signal; the unplug's own
    // drain bound is ten minutes, so only the shutdown can end it.
    await writeFile(join(dir, 'stuck.mjs'), `export default { name: 'stuckread', stream: true, create: () => ({}), read: () => new Promise(() => {}) };\n`);
    await writeFile(join(dir, 'cfg.yaml'), 'drainTimeoutMs: 600000\nmodels: [./stuck.mjs]\ndevices:\n  - { model: stuckread, name: stuck0 }\n');
    const d = await Daemon.start({ dir, args: ['--config', join(dir, 'cfg.yaml')] });
    // The reader keeps its file open after the shutdown answers its read:
    // a program that exits on the error releases the file itself, and the
    // client's wait then ends truthfully, before the daemon goes away.
    const reader = pythonInteractive(
      `import errno, os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint('open')\ntry:\n  os.read(fd, 1)\nexcept OSError as e:\n  print(errno.errorcode[e.errno])\nsys.stdin.readline()`,
      [d.dev('stuck0')],
    );
    let client: Interactive | null = null;
    try {
      expect(await reader.line()).toBe('open');
      const rec = new EventRecorder(d.client, { history: true });
      client = new Interactive('node', [CLI, 'unplug', 'stuck0', '--wait-release', '600', '--socket', d.socket]);
      await rec.waitFor((e) => e.device === 'stuck0' && e.type === 'unplug_started');

      expect(await d.stop('SIGINT')).toEqual({ code: 0, signal: null });
      const exit = await client.exited;
      expect(client.stderr.split('\n').at(-2)).toBe(
        `cdevemu: the cdevemu daemon at ${d.socket} went away while waiting for stuck0 (generation 1) to be released`,
      );
      expect(exit).toEqual({ code: 3, signal: null });
      expect(await reader.line()).toBe('EIO');
      // The unplug request was answered, bounded by the shutdown, with the stuck handler.
      expect(await client.line()).toMatch(/^unplugged stuck0 \(generation 1\), drained in /);
      expect(client.stderr).toMatch(new RegExp(`^stuck: read by pid ${reader.pid} \\(python3\\), running for `, 'm'));
      noStack(client.stderr);

      // The daemon said so before it closed its API and unmounted.
      const [stuck, closed, unmounted, stopped] = logOrder(
        d.proc.stderr,
        new RegExp(`stuck0 \\(generation 1\\): read by pid ${reader.pid} \\(python3\\) still running after \\d+ ms: stuck at shutdown`),
        /"msg":"control API closed"/,
        /"msg":"unmounted"/,
        /"msg":"stopped"/,
      );
      expect(stuck).toBeGreaterThanOrEqual(0);
      expect([stuck < closed, closed < unmounted, unmounted < stopped]).toEqual([true, true, true]);
      expect(await isMounted(d.mount)).toBe(false);
    } finally {
      client?.kill();
      reader.kill();
      await d.stop();
    }
  });

  it('a program that keeps its file open through the shutdown does not pass `unplug --wait-release`: exit 3, not 0', async () => {
    const d = await Daemon.start();
    const holder = pythonInteractive(HOLDER, [d.dev('echo0')]);
    let client: Interactive | null = null;
    try {
      expect(await holder.line()).toBe('open');
      const rec = new EventRecorder(d.client, { history: true });
      client = new Interactive('node', [CLI, 'unplug', 'echo0', '--wait-release', '600', '--socket', d.socket]);
      expect(await client.line()).toMatch(/^unplugged echo0 \(generation 1\)/);
      // The client waits on the holder; the daemon stops under it and
      // releases the file at the unmount, which is not the holder's close.
      await rec.waitFor((e) => e.device === 'echo0' && e.type === 'removed');
      expect(await d.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(await client.exited).toEqual({ code: 3, signal: null });
      expect(client.stderr).toBe(`cdevemu: the cdevemu daemon at ${d.socket} went away while waiting for echo0 (generation 1) to be released\n`);
      // The program never closed it.
      expect(holder.child.exitCode).toBeNull();
    } finally {
      client?.kill();
      holder.kill();
      await d.stop();
    }
  });
});
