/**
 * `cdevemu run` as an ordinary user (README.md, "Without root"): the suite
 * runs as root and starts each run as a uid no account has, with no
 * capabilities, through setpriv. /dev/fuse is given to that user the way a
 * Debian machine has it (mode 0666), as a node of the test's own bound over
 * /dev/fuse in a mount namespace made for the run: the host's node is
 * never changed. Every run must leave the host as it was: its mounts, /,
 * /dev, and the user's directory.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, repoRoot } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';
import { Interactive, run, type RunResult } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';
import { uioUnplugLeakyText } from '../fixtures/uio-unplug-flags.js';

/** A uid (and gid) no account has: the test's ordinary user, who owns nothing but what the test gives it. */
function unusedId(): number {
  const taken = new Set(
    readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .map((l) => Number(l.split(':')[2])),
  );
  for (let id = 42000 + (process.pid % 900); ; id++) if (!taken.has(id)) return id;
}

const USER = unusedId();
/** An ordinary user's PATH: no sbin directories, where Debian puts gpsd and pivot_root; the runs must not need them on it. */
const PATH = '/usr/local/bin:/usr/bin:/bin';
let home: string;

beforeAll(async () => {
  // Its HOME and TMPDIR, in /tmp (not the test root, which only root may enter), the user's alone.
  home = await mkdtemp(join(tmpdir(), 'cdevemu-user-'));
  chownSync(home, USER, USER);
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

/**
 * Runs the rest as user $3 in a mount namespace where /dev/fuse is a node
 * of mode $2 (the host's device, its major and minor) on a tmpfs at $1; $4
 * is 1 in a network namespace of the test's, whose loopback it brings up.
 */
const AS_USER = `set -eu
d=$1; mode=$2; id=$3; net=$4; shift 4
if [ "$net" = 1 ]; then ip link set lo up; fi
mount -n -t tmpfs -o mode=755 cdevemu-user-fuse "$d"
mknod -m "$mode" "$d/fuse" c $((0x$(stat -c %t /dev/fuse))) $((0x$(stat -c %T /dev/fuse)))
mount -n --bind "$d/fuse" /dev/fuse
exec setpriv --reuid="$id" --regid="$id" --clear-groups -- "$@"`;

interface UserRun {
  /** /dev/fuse's mode for the user; default 0666. */
  fuseMode?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Another user than USER, and their directory. */
  user?: { id: number; home: string };
  /**
   * In a PID namespace of its own too (with its own /proc), which the
   * kernel empties when unshare is killed: for a command that leaves
   * processes in the background (a daemon) if the test ends early.
   */
  pidns?: boolean;
  /**
   * In a network namespace of the test's, with a loopback: the gpsd
   * examples listen on fixed ports, as test/models/gpsd.test.ts's runs of
   * them do at the same time.
   */
  netns?: boolean;
}

/** unshare's argv and the environment that run `command` as the user. */
async function asUserArgv(command: string[], o: UserRun = {}): Promise<{ argv: string[]; env: NodeJS.ProcessEnv }> {
  const fuseDir = await mkdtemp(join(testRoot(), 'user-fuse-'));
  const id = o.user?.id ?? USER;
  const dir = o.user?.home ?? home;
  const more = [...(o.pidns ? ['--pid', '--fork', '--kill-child', '--mount-proc'] : []), ...(o.netns ? ['--net'] : [])];
  const argv = [
    '--mount',
    '--propagation',
    'private',
    ...more,
    '--',
    'sh',
    '-c',
    AS_USER,
    'cdevemu-test',
    fuseDir,
    o.fuseMode ?? '0666',
    String(id),
    o.netns ? '1' : '0',
    ...command,
  ];
  return { argv, env: { PATH, HOME: dir, TMPDIR: dir, LANG: 'C.UTF-8', ...o.env } };
}

const cli = (args: string[]): string[] => [process.execPath, cliPath, ...args];

/** `cdevemu ARGS` as the user, from the checkout. */
async function cdevemuAsUser(args: string[], o: UserRun = {}): Promise<RunResult> {
  const { argv, env } = await asUserArgv(cli(args), o);
  return run('unshare', argv, { cwd: repoRoot, env, timeoutMs: o.timeoutMs ?? 60_000 });
}

function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      out.push(`${p} ${e.isDirectory() ? 'd' : e.isSymbolicLink() ? `l->${readlinkSync(p)}` : `f:${statSync(p).size}`}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * What the host shows that a run could change: the mounts made by a bind
 * namespace, under the user's directory or at the paths runs bind; /,
 * /dev and /sys/class; the user's directory, all of it, but its lock
 * directory (cdevemu-UID, MountpointLock's, kept like root's /run/cdevemu).
 */
function hostView(): Record<string, string[]> {
  const watched = new Set(['/', '/dev', '/dev/uio0', '/sys/class/uio', '/dev/fuse']);
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => {
      const [source, target] = l.split(' ');
      return source === 'cdevemu-ns' || source === 'cdevemu-user-fuse' || watched.has(target!) || target?.startsWith(home);
    });
  const lock = join(home, `cdevemu-${USER}`);
  return {
    mounts,
    '/': readdirSync('/').sort(),
    '/dev': readdirSync('/dev').sort(),
    '/sys/class': readdirSync('/sys/class').sort(),
    [home]: listing(home).filter((l) => !l.startsWith(lock)),
  };
}

/** The lines the program printed, as the run relays them (`           | LINE`). */
const programSaid = (out: string): string[] => [...out.matchAll(/^ {11}\| (.*)$/gm)].map((m) => m[1]!);

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);
const scenario = (name: string): string => join(repoRoot, 'examples', 'scenarios', name);

/** Writes a scenario into the user's directory, readable by the user. */
function userScenario(name: string, text: string): string {
  const path = join(home, name);
  writeFileSync(path, text);
  chownSync(path, USER, USER);
  return path;
}

describe('the example uio scenario, as an ordinary user', () => {
  it('passes with the well-behaved consumer; the host is left as it was', async () => {
    const before = hostView();
    const r = await cdevemuAsUser(['run', scenario('uio-unplug.yaml')]);
    expect(r.stdout, r.stderr).toMatch(/ok {4}expect uio0 released within 10000ms/);
    expect(r.stdout).toMatch(/device gone: poll revents 0x1[89]/);
    expect(r.stdout).toMatch(new RegExp(`^scenario .* on ${home}/cdevemu-run-\\w+/mnt`, 'm'));
    expect(r.stdout).toMatch(/^PASS /m);
    expect(r.code).toBe(0);
    expect(hostView()).toEqual(before);
  });

  it('with both --binds and the leaky consumer on /dev/uio0: fails, naming the consumer, which is stopped; the host keeps no /dev/uio0', async () => {
    // With 2 s to release uio0, not the example's 10 s: the leaky consumer waits the bound out.
    const leakyFile = userScenario('uio-unplug.yaml', uioUnplugLeakyText());
    const before = hostView();
    const r = await cdevemuAsUser([
      'run',
      '--bind',
      '/dev/uio0=dev/uio0',
      '--bind',
      '/sys/class/uio=sys/class/uio',
      leakyFile,
      '--',
      'sh',
      '-c',
      'cat /sys/class/uio/uio0/name; exec python3 examples/uio_consumer.py --leaky /dev/uio0',
    ]);
    expect(programSaid(r.stdout)[0], r.stderr).toBe('cdevemu'); // uio0's name, through the bound /sys/class/uio
    expect(r.stdout).toMatch(/uio_consumer\[\d+\]: opened \/dev\/uio0 as fd 3/);
    expect(r.stdout).toMatch(/device error: poll revents 0x19; carrying on/);
    expect(r.stdout).toMatch(/FAIL {2}expect uio0 released within 2000ms \(.*uio-unplug\.yaml:\d+\)/);
    const pid = Number(/uio_consumer\[(\d+)\]/.exec(r.stdout)?.[1]);
    expect(r.stdout).toMatch(new RegExp(`pid ${pid} \\(python3\\) holds`));
    expect(r.stdout).toMatch(/^FAIL uio consumer releases the device on unplug/m);
    expect(r.code).toBe(1);
    expect(alive(pid)).toBe(false);
    expect(hostView()).toEqual(before);
  });
});

describe('what the program is', () => {
  // What it says about itself, and a device opened through a bind.
  const probe = (): string =>
    userScenario(
      'whoami.yaml',
      `name: whoami
devices: [{ model: zero, name: zero0 }]
program:
  command: [sh, -c, "id -u; id -g; grep CapEff /proc/self/status; stat -c 'root owns %u' /proc/1; head -c 2 /dev/zero0 | od -An -tx1"]
  bind: ["/dev/zero0=dev/zero0"]
timeline:
  - expect: { exit: 0, within: 10s }
`,
    );

  it("by default, uid 0 of the run's namespace, with its capabilities; files of others show as nobody", async () => {
    const r = await cdevemuAsUser(['run', probe()]);
    expect(r.stdout, r.stderr).toMatch(/^PASS /m);
    const said = programSaid(r.stdout);
    expect(said[0]).toBe('0');
    expect(said[1]).toBe('0');
    expect(said[2]).not.toBe('CapEff:\t0000000000000000');
    expect(said[3]).toBe('root owns 65534');
    expect(said[4]).toBe(' 00 00');
    expect(r.stdout).not.toMatch(/ as uid /);
  });

  it("with --as-user, the user's own ids and no capabilities, and the device still opens", async () => {
    const r = await cdevemuAsUser(['run', '--as-user', probe()]);
    expect(r.stdout, r.stderr).toMatch(/^PASS /m);
    expect(r.stdout).toMatch(new RegExp(`started .* with 1 bind\\(s\\) as uid ${USER} gid ${USER}$`, 'm'));
    const said = programSaid(r.stdout);
    expect(said.slice(0, 3)).toEqual([String(USER), String(USER), 'CapEff:\t0000000000000000']);
    expect(said[3]).toBe('root owns 65534');
    expect(said[4]).toBe(' 00 00');
  });
});

describe('--bind as an ordinary user never writes the host', () => {
  it('under /dev (shadowed: its mounts are locked), in a new top-level directory, under a plain directory (an overlay), over a file', async () => {
    const tag = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const plain = join(home, 'plain');
    mkdirSync(join(plain, 'kept'), { recursive: true });
    writeFileSync(join(home, 'file'), 'host file');
    for (const p of [plain, join(plain, 'kept'), join(home, 'file')]) chownSync(p, USER, USER);
    const targets = [`/dev/cdevemu-user-${tag}`, `/cdevemu-user-${tag}/deep/zero0`, join(plain, 'new', 'zero0'), join(home, 'file')];
    const reads = targets.map((t) => `head -c 4 ${t} | od -An -tx1`).join(' && ');
    const f = userScenario(
      'binds.yaml',
      `devices: [{ model: zero, name: zero0 }]
program: { command: [sh, -c, ${JSON.stringify(`${reads} && ls ${plain} && ls -d /dev/pts/ptmx`)}] }
timeline:
  - expect: { exit: 0, within: 20s }
`,
    );
    const before = hostView();
    try {
      const r = await cdevemuAsUser(['run', ...targets.flatMap((t) => ['--bind', `${t}=dev/zero0`]), f]);
      expect(r.stdout, r.stderr).toMatch(/^PASS /m);
      expect(r.stdout.match(/\| +00 00 00 00$/gm)).toHaveLength(targets.length);
      expect(r.stdout).toMatch(/\| kept$/m); // the overlay shows the directory's own entries
      expect(r.stdout).toMatch(/\| \/dev\/pts\/ptmx$/m); // the shadowed /dev keeps its mounts
      expect(hostView()).toEqual(before);
      expect(readFileSync(join(home, 'file'), 'utf8')).toBe('host file');
    } finally {
      rmSync(`/dev/cdevemu-user-${tag}`, { force: true });
      rmSync(`/cdevemu-user-${tag}`, { recursive: true, force: true });
    }
  });
});

describe('the runs that need more', () => {
  it('gpsd gets its fix; unplugged, it keeps the port and the run fails, naming it', async () => {
    const fix = await cdevemuAsUser(['run', scenario('gpsd-fix.yaml')], { timeoutMs: 120_000, netns: true });
    const tpv = /\| (\{"class":"TPV".*\})$/m.exec(fix.stdout)?.[1];
    expect(tpv, fix.stdout + fix.stderr).toBeDefined();
    // gpsd is given the mount's node (docs/case-study-gpsd.md: it refuses a path another gpsd holds).
    expect(JSON.parse(tpv!)).toMatchObject({ device: expect.stringMatching(/\/mnt\/dev\/ttyUSB0$/), mode: 3, lat: 51.4779, lon: -0.0015 });
    expect(fix.stdout).toMatch(/^PASS /m);
    expect(fix.code).toBe(0);
    const unplug = await cdevemuAsUser(['run', scenario('gpsd-unplug.yaml')], { timeoutMs: 120_000, netns: true });
    expect(unplug.stdout, unplug.stderr).toContain('FAIL  expect ttyUSB0 released within 5000ms');
    expect(unplug.stdout).toMatch(/pid \d+ \(gpsd\) holds fd \d+ \(\S+\/dev\/ttyUSB0 \(deleted\)\) on generation 1/);
    expect(unplug.code).toBe(1);
  }, 240000);

  it("the tcmu preset: a private /dev (a bind under it made in an overlay), /run, /sys paths, and a network namespace of the run's own", async () => {
    const sub = `cdevemu-user-${process.pid}`;
    const said = [
      `head -c 4 /dev/${sub}/zero0 | od -An -tx1`,
      'echo private: $(ls {tmp}/../preset/dev)',
      'echo initstate: $(cat /sys/module/target_core_user/initstate)',
      'echo run: $(ls /run)',
      "echo net: $(awk -F: 'NR > 2 { print $1 }' /proc/net/dev)",
    ];
    const f = userScenario(
      'preset.yaml',
      `preset: tcmu
devices: [{ model: zero, name: zero0 }]
program:
  command: [sh, -c, ${JSON.stringify(said.join(' && '))}]
  bind: ["/dev/${sub}/zero0=dev/zero0"]
timeline:
  - expect: { exit: 0, within: 20s }
`,
    );
    const before = hostView();
    const r = await cdevemuAsUser(['run', f], { timeoutMs: 120_000 });
    expect(r.stdout, r.stderr).toMatch(/^PASS /m);
    const lines = programSaid(r.stdout);
    expect(lines[0]).toBe(' 00 00 00 00');
    const priv = lines[1]!.replace('private: ', '').split(' ');
    expect(priv).toContain('null');
    expect(priv).toContain('pts');
    expect(priv).not.toContain(sub); // made in the overlay, not in the directory bound over /dev
    expect(lines.slice(2)).toEqual(['initstate: live', 'run: modprobe.d', 'net: lo']);
    expect(hostView()).toEqual(before);
  }, 180_000);

  it("gpsd against the same user's daemon: replugged with nobody to tell it, never reopens (fails); told by udev, follows (passes)", async () => {
    // fusermount3, which mounts an ordinary user's daemon, wants an account: nobody's. No --allow-other:
    // gpsd runs as the user, whose ids it cannot drop in the run's namespace, so it reopens the port as the mount's owner.
    const nobody = { id: 65534, home: await mkdtemp(join(tmpdir(), 'cdevemu-nobody-')) };
    chownSync(nobody.home, nobody.id, nobody.id);
    const script = `set -u
"$NODE" "$CLI" daemon --config examples/gpsd/empty.yaml --mount "$HOME/mnt" --socket "$HOME/ctl.sock" >/dev/null 2>"$HOME/daemon.log" &
daemon=$!
i=0; until [ -S "$HOME/ctl.sock" ] || ! kill -0 $daemon 2>/dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$HOME/ctl.sock" ] || { cat "$HOME/daemon.log" >&2; exit 1; }
for s in replug hotplug; do
  "$NODE" "$CLI" unplug ttyUSB0 --socket "$HOME/ctl.sock" >/dev/null 2>&1
  echo "=== $s"
  CDEVEMU_SOCKET="$HOME/ctl.sock" "$NODE" "$CLI" run "examples/scenarios/gpsd-$s.yaml"
  echo "=== exit $?"
done
kill -TERM $daemon; wait $daemon
echo "=== daemon exit $? mounts $(grep -c " $HOME/mnt " /proc/mounts)"`;
    try {
      const { argv, env } = await asUserArgv(['sh', '-c', script], {
        user: nobody,
        pidns: true,
        netns: true,
        env: { NODE: process.execPath, CLI: cliPath },
      });
      const r = await run('unshare', argv, { cwd: repoRoot, env, timeoutMs: 240_000 });
      const [, replug = '', hotplug = ''] = r.stdout.split(/^=== (?:replug|hotplug)$/m);
      expect(replug, r.stderr).toMatch(/FAIL {2}wait opened ttyUSB0 x2/);
      expect(replug).toMatch(/^=== exit 1$/m);
      expect(hotplug).toMatch(/\| client: a fix again after the device came back/);
      expect(hotplug).toMatch(/^PASS /m);
      expect(hotplug).toMatch(/^=== exit 0$/m);
      expect(r.stdout).toMatch(/^=== daemon exit 0 mounts 0$/m);
    } finally {
      rmSync(nobody.home, { recursive: true, force: true });
    }
  }, 300000);

  it('tcmu-runner in the kernel order: passes where its ring can be mapped, else the run is refused in one line', async () => {
    const before = hostView();
    const r = await cdevemuAsUser(['run', scenario('tcmu-runner-kernel-order.yaml')], { timeoutMs: 120_000 });
    if (r.code === 0) {
      expect(r.stdout).toMatch(/ok {4}wait event \{"type":"netlink_done","device":"uio1","cmd":"ADDED_DEVICE_DONE"/);
      expect(r.stdout).toMatch(/^PASS /m);
    } else {
      // Refused before the program runs: the one line says the ring cannot be mapped without root, and how to get it.
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stdout).not.toMatch(/started /);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^cdevemu: .*(map|passthrough).*root/i);
    }
    expect(hostView()).toEqual(before);
  }, 180000);

  it('the tcmu preset refuses a run directory another user could change, as the real ids show it', async () => {
    const open = join(home, 'open');
    mkdirSync(open, { mode: 0o777 });
    chownSync(open, USER, USER);
    // mkdir's mode goes through the umask.
    await run('chmod', ['0777', open]);
    const r = await cdevemuAsUser(['run', scenario('tcmu-runner-kernel-order.yaml')], { env: { TMPDIR: open } });
    expect(r.stderr).toBe(
      `cdevemu: preset tcmu: ${open} is writable by group or others (mode 777) and not sticky: the netlink shim is preloaded into the program under test, so it is built only where no other user can change it; set TMPDIR to a directory of root's or yours\n`,
    );
    expect(r.code).toBe(2);
  });
});

describe('the run ends with its command', () => {
  const hang = (): string =>
    userScenario(
      'hang.yaml',
      `devices: [{ model: echo, name: e0 }]
program: { command: [sh, -c, "echo pid $$; exec sleep 60"] }
timeline:
  - sleep: 60s
  - expect: { running: true }
`,
    );

  async function started(signal: NodeJS.Signals): Promise<{ run: Interactive; pid: number }> {
    const { argv, env } = await asUserArgv(cli(['run', hang()]));
    const run = new Interactive('unshare', argv, env);
    await run.line(30_000); // the scenario header
    await run.line(30_000); // started ...
    const pid = Number(/pid (\d+)/.exec(await run.line(30_000))?.[1]);
    expect(alive(pid)).toBe(true);
    run.kill(signal);
    return { run, pid };
  }

  it('interrupted (SIGINT), it stops the program and fails', async () => {
    const { run, pid } = await started('SIGINT');
    expect((await run.exited).code).toBe(1);
    expect(alive(pid)).toBe(false);
  });

  it('killed (SIGKILL), the run in the namespace still stops the program and removes its directory', async () => {
    const { run, pid } = await started('SIGKILL');
    await run.exited;
    await until(() => !alive(pid), 20_000, 'the program stopped');
    await until(() => readdirSync(home).every((e) => !e.startsWith('cdevemu-run-')), 20_000, 'the run directory removed');
  });
});

describe('refused in one line, with the fix', () => {
  it('/dev/fuse this user cannot open', async () => {
    const r = await cdevemuAsUser(['run', scenario('uio-unplug.yaml')], { fuseMode: '0600' });
    expect(r.stderr).toMatch(/^cdevemu: \/dev\/fuse is not readable and writable by this user: .*\n$/);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });

  it("user namespaces turned off (user.max_user_namespaces = 0 in a namespace of the test's)", async () => {
    // Root of a user namespace that maps every id to itself may set the limit for what that namespace holds.
    const inside = `set -eu
echo unshared > "$0/up"
read _ < "$0/mapped"
# Mapped now: exec again, as root of the namespace with its capabilities (the first exec, unmapped, dropped them).
exec sh -c "$STAGE2" "$@"`;
    const stage2 = `set -eu
echo 0 > /proc/sys/user/max_user_namespaces
exec setpriv --reuid="$0" --regid="$0" --clear-groups -- "$1" "$2" run "$3"`;
    const fifos = await mkdtemp(join(testRoot(), 'userns-off-'));
    const shell = `mkfifo "$F/up" "$F/mapped"
unshare --user -- sh -c "$INSIDE" "$F" "$ID" "$NODE" "$CLI" "$SCENARIO" &
child=$!
read _ < "$F/up"
echo '0 0 4294967295' > /proc/$child/uid_map
echo '0 0 4294967295' > /proc/$child/gid_map
echo go > "$F/mapped"
wait $child`;
    const r = await run('sh', ['-c', shell], {
      cwd: repoRoot,
      env: {
        PATH,
        HOME: home,
        TMPDIR: home,
        F: fifos,
        INSIDE: inside,
        STAGE2: stage2,
        ID: String(USER),
        NODE: process.execPath,
        CLI: cliPath,
        SCENARIO: scenario('uio-unplug.yaml'),
      },
    });
    expect(r.stderr).toBe(
      'cdevemu: cdevemu run as an ordinary user runs in a user namespace of its own: user namespaces are closed to this user (user.max_user_namespaces=0): as root, sysctl -w user.max_user_namespaces=15000; or run as root\n',
    );
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });

  it('a bad scenario, in the words root gets', async () => {
    // Refused as the file is read, before any namespace; then as it is checked against the models, in the namespace.
    const fields = userScenario('bad-field.yaml', 'timeline:\n  - expect: { bogus: 1 }\n');
    const names = userScenario('bad-name.yaml', 'devices: [{ model: uio, name: uio0 }]\ntimeline:\n  - expect: { released: uio1 }\n');
    for (const f of [fields, names]) {
      const root = await run(process.execPath, [cliPath, 'run', f], { cwd: repoRoot });
      expect(root.code).toBe(2);
      expect(root.stderr).toMatch(new RegExp(`^cdevemu: ${f}:\\d+: timeline\\[0\\]\\.expect.*\\n$`));
      const user = await cdevemuAsUser(['run', f]);
      expect(user.stderr).toBe(root.stderr);
      expect(user.code).toBe(2);
      expect(user.stdout).toBe('');
    }
  });
});
