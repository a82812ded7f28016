/**
 * The node tree of one mount: directories, device nodes and read-only
 * attribute files, each with a nodeid the kernel knows it by.
 *
 * Nodeids are never reused (a counter), so a nodeid the kernel still holds
 * through a lookup can never name a different node (docs/fuse-protocol.md#forget). A node
 * removed from the tree stays addressable by nodeid until the kernel
 * FORGETs it: open files keep sending requests with it.
 */
import { E, Errno } from '../errno.js';
import type { DeviceEndpoint } from '../devio.js';
import type { KernelNotifier } from '../fuse/server.js';

export type NodeKind = 'dir' | 'device' | 'attribute';

interface NodeBase {
  readonly nodeid: bigint;
  name: string;
  parent: DirNode | null;
  /** Lookups the kernel holds (entry replies minus FORGETs). */
  nlookup: bigint;
  mode: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

export interface DirNode extends NodeBase {
  kind: 'dir';
  children: Map<string, TreeNode>;
  /** Created only to hold other nodes; pruned when its last child goes. */
  implicit: boolean;
}

export interface DeviceNode extends NodeBase {
  kind: 'device';
  endpoint: DeviceEndpoint;
  /** FOPEN_STREAM: no file position at all (stream_open). */
  stream: boolean;
  /** st_size: the bytes of its shared regions (0 without): programs such as python's mmap check it. */
  size: number;
}

export interface AttributeNode extends NodeBase {
  kind: 'attribute';
  /** The file's content, produced on each open like a sysfs show(); absent for a write-only file. */
  show?: () => string | Buffer;
  /** Takes the text of one write(), like a sysfs store(); absent for a read-only file. */
  store?: (text: string) => void | Promise<void>;
}

export type TreeNode = DirNode | DeviceNode | AttributeNode;

export interface DeviceOptions {
  stream?: boolean;
  mode?: number;
  size?: number;
}

const ROOT_ID = 1n;

function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.includes('..')) throw new Errno('EINVAL', `bad node path ${JSON.stringify(path)}`);
  return parts;
}

export class NodeTree {
  readonly root: DirNode;
  private readonly byId = new Map<bigint, TreeNode>();
  private nextId = ROOT_ID + 1n;

  constructor(private readonly notifier: () => KernelNotifier | null) {
    this.root = this.makeDir('', null, false);
    // The root is never forgotten: the kernel holds it for the mount's life.
    this.root.nlookup = 1n;
  }

  get(nodeid: bigint): TreeNode | undefined {
    return this.byId.get(nodeid);
  }

  /** Creates the directories of `path` that are missing, e.g. 'dev' and 'sys/class'. */
  mkdirp(path: string, implicit = false): DirNode {
    let dir = this.root;
    for (const name of splitPath(path)) {
      const child = dir.children.get(name);
      if (!child) {
        const made = this.makeDir(name, dir, implicit);
        dir.children.set(name, made);
        dir.mtimeMs = Date.now();
        dir = made;
      } else if (child.kind === 'dir') {
        dir = child;
      } else {
        throw new Errno('ENOTDIR', `${path}: ${name} is not a directory`);
      }
    }
    return dir;
  }

  addDevice(path: string, endpoint: DeviceEndpoint, o: DeviceOptions = {}): DeviceNode {
    return this.attach(path, (name, parent) => ({
      ...this.base(name, parent, o.mode ?? 0o666),
      kind: 'device',
      endpoint,
      stream: o.stream ?? true,
      size: o.size ?? 0,
    }));
  }

  /** Mode as sysfs gives it: 0444 read-only, 0644 with store(), 0200 write-only. */
  addAttribute(path: string, ops: Pick<AttributeNode, 'show' | 'store'>): AttributeNode {
    const mode = (ops.show ? 0o444 : 0) | (ops.store ? 0o200 : 0);
    return this.attach(path, (name, parent) => ({ ...this.base(name, parent, mode), kind: 'attribute', show: ops.show, store: ops.store }));
  }

  /** A directory that belongs to whoever added it (removed with remove(), never pruned as implicit). */
  addDir(path: string): DirNode {
    return this.attach(path, (name, parent) => ({ ...this.base(name, parent, 0o755), kind: 'dir', children: new Map(), implicit: false }));
  }

  private attach<T extends TreeNode>(path: string, make: (name: string, parent: DirNode) => T): T {
    const parts = splitPath(path);
    const name = parts.pop()!;
    const parent = parts.length ? this.mkdirp(parts.join('/'), true) : this.root;
    if (parent.children.has(name)) throw new Errno('EEXIST', `${path} already exists`);
    const node = make(name, parent);
    this.byId.set(node.nodeid, node);
    parent.children.set(name, node);
    parent.mtimeMs = Date.now();
    return node;
  }

  lookupPath(path: string): TreeNode | undefined {
    let node: TreeNode = this.root;
    for (const name of splitPath(path)) {
      if (node.kind !== 'dir') return undefined;
      const next: TreeNode | undefined = node.children.get(name);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  /**
   * Removes the node at `path` (with its subtree) and implicit directories
   * left empty above it. The node is gone from our lookups when this returns
   * synchronously; the promise resolves once the kernel has dropped its
   * cached dentry.
   *
   * The kernel is told with NOTIFY_INVAL_ENTRY, not NOTIFY_DELETE: DELETE
   * also takes the child inode's lock (fuse_reverse_inval_entry), which a
   * FUSE direct write or an O_TRUNC open holds while its request waits for
   * us. Unplug removes the node before it cancels those requests, so DELETE
   * could wait for a handler that waits for unplug. INVAL_ENTRY takes only
   * the parent directory's lock, and every directory operation is answered
   * synchronously here. The price: no inotify IN_DELETE for watchers.
   */
  remove(path: string): Promise<void> {
    let node = this.lookupPath(path);
    if (!node || node === this.root) return Promise.reject(new Errno('ENOENT', `${path} does not exist`));
    // Take implicit parents that would be left empty along with it, so one
    // notification covers the whole pruned branch.
    while (node.parent && node.parent !== this.root && node.parent.implicit && node.parent.children.size === 1) {
      node = node.parent;
    }
    const parent = node.parent!;
    parent.children.delete(node.name);
    parent.mtimeMs = Date.now();
    this.detach(node);
    const n = this.notifier();
    return n ? n.entryInvalidated(parent.nodeid, node.name) : Promise.resolve();
  }

  private detach(node: TreeNode): void {
    node.parent = null;
    if (node.kind === 'dir') for (const child of node.children.values()) this.detach(child);
    if (node.nlookup === 0n) this.byId.delete(node.nodeid);
  }

  /** A successful entry reply: the kernel now holds one more lookup. */
  looked(node: TreeNode): void {
    node.nlookup++;
  }

  /** FORGET: drop the kernel's lookups; a detached node with none left is gone for good. */
  forget(nodeid: bigint, nlookup: bigint): void {
    const node = this.byId.get(nodeid);
    if (!node || node === this.root) return;
    node.nlookup = node.nlookup > nlookup ? node.nlookup - nlookup : 0n;
    if (node.nlookup === 0n && node.parent === null) this.byId.delete(nodeid);
  }

  /** Nodes still addressable by nodeid (attached, or detached but still looked up). */
  get size(): number {
    return this.byId.size;
  }

  private makeDir(name: string, parent: DirNode | null, implicit: boolean): DirNode {
    const dir: DirNode = { ...this.base(name, parent, 0o755), kind: 'dir', children: new Map(), implicit };
    this.byId.set(dir.nodeid, dir);
    return dir;
  }

  private base(name: string, parent: DirNode | null, mode: number): NodeBase {
    const now = Date.now();
    const nodeid = parent === null ? ROOT_ID : this.nextId++;
    return {
      nodeid,
      name,
      parent,
      nlookup: 0n,
      mode,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      atimeMs: now,
      mtimeMs: now,
      ctimeMs: now,
    };
  }
}

export function assertDir(node: TreeNode | undefined): DirNode {
  if (!node) throw new Errno(E.ENOENT);
  if (node.kind !== 'dir') throw new Errno(E.ENOTDIR);
  return node;
}
