#!/usr/bin/env node
/**
 * Builds dist/ with tsc only when a source is newer than the last build, so
 * `npm start` and `npm test` do not pay for a full type-check (several
 * seconds here) when nothing changed. `npm run build` always builds.
 */
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.tsbuildinfo'); // written by tsc (tsconfig.json tsBuildInfoFile)

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return path.endsWith('.ts') || path.endsWith('.json') ? st.mtimeMs : 0;
  let newest = st.mtimeMs; // a deleted or renamed file shows as a directory change
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

const inputs = ['src', 'daemon', 'bench', 'tsconfig.json', 'package.json'].map((p) => join(root, p)).filter(existsSync);
const built = existsSync(stamp) ? statSync(stamp).mtimeMs : -1;
if (built < 0 || inputs.some((p) => newestMtime(p) > built)) {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], {
    stdio: 'inherit',
  });
  // tsc leaves its build info untouched when a touched file's content did not change.
  const now = new Date();
  utimesSync(stamp, now, now);
}
