/** The cdevemu library: `import { startEmulator } from 'cdevemu'`. */
export { startEmulator, EmulatorHandle, HeldOpenError, type StartOptions } from './api.js';
export { Emulator, type EmulatorOptions, type StopReport } from './emulator.js';
export * from './core/index.js';
export { FaultEngine, FaultRuleError, type FaultAction, type FaultRule, type FaultRuleSpec, type FaultRuleStatus } from './faults/index.js';
export { Errno, errnoNumber, errnoName } from './errno.js';
export * from './devio.js';
export type { UserAddress, UserMemory } from './usermem.js';
export { builtinModels } from './models/index.js';
