/**
 * Client commands that a script checks by exit code must not exit 0 when
 * what they were asked did not happen: `cdevemu events` whose daemon
 * stops or dies says so, exit 3, rather than ending as if interrupted.
 */
import { describe, expect, it } from 'vitest';
import { Interactive, python } from '../helpers/proc.js';
import { CLI, Daemon, lazyUnmount } from './harness.js';

describe('cdevemu events when the daemon goes away', () => {
  /** `cdevemu events --history` on `d`, once its stream has delivered an event a program's open made. */
  async function following(d: Daemon): Promise<Interactive> {
    const events = new Interactive('node', [CLI, 'events', '--history', '--socket', d.socket]);
    await python('import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY))', [d.dev('zero')]);
    while (!(await events.line()).includes('"type":"opened"'));
    return events;
  }

  it.each([['SIGTERM'], ['SIGKILL']] as const)('the daemon gets %s: exit 3, one line saying so', async (signal) => {
    const d = await Daemon.start();
    const events = await following(d);
    await d.stop(signal);
    // A killed daemon leaves its dead mount behind.
    if (signal === 'SIGKILL') await lazyUnmount(d.mount);
    expect(await events.exited).toEqual({ code: 3, signal: null });
    expect(events.stderr).toMatch(new RegExp(`^cdevemu: the cdevemu daemon at ${d.socket} (ended the event stream|went away in the middle of the event stream) \\(it was stopped(, or died)?\\)\\n$`));
  });

  it('Ctrl-C still ends it with exit 0', async () => {
    const d = await Daemon.start();
    const events = await following(d);
    events.kill('SIGINT');
    expect(await events.exited).toEqual({ code: 0, signal: null });
    expect(events.stderr).toBe('');
  });
});
