/** The package version, read once from package.json next to dist/. */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  // dist/daemon/version.js -> package.json two levels up (and the same from daemon/ in source).
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cdevemu' && pkg.version) return pkg.version;
    } catch {
      // try the next
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
