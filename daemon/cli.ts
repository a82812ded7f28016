#!/usr/bin/env -S node --max-semi-space-size=2 --expose-gc
/**
 * The cdevemu executable. `cdevemu daemon` serves; every other command is a
 * client of the daemon's control API. Exit codes (README.md, "Commands"): 0 ok, 1 failed
 * expectation, 2 usage or bad input, 3 daemon unreachable.
 *
 * --max-semi-space-size=2 (MiB) on the #! line: V8's young generation
 * otherwise grows to 16 MiB a semi-space under a request load, which put
 * the daemon's peak RSS at twice its idle RSS; a request's garbage is small
 * and short-lived. 1 MiB saved 2 MiB more but scavenged every ~110 echo
 * round trips, 0.3-0.5 ms each, which made the ping-pong p99 (270-320 µs
 * against 85-150 at 2 MiB). It can only be given at start
 * (v8.setFlagsFromString comes too late for the heap), so `npm start`
 * and the bench pass it too.
 * --expose-gc lets the daemon give a burst's memory back once it is idle
 * (daemon/idle-gc.ts); started as `node dist/daemon/cli.js`, without the
 * #! line, the daemon turns it on itself (idle-gc.ts runtimeGc), and only
 * the semi-space bound is left at V8's default.
 */
import { describeExit } from './exit.js';
import { buildProgram } from './program.js';

function exitNow(code: number): void {
  process.exit(code);
}

try {
  await buildProgram(exitNow).parseAsync(process.argv);
} catch (err) {
  const { code, message } = describeExit(err);
  if (message) process.stderr.write(`cdevemu: ${message}\n`);
  process.exitCode = code;
}
// The command is done: exit now rather than when the last timer or handle a
// command left behind lets go, once what it wrote has left. Files and
// terminals take stdout's writes at once; a pipe takes what fits (64 KiB)
// and libuv queues the rest until the reader makes room, which
// process.exit() would drop: `cdevemu ls --json | jq` cut short.
await Promise.all([written(process.stdout), written(process.stderr)]);
process.exit(process.exitCode ?? 0);

/**
 * Resolves once every write made to `out` so far has been handed to the
 * kernel, or has failed. A reader that went away (`cdevemu ls | head -1`)
 * fails the queued write with EPIPE, as SIGPIPE would end a C tool (Node
 * ignores that signal): nothing more can be written, so that is done too,
 * quietly. Commands that stream (events, run) handle EPIPE themselves
 * while they run.
 */
function written(out: NodeJS.WriteStream): Promise<void> {
  if (out.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    out.once('error', () => resolve());
    // Writes complete in order: the callback of an empty one runs after those before it.
    out.write('', () => resolve());
  });
}
