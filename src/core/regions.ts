/**
 * The shared memory regions of one instance: layout, the model's views,
 * the unplug revoke step, and the drop at free.
 *
 * All regions of a device live in one memfd, region N at byte offset
 * N * page size: FUSE passthrough gives each open file one backing file,
 * and maps mmap()'s offset straight into it, so uio's "offset N * page
 * size selects map N" holds only with that layout. Hence every region but
 * the last fits in one page (checked at plug).
 */
import type { ByteRange, DevicePages, PageSync } from '../devio.js';
import type { RegionReadArgs, RegionWriteArgs } from './region-actions.js';
import { SchemaError } from './schema.js';
import { pageSize } from '../sys/ffi.js';
import { SharedMemory } from '../sys/memfd.js';
import type { Region, RegionRange, RegionSpec, RegionSync, UnplugPolicy } from './model.js';

const pageAlign = (n: number): number => Math.ceil(n / pageSize()) * pageSize();

/**
 * A region spec the layout cannot hold. `option` is the model option the
 * spec came from (RegionSpec.option), when the model named one: then the
 * options are at fault, not the model.
 */
export class RegionLayoutError extends Error {
  constructor(
    message: string,
    readonly option?: string,
  ) {
    super(message);
    this.name = 'RegionLayoutError';
  }
}

class SharedRegion implements Region {
  state: Region['state'] = 'live';
  private view: { bytes: Uint8Array; data: DataView } | null;

  constructor(
    readonly index: number,
    readonly name: string,
    readonly size: number,
    readonly onUnplug: UnplugPolicy,
    memory: SharedMemory,
    private readonly device: DeviceRegions,
  ) {
    this.view = {
      bytes: new Uint8Array(memory.buffer, this.offset, size),
      data: new DataView(memory.buffer, this.offset, size),
    };
  }

  get offset(): number {
    return this.index * pageSize();
  }

  get bytes(): Uint8Array {
    return this.live().bytes;
  }

  get data(): DataView {
    return this.live().data;
  }

  pull(ranges?: readonly RegionRange[]): Promise<void> | undefined {
    return this.device.mirror?.pull(this.inFile(ranges));
  }

  push(ranges?: readonly RegionRange[]): void {
    this.device.mirror?.push(this.inFile(ranges));
  }

  flush(): Promise<void> | undefined {
    return this.device.mirror?.flush();
  }

  /** `ranges` of this region as ranges of the file (region N at N * page size), clipped to the region. */
  private inFile(ranges: readonly RegionRange[] = [{ offset: 0, length: this.size }]): ByteRange[] {
    return ranges.flatMap((r) => {
      const from = Math.max(0, r.offset);
      const to = Math.min(this.size, r.offset + r.length);
      return to > from ? [{ offset: this.offset + from, length: to - from }] : [];
    });
  }

  drop(): void {
    this.view = null;
    this.state = 'freed';
  }

  private live(): { bytes: Uint8Array; data: DataView } {
    if (!this.view) throw new Error(`region ${this.name} belongs to a freed device`);
    return this.view;
  }
}

export class DeviceRegions implements DevicePages {
  readonly list: readonly SharedRegion[];
  readonly bytes: Uint8Array;
  /** Programs' page caches, when the regions are mapped through them (no passthrough). */
  mirror: PageSync | null = null;
  private cutAt = Infinity;

  private constructor(
    private readonly memory: SharedMemory,
    specs: readonly CheckedSpec[],
  ) {
    this.bytes = new Uint8Array(memory.buffer);
    this.list = specs.map((s, i) => new SharedRegion(i, s.name, s.size, s.onUnplug, memory, this));
  }

  /** Checks the specs and maps zeroed pages for them; null when there are none. Throws RegionLayoutError on a bad spec. */
  static create(label: string, specs: readonly RegionSpec[]): DeviceRegions | null {
    if (!Array.isArray(specs)) throw new RegionLayoutError('regions() must return an array');
    if (specs.length === 0) return null;
    const checked = specs.map((s, i) => checkSpec(s, i, specs.length));
    const names = new Set(checked.map((s) => s.name));
    if (names.size !== checked.length) throw new RegionLayoutError('region names must be unique');
    const firstRevoke = checked.findIndex((s) => s.onUnplug === 'revoke');
    const laterKeep = firstRevoke < 0 ? -1 : checked.findIndex((s, i) => i > firstRevoke && s.onUnplug === 'keep');
    if (laterKeep >= 0) {
      // Revoking truncates the one backing file from the first revoked region on.
      const keep = checked[laterKeep]!;
      throw layoutError(
        keep,
        'onUnplug',
        `'keep' after region ${checked[firstRevoke]!.name}, which is 'revoke'; put 'keep' regions first`,
      );
    }
    const last = checked[checked.length - 1]!;
    const memory = SharedMemory.create(label, (checked.length - 1) * pageSize() + pageAlign(last.size));
    return new DeviceRegions(memory, checked);
  }

  get revokedFrom(): number {
    return Math.min(this.cutAt, this.memory.length);
  }

  attach(mirror: PageSync | null): void {
    this.mirror = mirror;
  }

  /**
   * The synchronisation points of page-cache mappings
   * (docs/models.md#shared-memory-mmap), as the core runs them around a
   * model's handlers. Before a kick (write, ioctl) reaches the model:
   * what programs stored is pulled in. Nothing to do (undefined, at once)
   * with passthrough, with no program holding a page, or when the model
   * pulls itself ('manual').
   */
  beforeKick(sync: RegionSync): Promise<void> | undefined {
    return sync === 'auto' ? this.mirror?.pull() : undefined;
  }

  /**
   * Before an answer reaches the program (read, the interrupt; ioctl):
   * what the model changed goes to its page cache. 'auto' pushes every
   * byte that differs from what programs hold; 'manual' models pushed what
   * they wrote themselves (Region.push). The filesystem writes the answer
   * after the pushes (PageSync.push).
   */
  beforeAnswer(sync: RegionSync): void {
    if (sync === 'auto') this.mirror?.push();
  }

  /** Bytes programs can map: the backing file's length. */
  get size(): number {
    return this.memory.length;
  }

  /** The memfd programs map through FUSE passthrough. Valid until drop(). */
  get backingFd(): number {
    return this.memory.fd;
  }

  /**
   * The unplug step: every 'revoke' region's pages are cut from the backing
   * file, so each program mapping of them, old or new, gets SIGBUS on the
   * next touch. The model keeps reading its own (now private) copy until free.
   * Returns the names of the revoked regions.
   */
  revoke(): string[] {
    const cut = this.list.filter((r) => r.onUnplug === 'revoke');
    this.cutAt = cut[0]?.offset ?? this.memory.length;
    this.memory.revoke(this.cutAt);
    for (const r of cut) r.state = 'revoked';
    return cut.map((r) => r.name);
  }

  /**
   * The same cut for mappings through programs' page caches: page reads
   * past it fail from now on (revokedFrom), and the pages they hold are
   * dropped, so their next touch gets SIGBUS. Undefined when there are none.
   */
  revokeMappings(): Promise<void> | undefined {
    return this.cutAt < this.memory.length ? this.mirror?.revoke(this.cutAt) : undefined;
  }

  /** At free: the model's views are dropped and the descriptor closed; 'keep' pages live on in programs that map them. */
  drop(): void {
    for (const r of this.list) r.drop();
    this.memory.close();
  }

  /** The region_read action: `length` bytes at `offset` of region `region`, as hex, after what programs stored there is pulled in. */
  read(a: RegionReadArgs): Promise<{ hex: string }> | { hex: string } {
    const { r, offset, length } = this.locate(a, a.length);
    const hex = (): { hex: string } => ({ hex: Buffer.from(r.bytes.subarray(offset, offset + length)).toString('hex') });
    const pulled = r.pull([{ offset, length }]);
    return pulled ? pulled.then(hex) : hex();
  }

  /** The region_write action: stores `hex` at `offset` of region `region`, and pushes it to programs' page caches at once. */
  write(a: RegionWriteArgs): Promise<{ written: number }> | { written: number } {
    const data = Buffer.from(a.hex, 'hex');
    const { r, offset } = this.locate(a, data.length);
    r.bytes.set(data, offset);
    r.push([{ offset, length: data.length }]);
    const written = { written: data.length };
    const flushed = r.flush();
    return flushed ? flushed.then(() => written) : written;
  }

  /** The region and byte range an action names (region-actions.ts); `length` the rest of the region by default. */
  private locate(a: { region: number | string; offset: number }, given: number | undefined): { r: SharedRegion; offset: number; length: number } {
    const r = typeof a.region === 'string' ? this.list.find((x) => x.name === a.region) : this.list[a.region];
    if (!r) throw new SchemaError(`region: no region ${JSON.stringify(a.region)}; regions: ${this.list.map((x) => `${x.index} (${x.name})`).join(', ')}`, 'region');
    const offset = a.offset;
    const length = given ?? r.size - offset;
    if (offset > r.size || offset + length > r.size) {
      throw new SchemaError(`offset ${offset} and length ${length} do not fit region ${r.name} (${r.size} bytes)`, 'offset');
    }
    return { r, offset, length };
  }
}

interface CheckedSpec {
  name: string;
  size: number;
  onUnplug: UnplugPolicy;
  option: string | undefined;
}

/** "option maps[1].size (region map1): why" when the model named the option, else "region map1: why". */
function layoutError(s: { name: string; option: string | undefined }, field: string, why: string): RegionLayoutError {
  const where = s.option === undefined ? `region ${s.name}` : `option ${s.option}.${field} (region ${s.name})`;
  return new RegionLayoutError(`${where}: ${why}`, s.option);
}

function checkSpec(s: RegionSpec, i: number, count: number): CheckedSpec {
  const option = typeof s?.option === 'string' ? s.option : undefined;
  const name = s?.name ?? `map${i}`;
  if (typeof name !== 'string' || name === '' || name.includes('/')) {
    throw layoutError({ name: String(i), option }, 'name', `name must be a non-empty string without '/'`);
  }
  const spec = { name, option };
  if (!Number.isSafeInteger(s.size) || s.size < 1) throw layoutError(spec, 'size', `size must be a positive integer, got ${String(s.size)}`);
  if (i < count - 1 && s.size > pageSize()) {
    throw layoutError(
      spec,
      'size',
      `${s.size} bytes; every region but the last must fit in one page (${pageSize()}), because region N is mapped at offset N * ${pageSize()} of one backing file`,
    );
  }
  const onUnplug = s.onUnplug ?? 'revoke';
  if (onUnplug !== 'revoke' && onUnplug !== 'keep') throw layoutError(spec, 'onUnplug', `onUnplug must be 'revoke' or 'keep'`);
  return { name, size: s.size, onUnplug, option };
}
