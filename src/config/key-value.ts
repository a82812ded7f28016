/**
 * `KEY=VALUE` words, as the command line gives model options and fault
 * rule fields (`cdevemu plug --option size=4096`, `cdevemu fault add
 * errno=EIO`, `cdevemu run --device uio0=uio:size=4096`): the value is JSON
 * when it parses as JSON (`4096`, `true`, `"x"`, `[1,2]`), else the string
 * itself (`EIO`).
 */

/** `[key, value]` of one `KEY=VALUE` word, or null when it has no `=` after a non-empty key. */
export function parseKeyValue(word: string): [string, unknown] | null {
  const i = word.indexOf('=');
  return i <= 0 ? null : [word.slice(0, i), jsonOrString(word.slice(i + 1))];
}

/** A value given on the command line: JSON when it parses as JSON, else the string itself. */
export function jsonOrString(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}
