/**
 * uio: a userspace I/O device as drivers/uio/uio.c presents /dev/uioN to a
 * consumer such as tcmu-runner.
 *
 * - uio_open() starts a listener at the current interrupt count.
 * - uio_read() accepts exactly sizeof(s32) (else EINVAL), returns the s32
 *   event count once it differs from the listener's last seen count, and
 *   blocks until then (EAGAIN with O_NONBLOCK).
 * - uio_write() takes exactly an s32 (else EINVAL) and passes it to the
 *   driver's irqcontrol(): 1 enables, 0 disables the interrupt. Here an
 *   interrupt raised while disabled stays pending and is delivered on
 *   enable, like a masked level interrupt; with `oneShot` every delivered
 *   interrupt masks the line until the consumer writes 1 again
 *   (uio_pdrv_genirq's handler disables the irq, irqcontrol re-enables it).
 * - uio_poll() reports EPOLLIN|EPOLLRDNORM when the count changed since the
 *   listener last read it.
 * - After uio_unregister_device() (idev->info == NULL) read fails EIO,
 *   write EINVAL, both after their size check (EINVAL, which the core
 *   makes for the read from UIO_READ_SIZES), and uio_poll() returns -EIO
 *   cast to __poll_t: see UIO_POLL_GONE and UIO_UNPLUGGED.
 *
 * - uio_mmap(): mmap(fd, len, offset = N * pagesize) maps map N. Each map
 *   is a shared region (src/core/regions.ts) that programs and the model
 *   (or a scenario, through the region_read/region_write actions) share;
 *   unplug revokes it (uio_vma_fault's SIGBUS) unless the map is `keep`.
 *
 * sysfs: /sys/class/uio/uioN/{name,version,event} and maps/mapN/{name,addr,size,offset}
 * (uio.c's dev_attrs and map_attributes, with the kernel's formats).
 */
import { Errno, errnoNumber } from '../errno.js';
import { POLLIN, POLLRDNORM } from '../devio.js';
import {
  defineSchema,
  ioSizeFits,
  SchemaError,
  type DeviceModel,
  type File,
  type Instance,
  type IoSizes,
  type RegionSpec,
  type UnplugPolicy,
  type Values,
} from '../core/index.js';
import { hex64, s32, waitUnlessNonblock } from './util.js';

/**
 * uio_poll() returns -EIO once the device is gone. As __poll_t (unsigned
 * int) that is 0xfffffffb: every bit but EPOLLOUT (0x4). FUSE carries it in
 * fuse_poll_out.revents and fuse_file_poll() passes it through
 * demangle_poll(u16), so the kernel sees 0xfffb; poll(2) then keeps the
 * requested bits plus POLLERR|POLLHUP (do_pollfd's filter), so a POLLIN
 * waiter sees POLLIN|POLLERR|POLLHUP (0x19), and select(2) reports the fd
 * readable and writable (POLLERR is in both sets).
 */
export const UIO_POLL_GONE = (-errnoNumber('EIO') >>> 0) & 0xffff;

/** uio_read() takes exactly an s32: any other count is EINVAL, before it looks at idev->info. */
const UIO_READ_SIZES: IoSizes = { exact: 4 };

/**
 * uio after uio_unregister_device() (idev->info == NULL): uio_read() fails
 * EINVAL for a size other than 4, as ever, and EIO (the default) for 4;
 * uio_write() EINVAL, uio_poll() UIO_POLL_GONE. tcmu's node is a uio node
 * and answers the same.
 */
export const UIO_UNPLUGGED = { readSizes: UIO_READ_SIZES, write: new Errno('EINVAL'), poll: UIO_POLL_GONE } as const;

export interface UioState {
  /** idev->event: the s32 interrupt count, wrapping like atomic_t. */
  count: number;
  enabled: boolean;
  /** An interrupt raised while disabled, delivered on enable. */
  pending: boolean;
  oneShot: boolean;
  name: string;
  version: string;
}

/** One uio map (struct uio_mem): its region, and the physical address sysfs shows. */
interface UioMap extends Required<Omit<RegionSpec, 'option'>> {
  addr: number;
  /** `maps[N]`, the option a layout error names; none for the one map of mapSize. */
  option?: string;
}

interface UioOptions {
  name: string;
  version: string;
  oneShot: boolean;
  maps: UioMap[];
}

/** MAX_UIO_MAPS in include/linux/uio_driver.h. */
const MAX_UIO_MAPS = 5;
/** 1 GiB: memory for one emulated map. */
const MAX_MAP_SIZE = 1 << 30;

const MAP = {
  size: { type: 'integer', min: 1, max: MAX_MAP_SIZE, default: 4096, description: 'bytes' },
  addr: { type: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER, default: 0, description: 'the physical address sys/class/uio/uioN/maps/mapN/addr shows' },
} as const;

const OPTIONS = defineSchema({
  name: { type: 'string', default: 'cdevemu', description: 'the name in sys/class/uio/uioN/name' },
  version: { type: 'string', default: '0.0.1', description: 'the version in sys/class/uio/uioN/version' },
  oneShot: { type: 'boolean', default: false, description: 'each interrupt disables the next until a write of 1 enables them again' },
  mapSize: { type: 'integer', min: 1, max: MAX_MAP_SIZE, description: 'the size of the one map, map0 (default 4096); or give maps' },
  mapAddr: { type: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER, description: 'the address of the one map, map0 (default 0); or give maps' },
  maps: {
    type: 'array',
    minItems: 1,
    maxItems: MAX_UIO_MAPS,
    description: `1 to ${MAX_UIO_MAPS} maps, each {name?, size, addr?, onUnplug?}; 'keep' maps first, every map but the last at most a page`,
    items: {
      type: 'object',
      description: 'a map',
      fields: {
        name: { type: 'string', default: '', description: 'the name in maps/mapN/name' },
        ...MAP,
        onUnplug: { type: 'string', enum: ['revoke', 'keep'], default: 'revoke', description: "what unplug does to programs' mappings" },
      },
    },
  },
});

/** `maps`, or the one map0 of `mapSize` and `mapAddr`; from the checked options, by regions() and create() alike (regions come first). */
function uioOptions(options: unknown): UioOptions {
  const o = options as Values<typeof OPTIONS>;
  if (o.maps && (o.mapSize !== undefined || o.mapAddr !== undefined)) throw new SchemaError('uio: option maps: give either maps or mapSize/mapAddr', 'maps');
  const maps: UioMap[] = o.maps
    ? (o.maps as { name: string; size: number; addr: number; onUnplug: UnplugPolicy }[]).map((m, i) => ({ ...m, option: `maps[${i}]` }))
    : [{ name: '', size: o.mapSize ?? MAP.size.default, addr: o.mapAddr ?? MAP.addr.default, onUnplug: 'revoke' }];
  return { name: o.name, version: o.version, oneShot: o.oneShot, maps };
}

/** struct uio_listener: the count this open file last read. */
interface Listener {
  seen: number;
}

const listener = (file: File<UioState>): Listener => file.private as Listener;

function deliver(inst: Instance<UioState>): void {
  const s = inst.state;
  s.count = (s.count + 1) | 0;
  if (s.oneShot) s.enabled = false;
  inst.wq.wake(); // uio_event_notify(): wake_up_interruptible + kill_fasync
}

/** The `irq` action: the device raises its interrupt (uio_event_notify). */
export function raise(inst: Instance<UioState>): { count: number; delivered: boolean } {
  const s = inst.state;
  if (!s.enabled) {
    s.pending = true;
    return { count: s.count, delivered: false };
  }
  deliver(inst);
  return { count: s.count, delivered: true };
}

/**
 * /sys/class/uio/NAME: uio.c's dev_attrs (name, version, event) and
 * map_attributes: name "%s\n", addr and size "%pa\n" (0x%016llx on
 * 64-bit), offset "0x%llx\n" (the map's offset within its page).
 */
export function uioAttributes(
  name: string,
  s: () => UioState,
  maps: readonly { name: string; addr: number; size: number | (() => number) }[],
): Record<string, string | (() => string)> {
  const dir = `sys/class/uio/${name}`;
  const attrs: Record<string, string | (() => string)> = {
    [`${dir}/name`]: () => `${s().name}\n`,
    [`${dir}/version`]: () => `${s().version}\n`,
    [`${dir}/event`]: () => `${s().count >>> 0}\n`,
  };
  maps.forEach((m, i) => {
    const size = m.size;
    attrs[`${dir}/maps/map${i}/name`] = `${m.name}\n`;
    attrs[`${dir}/maps/map${i}/addr`] = `${hex64(m.addr)}\n`;
    attrs[`${dir}/maps/map${i}/size`] = typeof size === 'number' ? `${hex64(size)}\n` : () => `${hex64(size())}\n`;
    attrs[`${dir}/maps/map${i}/offset`] = '0x0\n';
  });
  return attrs;
}

export const uioModel: DeviceModel<UioState> = {
  name: 'uio',
  description: 'a userspace I/O device (/dev/uioN): interrupts by read and poll, and memory maps a program mmaps',
  options: OPTIONS,
  events: {},
  stream: true,
  unplugged: UIO_UNPLUGGED,
  // The region names are the sysfs map directories; `name` is the map's name attribute.
  regions: (inst) => uioOptions(inst.options).maps.map((m, i) => ({ name: `map${i}`, size: m.size, onUnplug: m.onUnplug, option: m.option })),
  create(_inst, options) {
    const o = uioOptions(options);
    return { count: 0, enabled: true, pending: false, oneShot: o.oneShot, name: o.name, version: o.version };
  },
  attributes(inst) {
    return uioAttributes(inst.name, () => inst.state, uioOptions(inst.options).maps);
  },
  open(file) {
    file.private = { seen: file.instance.state.count } satisfies Listener;
  },
  async read(file, size, signal) {
    if (!ioSizeFits(UIO_READ_SIZES, size)) throw new Errno('EINVAL');
    const s = file.instance.state;
    const l = listener(file);
    for (;;) {
      if (s.count !== l.seen) {
        l.seen = s.count;
        return s32(s.count);
      }
      await waitUnlessNonblock(file, () => s.count !== l.seen, signal);
    }
  },
  write(file, data) {
    if (data.length !== 4) throw new Errno('EINVAL');
    const inst = file.instance;
    const s = inst.state;
    s.enabled = data.readInt32LE(0) !== 0;
    if (s.enabled && s.pending) {
      s.pending = false;
      deliver(inst);
    }
    return 4;
  },
  poll(file) {
    return file.instance.state.count !== listener(file).seen ? POLLIN | POLLRDNORM : 0;
  },
  actions: {
    irq: { description: 'raises an interrupt: a blocked read(4) returns the new count, poll reports POLLIN', run: (inst) => raise(inst) },
  },
};
