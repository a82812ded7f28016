/**
 * The user-memory API (src/usermem.ts) on a real child process, without
 * FUSE: what a model's copy_from_user()/copy_to_user() do to another
 * process's memory, addressed by one of its threads' ids, with the
 * kernel's all-or-nothing EFAULT on a bad or partly bad range.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Errno } from '../../src/errno.js';
import { pageSize } from '../../src/sys/ffi.js';
import { CallerMemory } from '../../src/usermem.js';
import { pythonInteractive, type Interactive } from '../helpers/proc.js';

const PAGE = pageSize();

/**
 * The child: a 64-byte buffer with known bytes, two pages of which the
 * second is PROT_NONE (a range that starts accessible and runs into a hole
 * no later mapping can fill, as an munmapped one could), a
 * read-only page, and a second thread whose id it prints. `dump ADDR LEN`
 * prints the bytes there as the child sees them.
 */
const child = `import ctypes, mmap, sys, threading, os, json
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
P = mmap.PAGESIZE
buf = ctypes.create_string_buffer(bytes(range(64)), 64)
two = libc.mmap(None, 2 * P, 3, 0x22, -1, 0)
ctypes.memset(two, 0x11, P)
libc.mprotect(two + P, P, 0)
ro = libc.mmap(None, P, 1, 0x22, -1, 0)
ready = threading.Event()
tid = []
def worker():
    tid.append(threading.get_native_id())
    ready.set()
    threading.Event().wait()
threading.Thread(target=worker, daemon=True).start()
ready.wait()
print(json.dumps({"pid": os.getpid(), "tid": tid[0], "buf": ctypes.addressof(buf), "two": two, "ro": ro}), flush=True)
for line in sys.stdin:
    a = line.split()
    if a[0] == "dump":
        print(ctypes.string_at(int(a[1]), int(a[2])).hex(), flush=True)
`;

interface Layout {
  pid: number;
  tid: number;
  buf: number;
  two: number;
  ro: number;
}

let p: Interactive;
let at: Layout;
beforeAll(async () => {
  p = pythonInteractive(child);
  at = JSON.parse(await p.line()) as Layout;
});
afterAll(() => p.kill());

const dump = async (addr: number, len: number): Promise<string> => {
  p.send(`dump ${addr} ${len}`);
  return p.line();
};

/** The errno code a promise rejects with (it must reject with an Errno). */
async function errnoOf(op: Promise<unknown>): Promise<string> {
  const err = await op.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Errno);
  return (err as Errno).code;
}

describe('CallerMemory on a child process', () => {
  it('reads and writes through the id of a thread, not only the process', async () => {
    expect(at.tid).not.toBe(at.pid);
    const mem = new CallerMemory(at.tid);
    expect([...(await mem.read(at.buf, 64))]).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect([...(await mem.read(BigInt(at.buf) + 60n, 4))]).toEqual([60, 61, 62, 63]);
    await mem.write(at.buf + 8, Buffer.from('cdevemu!'));
    expect(await dump(at.buf + 6, 12)).toBe(Buffer.from([6, 7, ...Buffer.from('cdevemu!'), 16, 17]).toString('hex'));
    // A Uint8Array view into a larger buffer writes exactly its own bytes.
    const big = new Uint8Array([9, 9, 1, 2, 3, 9]);
    await new CallerMemory(at.pid).write(at.buf, big.subarray(2, 5));
    expect(await dump(at.buf, 4)).toBe('01020303');
  });

  it('copies nothing for a zero length, whatever the address (copy_from_user of 0 bytes)', async () => {
    const mem = new CallerMemory(at.pid);
    expect((await mem.read(0, 0)).length).toBe(0);
    await mem.write(0, Buffer.alloc(0));
  });

  it('fails EFAULT on an address it cannot access (unmapped, PROT_NONE), and on one past the 64-bit range', async () => {
    const mem = new CallerMemory(at.pid);
    expect(await errnoOf(mem.read(0, 4))).toBe('EFAULT');
    expect(await errnoOf(mem.read(at.two + PAGE, 1))).toBe('EFAULT');
    expect(await errnoOf(mem.write(8, Buffer.from([1])))).toBe('EFAULT');
    expect(await errnoOf(mem.read((1n << 64n) - 2n, 4))).toBe('EFAULT');
    expect(await errnoOf(mem.read(-1, 4))).toBe('EFAULT');
  });

  it('fails a range that runs into a hole as a whole: a read returns nothing, a write may leave the mapped part', async () => {
    const mem = new CallerMemory(at.pid);
    const start = at.two + PAGE - 4;
    expect([...(await mem.read(start, 4))]).toEqual([0x11, 0x11, 0x11, 0x11]); // the mapped part alone reads
    expect(await errnoOf(mem.read(start, 8))).toBe('EFAULT');
    expect(await errnoOf(mem.write(start, Buffer.from('ABCDEFGH')))).toBe('EFAULT');
    // copy_to_user() semantics: what fitted before the hole was stored.
    expect(await dump(start, 4)).toBe(Buffer.from('ABCD').toString('hex'));
  });

  it('fails EFAULT writing a read-only mapping, which it can read', async () => {
    const mem = new CallerMemory(at.pid);
    expect([...(await mem.read(at.ro, 2))]).toEqual([0, 0]);
    expect(await errnoOf(mem.write(at.ro, Buffer.from([1])))).toBe('EFAULT');
    expect(await dump(at.ro, 1)).toBe('00');
  });

  it('refuses every copy once revoked (the request was answered), without touching the process', async () => {
    const mem = new CallerMemory(at.pid);
    mem.revoke();
    expect(await errnoOf(mem.write(at.buf, Buffer.from([0xee])))).toBe('EFAULT');
    expect(await errnoOf(mem.read(at.buf, 1))).toBe('EFAULT');
    expect(await dump(at.buf, 1)).toBe('01');
  });

  it('fails ESRCH for a thread that does not exist', async () => {
    const gone = pythonInteractive('print("x")');
    await gone.exited;
    expect(await errnoOf(new CallerMemory(gone.pid).read(at.buf, 1))).toBe('ESRCH');
  });
});
