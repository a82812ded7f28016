/**
 * Validation of model options as they come from the API, config files and
 * scenarios: unknown keys and wrong types are refused with a message that
 * names the option, rather than silently ignored.
 */
import { Errno } from '../errno.js';

type Spec = Record<string, 'number' | 'string' | 'boolean' | 'object' | 'array'>;
type Out<S extends Spec> = {
  [K in keyof S]?: S[K] extends 'number'
    ? number
    : S[K] extends 'string'
      ? string
      : S[K] extends 'boolean'
        ? boolean
        : S[K] extends 'array'
          ? unknown[]
          : unknown;
};

export function parseOptions<S extends Spec>(model: string, options: unknown, spec: S): Out<S> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new Errno('EINVAL', `${model}: options must be an object`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    const want = spec[key];
    if (!want) throw new Errno('EINVAL', `${model}: unknown option ${JSON.stringify(key)} (known: ${Object.keys(spec).join(', ') || 'none'})`);
    const got = Array.isArray(value) ? 'array' : typeof value;
    if (got !== want || (want === 'number' && !Number.isFinite(value))) {
      throw new Errno('EINVAL', `${model}: option ${key} must be a ${want}, got ${got}`);
    }
    out[key] = value;
  }
  return out as Out<S>;
}
