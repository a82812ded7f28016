/**
 * Readiness of a descriptor libuv cannot watch (/dev/fuse, a netlink
 * socket), through signal-driven I/O: with O_ASYNC set and this process as
 * the owner (fcntl F_SETFL, F_SETOWN), the kernel sends SIGIO when the
 * descriptor becomes readable (kill_fasync from the driver's wake-up, e.g.
 * fs/fuse/dev.c fuse_dev_wake_and_unlock, net/core/sock.c sk_wake_async),
 * and Node's listener runs on the main thread's event loop. No thread
 * blocks in read(): a worker doing that holds a V8 isolate (~12 MiB of
 * RSS), and libuv's thread pool must stay free for file work.
 *
 * The signal does not say which descriptor is ready (libuv passes no
 * siginfo), so every armed watch is called; a non-blocking read that finds
 * nothing costs a microsecond. Nor is it a count: a pending SIGIO stands
 * for any number (kernel/signal.c legacy_queue), so each watch's onReady
 * must read its descriptor until EAGAIN before it waits for the next one.
 */
import { isMainThread } from 'node:worker_threads';
import { fcntl } from './ffi.js';

/* include/uapi/asm-generic/fcntl.h */
const F_GETFL = 3;
const F_SETFL = 4;
const F_SETOWN = 8;
const O_NONBLOCK = 0o4000;
const O_ASYNC = 0o20000;

const armed = new Set<SigioWatch>();
let listening = false;

function onSigio(): void {
  for (const w of [...armed]) if (armed.has(w)) w.onReady();
}

export class SigioWatch {
  private flags: number;

  /**
   * Makes `fd` non-blocking and owned by this process; `onReady` runs on
   * SIGIO while the watch is armed. Only on the main thread: Node delivers
   * no signals to a worker's listeners.
   */
  constructor(
    private readonly fd: number,
    readonly onReady: () => void,
  ) {
    SigioWatch.assertMainThread();
    // Installed once and never removed: without a listener a SIGIO still in
    // flight would take the default action, which ends the process.
    if (!listening) {
      process.on('SIGIO', onSigio);
      listening = true;
    }
    this.flags = fcntl(fd, F_GETFL, 0) | O_NONBLOCK;
    fcntl(fd, F_SETFL, this.flags);
    fcntl(fd, F_SETOWN, process.pid);
  }

  /** Throws unless on the main thread, where Node delivers signals (a worker's listeners get none). */
  static assertMainThread(): void {
    if (!isMainThread) throw new Error('cdevemu serves FUSE from the main thread only (it waits for requests with SIGIO)');
  }

  /**
   * Asks for SIGIO (the kernel's fasync list: fcntl F_SETFL O_ASYNC). The
   * signal comes on the next wake-up only: data already queued raised none,
   * so read once after arming.
   */
  arm(): void {
    if (armed.has(this)) return;
    this.setFlags(this.flags | O_ASYNC);
    armed.add(this);
  }

  get isArmed(): boolean {
    return armed.has(this);
  }

  /** Stops the signals, e.g. while the caller reads in a loop of its own. */
  disarm(): void {
    if (!armed.delete(this)) return;
    this.setFlags(this.flags & ~O_ASYNC);
  }

  /** Forgets the descriptor without touching it (it is closed or about to be). */
  forget(): void {
    armed.delete(this);
  }

  private setFlags(flags: number): void {
    this.flags = flags;
    fcntl(this.fd, F_SETFL, flags);
  }
}
