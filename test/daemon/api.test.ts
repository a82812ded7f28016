/**
 * The control API and the client commands against one running daemon: the
 * demo devices, plug/unplug/replug, errors and exit codes, the event
 * stream, and unplug --wait-release as a leak detector.
 */
import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, ControlClient, DaemonUnreachableError } from '../../src/control/client.js';
import type { DeviceView } from '../../src/control/protocol.js';
import { Interactive, python, pythonInteractive, run } from '../helpers/proc.js';
import { CLI, Daemon, EventRecorder, HOLDER, cli, eventually, rawRequest, scratch } from './harness.js';

let d: Daemon;

beforeAll(async () => {
  d = await Daemon.start();
});

afterAll(async () => {
  const e = await d.stop();
  expect(e).toEqual({ code: 0, signal: null });
});

const post = (path: string, body: unknown): ReturnType<typeof rawRequest> =>
  rawRequest(d.socket, 'POST', path, typeof body === 'string' ? body : JSON.stringify(body));

describe('a running daemon', () => {
  it('serves the demo devices on a 0600 socket, and prints how to try them', async () => {
    const st = await stat(d.socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);

    const s = await d.client.status();
    expect(s).toMatchObject({ pid: d.pid, mountpoint: d.mount, socket: d.socket, version: '0.1.0' });
    expect(s.live).toBeGreaterThanOrEqual(4);

    const hint = await d.proc.line();
    expect(hint).toContain(`${d.mount}/dev`);

    const ls = await d.cli(['ls']);
    expect(ls.code).toBe(0);
    const rows = ls.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+MODEL\s+GEN\s+STATE\s+OPEN\s+HOLDERS\s+MAPPED\s+IN-FLIGHT$/);
    expect(rows).toContainEqual(expect.stringMatching(/^echo0\s+echo\s+1\s+live\s+0\s+-\s+-\s+0$/));
    expect(rows).toContainEqual(expect.stringMatching(/^uio0\s+uio\s+1\s+live\s+0\s+-\s+map0 x0\s+0$/));
    for (const name of ['zero', 'null', 'full']) expect(rows).toContainEqual(expect.stringMatching(new RegExp(`^${name}\\s+${name}\\s+1\\s+live`)));

    const json = await d.cli(['ls', '--json']);
    const list = JSON.parse(json.stdout) as DeviceView[];
    expect(list.map((x) => x.name)).toEqual(expect.arrayContaining(['echo0', 'zero', 'null', 'full']));
    expect(list.find((x) => x.name === 'echo0')).toMatchObject({ model: 'echo', generation: 1, state: 'live', openFiles: 0, holders: [] });

    const status = await d.cli(['status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`pid ${d.pid}`);

    // The nodes really serve: read zeros through the mount from another process.
    const head = await run('sh', ['-c', `head -c 4 ${d.dev('zero')} | od -An -tx1`]);
    expect(head.stdout.trim()).toBe('00 00 00 00');
  });

  it('answers curl on the socket', async () => {
    const r = await run('curl', ['-sS', '--unix-socket', d.socket, 'http://cdevemu/v1/devices']);
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as DeviceView[];
    expect(list.find((x) => x.name === 'echo0')?.model).toBe('echo');
  });

  it('plugs, unplugs and replugs through the CLI', async () => {
    const plug = await d.cli(['plug', 'echo', 'rt0', '--option', 'capacity=16']);
    expect(plug.code, plug.stderr).toBe(0);
    expect(plug.stdout).toContain(`rt0 (echo, generation 1) at ${d.dev('rt0')}`);
    const io = await python(
      `import os,sys\nfd=os.open(sys.argv[1], os.O_RDWR)\nos.write(fd, b'hi')\nprint(os.read(fd, 16).decode())`,
      [d.dev('rt0')],
    );
    expect(io.stdout.trim()).toBe('hi');
    await eventually(async () =>
      expect((await d.client.getDevice('rt0')).counters).toMatchObject({ opens: 1, releases: 1, writes: 1, reads: 1 }),
    );

    const unplug = await d.cli(['unplug', 'rt0']);
    expect(unplug.code, unplug.stderr).toBe(0);
    expect(unplug.stdout).toContain('unplugged rt0 (generation 1)');
    // No holder: freed at once, gone from the list and from the mount.
    expect((await d.client.listDevices()).some((x) => x.name === 'rt0')).toBe(false);
    expect((await run('test', ['-e', d.dev('rt0')])).code).toBe(1);

    expect((await d.cli(['plug', 'echo', 'rt0'])).stdout).toContain('generation 2');
    const replug = await d.cli(['replug', 'rt0']);
    expect(replug.code, replug.stderr).toBe(0);
    expect(replug.stdout).toContain('rt0 (echo, generation 3)');
    const now = (await d.client.listDevices()).filter((x) => x.name === 'rt0');
    expect(now.map((x) => [x.generation, x.state])).toEqual([[3, 'live']]);
    expect((await run('test', ['-e', d.dev('rt0')])).code).toBe(0);
    await d.client.unplug('rt0');
  });

  it('refuses bad requests with the documented status codes', async () => {
    expect(await rawRequest(d.socket, 'GET', '/v1/devices/nosuch')).toMatchObject({ status: 404, json: { code: 'not_found' } });
    expect(await post('/v1/devices/nosuch/unplug', {})).toMatchObject({ status: 404, json: { code: 'not_found' } });
    expect(await rawRequest(d.socket, 'GET', '/v1/nothing')).toMatchObject({ status: 404, json: { code: 'not_found' } });
    expect(await post('/v1/devices/zero/actions/frobnicate', {})).toMatchObject({ status: 404 });

    const bad = await post('/v1/devices', '{"model": "echo",');
    expect(bad).toMatchObject({ status: 400, json: { code: 'bad_json' } });
    expect(bad.json.error).toMatch(/malformed JSON/);
    const wrongType = await post('/v1/devices', { model: 42, name: 'x' });
    expect(wrongType).toMatchObject({ status: 400, json: { code: 'bad_request' } });
    expect(wrongType.json.error).toMatch(/^model: expected a string/);
    expect((await post('/v1/devices', { model: 'echo', name: 'x', colour: 'red' })).json.error).toMatch(/^colour: unknown field/);
    expect((await post('/v1/devices', { model: 'echo' })).json.error).toMatch(/^name: missing/);
    expect((await post('/v1/devices/echo0/unplug', { drainTimeoutMs: 'soon' })).json.error).toMatch(/^drainTimeoutMs: expected a number/);
    // A route that takes no input refuses fields rather than ignore them.
    expect(await post('/v1/devices/echo0/end-session', { force: true })).toMatchObject({
      status: 400,
      json: { code: 'bad_request', error: 'force: unknown field (this takes no fields)' },
    });
    expect(await post('/v1/devices', { model: 'nosuch', name: 'y' })).toMatchObject({ status: 400, json: { code: 'unknown_model' } });
    // Options out of the model's declared range are a bad request naming the field, the value and the range.
    expect(await post('/v1/devices', { model: 'echo', name: 'e9', options: { capacity: -1 } })).toMatchObject({
      status: 400,
      json: { code: 'bad_request', error: 'echo: option capacity must be an integer from 1 to 1073741824, got -1' },
    });
    // An Errno thrown by the model's create() is answered with its name.
    expect(await post('/v1/devices', { model: 'spidev', name: 'adc' })).toMatchObject({ status: 400, json: { code: 'EINVAL' } });

    expect(await post('/v1/devices', { model: 'echo', name: 'echo0' })).toMatchObject({ status: 409, json: { code: 'conflict' } });
    const del = await rawRequest(d.socket, 'DELETE', '/v1/devices');
    expect(del).toMatchObject({ status: 405, json: { code: 'method_not_allowed' } });
    expect(del.headers.allow).toBe('GET, POST');
    expect(await post('/v1/faults', { action: 'fail', errno: 'ENOPE' })).toMatchObject({ status: 400, json: { code: 'bad_request' } });
    expect(await rawRequest(d.socket, 'DELETE', '/v1/faults/nosuch')).toMatchObject({ status: 404, json: { code: 'not_found' } });
    expect(await post('/v1/devices', Buffer.alloc(2 << 20, 0x20))).toMatchObject({ status: 413, json: { code: 'too_large' } });

    // The typed client carries status and code.
    const err = await d.client.getDevice('nosuch').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 404, code: 'not_found' });
    // The daemon is still fine.
    expect((await d.client.status()).pid).toBe(d.pid);
  });

  it('adds, lists, fires and removes fault rules through the CLI and the API', async () => {
    await d.cli(['plug', 'null', 'fz0']);
    const add = await d.cli(['fault', 'add', 'device=fz0', 'op=write', 'nth=2', 'action=fail', 'errno=ENOSPC']);
    expect(add.code, add.stderr).toBe(0);
    const id = /added fault (\S+):/.exec(add.stdout)![1]!;
    expect(add.stdout).toContain('fz0 write nth=2 -> fail errno=ENOSPC');
    expect(add.stderr).toBe('');
    // A name no device has is taken (it may be plugged later), with a note: a misspelt one would fire on nothing.
    const typo = await d.cli(['fault', 'add', 'device=fzz0', 'op=write', 'action=fail', 'errno=EIO']);
    expect(typo.code, typo.stderr).toBe(0);
    expect(typo.stderr).toMatch(/^note: no device matches "fzz0" now \(devices: [^)]*\bfz0\b[^)]*\); the rule acts on one plugged later\n$/);
    expect((await d.cli(['fault', 'rm', /added fault (\S+):/.exec(typo.stdout)![1]!])).code).toBe(0);
    const dup = await post('/v1/faults', { id, action: 'hang', op: 'read' });
    expect(dup).toMatchObject({ status: 409, json: { code: 'conflict' } });

    const w = await python(
      `import os,sys,errno
fd = os.open(sys.argv[1], os.O_WRONLY)
for i in range(3):
    try: print(os.write(fd, b"x"))
    except OSError as e: print(errno.errorcode[e.errno])`,
      [d.dev('fz0')],
    );
    expect(w.stdout.split('\n')).toEqual(['1', 'ENOSPC', '1', '']);

    const ls = await d.cli(['fault', 'ls']);
    expect(ls.stdout).toMatch(new RegExp(`^${id}\\s+fz0 write\\s+nth=2\\s+fail errno=ENOSPC\\s+3\\s+1$`, 'm'));
    expect((await d.client.listFaults()).find((r) => r.id === id)).toMatchObject({ matched: 3, fired: 1 });
    expect((await d.client.getDevice('fz0')).counters.faults).toBe(1);

    const bad = await d.cli(['fault', 'add', 'action=fail', 'errno=ENOTREAL']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/errno: expected an errno name/);

    expect((await d.cli(['fault', 'rm', id])).stdout).toBe(`removed ${id}\n`);
    expect(await d.client.listFaults()).toEqual([]);
    expect((await d.cli(['fault', 'rm', id])).code).toBe(2);
  });

  it('maps errors to exit codes: 2 for bad input, 3 for no daemon', async () => {
    // Independent CLI runs, started together: on a loaded machine each
    // node start-up can take seconds.
    const dir = await scratch('nodaemon');
    const slow = { timeoutMs: 90_000 };
    const [unknown, live, badJson, noValue, noName, noCommand, badWait, gone, env] = await Promise.all([
      d.cli(['unplug', 'nosuch'], slow),
      d.cli(['plug', 'echo', 'echo0'], slow),
      d.cli(['action', 'zero', 'x', '{not json'], slow),
      d.cli(['plug', 'echo', 'x1', '--option', 'novalue'], slow),
      d.cli(['plug', 'echo'], slow),
      cli(['no-such-command'], slow),
      cli(['unplug', 'x', '--wait-release', 'soon', '--socket', d.socket], slow),
      cli(['ls', '--socket', `${dir}/none.sock`], slow),
      cli(['status'], { ...slow, env: { ...process.env, CDEVEMU_SOCKET: `${dir}/env.sock` } }),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no device nosuch.*not_found/);
    expect(live.code).toBe(2);
    expect(live.stderr).toMatch(/exists.*conflict/);
    for (const r of [badJson, noValue, noName, noCommand, badWait]) expect(r.code, r.stderr).toBe(2);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/cannot reach the cdevemu daemon.*ENOENT/);
    expect(env.code).toBe(3);
    expect(env.stderr).toContain(`${dir}/env.sock`);
    const err = await new ControlClient(`${dir}/none.sock`).status().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonUnreachableError);
  }, 120_000);

  it('streams events in lifecycle order for a file held across unplug', async () => {
    // With the history replayed first, nothing depends on when the stream connects.
    const rec = new EventRecorder(d.client, { history: true });
    await d.client.plug({ model: 'echo', name: 'ev0' });
    const holder = pythonInteractive(HOLDER, [d.dev('ev0')]);
    expect(await holder.line()).toBe('open');
    await rec.waitFor((e) => e.device === 'ev0' && e.type === 'opened');

    const report = await d.client.unplug('ev0');
    expect(report).toMatchObject({ device: 'ev0', generation: 1, stuck: [] });
    // A zombie now: listed, gone, still held.
    const zombie = await d.client.getDevice('ev0', { generation: 1 });
    expect(zombie).toMatchObject({ state: 'gone', openFiles: 1 });
    expect(zombie.holders[0]!.pid).toBe(holder.pid);

    holder.send('close');
    expect(await holder.line()).toBe('closed');
    await rec.waitFor((e) => e.device === 'ev0' && e.type === 'freed');
    await rec.stop();
    expect(rec.typesOf('ev0', 1)).toEqual(['plugged', 'opened', 'unplug_started', 'drained', 'removed', 'late_released', 'freed']);
    const late = rec.events.find((e) => e.device === 'ev0' && e.type === 'late_released');
    expect(late?.pid).toBe(holder.pid);

    // The CLI prints the same stream, the kept history first with --history.
    const events = new Interactive('node', [CLI, 'events', '--history', '--socket', d.socket]);
    const lines: Array<{ type: string; device: string }> = [];
    while (!lines.some((e) => e.device === 'ev0' && e.type === 'freed')) lines.push(JSON.parse(await events.line()) as { type: string; device: string });
    events.kill();
    expect(lines.filter((e) => e.device === 'ev0').map((e) => e.type)).toEqual(rec.typesOf('ev0', 1));
    holder.kill();
  });

  it('unplug --wait-release: exit 1 naming the holder, exit 0 when it closes in time', async () => {
    await d.client.plug({ model: 'echo', name: 'leak0' });
    const holder = pythonInteractive(HOLDER, [d.dev('leak0')]);
    expect(await holder.line()).toBe('open');
    const leak = await d.cli(['unplug', 'leak0', '--wait-release', '1']);
    expect(leak.code).toBe(1);
    expect(leak.stderr).toMatch(new RegExp(`pid ${holder.pid} \\(python3[^)]*\\), open for \\d`));
    // Not a terminal: no progress line.
    expect(leak.stderr).not.toContain('\r');
    holder.send('close');
    expect(await holder.line()).toBe('closed');
    holder.kill();

    await d.client.plug({ model: 'echo', name: 'leak1' });
    const polite = pythonInteractive(HOLDER, [d.dev('leak1')]);
    expect(await polite.line()).toBe('open');
    const waiting = d.cli(['unplug', 'leak1', '--wait-release', '10']);
    // Close once the unplug has happened (the file is then a zombie's).
    await eventually(async () => expect((await d.client.getDevice('leak1')).state).not.toBe('live'), 10_000);
    polite.send('close');
    const ok = await waiting;
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('unplugged leak1 (generation 1)');
    expect(ok.stderr).toBe('');
    polite.kill();
  });
});

describe('--busy-poll', () => {
  // Echo round trips in one process, then a read that must block until a
  // second writer comes: with busy polling off, every wait for a request
  // goes straight to ppoll and then to SIGIO, the path a quiet daemon takes.
  const ROUND_TRIPS = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(200):
    msg = b'%d' % i
    assert os.write(fd, msg) == len(msg)
    assert os.read(fd, 64) == msg, i
print('ok')
`;

  it('0: round trips and a read woken by a later write are served, every wait going straight to ppoll', async () => {
    const quiet = await Daemon.start({ args: ['--busy-poll', '0'] });
    try {
      const trips = await python(ROUND_TRIPS, [quiet.dev('echo0')]);
      expect(trips.stdout, trips.stderr).toBe('ok\n');
      const reader = pythonInteractive(
        `import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint('open', flush=True)\nprint(os.read(fd, 64).decode(), flush=True)`,
        [quiet.dev('echo0')],
      );
      expect(await reader.line()).toBe('open');
      // The reader may not be inside read() yet; the write is answered either way.
      await run('sh', ['-c', `printf woken > ${quiet.dev('echo0')}`]);
      expect(await reader.line()).toBe('woken');
      reader.kill();
    } finally {
      expect(await quiet.stop()).toEqual({ code: 0, signal: null });
    }
  });

  it('refuses a value that is not a number of µs up to 1000', async () => {
    const [big, word] = await Promise.all([cli(['daemon', '--busy-poll', '5000']), cli(['daemon', '--busy-poll', 'soon'])]);
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/--busy-poll: at most 1000 µs, got 5000/);
    expect(word.code).toBe(2);
    expect(word.stderr).toMatch(/--busy-poll: expected a non-negative number, got "soon"/);
  });
});
