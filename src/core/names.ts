/** Instance names: `uio%d` takes the lowest free number, like uio_get_minor() allocating the lowest free minor. */
import { DeviceError } from './host.js';

const NAME = /^[A-Za-z0-9_.:+-]+$/;

/** Expands `pattern` to the first name `taken` refuses not; a name without '%d' is returned as is. */
export function expandName(pattern: string, taken: (name: string) => boolean): string {
  const [head = '', tail, ...extra] = pattern.split('%d');
  if (extra.length > 0) throw new DeviceError('invalid', `device name ${JSON.stringify(pattern)}: at most one %d`);
  checkName(tail === undefined ? pattern : `${head}0${tail}`, pattern);
  if (tail === undefined) return pattern;
  for (let n = 0; ; n++) {
    const name = `${head}${n}${tail}`;
    if (!taken(name)) return name;
  }
}

/** Names appear in control API paths and events; node paths (which may nest) come from the model. */
function checkName(sample: string, pattern: string): void {
  if (!NAME.test(sample) || /^\.+$/.test(sample)) {
    throw new DeviceError('invalid', `device name ${JSON.stringify(pattern)}: use letters, digits and _.:+- only`);
  }
}
