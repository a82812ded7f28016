/**
 * Test doubles for core/: a Publisher that keeps what it was given, a
 * recording logger, and 'pipe', a trivial model (a byte queue with a wait
 * queue) whose every hook is traced so tests can see which model code ran
 * and whether it ran after remove().
 */
import { Errno } from '../../src/errno.js';
import {
  O_RDWR,
  POLLIN,
  POLLOUT,
  type DeviceEndpoint,
  type DeviceFile,
  type IoContext,
} from '../../src/devio.js';
import {
  DeviceManager,
  type Attribute,
  type DeviceModel,
  type Instance,
  type Logger,
  type PublishedDevice,
  type Publisher,
} from '../../src/core/index.js';

export interface Published {
  dev: PublishedDevice;
  endpoint: DeviceEndpoint;
  attributes: Record<string, Attribute>;
}

export class FakePublisher implements Publisher {
  /** What is visible now, by node path. */
  readonly nodes = new Map<string, Published>();
  /** Everything ever published, so tests can keep an endpoint after unpublish. */
  readonly all: Published[] = [];
  unpublishDelayMs = 0;
  /** unpublish() never settles: a kernel that never lets go of the entry. */
  unpublishHangs = false;

  publish(dev: PublishedDevice, endpoint: DeviceEndpoint, attributes: Record<string, Attribute>): void {
    if (this.nodes.has(dev.nodePath)) throw new Error(`node ${dev.nodePath} exists`);
    const p = { dev, endpoint, attributes };
    this.nodes.set(dev.nodePath, p);
    this.all.push(p);
  }

  async unpublish(dev: PublishedDevice): Promise<void> {
    if (this.unpublishHangs) await new Promise(() => {});
    if (this.unpublishDelayMs) await sleep(this.unpublishDelayMs);
    if (this.nodes.get(dev.nodePath)?.dev === dev) this.nodes.delete(dev.nodePath);
  }

  endpoint(nodePath: string): DeviceEndpoint {
    const p = this.nodes.get(nodePath);
    if (!p) throw new Errno('ENOENT');
    return p.endpoint;
  }
}

export class RecordingLogger implements Logger {
  readonly warns: { obj: Record<string, unknown>; msg: string }[] = [];
  readonly errors: { obj: Record<string, unknown>; msg: string }[] = [];
  warn(obj: object, msg: string): void {
    this.warns.push({ obj: obj as Record<string, unknown>, msg });
  }
  error(obj: object, msg: string): void {
    this.errors.push({ obj: obj as Record<string, unknown>, msg });
  }
}

export function setup(drainTimeoutMs?: number) {
  const publisher = new FakePublisher();
  const logger = new RecordingLogger();
  const mgr = new DeviceManager({ publisher, logger, drainTimeoutMs });
  return { publisher, logger, mgr };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Lets pending promise reactions and one timer turn run. */
/**
 * Runs a DeviceFile method as fs does: it may answer or throw synchronously
 * (the fast path for models that answer at once) or return a promise.
 */
export const call = async <T>(fn: () => T | Promise<T>): Promise<T> => fn();

export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Tracks a promise's state, attaching handlers at once (so a rejection is never unhandled). */
export function watch(p: Promise<unknown>): { state: 'pending' | 'fulfilled' | 'rejected' } {
  const w: { state: 'pending' | 'fulfilled' | 'rejected' } = { state: 'pending' };
  p.then(
    () => (w.state = 'fulfilled'),
    () => (w.state = 'rejected'),
  );
  return w;
}

/** A request as fs would pass it; `transport` stands for the FUSE request's controller (INTERRUPT aborts it). */
export function io(flags = O_RDWR, transport: AbortController = new AbortController()): IoContext {
  return { pid: process.pid, uid: 0, gid: 0, flags, signal: transport.signal, abort: (reason) => transport.abort(reason) };
}

export async function openNode(publisher: FakePublisher, nodePath: string, flags = O_RDWR): Promise<DeviceFile> {
  return publisher.endpoint(nodePath).open(io(flags));
}

export interface PipeState {
  chunks: Buffer[];
  /** Every model hook that ran, in order. */
  calls: string[];
  removed: boolean;
  /** Hooks that ran after remove() returned. */
  afterRemove: string[];
}

export function pipeOf(inst: Instance<unknown> | undefined): PipeState {
  return inst!.state as PipeState;
}

function trace(inst: Instance<PipeState>, op: string): void {
  const st = inst.state;
  st.calls.push(op);
  if (st.removed) st.afterRemove.push(op);
}

/** A byte queue: write appends and wakes, read blocks until data (EAGAIN when nonblocking). */
export function pipeModel(over: Partial<DeviceModel<PipeState>> = {}): DeviceModel<PipeState> {
  const base: DeviceModel<PipeState> = {
    name: 'pipe',
    create: () => ({ chunks: [], calls: ['create'], removed: false, afterRemove: [] }),
    attributes: (inst) => ({
      [`sys/class/pipe/${inst.name}/queued`]: () => {
        trace(inst, 'show');
        return String(inst.state.chunks.length);
      },
    }),
    open: (file) => trace(file.instance, 'open'),
    async read(file, size, signal) {
      const inst = file.instance;
      trace(inst, 'read');
      while (inst.state.chunks.length === 0) {
        if (file.nonblock) throw new Errno('EAGAIN');
        await inst.wq.wait(() => inst.state.chunks.length > 0, signal);
      }
      const head = inst.state.chunks.shift()!;
      if (head.length > size) inst.state.chunks.unshift(head.subarray(size));
      return head.subarray(0, size);
    },
    write(file, data) {
      trace(file.instance, 'write');
      file.instance.state.chunks.push(Buffer.from(data));
      file.instance.wq.wake();
      return data.length;
    },
    ioctl(file) {
      trace(file.instance, 'ioctl');
      return { result: 7 };
    },
    poll(file) {
      trace(file.instance, 'poll');
      return POLLOUT | (file.instance.state.chunks.length > 0 ? POLLIN : 0);
    },
    release: (file) => trace(file.instance, 'release'),
    lateRelease: (file) => trace(file.instance, 'lateRelease'),
    remove(inst) {
      trace(inst, 'remove');
      inst.state.removed = true;
    },
    free: (inst) => trace(inst, 'free'),
    actions: {
      push(inst, arg) {
        trace(inst, 'action');
        inst.state.chunks.push(Buffer.from(String(arg)));
        inst.wq.wake();
        inst.emit('pushed', { bytes: String(arg).length });
        return 'ok';
      },
    },
  };
  return { ...base, ...over };
}
