/**
 * A client process that holds one device node open and runs ops on it,
 * one per stdin line, answering one line each: "ok ..." or the errno name.
 *
 *   read N                  -> ok HEX
 *   write HEX               -> ok COUNT
 *   ioctl CMD SIZE [HEXIN]  -> ok RESULT HEXOUT   (SIZE 0: integer argument HEXIN or 0)
 *   poll EVENTS TIMEOUT_MS  -> ok REVENTS         (0 on timeout)
 *   nonblock                -> ok
 *   close                   -> ok
 */
import { Interactive, pythonInteractive } from '../helpers/proc.js';
import { O_RDWR } from '../../src/devio.js';
import type { Instance } from '../../src/core/index.js';
import { until } from '../helpers/wait.js';

const source = `import os,sys,errno,select,fcntl
fd = os.open(sys.argv[1], int(sys.argv[2], 0))
print("open", flush=True)
for line in sys.stdin:
    a = line.split()
    try:
        if a[0] == "read":
            print("ok", os.read(fd, int(a[1])).hex())
        elif a[0] == "write":
            print("ok", os.write(fd, bytes.fromhex(a[1])))
        elif a[0] == "ioctl":
            cmd, size = int(a[1], 0), int(a[2])
            if size == 0:
                print("ok", fcntl.ioctl(fd, cmd, int(a[3], 0) if len(a) > 3 else 0), "-")
            else:
                buf = bytearray(bytes.fromhex(a[3]) if len(a) > 3 else bytes(size))
                r = fcntl.ioctl(fd, cmd, buf, True)
                print("ok", r, bytes(buf).hex())
        elif a[0] == "poll":
            p = select.poll(); p.register(fd, int(a[1], 0)); ev = p.poll(int(a[2]))
            print("ok", ev[0][1] if ev else 0)
        elif a[0] == "nonblock":
            os.set_blocking(fd, False); print("ok")
        elif a[0] == "close":
            os.close(fd); print("ok")
    except OSError as e:
        print(errno.errorcode[e.errno])
    sys.stdout.flush()
`;

export { O_RDONLY, O_RDWR, O_WRONLY } from '../../src/devio.js';

export class Holder {
  private constructor(readonly proc: Interactive) {}

  /**
   * Opens `path` in a new process; resolves once it is open. `wrap` runs
   * python3 under another command (`['setarch', '-Z']`).
   */
  static async open(path: string, flags = O_RDWR, wrap: string[] = []): Promise<Holder> {
    const proc = wrap.length
      ? new Interactive(wrap[0]!, [...wrap.slice(1), 'python3', '-u', '-c', source, path, String(flags)])
      : pythonInteractive(source, [path, String(flags)]);
    const first = await proc.line();
    if (first !== 'open') throw new Error(`holder did not open ${path}: ${first} ${proc.stderr}`);
    return new Holder(proc);
  }

  /** Runs one op; answers its line. */
  async op(line: string, timeoutMs = 10_000): Promise<string> {
    this.proc.send(line);
    return this.proc.line(timeoutMs);
  }

  /** Sends an op without waiting for its answer (a read that will block). */
  send(line: string): void {
    this.proc.send(line);
  }

  line(timeoutMs = 10_000): Promise<string> {
    return this.proc.line(timeoutMs);
  }

  async close(): Promise<void> {
    this.proc.send('close');
    await this.proc.line();
    this.proc.child.stdin!.end();
    await this.proc.exited;
  }
}

/** Hex of a little-endian s32. */
export const le32 = (n: number): string => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b.toString('hex');
};

export { until } from '../helpers/wait.js';

/** Until a read is in the device's handler, i.e. its client sleeps in it. */
export const readBlocked = (inst: Instance<unknown>): Promise<void> =>
  until(() => inst.inFlight.some((h) => h.op === 'read'), 10_000, 'a read blocked in the model');

/** An ioctl command or mask as it reads in test names and messages. */
export const hex = (n: number): string => `0x${n.toString(16)}`;
