/**
 * The daemon process itself: shutdown on SIGTERM with files still open,
 * recovery after SIGKILL, one daemon per socket, config files, and user
 * model modules.
 */
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pythonInteractive, run } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { Daemon, EventRecorder, HOLDER, cli, isMounted, scratch } from './harness.js';

const exists = (p: string): Promise<boolean> => access(p).then(
  () => true,
  () => false,
);

describe('the daemon process', () => {
  it('SIGTERM with an open file: unplugs (lateRelease runs), unmounts, removes the socket, exits 0', async () => {
    // The holder closes only after the checks below; shutdown waits for it
    // ten minutes, not the default 3 s a loaded machine can overrun (it
    // ends as soon as the file is closed).
    const dir = await scratch('sigterm');
    const config = join(dir, 'cdevemu.yaml');
    await writeFile(config, 'shutdownReleaseMs: 600000\n');
    const d = await Daemon.start({ dir, args: ['--config', config] });
    try {
      const rec = new EventRecorder(d.client);
      const holder = pythonInteractive(HOLDER, [d.dev('echo0')]);
      expect(await holder.line()).toBe('open');
      await rec.waitFor((e) => e.device === 'echo0' && e.type === 'opened');

      const stopped = d.stop('SIGTERM');
      await rec.waitFor((e) => e.device === 'echo0' && e.type === 'removed');
      // Shutting down: the API still reads, but refuses changes.
      await expect(d.client.plug({ model: 'zero', name: 'late' })).rejects.toMatchObject({ status: 503, code: 'shutting_down' });
      holder.send('close');
      await rec.waitFor((e) => e.device === 'echo0' && e.type === 'freed');
      expect(rec.typesOf('echo0', 1)).toEqual(['opened', 'unplug_started', 'drained', 'removed', 'late_released', 'freed']);

      expect(await stopped).toEqual({ code: 0, signal: null });
      expect(d.proc.stderr).toMatch(/"releaseTimeoutMs":600000[^\n]*"msg":"shutting down/);
      await rec.done;
      expect(await isMounted(d.mount)).toBe(false);
      expect(await exists(d.socket)).toBe(false);
      holder.kill();
    } finally {
      await d.stop();
    }
  });

  it('a second signal exits at once and still detaches the mount', async () => {
    const d = await Daemon.start();
    const holder = pythonInteractive(HOLDER, [d.dev('echo0')]);
    try {
      expect(await holder.line()).toBe('open');
      const rec = new EventRecorder(d.client, { history: true });
      await rec.waitFor((e) => e.device === 'echo0' && e.type === 'opened');
      // The first signal would wait (up to 3 s) for the holder to close; the
      // second, sent at once so that no load can stretch the gap past those
      // 3 s, exits without waiting: the holder still has the file open.
      d.proc.kill('SIGTERM');
      const e = await d.stop('SIGINT');
      expect(e).toEqual({ code: 1, signal: null });
      expect(holder.child.exitCode).toBeNull();
      expect(await isMounted(d.mount)).toBe(false);
      expect(await exists(d.socket)).toBe(false);
    } finally {
      holder.kill();
      await d.stop();
    }
  });

  it('as `node dist/daemon/cli.js daemon`, without the #! line\'s --expose-gc, still collects garbage once idle', async () => {
    // The harness starts the daemon exactly so: node, the script, no flags.
    const d = await Daemon.start({ args: ['--log-level', 'debug'] });
    try {
      await until(() => d.proc.stderr.includes('"msg":"cdevemu daemon ready"'), 10_000, 'the ready line');
      expect(d.proc.stderr).toMatch(/"idleGc":true[^\n]*"msg":"cdevemu daemon ready"/);
      // The first idle check collects what start-up left (daemon/idle-gc.ts).
      await until(() => d.proc.stderr.includes('"msg":"idle: full garbage collection"'), 20_000, 'an idle collection');
    } finally {
      await d.stop();
    }
  });

  it('recovers after SIGKILL: a restart on the same mount and socket serves again', async () => {
    const first = await Daemon.start();
    expect(await first.stop('SIGKILL')).toMatchObject({ signal: 'SIGKILL' });
    // Left behind: a dead connection's mount and a socket nobody listens on.
    expect(await isMounted(first.mount)).toBe(true);
    expect(await exists(first.socket)).toBe(true);

    const second = await Daemon.start({ dir: first.dir });
    try {
      expect((await second.client.status()).pid).toBe(second.pid);
      const ls = await second.cli(['ls']);
      expect(ls.stdout).toMatch(/^echo0\s+echo\s+1\s+live/m);
      const head = await run('sh', ['-c', `head -c 3 ${second.dev('zero')} | od -An -tx1`]);
      expect(head.stdout.trim()).toBe('00 00 00');

      // One daemon per socket: a second one is refused before it mounts anything.
      const other = await scratch('other');
      const refused = await cli(['daemon', '--mount', join(other, 'mnt'), '--socket', second.socket]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/another cdevemu daemon is already listening/);
      expect(await isMounted(join(other, 'mnt'))).toBe(false);
    } finally {
      expect(await second.stop()).toEqual({ code: 0, signal: null });
    }
    expect(await isMounted(second.mount)).toBe(false);
  });

  it('rejects a malformed config file with exit 2, naming the line and the field', async () => {
    const dir = await scratch('config');
    const file = join(dir, 'config.yaml');
    await writeFile(file, ['mountpoint: ./mnt', 'devices:', '  - model: echo', '    name: a', '  - model: 42', '    name: b', ''].join('\n'));
    const r = await cli(['daemon', '--config', file, '--socket', join(dir, 's.sock')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:5: devices[1].model: expected a string`);
    expect(await isMounted(join(dir, 'mnt'))).toBe(false);

    await writeFile(file, 'mountpoint: ./mnt\ndevices: [\n  nope\n');
    const syntax = await cli(['daemon', '--config', file]);
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toMatch(new RegExp(`${file}:\\d+: `));

    await writeFile(file, 'faults:\n  - { device: echo0, op: read, errno: EIO }\n');
    const faults = await cli(['daemon', '--config', file]);
    expect(faults.code).toBe(2);
    expect(faults.stderr).toContain(`${file}:2: faults[0].action: expected one of fail`);

    const json = join(dir, 'c.json');
    await writeFile(json, '{\n  "allowOther": "yes"\n}\n');
    const j = await cli(['daemon', '--config', json]);
    expect(j.code).toBe(2);
    expect(j.stderr).toContain(`${json}:2: allowOther: expected true or false`);
  });

  it('plugs the devices and adds the fault rules a config file lists; flags override the file', async () => {
    const dir = await scratch('cfgd');
    const file = join(dir, 'cdevemu.yaml');
    await writeFile(
      file,
      ['mountpoint: ./ignored', 'socket: ./ignored.sock', 'drainTimeoutMs: 500', 'devices:', '  - { model: zero, name: z9 }', '  - { model: echo, name: "e%d", options: { capacity: 8 } }', 'faults:', '  - { device: z9, op: read, action: fail, errno: EROFS }', ''].join('\n'),
    );
    const d = await Daemon.start({ dir, args: ['--config', file] });
    try {
      const names = (await d.client.listDevices()).map((x) => `${x.name}:${x.model}`);
      expect(names).toEqual(['z9:zero', 'e0:echo']);
      expect((await d.client.status()).mountpoint).toBe(d.mount);
      expect(await exists(join(dir, 'ignored.sock'))).toBe(false);
      expect(await d.client.listFaults()).toMatchObject([{ id: 'f1', device: 'z9', action: 'fail', errno: 'EROFS' }]);
      const r = await run('head', ['-c', '1', d.dev('z9')]);
      expect(r.stderr).toMatch(/Read-only file system/);
    } finally {
      await d.stop();
    }
  });

  it('loads user model modules; a broken one is logged and the daemon runs without it', async () => {
    const dir = await scratch('models');
    const good = join(dir, 'const.mjs');
    await writeFile(
      good,
      `export default [{
        name: 'const',
        stream: true,
        create: (_inst, options) => ({ byte: options?.byte ?? 65 }),
        read: (file, size) => Buffer.alloc(Math.min(size, 4), file.instance.state.byte),
        actions: { set: (inst, arg) => { inst.state.byte = arg; return { byte: arg }; } },
      }];\n`,
    );
    const broken = join(dir, 'broken.mjs');
    await writeFile(broken, `throw new Error('this module is broken on purpose');\n`);
    const clash = join(dir, 'clash.mjs');
    await writeFile(clash, `export default { name: 'echo', create() { return null; } };\n`);
    const d = await Daemon.start({ dir, args: ['--model', broken, '--model', good, '--model', clash, '--log-level', 'warn'] });
    try {
      expect(d.proc.stderr).toMatch(/MODEL MODULE NOT LOADED: .*broken\.mjs: this module is broken on purpose/);
      expect(d.proc.stderr).toMatch(/MODEL MODULE NOT LOADED: .*clash\.mjs: a model named \\?"echo\\?" is already registered/);
      const plug = await d.cli(['plug', 'const', 'c0', '--options', '{"byte": 66}']);
      expect(plug.code, plug.stderr).toBe(0);
      expect((await run('head', ['-c', '4', d.dev('c0')])).stdout).toBe('BBBB');
      const act = await d.cli(['action', 'c0', 'set', '67']);
      expect(act.code, act.stderr).toBe(0);
      expect(JSON.parse(act.stdout)).toEqual({ byte: 67 });
      expect((await run('head', ['-c', '2', d.dev('c0')])).stdout).toBe('CC');
      expect((await d.client.getDevice('c0')).counters.actions).toBe(1);
    } finally {
      await d.stop();
    }
  });
});
