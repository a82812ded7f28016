/** The models that ship with cdevemu, registered in every daemon. */
import type { DeviceModel } from '../core/index.js';
import { echoModel } from './echo.js';
import { evdevModel } from './evdev.js';
import { hwrngModel } from './hwrng.js';
import { fullModel, nullModel, zeroModel } from './mem.js';
import { rtcModel } from './rtc.js';
import { tcmuModel } from './tcmu/model.js';
import { uioModel } from './uio.js';
import { watchdogModel } from './watchdog.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each model is typed by its own state
export const builtinModels: ReadonlyArray<DeviceModel<any>> = [
  nullModel,
  zeroModel,
  fullModel,
  echoModel,
  uioModel,
  evdevModel,
  rtcModel,
  watchdogModel,
  hwrngModel,
  tcmuModel,
];

export { echoModel, evdevModel, fullModel, hwrngModel, nullModel, rtcModel, tcmuModel, uioModel, watchdogModel, zeroModel };
