/** Instance names: `uio%d` takes the lowest free number, like uio_get_minor() allocating the lowest free minor. */
import { NAME_MAX } from '../limits.js';
import { DeviceError } from './host.js';

const NAME = /^[A-Za-z0-9_.:+-]+$/;
/** Room left for the number a %d expands to (a 32-bit minor has at most 10 digits). */
const NUMBER_ROOM = 10;

/** Expands `pattern` to the first name `taken` refuses not; a name without '%d' is returned as is. */
export function expandName(pattern: string, taken: (name: string) => boolean): string {
  const [head = '', tail] = checkNamePattern(pattern);
  if (tail === undefined) return pattern;
  for (let n = 0; ; n++) {
    const name = `${head}${n}${tail}`;
    if (!taken(name)) return name;
  }
}

/**
 * Refuses a name or `%d` pattern no device can have; returns the parts
 * around the %d ([pattern] without one). Names appear in control API paths
 * and events, and the node is a path component: at most NAME_MAX bytes.
 * Node paths (which may nest) come from the model.
 */
export function checkNamePattern(pattern: string): [string, string?] {
  const [head = '', tail, ...extra] = pattern.split('%d');
  if (extra.length > 0) throw new DeviceError('invalid', `device name ${JSON.stringify(pattern)}: at most one %d`);
  const sample = tail === undefined ? pattern : `${head}0${tail}`;
  if (!NAME.test(sample) || /^\.+$/.test(sample)) {
    throw new DeviceError('invalid', `device name ${JSON.stringify(pattern)}: use letters, digits and _.:+- only`);
  }
  const longest = tail === undefined ? sample.length : head.length + NUMBER_ROOM + tail.length;
  if (longest > NAME_MAX) {
    throw new DeviceError('invalid', `device name ${JSON.stringify(pattern.slice(0, 20))}...: at most ${NAME_MAX} characters`);
  }
  return tail === undefined ? [pattern] : [head, tail];
}
