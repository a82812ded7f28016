/** The models that ship with cdevemu, registered in every daemon. */
import type { AnyDeviceModel } from '../core/index.js';
import { echoModel } from './echo.js';
import { evdevModel } from './evdev.js';
import { hwrngModel } from './hwrng.js';
import { i2cModel } from './i2c/model.js';
import { fullModel, nullModel, zeroModel } from './mem.js';
import { recordModel } from './record/model.js';
import { replayModel } from './replay/model.js';
import { rtcModel } from './rtc.js';
import { spidevModel } from './spidev/model.js';
import { tcmuModel } from './tcmu/model.js';
import { ttyModel } from './tty/model.js';
import { uioModel } from './uio.js';
import { watchdogModel } from './watchdog.js';

export const builtinModels: ReadonlyArray<AnyDeviceModel> = [
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
  ttyModel,
  i2cModel,
  spidevModel,
  recordModel,
  replayModel,
];

export { echoModel, evdevModel, fullModel, hwrngModel, i2cModel, nullModel, recordModel, replayModel, rtcModel, spidevModel, tcmuModel, ttyModel, uioModel, watchdogModel, zeroModel };
