/**
 * Shared mappings for an ordinary user: the daemon and its client run as
 * that user (uid 65534 when the test runs as root), in a user namespace
 * of their own (where the daemon mounts FUSE as the namespace's root, but
 * has no CAP_SYS_ADMIN in the initial namespace, so
 * FUSE_DEV_IOC_BACKING_OPEN would be refused), on a
 * /dev/fuse of mode 0666 as Debian has it (as root: a node of our own bound
 * over /dev/fuse in a private mount namespace, never the host's node changed).
 * The daemon negotiates page-cache mappings instead (FUSE_DIRECT_IO_ALLOW_MMAP)
 * and a python3 program maps uio0's map0: shared both ways, then unplugged
 * under it (SIGBUS, EIO, and the device freed once it is unmapped and closed).
 * Everything lives and dies with the namespaces.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { pageSize } from '../../src/sys/ffi.js';
import { runsAsRoot } from '../helpers/as-user.js';
import { cliPath } from '../helpers/cli.js';
import { run } from '../helpers/proc.js';

const PAGE = pageSize();

/** The program: maps uio0's two pages, plays both sides through the control socket, and reports what it saw. */
const client = `import http.client, json, mmap, os, socket, sys, time
node, sock = sys.argv[1], sys.argv[2]
P = ${PAGE}
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sock)
def api(method, path, body=None):
    c = Unix("cdevemu")
    c.request(method, path, body=None if body is None else json.dumps(body), headers={"content-type": "application/json"})
    data = c.getresponse().read()
    return json.loads(data) if data else None
def touch(m, off):
    pid = os.fork()
    if pid == 0:
        m[off]
        os._exit(0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
def errno_of(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno
out = {"uid": os.getuid()}
fd = os.open(node, os.O_RDWR)
m = mmap.mmap(fd, 2 * P, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
out["before"] = m[P:P+4].hex()
api("POST", "/v1/devices/uio0/actions/region_write", {"arg": {"region": 0, "offset": P, "hex": "cafebabe"}})
out["modelWrote"] = m[P:P+4].hex()
m[P+200:P+204] = bytes.fromhex("11223344")
os.write(fd, (1).to_bytes(4, "little"))
out["modelSaw"] = api("POST", "/v1/devices/uio0/actions/region_read", {"arg": {"region": 0, "offset": P + 200, "length": 4}})["result"]["hex"]
api("POST", "/v1/devices/uio0/actions/irq", {})
out["irq"] = int.from_bytes(os.read(fd, 4), "little")
api("POST", "/v1/devices/uio0/unplug", {})
out["touchAfterUnplug"] = [touch(m, 0), touch(m, P)]
out["readAfterUnplug"] = errno_of(lambda: os.read(fd, 4))
out["writeAfterUnplug"] = errno_of(lambda: os.write(fd, b"\\1\\0\\0\\0"))
os.close(fd)
uio0 = lambda: [d["openFiles"] for d in api("GET", "/v1/devices") if d["name"] == "uio0"]
out["openAfterClose"] = uio0()
m.close()
deadline = time.time() + 20
while uio0() and time.time() < deadline:
    time.sleep(0.05)
out["afterUnmap"] = uio0()
print(json.dumps(out))`;

it('as an ordinary user in a user namespace (uid 65534 when the test runs as root): python3 mmap of uio0 map0, shared both ways, then SIGBUS, EIO and the release at unplug', async () => {
  // The user, in a user, mount and PID namespace of its own (--kill-child:
  // if the test kills unshare, the namespace's init dies and takes the
  // daemon with it), in a directory of the test's (the daemon's mountpoint
  // lock goes there too: TMPDIR).
  const dir = await mkdtemp(join(tmpdir(), 'cdevemu-unprivileged-'));
  await writeFile(join(dir, 'client.py'), client);
  await writeFile(join(dir, 'config.yaml'), `devices:\n  - { model: uio, name: uio0, options: { mapSize: ${2 * PAGE} } }\n`);
  // As root, first in a private mount namespace: the directory given to
  // uid 65534, and a 0666 /dev/fuse of our own bound over the host's (an
  // ordinary user's run has /dev/fuse open to it, as the suite requires).
  // Nothing is mounted over /tmp: the checkout the daemon runs from may be
  // under it.
  const outer = `set -e
chown 65534:65534 "$DIR"
mkdir "$DIR/dev"
mount -t tmpfs -o mode=0755 tmpfs "$DIR/dev"
mknod "$DIR/dev/fuse" c 10 229
chmod 0666 "$DIR/dev/fuse"
mount --bind "$DIR/dev/fuse" /dev/fuse
exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"`;
  // The daemon's death ends the wait for its node at once, and its log says why.
  const inner = `mkdir "$DIR/mnt"
"$NODE" "$CLI" daemon --mount "$DIR/mnt" --socket "$DIR/control.sock" --config "$DIR/config.yaml" --log-level info 2>"$DIR/daemon.log" >/dev/null &
daemon=$!
while [ ! -e "$DIR/mnt/dev/uio0" ]; do
  kill -0 $daemon 2>/dev/null || { echo "the daemon exited before uio0 appeared:" >&2; cat "$DIR/daemon.log" >&2; exit 1; }
  sleep 0.1
done
python3 "$DIR/client.py" "$DIR/mnt/dev/uio0" "$DIR/control.sock"; rc=$?
kill -TERM $daemon; wait $daemon
grep -h 'mmap of device regions\\|BACKING_OPEN' "$DIR/daemon.log" >&2
exit $rc`;
  const user = ['unshare', '-Urm', '--propagation', 'private', '--pid', '--fork', '--kill-child', 'env', `TMPDIR=${dir}`, 'sh', '-c', inner];
  const argv = runsAsRoot ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', outer, 'outer', ...user] : user;
  try {
    const r = await run(argv[0]!, argv.slice(1), {
      timeoutMs: 90_000,
      env: { ...process.env, NODE: process.execPath, CLI: cliPath, DIR: dir },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({
      uid: 0, // the namespace's root, the user outside it
      before: '00000000',
      modelWrote: 'cafebabe',
      modelSaw: '11223344',
      irq: 1,
      touchAfterUnplug: [-7, -7], // SIGBUS
      readAfterUnplug: 5, // EIO
      writeAfterUnplug: 22, // uio_write() once idev->info is NULL: EINVAL
      openAfterClose: [1], // the mapping holds the file
      afterUnmap: [],
    });
    // One line says how regions are mapped, and why not through passthrough.
    const logs = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(logs.map((l) => l.msg)).toEqual([
      'mmap of device regions through the page cache, kept in step at each read and write (FUSE passthrough needs CAP_SYS_ADMIN in the initial user namespace (FUSE_DEV_IOC_BACKING_OPEN))',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 120_000);
