/**
 * The spidev device's actions: its state and counters (`status`), and the
 * ADC's analog inputs (`adc`), each change an `adc_input` event.
 */
import { Errno } from '../../errno.js';
import { defineSchema, SchemaError, type Instance, type ModelAction, type Values } from '../../core/index.js';
import { ADC_CHANNELS, ADC_CHANNELS_FIELD, ADC_CODE, Mcp3008 } from './chips.js';
import type { SpiDevice } from './device.js';

function adcOf(inst: Instance<SpiDevice>): Mcp3008 {
  const chip = inst.state.chip;
  if (!(chip instanceof Mcp3008)) throw new Errno('EINVAL', `spidev: ${inst.name} has a ${chip.kind} at its chip select, not an mcp3008`);
  return chip;
}

const ADC = defineSchema({
  channel: { type: 'integer', min: 0, max: ADC_CHANNELS - 1, description: 'one input: its channel' },
  value: { ...ADC_CODE, description: 'one input: its 10-bit code' },
  channels: { ...ADC_CHANNELS_FIELD, description: 'all 8 inputs: their 10-bit codes' },
});

export const spidevActions: Record<string, ModelAction<SpiDevice>> = {
  adc: {
    description: 'the analog inputs the next conversions read: {channel, value} (one input) or {channels} (all 8)',
    args: ADC,
    run(inst, a: Values<typeof ADC>) {
      const adc = adcOf(inst);
      const next = a.channels ?? [...adc.channels];
      if (a.channels === undefined) {
        if (a.channel === undefined || a.value === undefined) throw new SchemaError('spidev: action adc: argument needs channel and value, or channels', a.channel === undefined ? 'channel' : 'value');
        next[a.channel] = a.value;
      } else if (a.channel !== undefined || a.value !== undefined) {
        throw new SchemaError('spidev: action adc: argument takes channel and value, or channels, not both', 'channels');
      }
      next.forEach((value, channel) => {
        if (adc.channels[channel] === value) return;
        adc.channels[channel] = value;
        inst.emit('adc_input', { channel, value });
      });
      return { channels: [...adc.channels] };
    },
  },
  status: {
    description: "the device's settings and counters, and the ADC's inputs",
    run(inst) {
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
  },
};
