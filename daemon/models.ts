/**
 * User model modules (--model FILE, config `models:`). The module's default
 * export is a DeviceModel or an array of them. Loading is an error boundary
 * (homebridge's pluginManager): a module that fails to import or exports
 * something that is not a model is logged loudly and skipped, and the
 * daemon runs without it.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { defineSchema, type AnyDeviceModel as AnyModel, type Schema } from '../src/core/index.js';

const HOOKS = ['nodePath', 'attributes', 'open', 'read', 'write', 'ioctl', 'poll', 'release', 'lateRelease', 'remove', 'free'] as const;

function checkModel(m: unknown, where: string): AnyModel {
  if (m === null || typeof m !== 'object') throw new Error(`${where} is not an object`);
  const o = m as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') throw new Error(`${where}: name must be a non-empty string`);
  if (typeof o.create !== 'function') throw new Error(`${where} (${o.name}): create must be a function`);
  for (const h of HOOKS) {
    if (o[h] !== undefined && typeof o[h] !== 'function') throw new Error(`${where} (${o.name}): ${h} must be a function`);
  }
  if (o.options !== undefined) {
    if (o.options === null || typeof o.options !== 'object') throw new Error(`${where} (${o.name}): options must be a schema object`);
    checkSchema(`${where} (${o.name}): options`, o.options);
  }
  if (o.actions !== undefined) {
    if (o.actions === null || typeof o.actions !== 'object') throw new Error(`${where} (${o.name}): actions must be an object`);
    for (const [k, a] of Object.entries(o.actions)) {
      if (typeof a === 'function') continue;
      const action = a as Record<string, unknown> | null;
      if (typeof action?.run !== 'function') throw new Error(`${where} (${o.name}): actions.${k} must be a function or {description, args?, run}`);
      if (action.args !== undefined) checkSchema(`${where} (${o.name}): actions.${k}.args`, action.args);
    }
  }
  return m as AnyModel;
}

/** A schema's fields are objects with a type, and its defaults fit their fields (defineSchema checks them). */
function checkSchema(where: string, schema: unknown): void {
  for (const [k, f] of Object.entries(schema as Record<string, unknown>)) {
    if (f === null || typeof f !== 'object' || !('type' in f)) throw new Error(`${where}.${k} must be a field {type, description, ...}`);
  }
  try {
    defineSchema(schema as Schema);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Imports each file; returns the models of the modules that loaded. A model
 * whose name is in `taken` (built-in, or from an earlier module) rejects its
 * whole module.
 */
export async function loadUserModels(files: readonly string[], log: Logger, taken: Iterable<string>): Promise<AnyModel[]> {
  const names = new Set(taken);
  const out: AnyModel[] = [];
  for (const file of files) {
    const path = resolve(file);
    try {
      const mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
      if (mod.default === undefined) throw new Error('no default export (export default a DeviceModel or an array of them)');
      const list = Array.isArray(mod.default) ? mod.default : [mod.default];
      if (list.length === 0) throw new Error('the default export is an empty array');
      const models = list.map((m, i) => checkModel(m, Array.isArray(mod.default) ? `default export [${i}]` : 'default export'));
      const seen = new Set<string>();
      for (const m of models) {
        if (names.has(m.name) || seen.has(m.name)) throw new Error(`a model named ${JSON.stringify(m.name)} is already registered`);
        seen.add(m.name);
      }
      for (const m of models) names.add(m.name);
      out.push(...models);
      log.info({ file: path, models: models.map((m) => m.name) }, 'loaded model module');
    } catch (err) {
      log.error(
        { err, file: path },
        `MODEL MODULE NOT LOADED: ${path}: ${err instanceof Error ? err.message : String(err)} -- the daemon continues without it`,
      );
    }
  }
  return out;
}
