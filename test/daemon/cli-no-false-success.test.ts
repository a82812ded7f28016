/**
 * Client commands that a script checks by exit code must not exit 0 when
 * what they were asked did not happen: a KEY=VALUE field given twice is
 * refused (not the last taken, silently), and `cdevemu events` whose
 * daemon stops or dies says so, exit 3, rather than ending as if
 * interrupted.
 */
import { describe, expect, it } from 'vitest';
import { Interactive, python } from '../helpers/proc.js';
import { CLI, Daemon, lazyUnmount } from './harness.js';

/** Reads and writes `path` once each, printing each call's errno (ok if none), as a program under test would. */
const READ_WRITE = `import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NONBLOCK)
for call in (lambda: os.read(fd, 1), lambda: os.write(fd, b"x")):
    try: call(); print('ok')
    except OSError as e: print(errno.errorcode[e.errno])`;

describe('a KEY=VALUE field given twice', () => {
  it('fault add op=read op=write: exit 2, no rule added; the JSON list faults both', async () => {
    const d = await Daemon.start();
    await d.client.plug({ model: 'echo', name: 'twice0' });
    const twice = await d.cli(['fault', 'add', 'device=twice0', 'op=read', 'op=write', 'action=fail', 'errno=EIO']);
    expect(twice.stderr).toBe('cdevemu: fault add: op is given twice ("read" and "write"); give each key once\n');
    expect(twice.code).toBe(2);
    // In --json and as a word: which one was meant is as unclear.
    const both = await d.cli(['fault', 'add', '--json', '{"device":"twice0","op":"read"}', 'device=zero', 'action=fail', 'errno=EIO']);
    expect(both.stderr).toMatch(/^cdevemu: fault add: device is given twice \("twice0" and "zero"\)/);
    expect(both.code).toBe(2);
    expect(await d.client.listFaults()).toEqual([]);
    // Nothing faults the program's calls.
    expect((await python(READ_WRITE, [d.dev('twice0')])).stdout).toBe('EAGAIN\nok\n');

    const list = await d.cli(['fault', 'add', 'device=twice0', 'op=["read","write"]', 'action=fail', 'errno=EIO']);
    expect(list.code, list.stderr).toBe(0);
    expect((await python(READ_WRITE, [d.dev('twice0')])).stdout).toBe('EIO\nEIO\n');
  });

  it('plug --option k=v --option k=w: exit 2, nothing plugged', async () => {
    const d = await Daemon.start();
    const r = await d.cli(['plug', 'echo', 'twice1', '--option', 'capacity=16', '--option', 'capacity=4096']);
    expect(r.stderr).toContain('capacity is given twice (16 and 4096); give each key once');
    expect(r.code).toBe(2);
    expect((await d.client.listDevices()).map((i) => i.name)).not.toContain('twice1');
  });
});

describe('fault add with a name that reads as JSON', () => {
  it('device=null is the default daemon\'s device null, comm=123 the process 123: added, and the program faulted', async () => {
    // Before, the words were sent as JSON null and 123, and refused: "device: expected a device name or glob".
    const d = await Daemon.start();
    const r = await d.cli(['fault', 'add', 'device=null', 'comm=123', 'op=write', 'action=fail', 'errno=ENOSPC']);
    expect(r.code, r.stderr).toBe(0);
    expect(await d.client.listFaults()).toMatchObject([{ device: 'null', comm: '123' }]);
    const write = 'import os, sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\ntry: os.write(fd, b"x"); print("ok")\nexcept OSError as e: print(e.strerror)';
    expect((await python(`import ctypes\nctypes.CDLL(None).prctl(15, b"123")\n${write}`, [d.dev('null')])).stdout).toBe('No space left on device\n');
  });
});

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
