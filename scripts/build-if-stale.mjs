#!/usr/bin/env node
/**
 * Builds dist/ with tsc only when a source is newer than the last build, so
 * `npm start` and `npm test` do not pay for a full type-check (several
 * seconds here) when nothing changed. `--always` (npm run build) builds
 * regardless. The stamp is this script's own: `tsc --noEmit` also writes
 * tsc's build info, so that file's time says nothing about dist/.
 */
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return path.endsWith('.ts') || path.endsWith('.json') ? st.mtimeMs : 0;
  let newest = st.mtimeMs; // a deleted or renamed file shows as a directory change
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

const inputs = ['src', 'daemon', 'bench', 'tsconfig.json', 'package.json'].map((p) => join(root, p)).filter(existsSync);
const built = existsSync(stamp) ? statSync(stamp).mtimeMs : -1;
if (process.argv.includes('--always') || built < 0 || inputs.some((p) => newestMtime(p) > built)) {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], {
    stdio: 'inherit',
  });
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}
