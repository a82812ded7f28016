/**
 * What is left of an adapter for a file still open once its USB bridge is
 * pulled out (docs/models.md#i2c). usb_disconnect() marks the device
 * NOTATTACHED, then the bridge's disconnect calls i2c_del_adapter()
 * (drivers/i2c/i2c-core-base.c), which unregisters the adapter's clients
 * (__unregister_client(), __unregister_dummy()) and its device, then waits
 * in wait_for_completion(&adap->dev_released) until the last file lets
 * go of it: i2cdev_open() took it with i2c_get_adapter(), and only
 * i2cdev_release() puts it back. Until then the struct i2c_adapter, its
 * algo and its fields are all there, and i2cdev_ioctl() (drivers/i2c/i2c-dev.c)
 * answers from them as before; nothing in i2c_del_adapter() touches
 * adap->algo or the retries and timeout, and it clears adap->dev only
 * after that wait.
 */
import { Errno } from '../../errno.js';
import type { I2cAdapter, I2cMsg } from './bus.js';

export class GoneAdapter implements I2cAdapter {
  /**
   * i2c_get_functionality() asks adap->algo->functionality(): the bridge
   * whose transfers this adapter answers, i2c-tiny-usb, asks the device
   * (usb_func()'s CMD_GET_FUNC control read), which the USB core refuses
   * once it is gone, and usb_func() then answers 0: I2C_FUNCS succeeds
   * with no functionality.
   */
  readonly functionality = 0;
  /** The algo struct is the driver's, which the pull leaves alone: the transfer paths check what it can do as before. */
  readonly algo: number;
  retries: number;
  timeoutMs: number;

  /** The adapter's fields as they were when the gate closed, kept for the files still open. */
  constructor(live: I2cAdapter) {
    this.algo = live.algo;
    this.retries = live.retries;
    this.timeoutMs = live.timeoutMs;
  }

  /**
   * i2cdev_check_addr() walks the adapter's child devices, and
   * i2c_del_adapter() has unregistered every client: no address is busy.
   */
  claimed(): boolean {
    return false;
  }

  /**
   * The bus driver's transfer reaches a device the USB core no longer
   * submits to (usb_submit_urb(): ENODEV once NOTATTACHED), which
   * i2c-tiny-usb's usb_xfer() answers EIO.
   */
  transfer(msgs: I2cMsg[]): never {
    throw new Errno('EIO', `i2c: the adapter is gone (a transfer of ${msgs.length} messages)`);
  }
}
