/**
 * docs/control-api.md against the server: the route table, the core event
 * types and the metric families it documents are exactly what the server
 * has, so the page cannot drift from the code.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreEvent } from '../../src/core/index.js';
import { metricsText } from '../../src/control/metrics.js';
import { run } from '../helpers/proc.js';
import { startServer } from './server.js';

const doc = readFileSync(new URL('../../docs/control-api.md', import.meta.url), 'utf8');

/** The first-column code spans of the table in the section under `<a id="...">`. */
function tableKeys(anchor: string): string[] {
  const start = doc.indexOf(`<a id="${anchor}"></a>`);
  if (start < 0) throw new Error(`docs/control-api.md has no section ${anchor}`);
  const next = doc.indexOf('<a id="', start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
}

let s: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  s = await startServer();
});
afterAll(() => s.close());

describe('docs/control-api.md', () => {
  it('documents every route the server has, and no other', () => {
    const documented = tableKeys('routes');
    const served = s.server.routeList();
    expect(new Set(documented).size, 'a route documented twice').toBe(documented.length);
    expect([...documented].sort()).toEqual([...served].sort());
  });

  it('documents a status that a real request gets, for the GET routes without parameters', async () => {
    // The event stream stays open; test/daemon/api.test.ts reads it.
    const routes = tableKeys('routes').filter((r) => r.startsWith('GET ') && !r.includes('{') && r !== 'GET /v1/events');
    expect(routes.length).toBeGreaterThan(2);
    for (const route of routes) {
      const path = route.slice(4);
      const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--unix-socket', s.socket, `http://cdevemu${path}`]);
      expect(`${route}: ${r.stdout}`).toBe(`${route}: 200`);
    }
  });

  it('documents every core event type', () => {
    const documented = new Set(tableKeys('events'));
    expect(Object.values(CoreEvent).filter((t) => !documented.has(t))).toEqual([]);
  });

  it('documents every metric family, and no other', () => {
    const families = [...metricsText({ devices: [], uptimeSeconds: 0, version: 'x' }).matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    const documented = [...doc.matchAll(/^\| `(cdevemu_\w+)` \| (counter|gauge) \|/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(documented.sort()).toEqual(families.sort());
  });
});
