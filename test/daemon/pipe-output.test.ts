/**
 * A client command's output through a pipe: all of it reaches a reader
 * slower than the command (a pipe takes 64 KiB, Node queues the rest, and
 * the command must not exit before it is written), and a reader that goes
 * away early ends the command quietly.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { run } from '../helpers/proc.js';
import { CLI, Daemon } from './harness.js';

/**
 * Reads nothing until the pipe on its stdin is full (FIONREAD reaches
 * F_GETPIPE_SZ), so the writer has had to queue the rest; then reads to EOF
 * and prints the pipe's size and how many bytes came.
 */
const SLOW_READER = `
import fcntl, struct, sys, termios, time
F_GETPIPE_SZ = 1032
size = fcntl.fcntl(0, F_GETPIPE_SZ)
while struct.unpack('i', fcntl.ioctl(0, termios.FIONREAD, b'\\0' * 4))[0] < size:
    time.sleep(0.01)
print(size, len(sys.stdin.buffer.read()))
`;

let d: Daemon;

beforeAll(async () => {
  d = await Daemon.start();
  // Enough devices that `ls --json` is well over a pipe's 64 KiB.
  for (let i = 0; i < 150; i++) await d.client.plug({ model: 'zero', name: `pipe${i}` });
});

afterAll(async () => {
  expect(await d.stop()).toEqual({ code: 0, signal: null });
});

/** bash -c SCRIPT with `ls` standing for `cdevemu ls --json` on this daemon (paths passed as arguments, never spliced into the script). */
const withLs = (script: string, ...args: string[]): ReturnType<typeof run> =>
  run('bash', ['-o', 'pipefail', '-c', `ls() { "$NODE" "$CLI" ls --json --socket "$SOCKET"; }; ${script}`, 'bash', ...args], {
    env: { ...process.env, NODE: process.execPath, CLI, SOCKET: d.socket },
  });

it('writes all of its output to a reader that reads only once the pipe is full', async () => {
  const whole = await d.cli(['ls', '--json']);
  expect(whole.code).toBe(0);
  const bytes = Buffer.byteLength(whole.stdout);
  // More than a pipe's default 64 KiB (pipe(7)), or the reader would wait for ever.
  expect(bytes).toBeGreaterThan(65536);
  const piped = await withLs('ls | python3 -c "$1"', SLOW_READER);
  expect(piped.stderr).toBe('');
  expect(piped.code).toBe(0);
  const [pipeSize, got] = piped.stdout.trim().split(' ').map(Number);
  expect(bytes).toBeGreaterThan(pipeSize!);
  expect(got).toBe(bytes);
});

it('exits 0, with nothing on stderr, when its reader leaves after the first byte', async () => {
  const r = await withLs('ls | head -c 1 >/dev/null; echo "${PIPESTATUS[0]}"');
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe('0\n');
});
