/**
 * Signal-driven readiness (src/sys/sigio.ts) on a real pipe, written by
 * another process: the kernel's SIGIO reaches the watch only while it is
 * armed, and a worker thread is refused.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { readOrErrno } from '../../src/sys/ffi.js';
import { SigioWatch } from '../../src/sys/sigio.js';
import { E } from '../../src/errno.js';

let dir: string;
let fifo: string;
let fd: number;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdevemu-sigio-'));
  fifo = join(dir, 'fifo');
  await new Promise<void>((resolve, reject) => spawn('mkfifo', [fifo]).on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`mkfifo: ${c}`)))));
  fd = openSync(fifo, 'r+'); // O_RDWR: opening does not wait for a writer
});
afterEach(async () => {
  closeSync(fd);
  await rm(dir, { recursive: true, force: true });
});

/** Writes `text` into the fifo from a child process and waits for it to exit. */
const writeFromChild = (text: string): Promise<void> =>
  new Promise((resolve, reject) => {
    spawn('sh', ['-c', `printf %s "$1" > "$2"`, 'sh', text, fifo]).on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`sh: ${c}`))));
  });

it('calls the armed watch when another process makes the descriptor readable, and not once disarmed', async () => {
  const buf = Buffer.alloc(64);
  const got: string[] = [];
  let ready!: () => void;
  let woke = new Promise<void>((r) => (ready = r));
  const watch = new SigioWatch(fd, () => {
    for (let n; (n = readOrErrno(fd, buf, buf.length)) > 0; ) got.push(buf.toString('latin1', 0, n));
    ready();
  });
  // Non-blocking now: an empty pipe answers EAGAIN instead of blocking.
  expect(readOrErrno(fd, buf, buf.length)).toBe(-E.EAGAIN);

  watch.arm();
  await writeFromChild('one');
  await woke;
  expect(got).toEqual(['one']);

  // Disarmed: the data stays queued and nothing is called.
  watch.disarm();
  woke = new Promise<void>((r) => (ready = r));
  await writeFromChild('two');
  // The child has exited, so the kernel has queued the data (and would have
  // signalled); one event-loop turn lets a stray signal's callback run.
  await new Promise((r) => setImmediate(r));
  expect(got).toEqual(['one']);

  // Data queued before arming raised no signal; the next write does.
  watch.arm();
  await writeFromChild('three');
  await woke;
  // One read took both: nothing had read "two" while the watch was disarmed.
  expect(got).toEqual(['one', 'twothree']);
  watch.forget();
});

it('is refused in a worker thread, whose listeners Node never gives a signal', async () => {
  const url = new URL('../../dist/src/sys/sigio.js', import.meta.url).href;
  const w = new Worker(
    `import(${JSON.stringify(url)}).then((m) => { try { m.SigioWatch.assertMainThread(); require('node:worker_threads').parentPort.postMessage('allowed'); } catch (e) { require('node:worker_threads').parentPort.postMessage(e.message); } });`,
    { eval: true },
  );
  const message = await new Promise<string>((resolve) => w.once('message', resolve));
  await w.terminate();
  expect(message).toMatch(/main thread only \(it waits for requests with SIGIO\)/);
});
