/**
 * The cdevemu library (ESM only): an emulator on a temporary FUSE mount,
 * served from the calling process, and the model API for devices of your
 * own.
 *
 * ```ts
 * import { startEmulator } from 'cdevemu';
 *
 * const emu = await startEmulator();
 * await emu.plug('uio', 'uio0');
 * // ... run the program under test, as a child process, on emu.path('dev/uio0') ...
 * await emu.unplug('uio0');
 * await emu.released('uio0', { within: 2000 });
 * await emu.stop();
 * ```
 *
 * Start with {@link startEmulator} and {@link EmulatorHandle}; a model of
 * your own is a {@link DeviceModel} (docs/writing-a-model.md in the package).
 *
 * @module cdevemu
 */
export { startEmulator, EmulatorHandle, HeldOpenError, type StartOptions } from './api.js';
export { Emulator, type EmulatorOptions, type StopOptions, type StopReport } from './emulator.js';
export * from './core/index.js';
export { FAULT_ACTIONS, FaultEngine, FaultRuleError, type FaultAction, type FaultRule, type FaultRuleSpec, type FaultRuleStatus } from './faults/index.js';
export { Errno, errnoNumber, errnoName, type ErrnoName } from './errno.js';
export * from './devio.js';
export type { UserAddress, UserMemory } from './usermem.js';
export { builtinModels } from './models/index.js';
