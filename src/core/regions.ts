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
import { Errno } from '../errno.js';
import { pageSize } from '../sys/ffi.js';
import { SharedMemory } from '../sys/memfd.js';
import type { Region, RegionSpec, UnplugPolicy } from './model.js';

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

  drop(): void {
    this.view = null;
    this.state = 'freed';
  }

  private live(): { bytes: Uint8Array; data: DataView } {
    if (!this.view) throw new Error(`region ${this.name} belongs to a freed device`);
    return this.view;
  }
}

export class DeviceRegions {
  private constructor(
    private readonly memory: SharedMemory,
    readonly list: readonly SharedRegion[],
  ) {}

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
    return new DeviceRegions(
      memory,
      checked.map((s, i) => new SharedRegion(i, s.name, s.size, s.onUnplug, memory)),
    );
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
    this.memory.revoke(cut[0]?.offset ?? this.memory.length);
    for (const r of cut) r.state = 'revoked';
    return cut.map((r) => r.name);
  }

  /** At free: the model's views are dropped and the descriptor closed; 'keep' pages live on in programs that map them. */
  drop(): void {
    for (const r of this.list) r.drop();
    this.memory.close();
  }

  /** The region_read action: `length` bytes at `offset` of region `region`, as hex. */
  read(arg: unknown): { hex: string } {
    const { r, offset, length } = this.locate(arg);
    return { hex: Buffer.from(r.bytes.subarray(offset, offset + length)).toString('hex') };
  }

  /** The region_write action: stores `hex` at `offset` of region `region`. */
  write(arg: unknown): { written: number } {
    const a = (arg ?? {}) as { hex?: unknown };
    if (typeof a.hex !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(a.hex)) throw new Errno('EINVAL', 'hex: expected a string of hex byte pairs');
    const data = Buffer.from(a.hex, 'hex');
    const { r, offset } = this.locate(arg, data.length);
    r.bytes.set(data, offset);
    return { written: data.length };
  }

  /** The region and byte range an action names: {region: index or name, offset, length}; the rest of the region by default. */
  private locate(arg: unknown, given?: number): { r: SharedRegion; offset: number; length: number } {
    const a = (arg ?? {}) as { region?: unknown; offset?: unknown; length?: unknown };
    const r = typeof a.region === 'string' ? this.list.find((x) => x.name === a.region) : this.list[Number(a.region ?? 0)];
    if (!r) throw new Errno('EINVAL', `region: no region ${JSON.stringify(a.region)}`);
    const offset = Number(a.offset ?? 0);
    const length = given ?? Number(a.length ?? r.size - offset);
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > r.size) {
      throw new Errno('EINVAL', `offset ${offset} and length ${length} do not fit region ${r.name} (${r.size} bytes)`);
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
