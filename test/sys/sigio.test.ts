/**
 * Signal-driven readiness (src/sys/sigio.ts) on real pipes, written by
 * other processes: the kernel's SIGIO reaches a watch only while it is
 * armed, disarming stops the signals themselves, a watch disarmed during a
 * signal's dispatch is not called by it, and a worker thread is refused.
 *
 * Each watch reads a fifo opened O_RDONLY while the test holds a writer
 * open, so a pipe write raises exactly one SIGIO (fs/pipe.c pipe_write ->
 * kill_fasync on the readers' list): no hang-up signal when a writing
 * child closes (pipe_release signals only when the last writer goes), and
 * none when the watch reads (an O_RDWR end would sit on the writers' list
 * too, and pipe_read signals that list on every read).
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { readOrErrno } from '../../src/sys/ffi.js';
import { SigioWatch } from '../../src/sys/sigio.js';
import { E } from '../../src/errno.js';

interface Fifo {
  path: string;
  /** The read end, which the watches watch. */
  fd: number;
  /** A writer held open: the pipe never loses its last writer between the children's writes. */
  held: number;
}

let dir: string;
let fifos: Fifo[] = [];
let signals = 0;
const countSignal = (): void => void signals++;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdevemu-sigio-'));
  process.on('SIGIO', countSignal);
});
afterEach(async () => {
  process.off('SIGIO', countSignal);
  for (const f of fifos) {
    closeSync(f.fd);
    closeSync(f.held);
  }
  fifos = [];
  await rm(dir, { recursive: true, force: true });
});

const exits = (cmd: string, args: string[]): Promise<void> =>
  new Promise((resolve, reject) => spawn(cmd, args).on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`${cmd}: ${c}`)))));

async function fifo(name: string): Promise<Fifo> {
  const path = join(dir, name);
  await exits('mkfifo', [path]);
  // O_NONBLOCK: opening the read end does not wait for a writer.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const f = { path, fd, held: openSync(path, constants.O_WRONLY) };
  fifos.push(f);
  return f;
}

/** Writes `text` into the fifo from a child process and waits for it to exit: by then the kernel has queued the data, and signalled if it was going to. */
const writeFromChild = (f: Fifo, text: string): Promise<void> => exits('sh', ['-c', `printf %s "$1" > "$2"`, 'sh', text, f.path]);

/** A watch on `f` that reads all it can each time it is called; `next()` resolves once a call has read something. */
function watchReading(f: Fifo): { watch: SigioWatch; got: string[]; calls: () => number; next: () => Promise<void> } {
  const buf = Buffer.alloc(64);
  const got: string[] = [];
  let calls = 0;
  let waiting: (() => void) | null = null;
  const watch = new SigioWatch(f.fd, () => {
    calls++;
    const before = got.length;
    for (let n; (n = readOrErrno(f.fd, buf, buf.length)) > 0;) got.push(buf.toString('latin1', 0, n));
    if (got.length > before) waiting?.();
  });
  return { watch, got, calls: () => calls, next: () => new Promise<void>((r) => (waiting = r)) };
}

it('calls the armed watch when another process makes the descriptor readable, and not once disarmed', async () => {
  const a = await fifo('a');
  const w = watchReading(a);
  // Non-blocking now: an empty pipe answers EAGAIN instead of blocking.
  expect(readOrErrno(a.fd, Buffer.alloc(8), 8)).toBe(-E.EAGAIN);

  w.watch.arm();
  let read = w.next();
  await writeFromChild(a, 'one');
  await read;
  expect(w.got).toEqual(['one']);

  // Disarmed: the kernel sends no signal for "two" and the watch is not
  // called. What shows that the window has closed is a later signal: a
  // witness watch on a second fifo, written once the child writing "two"
  // has exited. A signal for "two" was sent before that exit, so it is
  // dispatched before the witness's own.
  w.watch.disarm();
  const wf = await fifo('witness');
  const witness = watchReading(wf);
  witness.watch.arm();
  const before = { signals, calls: w.calls() };
  const marked = witness.next();
  await writeFromChild(a, 'two');
  await writeFromChild(wf, 'mark');
  await marked;
  expect(witness.got).toEqual(['mark']);
  expect(w.calls()).toBe(before.calls);
  expect(w.got).toEqual(['one']);
  expect(signals - before.signals).toBe(1); // the witness's: O_ASYNC is off on the disarmed descriptor
  witness.watch.forget();

  // Data queued before arming raised no signal; the next write does.
  w.watch.arm();
  read = w.next();
  await writeFromChild(a, 'three');
  await read;
  // One read took both: nothing had read "two" while the watch was disarmed.
  expect(w.got).toEqual(['one', 'twothree']);
  w.watch.forget();
});

it('does not call a watch that an earlier watch forgot during the same signal', async () => {
  // As when serving one mount's request closes another: the forgotten
  // watch's descriptor is closed, and its number may already name another file.
  const a = await fifo('a');
  const b = await fifo('b');
  let bCalls = 0;
  const second = new SigioWatch(b.fd, () => void bCalls++);
  let called!: () => void;
  const firstCalled = new Promise<void>((r) => (called = r));
  const first = new SigioWatch(a.fd, () => {
    second.forget();
    called();
  });
  first.arm(); // armed first, so called first
  second.arm();
  await writeFromChild(a, 'x');
  await firstCalled;
  // This runs in a microtask after the signal's listener has returned: every call it made is counted.
  expect(bCalls).toBe(0);
  first.forget();
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
