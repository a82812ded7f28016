/**
 * hwrng: a hardware random number generator as
 * drivers/char/hw_random/core.c presents /dev/hwrng.
 *
 * - rng_dev_open() enforces read-only access: an open for writing, or
 *   without FMODE_READ (O_WRONLY, O_RDWR, access mode 3), fails EINVAL,
 *   whatever the node's permissions allow.
 * - rng_dev_read() fills the whole read (it loops over the driver's
 *   buffer until `size` bytes are copied), so every READ is answered in
 *   full: a large read(2) gets all its bytes across FUSE's chunks.
 * - Bytes come from crypto.randomBytes, or, with the `seed` option, from a
 *   deterministic stream (AES-256-CTR keyed with SHA-256 of the seed) that
 *   is shared by all openers and independent of how reads are split: the
 *   same sequence of reads gets the same bytes on every run.
 * - Once the current rng is unregistered, rng_dev_read() fails ENODEV
 *   (get_current_rng() finds none): the model's unplugged read. poll is the
 *   VFS default (rng_chrdev_ops has no poll), after unplug too: the misc
 *   device /dev/hwrng stays registered (hwrng_modinit()) when its last rng
 *   goes, so a poller is told the node is readable and learns of the
 *   removal from read's ENODEV, not from POLLHUP.
 *
 * sysfs: sys/class/misc/hw_random/{rng_current,rng_available} for a device
 * named hwrng (the kernel's misc device name), else sys/class/misc/NAME/.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { Errno } from '../errno.js';
import { DEFAULT_POLLMASK, O_ACCMODE, O_RDONLY } from '../devio.js';
import { defineSchema, type DeviceModel, type Values } from '../core/index.js';

/**
 * The seeded stream as the model uses it: an AES-256-CTR cipher whose
 * update() turns zeros into keystream. Described by that one method rather
 * than named by @types/node's class, which newer versions rename (Cipher
 * became Cipheriv): the state type is part of the package's declarations,
 * and must compile against whatever @types/node a user has.
 */
export interface KeyStream {
  update(zeros: Buffer): Buffer;
}

export interface HwrngState {
  name: string;
  /** The seeded stream, or null for crypto.randomBytes. */
  stream: KeyStream | null;
  /** Bytes handed out (for the `stats` action). */
  bytes: number;
}

const zeros = Buffer.alloc(1 << 20);

const OPTIONS = defineSchema({
  name: { type: 'string', default: 'cdevemu', description: 'the rng name in rng_current and rng_available' },
  seed: { type: ['string', 'number'], description: 'makes the bytes a repeatable stream (AES-256-CTR keyed by its SHA-256); random without it' },
});

function seededStream(seed: string): KeyStream {
  const key = createHash('sha256').update(seed, 'utf8').digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
}

export const hwrngModel: DeviceModel<HwrngState> = {
  name: 'hwrng',
  events: {},
  stream: true,
  // rng_dev_read() with no current rng; no write or ioctl (EINVAL, ENOTTY), the VFS's poll.
  unplugged: { read: new Errno('ENODEV'), poll: DEFAULT_POLLMASK },
  description: 'a hardware random number generator (/dev/hwrng): random bytes, or a repeatable stream from a seed',
  options: OPTIONS,
  create(_inst, options) {
    const o = options as Values<typeof OPTIONS>;
    // A seed may be given as a number or a string; both name the same stream ("42" and 42).
    return { name: o.name, stream: o.seed !== undefined ? seededStream(String(o.seed)) : null, bytes: 0 };
  },
  attributes(inst) {
    const dir = `sys/class/misc/${inst.name === 'hwrng' ? 'hw_random' : inst.name}`;
    return {
      [`${dir}/rng_current`]: `${inst.state.name}\n`,
      [`${dir}/rng_available`]: `${inst.state.name}\n`,
    };
  },
  open(file) {
    // rng_dev_open(): "enforce read-only access to this chrdev".
    if ((file.openFlags & O_ACCMODE) !== O_RDONLY) throw new Errno('EINVAL');
  },
  read(file, size) {
    const s = file.instance.state;
    s.bytes += size;
    if (!s.stream) return randomBytes(size);
    const parts: Buffer[] = [];
    for (let left = size; left > 0; left -= zeros.length) parts.push(s.stream.update(zeros.subarray(0, Math.min(left, zeros.length))));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
  },
  actions: {
    stats: { description: 'bytes read so far, and whether the stream is seeded', run: (inst) => ({ bytes: inst.state.bytes, seeded: inst.state.stream !== null }) },
  },
};
