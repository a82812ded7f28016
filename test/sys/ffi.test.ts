import { spawn } from 'node:child_process';
import { closeSync, fstatSync, readFileSync, readSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/errno.js';
import {
  F_SEAL_GROW,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  pageSize,
  PROT_READ,
  PROT_WRITE,
  addSeals,
  ftruncate,
  getSeals,
  ioctl,
  memfdCreate,
  mmap,
  munmap,
  receiveFd,
  unixSocketPair,
  view,
} from '../../src/sys/ffi.js';

const PAGE_SIZE = pageSize();

describe('ffi', () => {
  it('maps a memfd: stores through the view are the file bytes', () => {
    const fd = memfdCreate('ffi-test', MFD_CLOEXEC | MFD_ALLOW_SEALING);
    try {
      ftruncate(fd, PAGE_SIZE);
      expect(fstatSync(fd).size).toBe(PAGE_SIZE);
      const p = mmap(PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      const bytes = new Uint8Array(view(p, PAGE_SIZE));
      bytes.set([1, 2, 3], 10);
      const back = Buffer.alloc(3);
      readSync(fd, back, 0, 3, 10);
      expect([...back]).toEqual([1, 2, 3]);
      writeSync(fd, Buffer.from([9]), 0, 1, 11);
      expect(bytes[11]).toBe(9);
      munmap(p, PAGE_SIZE);
    } finally {
      closeSync(fd);
    }
  });

  it('translates errno: seals refuse growth with EPERM, bad fds give EBADF', () => {
    const fd = memfdCreate('ffi-seal', MFD_CLOEXEC | MFD_ALLOW_SEALING);
    try {
      addSeals(fd, F_SEAL_GROW | F_SEAL_SHRINK);
      expect(getSeals(fd) & (F_SEAL_GROW | F_SEAL_SHRINK)).toBe(F_SEAL_GROW | F_SEAL_SHRINK);
      expect(() => ftruncate(fd, PAGE_SIZE)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    } finally {
      closeSync(fd);
    }
    let err: unknown;
    try {
      ioctl(fd, 0x5401, Buffer.alloc(64));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Errno);
    expect((err as Errno).code).toBe('EBADF');
    expect(() => mmap(PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});

/** Whether this process's descriptor `fd` is close-on-exec (O_CLOEXEC in /proc/self/fdinfo's octal flags). */
function closeOnExec(fd: number): boolean {
  const flags = parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
  return (flags & 0o2000000) !== 0;
}

/** Runs python3 `code` with `fd` as its fd 3 (as fusermount3 gets its socket); resolves with its exit code. */
function pythonWithFd3(code: string, fd: number): Promise<number | null> {
  const child = spawn('python3', ['-c', code], { stdio: ['ignore', 'ignore', 'inherit', fd] });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
}

describe('descriptors over a Unix socket (SCM_RIGHTS), as fusermount3 sends /dev/fuse', () => {
  it('receives the descriptor another process sent: the same open file, close-on-exec', async () => {
    const [mine, theirs] = unixSocketPair();
    try {
      // Nothing sent yet: none queued, and no waiting for one.
      expect(receiveFd(mine)).toBeNull();
      const sent = pythonWithFd3(
        `import os, socket
r, w = os.pipe()
os.write(w, b"through the socket")
socket.send_fds(socket.socket(fileno=3), [b"\\0"], [r])`,
        theirs,
      );
      closeSync(theirs);
      expect(await sent).toBe(0);
      const fd = receiveFd(mine);
      expect(fd).not.toBeNull();
      try {
        const buf = Buffer.alloc(64);
        expect(buf.subarray(0, readSync(fd!, buf)).toString()).toBe('through the socket');
        expect(closeOnExec(fd!)).toBe(true);
      } finally {
        closeSync(fd!);
      }
    } finally {
      closeSync(mine);
    }
  });

  it('null when the peer closed its end without sending one', async () => {
    const [mine, theirs] = unixSocketPair();
    try {
      const exited = pythonWithFd3('import os; os.write(3, b"x")', theirs);
      closeSync(theirs);
      expect(await exited).toBe(0);
      expect(receiveFd(mine)).toBeNull(); // a byte, no descriptor
      expect(receiveFd(mine)).toBeNull(); // end of stream
    } finally {
      closeSync(mine);
    }
  });

  it('the pair is close-on-exec: a child gets a socket only where its stdio puts one', () => {
    const [a, b] = unixSocketPair();
    try {
      expect([closeOnExec(a), closeOnExec(b)]).toEqual([true, true]);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });
});
