/** Public API of the device lifecycle core. */
export { DeviceManager, type AnyDeviceModel, type DeviceManagerOptions, type PlugRequest } from './devices.js';
export type { CallingThread } from './calling-thread.js';
export { checkNamePattern } from './names.js';
export { CoreEvent, EventLog, type CoreEventType, type DeviceEvent, type EventFieldsDeclaration, type EventFieldType } from './events.js';
export {
  DeviceError,
  type DeviceErrorKind,
  type FaultableOp,
  type LifecycleHooks,
  type Logger,
  type OpCall,
  type OpInterceptor,
  type PublishedDevice,
  type Publisher,
  type StuckHandler,
  type UnplugMode,
  type UnplugOptions,
  type UnplugReport,
} from './host.js';
export type {
  ActionEntry,
  Attribute,
  AttributeOps,
  Counters,
  DeviceModel,
  File,
  Holder,
  InFlight,
  Instance,
  Lifecycle,
  ModelAction,
  IoSizes,
  Region,
  RegionRange,
  RegionSpec,
  RegionSync,
  UnplugAnswers,
  UnplugIoctl,
  UnplugPolicy,
} from './model.js';
export { RegionLayoutError } from './regions.js';
export { ioSizeFits } from './unplug-answers.js';
export { WaitQueue } from './waitqueue.js';
export { type ActionView, type ModelView } from './model-view.js';
export { allowed, checkField, checkValues, defineSchema, describeSchema, SchemaError, type FieldSpec, type FieldType, type FieldValue, type FieldView, type Schema, type StringFormat, type TypeValue, type Values } from './schema.js';
