/**
 * The chips' side, for scripts and tests: an LM75's temperature, a look
 * at and a store into any chip's memory or registers, and the adapter's
 * state.
 */
import { defineSchema, SchemaError, type ModelAction, type Values } from '../../core/index.js';
import type { I2cBus } from './bus.js';
import { hexBytes, Lm75, REG, regNumber, type Chip } from './chips.js';

const CHIP = {
  addr: { type: 'integer', min: 0, max: 0x3ff, description: 'the chip; may be left out when only one chip (of the kind) is on the bus' },
  tenBit: { type: 'boolean', default: false, description: 'addr is a 10-bit address' },
} as const;

/** The chip an action names by `addr` (and `tenBit`); `addr` may be left out when only one chip of `type` is on the bus. */
function chipOf<C extends Chip>(bus: I2cBus, action: string, arg: { addr?: number | undefined; tenBit: boolean }, type?: new (...a: never[]) => C): C {
  const candidates = [...bus.chips.values()].filter((c): c is C => (type ? c instanceof type : true));
  if (arg.addr === undefined && candidates.length === 1) return candidates[0]!;
  if (arg.addr === undefined) throw new SchemaError(`i2c: action ${action}: argument addr is required: ${candidates.length} chips could be meant`, 'addr');
  const { addr, tenBit } = arg;
  const chip = candidates.find((c) => c.addr === addr && c.tenBit === tenBit);
  if (!chip) {
    const there = candidates.map((c) => `${c.tenBit ? '10-bit ' : ''}0x${c.addr.toString(16)}`).join(', ') || 'none';
    throw new SchemaError(`i2c: action ${action}: no ${type ? 'such chip' : 'chip'} at ${tenBit ? '10-bit ' : ''}address 0x${addr.toString(16)}; there: ${there}`, 'addr');
  }
  return chip;
}

const TEMPERATURE = defineSchema({ ...CHIP, celsius: { type: 'number', required: true, description: 'kept as the chip does: 0.5 °C steps, -55 to 125' } });
const PEEK = defineSchema({ ...CHIP, reg: { ...REG, default: 0 }, length: { type: 'integer', min: 0, max: 256, description: 'bytes; default the register (lm75) or 1' } });
const POKE = defineSchema({ ...CHIP, reg: { ...REG, required: true }, hex: { type: 'string', format: 'hex', required: true, description: 'the bytes, 1 to 256' } });

export const i2cActions: Record<string, ModelAction<I2cBus>> = {
  temperature: {
    description: "an LM75's temperature",
    args: TEMPERATURE,
    run(inst, a: Values<typeof TEMPERATURE>) {
      const chip = chipOf(inst.state, 'temperature', a, Lm75);
      chip.celsius = a.celsius;
      inst.emit('i2c_temperature', { addr: chip.addr, celsius: chip.celsius });
      return { addr: chip.addr, celsius: chip.celsius };
    },
  },
  peek: {
    description: "a chip's bytes from reg (an LM75 register's bytes, MSB first), moving no pointer",
    args: PEEK,
    run(inst, a: Values<typeof PEEK>) {
      const chip = chipOf(inst.state, 'peek', a);
      return { hex: chip.peek(regNumber('i2c: action peek: argument', 'reg', a.reg), a.length).toString('hex') };
    },
  },
  poke: {
    description: "stores bytes into a chip behind the bus's back",
    args: POKE,
    run(inst, a: Values<typeof POKE>) {
      const chip = chipOf(inst.state, 'poke', a);
      const reg = regNumber('i2c: action poke: argument', 'reg', a.reg);
      const bytes = hexBytes('i2c: action poke: argument', 'hex', a.hex, 256);
      if (bytes.length === 0) throw new SchemaError('i2c: action poke: argument hex holds no byte', 'hex');
      chip.poke(reg, bytes);
      inst.emit('i2c_poke', { addr: chip.addr, reg, hex: bytes.toString('hex') });
      return { addr: chip.addr, reg, hex: bytes.toString('hex') };
    },
  },
  status: {
    description: "the adapter's settings and counters, and its chips",
    run(inst) {
      const bus = inst.state;
      return {
        name: bus.name,
        functionality: bus.functionality,
        retries: bus.retries,
        timeoutMs: bus.timeoutMs,
        nackErrno: bus.nack.name,
        transfers: bus.transfers,
        queued: bus.queued,
        nacks: bus.nacks,
        chips: [...bus.chips.values()].map((c) => c.describe()),
      };
    },
  },
};
