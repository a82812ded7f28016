/**
 * A page opened in a real browser: Debian's chromium, headless, with a
 * profile of its own made for the call and removed after it, and nothing
 * that reaches the network by itself (updates, sync, background requests).
 * `--dump-dom` prints the DOM as it stands after the page has loaded (its
 * scripts run, had it any): what a reader of the page gets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { run } from './proc.js';

export const CHROMIUM = '/usr/bin/chromium';
/** A cold start of chromium on a loaded machine. */
const LOAD_MS = 90_000;

const FLAGS = [
  '--headless',
  '--no-sandbox', // chromium refuses its sandbox to root, and users may lack the namespaces it needs; the page is the test's own
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * The DOM of the page `file` (HTML, or an SVG image) after load, serialized
 * by the browser. A document the browser cannot parse as XML is still
 * shown, with a `parsererror` element saying why: look for it.
 */
export async function dumpDom(file: string): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'cdevemu-chromium-'));
  try {
    const r = await run(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, '--dump-dom', pathToFileURL(file).href], { timeoutMs: LOAD_MS });
    if (r.code !== 0 || r.stdout.trim() === '')
      throw new Error(`chromium --dump-dom ${file}: exit ${r.code ?? r.signal}\n${r.stderr.slice(-2000)}`);
    return r.stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
