/**
 * A model as GET /v1/models and `cdevemu models` show it: its name,
 * description, options, actions and events, from the very declarations
 * the daemon checks plugs and actions against (schema.ts).
 */
import { declaredFields, type EventFieldType } from './events.js';
import type { ActionEntry, DeviceModel } from './model.js';
import { regionActions } from './region-actions.js';
import { describeSchema, type FieldView } from './schema.js';

export interface ActionView {
  name: string;
  description: string;
  /** The argument's fields; null for an action that takes its argument unchecked (a bare function). */
  args: FieldView[] | null;
}

export interface ModelView {
  name: string;
  description: string;
  /** null for a model that takes its options unchecked (no `options` schema). */
  options: FieldView[] | null;
  /** The model's actions, then region_read and region_write for a model with regions. */
  actions: ActionView[];
  /**
   * The events it emits beside the core's, each with its fields' types
   * (`any` where it declares names only); null for a model that does not
   * declare them (it may emit any): what `cdevemu run --socket` checks a
   * scenario's event filters against.
   */
  events: Record<string, Record<string, EventFieldType>> | null;
}

export function describeModel(model: DeviceModel<unknown>): ModelView {
  const actions = Object.entries(model.actions ?? {}).map(([name, a]) => actionView(name, a));
  if (model.regions) {
    for (const [name, a] of Object.entries(regionActions)) if (!model.actions?.[name]) actions.push(actionView(name, a));
  }
  return {
    name: model.name,
    description: model.description ?? '',
    options: model.options ? describeSchema(model.options) : null,
    actions,
    events: model.events ? Object.fromEntries(Object.entries(model.events).map(([type, d]) => [type, Object.fromEntries(declaredFields(d))])) : null,
  };
}

function actionView(name: string, a: ActionEntry<never>): ActionView {
  return typeof a === 'function'
    ? { name, description: '', args: null }
    : { name, description: a.description, args: describeSchema(a.args ?? {}) };
}
