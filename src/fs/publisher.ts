/**
 * Publishes device instances on the node tree: the node under dev/ and its
 * sysfs-like attributes. Structurally it is core's Publisher; fs/ does not
 * import core/, the wiring hands one to the other.
 *
 * Directories that exist on a real system independently of any one device
 * (/dev/input, /sys/class/uio) are created as permanent directories, so a
 * bind mount of them survives unplug and replug; the directories of one
 * device (/sys/class/uio/uio0 and below) come and go with it.
 */
import { SYS_DIR, type DeviceEndpoint } from '../devio.js';
import { countMappings } from '../sys/procmaps.js';
import type { NodeTree } from './tree.js';

export interface PublishedNode {
  readonly nodePath: string;
  readonly stream: boolean;
  readonly size: number;
}

/** Structurally core's Attribute: fixed text, a show(), show and/or store, or a directory. */
export type AttributeSource =
  | string
  | (() => string)
  | { show?: () => string; store?: (text: string) => void | Promise<void> }
  | typeof SYS_DIR;

/**
 * Leading components of an attribute path that outlive the device:
 * sys/class/<class>, and configfs's target/core (there while
 * target_core_mod is loaded; the backstore directories below it are the
 * device's).
 */
function permanentPrefix(path: string): string {
  const parts = path.split('/').filter(Boolean);
  const configfsCore = parts.slice(0, 5).join('/') === 'sys/kernel/config/target/core';
  const keep = parts[0] === 'sys' && parts[1] === 'class' ? 3 : configfsCore ? 5 : parts.length - 1;
  return parts.slice(0, Math.min(keep, parts.length - 1)).join('/');
}

function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export class TreePublisher {
  private readonly published = new Map<PublishedNode, string[]>();
  /** The inode number of each device node, kept after unpublish: programs' mappings outlive the node. */
  private readonly inodes = new WeakMap<PublishedNode, bigint>();
  /** The mount's device number (mountinfo's major:minor), once mounted. */
  private mountDev = '';

  constructor(
    private readonly tree: NodeTree,
    /** DeviceFs.pagesShared: whether programs map the regions' own pages. */
    readonly pagesShared?: () => true | string,
  ) {}

  attachMount(dev: string): void {
    this.mountDev = dev;
  }

  /**
   * Mappings of the node in /proc/PID/maps, where passthrough lists them
   * under the FUSE file, held by `openers` or their descendants (see
   * src/sys/procmaps.ts; `openers` is updated in place).
   */
  async mappings(dev: PublishedNode, openers: Set<number>): Promise<number> {
    const ino = this.inodes.get(dev);
    return ino === undefined || !this.mountDev ? 0 : countMappings(this.mountDev, ino, openers);
  }

  publish(dev: PublishedNode, endpoint: DeviceEndpoint, attributes: Record<string, AttributeSource>): void {
    const node = `dev/${dev.nodePath}`;
    const paths = [node];
    this.tree.mkdirp(dirname(node));
    this.inodes.set(dev, this.tree.addDevice(node, endpoint, { stream: dev.stream, size: dev.size }).nodeid);
    try {
      for (const [path, source] of Object.entries(attributes)) {
        const keep = permanentPrefix(path);
        if (keep) this.tree.mkdirp(keep);
        if (source === SYS_DIR) this.tree.addDir(path);
        else if (typeof source === 'string') this.tree.addAttribute(path, { show: () => source });
        else if (typeof source === 'function') this.tree.addAttribute(path, { show: source });
        else this.tree.addAttribute(path, source);
        paths.push(path);
      }
    } catch (err) {
      for (const p of paths) void this.tree.remove(p).catch(() => {});
      throw err;
    }
    this.published.set(dev, paths);
  }

  /** Removes the node and attributes; resolves once the kernel has dropped its dentries. */
  async unpublish(dev: PublishedNode): Promise<void> {
    const paths = this.published.get(dev) ?? [];
    this.published.delete(dev);
    await Promise.all(paths.map((p) => this.tree.remove(p)));
  }
}
