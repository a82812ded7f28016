#!/usr/bin/env node
/**
 * Checks the generated API reference (`npm run docs:api`, TypeDoc into
 * dist/api): every page reachable from its index, following each link,
 * script and stylesheet; each relative link must name a file that exists
 * and, with a `#fragment`, an id in it; a link out of the reference
 * (http:, mailto:...) fails, as a reference in the repository's docs does
 * (test/docs/references.test.ts), since it cannot be checked here. And the
 * entry points a user starts from must be there, each on its own page
 * under its name. Prints what is wrong, one line each, and exits 1; exits
 * 0 and prints a count when all is well.
 *
 *   node scripts/check-api-docs.mjs [DIR]     # default dist/api
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What the reference must document: the library's entry point and handle,
 * the typed control client, and the model API a model of one's own is
 * written against (docs/writing-a-model.md). Page (relative to the
 * reference) -> its heading, as TypeDoc writes it.
 */
export const ENTRY_POINTS = {
  'functions/cdevemu.startEmulator.html': 'Function startEmulator',
  'interfaces/cdevemu.StartOptions.html': 'Interface StartOptions',
  'classes/cdevemu.EmulatorHandle.html': 'Class EmulatorHandle',
  'classes/cdevemu.HeldOpenError.html': 'Class HeldOpenError',
  'classes/cdevemu_control.ControlClient.html': 'Class ControlClient',
  'interfaces/cdevemu.DeviceModel.html': 'Interface DeviceModel<S>',
  'interfaces/cdevemu.Instance.html': 'Interface Instance<S>',
  'interfaces/cdevemu.File.html': 'Interface File<S>',
  'interfaces/cdevemu.IoctlRequest.html': 'Interface IoctlRequest',
  'interfaces/cdevemu.IoctlReply.html': 'Interface IoctlReply',
  'interfaces/cdevemu.UserMemory.html': 'Interface UserMemory',
  'interfaces/cdevemu.Region.html': 'Interface Region',
  'interfaces/cdevemu.RegionSpec.html': 'Interface RegionSpec',
  'types/cdevemu.Attribute.html': 'Type Alias Attribute',
  'classes/cdevemu.WaitQueue.html': 'Class WaitQueue',
  'classes/cdevemu.Errno.html': 'Class Errno',
  'interfaces/cdevemu.DeviceEvent.html': 'Interface DeviceEvent',
  'types/cdevemu.FaultRuleSpec.html': 'Type Alias FaultRuleSpec',
};

const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
const decode = (s) => s.replace(/&(amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e]);

/** The targets of a page's href= and src= attributes (a, link, script, svg use). */
const linksOf = (html) => [...html.matchAll(/\s(?:href|src)="([^"]*)"/g)].map((m) => decode(m[1]));

/** The ids a page or an SVG defines, for `#fragment` links. */
const idsOf = (text) => new Set([...text.matchAll(/\s(?:id|name)="([^"]*)"/g)].map((m) => decode(m[1])));

/**
 * Crawls the reference in `dir` from its index page; resolves with the
 * problems found (empty when none) and the pages reached.
 */
export function checkApiDocs(dir) {
  const root = resolve(dir);
  const problems = [];
  const index = join(root, 'index.html');
  if (!existsSync(index)) return { problems: [`${index}: no index page (build the reference with npm run docs:api)`], pages: new Set() };
  const pages = new Set([index]);
  const queue = [index];
  const ids = new Map();
  const idsIn = (file) => {
    if (!ids.has(file)) ids.set(file, idsOf(readFileSync(file, 'utf8')));
    return ids.get(file);
  };
  const fragments = [];
  while (queue.length) {
    const page = queue.shift();
    const from = relative(root, page);
    for (const link of linksOf(readFileSync(page, 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:|^\/\//i.test(link)) {
        problems.push(`${from}: links outside the reference: ${link}`);
        continue;
      }
      const [path, fragment] = link.split('#', 2);
      const target = path === '' ? page : resolve(dirname(page), path.split('?')[0]);
      if (!target.startsWith(root + '/') || !existsSync(target) || !statSync(target).isFile()) {
        problems.push(`${from}: broken link ${link}`);
        continue;
      }
      if (fragment) fragments.push({ from, link, target, fragment });
      if (target.endsWith('.html') && !pages.has(target)) {
        pages.add(target);
        queue.push(target);
      }
    }
  }
  for (const f of fragments)
    if (!idsIn(f.target).has(f.fragment)) problems.push(`${f.from}: broken link ${f.link}: no id "${f.fragment}" there`);
  for (const [page, heading] of Object.entries(ENTRY_POINTS)) {
    const file = join(root, page);
    if (!pages.has(file)) {
      problems.push(`${page}: not in the reference (or not reachable from its index): ${heading} must be documented`);
      continue;
    }
    const h1 = /<h1[^>]*>(.*?)<\/h1>/s.exec(readFileSync(file, 'utf8'))?.[1].replace(/<[^>]*>/g, '');
    if (decode(h1 ?? '').trim() !== heading) problems.push(`${page}: heading ${JSON.stringify(h1)}, expected ${JSON.stringify(heading)}`);
  }
  return { problems, pages };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'api');
  const { problems, pages } = checkApiDocs(dir);
  if (problems.length) {
    console.error(`check-api-docs: ${problems.length} problem(s) in ${dir}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    process.exit(1);
  }
  console.log(
    `check-api-docs: ${pages.size} pages, every link resolves, the ${Object.keys(ENTRY_POINTS).length} entry points are documented`,
  );
}
