/**
 * The chips' side, for scripts and tests: an LM75's temperature, a look
 * at and a store into any chip's memory or registers, and the adapter's
 * state.
 */
import { Errno } from '../../errno.js';
import type { Instance } from '../../core/index.js';
import { actionArg, intField } from '../util.js';
import type { I2cBus } from './bus.js';
import { hexBytes, Lm75, regNumber, type Chip } from './chips.js';

/** The chip an action names by `addr` (and `tenBit`); `addr` may be left out when only one chip of `type` is on the bus. */
function chipOf<C extends Chip>(bus: I2cBus, action: string, arg: Record<string, unknown>, type?: new (...a: never[]) => C): C {
  const candidates = [...bus.chips.values()].filter((c): c is C => (type ? c instanceof type : true));
  if (arg.addr === undefined && candidates.length === 1) return candidates[0]!;
  const addr = intField('i2c', action, arg, 'addr');
  const tenBit = arg.tenBit === true;
  const chip = candidates.find((c) => c.addr === addr && c.tenBit === tenBit);
  if (!chip)
    throw new Errno(
      'EINVAL',
      `i2c: action ${action}: no ${type ? 'such chip' : 'chip'} at ${tenBit ? '10-bit ' : ''}address 0x${addr.toString(16)}`,
    );
  return chip;
}

export const i2cActions: Record<string, (inst: Instance<I2cBus>, arg: unknown) => unknown> = {
  /** An LM75's temperature `{addr?, celsius}`, kept as the chip does (0.5 °C steps, -55..125). */
  temperature: (inst, a) => {
    const arg = actionArg('i2c', 'temperature', a);
    const chip = chipOf(inst.state, 'temperature', arg, Lm75);
    if (typeof arg.celsius !== 'number' || !Number.isFinite(arg.celsius))
      throw new Errno('EINVAL', 'i2c: action temperature needs a number celsius');
    chip.celsius = arg.celsius;
    inst.emit('i2c_temperature', { addr: chip.addr, celsius: chip.celsius });
    return { addr: chip.addr, celsius: chip.celsius };
  },
  /** `{addr?, reg?, length?}`: a chip's bytes from `reg` (an LM75 register's bytes, MSB first), moving no pointer. */
  peek: (inst, a) => {
    const arg = actionArg('i2c', 'peek', a);
    const chip = chipOf(inst.state, 'peek', arg);
    const length = arg.length === undefined ? undefined : intField('i2c', 'peek', arg, 'length');
    return { hex: chip.peek(regNumber('i2c: action peek: reg', arg.reg ?? 0), length).toString('hex') };
  },
  /** `{addr?, reg, hex}`: stores bytes into a chip behind the bus's back. */
  poke: (inst, a) => {
    const arg = actionArg('i2c', 'poke', a);
    const chip = chipOf(inst.state, 'poke', arg);
    const reg = regNumber('i2c: action poke: reg', arg.reg);
    const bytes = hexBytes('i2c: action poke: hex', arg.hex, 256);
    if (bytes.length === 0) throw new Errno('EINVAL', 'i2c: action poke: hex holds no byte');
    chip.poke(reg, bytes);
    inst.emit('i2c_poke', { addr: chip.addr, reg, hex: bytes.toString('hex') });
    return { addr: chip.addr, reg, hex: bytes.toString('hex') };
  },
  status: (inst) => {
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
};
