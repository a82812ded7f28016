/**
 * A daemon without CAP_SYS_ADMIN in the initial user namespace (run in a
 * new user namespace, where it is "root" enough to mount FUSE but the
 * kernel refuses FUSE_DEV_IOC_BACKING_OPEN with EPERM): mappable nodes
 * still open and serve read/write/irq, mmap fails ENODEV, and the daemon
 * says why once. The mount lives and dies with the private mount namespace,
 * the daemon with the PID namespace.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cliPath } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';
import { run } from '../helpers/proc.js';

/** Opens uio0 twice, tries mmap on each, raises an irq through the control socket, reads and re-arms it. */
const client = `import http.client, json, mmap, os, socket, sys
node, sock = sys.argv[1], sys.argv[2]
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sock)
out = {"mmap": []}
fds = [os.open(node, os.O_RDWR) for _ in range(2)]
for fd in fds:
    try:
        mmap.mmap(fd, 4096, mmap.MAP_SHARED); out["mmap"].append(0)
    except OSError as e:
        out["mmap"].append(e.errno)
c = Unix("cdevemu"); c.request("POST", "/v1/devices/uio0/actions/irq", body="{}", headers={"content-type": "application/json"}); c.getresponse().read()
out["count"] = int.from_bytes(os.read(fds[0], 4), "little")
out["written"] = os.write(fds[0], (1).to_bytes(4, "little"))
print(json.dumps(out))`;

it('without CAP_SYS_ADMIN: one log line, mmap ENODEV, read/write/irq work', async () => {
  const dir = await mkdtemp(join(testRoot(), 'userns-'));
  const mnt = join(dir, 'mnt');
  const sock = join(dir, 'control.sock');
  const log = join(dir, 'daemon.log');
  const config = join(dir, 'config.yaml');
  const script = join(dir, 'client.py');
  await writeFile(config, 'devices:\n  - { model: uio, name: uio0 }\n');
  await writeFile(script, client);
  const shell = `"$NODE" "$CLI" daemon --mount "$MNT" --socket "$SOCK" --config "$CONFIG" --log-level info 2>"$LOG" >/dev/null &
daemon=$!
i=0; while [ ! -e "$MNT/dev/uio0" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
python3 "$SCRIPT" "$MNT/dev/uio0" "$SOCK"; rc=$?
kill -TERM $daemon; wait $daemon
exit $rc`;
  // A new PID namespace too, with --kill-child: if the test kills unshare
  // (timeout), the namespace's init dies and takes the daemon with it.
  const r = await run('unshare', ['-Urm', '--propagation', 'private', '--pid', '--fork', '--kill-child', 'sh', '-c', shell], {
    timeoutMs: 60_000,
    env: { ...process.env, NODE: process.execPath, CLI: cliPath, MNT: mnt, SOCK: sock, LOG: log, CONFIG: config, SCRIPT: script },
  });
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout.trim())).toEqual({ mmap: [19, 19], count: 1, written: 4 });
  const lines = (await readFile(log, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; err?: { message: string } });
  const why = lines.filter((l) => l.msg.includes('mmap of device regions'));
  expect(why).toHaveLength(1);
  expect(why[0]!.msg).toMatch(/FUSE_DEV_IOC_BACKING_OPEN refused \(it needs CAP_SYS_ADMIN\)/);
  expect(why[0]!.err?.message).toBe('ioctl: EPERM');
});
