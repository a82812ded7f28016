/** Fault rules and the engine that applies them in the core's op path. */
export { FaultEngine, type DeviceControl, type FaultRuleStatus } from './engine.js';
export { FAULT_ACTIONS, FAULT_OPS, FaultRuleError, NAME_FIELDS, checkRuleSpec, parseRule, type FaultAction, type FaultRule, type FaultRuleSpec } from './rule.js';
export { describeFault, faultAction, faultMatch, faultTrigger } from './describe.js';
