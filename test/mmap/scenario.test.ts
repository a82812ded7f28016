/**
 * A scenario plays the device side of shared memory: `cdevemu run` plugs a
 * uio device, a python3 program maps map0 and waits for a command that the
 * scenario stores with region_write, answers in the map (which the
 * scenario reads back with region_read, through the program's own control
 * socket), then waits for the irq; unplug revokes the map, and the
 * program's next touch of the map dies of SIGBUS.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cdevemu } from '../helpers/cli.js';
import { testRoot } from '../helpers/mount.js';

const program = `import http.client, json, mmap, os, signal, socket, sys, time
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(os.environ["CDEVEMU_SOCKET"])
def action(name, arg):
    c = Unix("cdevemu"); c.request("POST", "/v1/devices/uio0/actions/" + name, body=json.dumps({"arg": arg}), headers={"content-type": "application/json"})
    return json.loads(c.getresponse().read())["result"]
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096, mmap.MAP_SHARED)
deadline = time.time() + 10
while m[0] != 0x5a:
    if time.time() > deadline: sys.exit(3)
    time.sleep(0.001)
m[64:68] = b"\\xa5\\x01\\x02\\x03"
print("model sees", action("region_read", {"region": 0, "offset": 64, "length": 4})["hex"], flush=True)
os.read(fd, 4)
print("irq", flush=True)
# Python cannot catch a fault in its own loop: touch the map in a child, until the touch kills it.
while True:
    pid = os.fork()
    if pid == 0:
        m[0]; os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        print(signal.Signals(os.WTERMSIG(status)).name, flush=True); sys.exit(0)
    time.sleep(0.01)
`;

it('a scenario stores a command in map0, the program answers in the map, unplug ends it with SIGBUS', async () => {
  const dir = await mkdtemp(join(testRoot(), 'mmap-scenario-'));
  await writeFile(join(dir, 'prog.py'), program);
  const file = join(dir, 'shared.yaml');
  await writeFile(
    file,
    `name: shared memory
devices:
  - { model: uio, name: uio0 }
program:
  command: [python3, ./prog.py, "{mount}/dev/uio0"]
timeline:
  - wait: { opened: uio0, timeout: 10s }
  - action: { device: uio0, action: region_write, arg: { region: 0, offset: 0, hex: "5a" } }
  - action: { device: uio0, action: irq }
  - wait: { read: uio0 }
  - unplug: uio0
  - expect: { exit: 0, within: 5s }
  - expect: { device: uio0, lateReleases: 1 }
`,
  );
  const r = await cdevemu(['run', file], { timeoutMs: 60_000 });
  expect(r.stdout, r.stderr).toMatch(/^PASS /m);
  expect(r.stdout).toContain('model sees a5010203');
  expect(r.stdout).toContain('irq');
  expect(r.stdout).toContain('SIGBUS');
  expect(r.code).toBe(0);
});
