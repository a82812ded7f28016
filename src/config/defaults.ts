/**
 * The built-in daemon configuration: what `npm start` (`cdevemu daemon` with
 * no --config) mounts. New built-in models join the demo by adding a line to
 * DEFAULT_DEVICES.
 */
import type { DeviceSpec } from './daemon.js';

/** The demo devices, plugged in this order. */
export const DEFAULT_DEVICES: readonly DeviceSpec[] = [
  { model: 'echo', name: 'echo0' },
  { model: 'zero', name: 'zero' },
  { model: 'null', name: 'null' },
  { model: 'full', name: 'full' },
  { model: 'uio', name: 'uio0' },
  { model: 'evdev', name: 'event0' },
  { model: 'rtc', name: 'rtc0' },
  { model: 'watchdog', name: 'watchdog0' },
  { model: 'hwrng', name: 'hwrng' },
  { model: 'tty', name: 'ttyUSB0', options: { source: 'nmea' } },
  { model: 'i2c', name: 'i2c-0' },
  { model: 'spidev', name: 'spidev0.0', options: { chip: 'mcp3008', channels: [0, 146, 292, 438, 585, 731, 877, 1023] } },
];

/** Relative to the daemon's working directory. */
export const DEFAULT_MOUNTPOINT = 'cdevemu-mnt';

/** How long shutdown waits for files still open on unplugged devices before unmounting. */
export const DEFAULT_SHUTDOWN_RELEASE_MS = 3000;
