/**
 * The events a run records itself, beside its devices' (README.md, "What
 * a scenario checks"): they are about the program's processes, not a
 * device, so they carry no device (`device` is '', `generation` 0) and a
 * filter on them may name neither. Declared here with their fields, as
 * the core's are in core/events.ts, so that a filter on them is checked
 * (check.ts) like any other.
 */
import type { DeviceEvent, EventFieldType } from '../core/events.js';

export const RunEvent = {
  /** A process the program started died of a crash signal the run did not send (process-crashes.ts). */
  process_crashed: 'process_crashed',
} as const;
export type RunEventType = (typeof RunEvent)[keyof typeof RunEvent];

export const RUN_EVENT_FIELDS: Readonly<Record<RunEventType, Readonly<Record<string, EventFieldType>>>> = {
  /** `signal` its name (SIGSEGV), `core` whether it dumped core, `ppid` the process that started it, `comm` its name when it died. */
  process_crashed: { pid: 'number', comm: 'string', signal: 'string', core: 'boolean', ppid: 'number' },
};

export function isRunEvent(type: string): type is RunEventType {
  return Object.hasOwn(RunEvent, type);
}

/** An event of the run's own, in the shape of the devices' (for the filters, the count windows and the report). */
export function runEvent(type: RunEventType, details: Record<string, unknown>): DeviceEvent {
  return { type, device: '', generation: 0, at: Date.now(), ...details };
}
