/**
 * The actions every device with regions has, so a scenario or test can
 * play the device side of shared memory: region_read {region, offset,
 * length} -> {hex}, region_write {region, offset, hex} -> {written}.
 * `region` is an index or a name. A model's own action of that name wins.
 */
import type { DeviceInstance } from './instance.js';
import type { ModelAction } from './model.js';
import { defineSchema, type Values } from './schema.js';

const where = defineSchema({
  region: { type: ['integer', 'string'], min: 0, default: 0, description: 'the region: its index or its name' },
  offset: { type: 'integer', min: 0, default: 0, description: 'first byte, from the start of the region' },
});
const readArgs = defineSchema({ ...where, length: { type: 'integer', min: 0, description: 'bytes; default the rest of the region' } });
const writeArgs = defineSchema({ ...where, hex: { type: 'string', format: 'hex', required: true, description: 'the bytes to store' } });

export type RegionReadArgs = Values<typeof readArgs>;
export type RegionWriteArgs = Values<typeof writeArgs>;

export const regionActions: Readonly<Record<string, ModelAction<unknown>>> = {
  region_read: {
    description: 'bytes of a region as hex, after what programs stored there is pulled in',
    args: readArgs,
    run: (inst, a: RegionReadArgs) => (inst as DeviceInstance).shared!.read(a),
  },
  region_write: {
    description: "stores bytes in a region and pushes them to programs' page caches at once",
    args: writeArgs,
    run: (inst, a: RegionWriteArgs) => (inst as DeviceInstance).shared!.write(a),
  },
};
