/** What `cdevemu daemon` prints on stdout once it serves: where the devices are and how to try them. */
import { basename, join, relative } from 'node:path';
import type { Instance } from '../src/core/index.js';
import { resolveSocketPath } from '../src/control/socket-path.js';

export function tryItText(s: { mountpoint: string; socket: string }, devices: ReadonlyArray<Instance<unknown>>): string {
  const script = process.argv[1] ?? 'cdevemu';
  const self = basename(script) === 'cdevemu' ? 'cdevemu' : `node ${relative(process.cwd(), script) || script}`;
  const sock = s.socket === resolveSocketPath() ? '' : ` --socket ${s.socket}`;
  const cli = (cmd: string): string => `${self} ${cmd}${sock}`;
  const dev = (name: string): string => join(s.mountpoint, 'dev', name);
  const byModel = (model: string): Instance<unknown> | undefined => devices.find((d) => d.model === model);
  const lines: string[] = [];
  lines.push(`cdevemu serves ${devices.length} device(s) under ${join(s.mountpoint, 'dev')}: ${devices.map((d) => d.nodePath).join(', ') || 'none'}`);
  lines.push('Try, from another shell:');
  const echo = byModel('echo');
  if (echo) {
    lines.push(`  cat ${dev(echo.nodePath)} &                # blocks until something is written`);
    lines.push(`  echo hello > ${dev(echo.nodePath)}`);
  }
  const zero = byModel('zero');
  if (zero) lines.push(`  head -c 16 ${dev(zero.nodePath)} | od -An -tx1`);
  const full = byModel('full');
  if (full) lines.push(`  echo x > ${dev(full.nodePath)}             # No space left on device`);
  lines.push(`  ${cli('ls')}`);
  lines.push(`  curl --unix-socket ${s.socket} http://cdevemu/v1/devices`);
  lines.push(`  ${cli('events --history')}                  # follow the lifecycle events`);
  if (echo) {
    lines.push(`  ${cli(`unplug ${echo.name} --wait-release 5`)}   # the cat gets EIO and exits; 0 once all are closed`);
    lines.push(`  ${cli(`replug ${echo.name}`)}`);
  }
  lines.push('Stop with Ctrl-C (or SIGTERM): every device is unplugged, then the mount is removed.');
  return lines.join('\n') + '\n';
}
