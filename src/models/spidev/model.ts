/**
 * spidev: a user-mode SPI device node (/dev/spidevB.C, drivers/spi/spidev.c)
 * on an emulated controller, with a chip at its chip select
 * (docs/models.md#spidev).
 *
 * - abi.ts: the ioctl numbers, mode bits and struct spi_ioc_transfer.
 * - device.ts: the SPI core and controller: spi_setup(), __spi_validate(),
 *   a message on the wire, a clock at a time, at the wire's pace.
 * - chips.ts: a loopback and an MCP3008-style ADC.
 * - spidev.ts: read, write and the ioctls, tx_buf and rx_buf through the
 *   caller's memory. actions.ts: status and the ADC's inputs.
 * - Unplug is spidev_remove(): spidev->spi becomes NULL, so every later
 *   read, write and spidev ioctl fails ESHUTDOWN while open files stay
 *   until closed, after the checks made before the device is looked at
 *   (a read or write past bufsiz EMSGSIZE, another driver's ioctl
 *   ENOTTY); poll has no driver method, so it answers the VFS default
 *   before and after. A message on the wire at unplug finishes first
 *   (spidev_remove() waits for spi_lock), as do calls queued for the
 *   device before it.
 */
import { Errno } from '../../errno.js';
import { DEFAULT_POLLMASK } from '../../devio.js';
import { defineSchema, SchemaError, type DeviceModel, type Values } from '../../core/index.js';
import { eshutdown } from './abi.js';
import { spidevActions } from './actions.js';
import { ADC_CHANNELS, ADC_CHANNELS_FIELD, CHIP_KINDS, makeChip, type ChipKind } from './chips.js';
import { CONTROLLER_MAX_HZ, CONTROLLER_MIN_HZ, SpiDevice } from './device.js';
import { emitSetup, refuseForeign, spidevIoctl, spidevRead, spidevWrite } from './spidev.js';

/** Past this, one read() or write() can arrive as several FUSE requests, each its own SPI message. */
const MAX_BUFSIZ = 65536;
const NAME = /^spidev(\d+)\.(\d+)$/;

/**
 * The bus and chip select: the node is dev/spidevB.C as spidev_probe()
 * names it, and the device's name is that node's (so the core's refusal
 * of a name in use is the SPI core's refusal of a chip select in use).
 * Options bus and chipSelect, when given, must agree with the name.
 */
function address(name: string, bus: number | undefined, chipSelect: number | undefined): void {
  const m = NAME.exec(name);
  const b = bus ?? Number(m?.[1] ?? 0);
  const c = chipSelect ?? Number(m?.[2] ?? 0);
  if (name !== `spidev${b}.${c}`) {
    throw new Errno(
      'EINVAL',
      `spidev: the device is named spidevB.C after its bus B and chip select C: name it spidev${b}.${c} (or spidev%d.${c}), not ${JSON.stringify(name)}`,
    );
  }
}

const OPTIONS = defineSchema({
  bus: { type: 'integer', min: 0, max: 32767, description: 'the bus number; default the B of the name spidevB.C' },
  chipSelect: { type: 'integer', min: 0, max: 255, description: 'the chip select; default the C of the name spidevB.C' },
  chip: { type: 'string', enum: CHIP_KINDS, default: 'loopback', description: 'what answers: MISO echoes MOSI (loopback), or an MCP3008 ADC' },
  bufsiz: { type: 'integer', min: 1, max: MAX_BUFSIZ, default: 4096, description: "spidev's bufsiz: the most one transfer carries" },
  maxSpeedHz: { type: 'integer', min: CONTROLLER_MIN_HZ, max: CONTROLLER_MAX_HZ, default: 1_000_000, description: "the device's max_speed_hz" },
  channels: { ...ADC_CHANNELS_FIELD, description: "mcp3008: its 8 inputs' 10-bit codes; all 0 by default" },
});

export const spidevModel: DeviceModel<SpiDevice> = {
  name: 'spidev',
  description: 'an SPI device node (/dev/spidevB.C): spidev ioctls and transfers to a loopback or an MCP3008 ADC',
  options: OPTIONS,
  stream: true,
  // spidev_read(), spidev_write() and spidev_ioctl() once spidev->spi is NULL; no poll.
  unplugged: {
    // bufsiz is spidev's module parameter: it outlives the device, and
    // spidev_read() and spidev_write() check it before spidev_sync().
    maxIoSize: (inst) => inst.state.bufsiz,
    read: eshutdown(),
    write: eshutdown(),
    // spidev_ioctl() refuses another driver's command before it finds spidev->spi NULL.
    ioctl: () => (_file, req) => {
      refuseForeign(req);
      throw eshutdown();
    },
    poll: DEFAULT_POLLMASK,
  },
  events: {
    spi_setup: ['mode', 'bitsPerWord', 'speedHz'],
    adc_input: ['channel', 'value'],
  },
  create(inst, options) {
    const o = options as Values<typeof OPTIONS>;
    address(inst.name, o.bus, o.chipSelect);
    const kind = o.chip as ChipKind;
    if (o.channels !== undefined && kind !== 'mcp3008') throw new SchemaError('spidev: option channels is for chip mcp3008', 'channels');
    return new SpiDevice(o.bufsiz, makeChip(kind, o.channels ?? new Array<number>(ADC_CHANNELS).fill(0)), o.maxSpeedHz);
  },
  open(file) {
    file.instance.state.users++;
  },
  release(file) {
    const dev = file.instance.state;
    if (--dev.users === 0 && dev.lastClosed()) emitSetup(file.instance);
  },
  read: spidevRead,
  write: spidevWrite,
  ioctl: spidevIoctl,
  remove(inst) {
    inst.state.remove();
  },
  actions: spidevActions,
};
