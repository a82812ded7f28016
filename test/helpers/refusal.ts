/** Documents that must be refused with one `file:line: field: detail` line (config and scenario files). */
import { expect, it } from 'vitest';
import { ConfigError } from '../../src/config/index.js';

/** The message `read` refuses its document with; throws if it accepts it. */
export function refusal(read: () => unknown): string {
  try {
    read();
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error('the document was accepted');
}

/** One test per case: `read(text)` is refused with a message starting `prefix`. */
export function itRefuses(read: (text: string) => unknown, cases: Array<[what: string, text: string, prefix: string]>): void {
  it.each(cases)('refuses %s with file:line: field', (_what, text, prefix) => {
    const message = refusal(() => read(text));
    expect(message.startsWith(prefix), message).toBe(true);
  });
}
