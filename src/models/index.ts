/** The models that ship with cdevemu, registered in every daemon. */
import type { DeviceModel } from '../core/index.js';
import { echoModel } from './echo.js';
import { fullModel, nullModel, zeroModel } from './mem.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each model is typed by its own state
export const builtinModels: ReadonlyArray<DeviceModel<any>> = [nullModel, zeroModel, fullModel, echoModel];

export { echoModel, fullModel, nullModel, zeroModel };
