/**
 * `KEY=VALUE` words, as the command line gives model options and fault
 * rule fields (`cdevemu plug --option size=4096`, `cdevemu fault add
 * errno=EIO`, `cdevemu run --device uio0=uio:size=4096`): the value is JSON
 * when it parses as JSON (`4096`, `true`, `"x"`, `[1,2]`), else the string
 * itself (`EIO`).
 */

/**
 * `[key, value]` of one `KEY=VALUE` word, or null when it has no `=` after
 * a non-empty key. The value of a key in `names` is a name: the text
 * itself unless it is a quoted JSON string, so `device=null` is the device
 * `null` and `comm=123` the process `123`, not JSON null and 123.
 */
export function parseKeyValue(word: string, names: ReadonlySet<string> = NO_NAMES): [string, unknown] | null {
  const i = word.indexOf('=');
  if (i <= 0) return null;
  const key = word.slice(0, i);
  const raw = word.slice(i + 1);
  const value = jsonOrString(raw);
  return [key, names.has(key) && typeof value !== 'string' ? raw : value];
}

const NO_NAMES: ReadonlySet<string> = new Set();

/** A value given on the command line: JSON when it parses as JSON, else the string itself. */
export function jsonOrString(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}
