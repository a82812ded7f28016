/** Byte literals for the wire tests. */

/** Hex string with `// comments` and whitespace stripped, as a Buffer. */
export function hex(s: string): Buffer {
  const clean = s.replace(/\/\/[^\n]*/g, '').replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`bad hex literal: ${clean}`);
  return Buffer.from(clean, 'hex');
}
