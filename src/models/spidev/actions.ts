/**
 * The spidev device's actions: its state and counters (`status`), and the
 * ADC's analog inputs (`adc`), each change an `adc_input` event.
 */
import { Errno } from '../../errno.js';
import type { Instance } from '../../core/index.js';
import { actionArg, intField } from '../util.js';
import { ADC_CHANNELS, adcChannels, Mcp3008 } from './chips.js';
import type { SpiDevice } from './device.js';

function adcOf(inst: Instance<SpiDevice>): Mcp3008 {
  const chip = inst.state.chip;
  if (!(chip instanceof Mcp3008)) throw new Errno('EINVAL', `spidev: ${inst.name} has a ${chip.kind} at its chip select, not an mcp3008`);
  return chip;
}

export const spidevActions: Record<string, (inst: Instance<SpiDevice>, arg: unknown) => unknown> = {
  /** `{channel, value}` (one input) or `{channels}` (all 8): 10-bit codes the next conversions read. */
  adc: (inst, a) => {
    const adc = adcOf(inst);
    const arg = actionArg('spidev', 'adc', a);
    const next = arg.channels !== undefined ? adcChannels('spidev: action adc: channels', arg.channels) : [...adc.channels];
    if (arg.channels === undefined) {
      const channel = intField('spidev', 'adc', arg, 'channel');
      if (channel < 0 || channel >= ADC_CHANNELS)
        throw new Errno('EINVAL', `spidev: action adc: channel must be 0 to ${ADC_CHANNELS - 1}, got ${channel}`);
      next[channel] = intField('spidev', 'adc', arg, 'value');
      adcChannels('spidev: action adc: value', next);
    }
    next.forEach((value, channel) => {
      if (adc.channels[channel] === value) return;
      adc.channels[channel] = value;
      inst.emit('adc_input', { channel, value });
    });
    return { channels: [...adc.channels] };
  },
  status: (inst) => {
    const dev = inst.state;
    const chip = dev.chip;
    return {
      chip: chip.kind,
      mode: dev.settings.mode,
      bitsPerWord: dev.settings.bitsPerWord,
      maxSpeedHz: dev.settings.maxSpeedHz,
      speedHz: dev.speedHz,
      bufsiz: dev.bufsiz,
      opens: dev.users,
      ...dev.counters,
      ...(chip instanceof Mcp3008 ? { adc: { channels: [...chip.channels], conversions: chip.conversions, last: chip.last } } : {}),
    };
  },
};
