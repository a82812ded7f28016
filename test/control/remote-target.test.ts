/**
 * `cdevemu run --socket`'s target (src/scenario/remote.ts) against the
 * real control server: a sync after the daemon's event stream ended fails
 * at once. A daemon started again on the socket numbers its streams
 * afresh, so the mark would land on another subscriber's stream with the
 * run's old id and never reach the run, whose final sync would wait
 * forever.
 */
import { afterEach, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { RemoteTarget } from '../../src/scenario/remote.js';
import { startServer } from './server.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

it('fails a sync at once once the event stream has ended, though a new daemon on the socket has a stream of the same id', async () => {
  const first = await startServer();
  const target = await RemoteTarget.connect(new ControlClient(first.socket));
  let ended!: (why: string) => void;
  const endedWhy = new Promise<string>((resolve) => (ended = resolve));
  const unsubscribe = await target.subscribe(() => {}, ended);
  closers.push(async () => unsubscribe());
  await target.sync(); // the stream works: the mark comes back
  await first.server.close(); // the daemon goes, and with it the stream
  expect(await endedWhy).toBeTruthy();

  const second = await startServer(first.socket);
  closers.push(second.close, first.close);
  // Another client takes the new daemon's first stream: the id the run's stream had.
  const other = new AbortController();
  closers.push(async () => other.abort());
  const otherOpen = new Promise<number>((resolve) => {
    void (async () => {
      try {
        for await (const _ of second.core.client.events({ signal: other.signal, onOpen: resolve })) void _;
      } catch {
        // ended by the abort
      }
    })();
  });
  expect(await otherOpen).toBe(1);
  await expect(target.sync()).rejects.toThrow(/the event stream ended before it reached the sync mark/);
});
