/**
 * i2c: an I2C adapter as drivers/i2c/i2c-dev.c presents it (/dev/i2c-N,
 * /sys/class/i2c-dev/i2c-N), with chips on its bus (docs/models.md#i2c).
 *
 * - abi.ts: the uapi numbers and layouts. dev.ts: i2c-dev's file
 *   operations and ioctls, through the caller's memory. smbus.ts: SMBus
 *   transactions as I2C messages (i2c_smbus_xfer_emulated()). bus.ts:
 *   i2c_transfer() on the wire: addresses, NACKs, STOPs, clock stretching
 *   against the adapter's timeout. chips.ts: a 24c02 EEPROM, an LM75, and
 *   a register map. actions.ts: the chips' side.
 * - Unplug: when a real adapter goes (a USB bridge pulled out) the kernel
 *   removes the node and its chips, while i2c_del_adapter() waits for the
 *   last open file to close; i2c-dev's ioctls on files still open answer
 *   as before, and transfers reach a bus driver whose hardware is gone
 *   (i2c-tiny-usb answers EIO). gone.ts is what is left of the adapter;
 *   a transfer in flight fails EIO.
 */
import { Errno, errnoNumber } from '../../errno.js';
import { defineSchema, SchemaError, type DeviceModel, type Values } from '../../core/index.js';
import { DEFAULT_POLLMASK } from '../../devio.js';
import { I2C_FUNC_10BIT_ADDR, I2C_FUNC_I2C, I2C_FUNC_SMBUS_EMUL_ALL } from './abi.js';
import { i2cActions } from './actions.js';
import { I2cBus } from './bus.js';
import { parseChip, type Chip } from './chips.js';
import { i2cIoctl, i2cOpen, i2cRead, i2cUnplugIoctl, i2cWrite } from './dev.js';

/** include/uapi/linux/major.h */
const I2C_MAJOR = 89;
/** What a bus driver like i2c-algo-bit's users advertise: I2C with 10-bit addresses, and every SMBus transaction by emulation. */
const DEFAULT_FUNCTIONALITY = I2C_FUNC_I2C | I2C_FUNC_10BIT_ADDR | I2C_FUNC_SMBUS_EMUL_ALL;
/** What a NACKed address fails with. */
const NACK_ERRNOS: Readonly<Record<string, number>> = { ENXIO: errnoNumber('ENXIO'), EREMOTEIO: errnoNumber('EREMOTEIO'), EIO: errnoNumber('EIO') };
/** A board with an EEPROM at 0x50 and a temperature sensor at 0x48, when the options name no chips. */
const DEFAULT_CHIPS = [
  { type: 'eeprom', addr: 0x50 },
  { type: 'lm75', addr: 0x48 },
];

const OPTIONS = defineSchema({
  name: { type: 'string', default: 'cdevemu i2c adapter', description: "the adapter's name (sys/class/i2c-dev/i2c-N/name)" },
  functionality: { type: 'integer', min: 0, max: 0xffffffff, default: DEFAULT_FUNCTIONALITY, description: 'I2C_FUNCS: I2C, 10-bit addresses and every SMBus transaction by emulation by default' },
  nackErrno: { type: 'string', enum: Object.keys(NACK_ERRNOS), default: 'ENXIO', description: 'what a transfer to an address no chip answers fails with' },
  chips: {
    type: 'array',
    items: { type: 'object', description: 'a chip: {type, addr, ...} with the fields of its type (docs/models.md#i2c)' },
    description: 'the chips on the bus; an EEPROM at 0x50 and an LM75 at 0x48 by default',
  },
});

function chipsOption(given: unknown[] | undefined): Chip[] {
  const chips = (given ?? DEFAULT_CHIPS).map((spec, i) => parseChip(`chips[${i}]`, spec));
  const seen = new Set<string>();
  chips.forEach((c, i) => {
    const at = `${c.tenBit ? '10-bit ' : ''}0x${c.addr.toString(16)}`;
    if (seen.has(at)) throw new SchemaError(`i2c: option chips[${i}].addr: another chip is at address ${at}`, `chips[${i}].addr`);
    seen.add(at);
  });
  return chips;
}

/** The bus number, from the name the kernel gives the adapter's node (i2c-%d). */
function busNumber(name: string): number {
  const m = /^i2c-(\d+)$/.exec(name);
  if (!m) throw new Errno('EINVAL', `i2c: the device is named i2c-N (N the bus number, or i2c-%d), not ${JSON.stringify(name)}`);
  return Number(m[1]);
}

export const i2cModel: DeviceModel<I2cBus> = {
  name: 'i2c',
  description: 'an I2C adapter (/dev/i2c-N) with EEPROM, LM75 and register-map chips, as i2c-tools and smbus2 drive it',
  options: OPTIONS,
  stream: true,
  unplugged: {
    // i2c-dev has no poll: the VFS answers DEFAULT_POLLMASK, the adapter gone or not.
    poll: DEFAULT_POLLMASK,
    // i2cdev_ioctl() still runs; only transfers fail (gone.ts). Reads and
    // writes are transfers: EIO, the default.
    ioctl: i2cUnplugIoctl,
  },
  events: {
    i2c_write: ['addr', 'reg', 'hex'],
    i2c_temperature: ['addr', 'celsius'],
    i2c_poke: ['addr', 'reg', 'hex'],
  },
  create(inst, options) {
    busNumber(inst.name);
    const o = options as Values<typeof OPTIONS>;
    return new I2cBus({
      name: o.name,
      functionality: o.functionality,
      nack: { name: o.nackErrno, errno: NACK_ERRNOS[o.nackErrno]! },
      chips: chipsOption(o.chips),
      onWrite: (w) => inst.emit('i2c_write', { addr: w.addr, reg: w.reg, hex: Buffer.from(w.bytes).toString('hex') }),
    });
  },
  attributes(inst) {
    // i2c-dev's class device: name_show() prints the adapter's name; `dev` is its MAJOR:MINOR, the minor the bus number.
    const dir = `sys/class/i2c-dev/${inst.name}`;
    return {
      [`${dir}/name`]: `${inst.state.name}\n`,
      [`${dir}/dev`]: `${I2C_MAJOR}:${busNumber(inst.name)}\n`,
    };
  },
  open: i2cOpen,
  read: i2cRead,
  write: i2cWrite,
  ioctl: i2cIoctl,
  actions: i2cActions,
};
