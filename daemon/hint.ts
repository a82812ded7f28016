/** What `cdevemu daemon` prints on stdout once it serves: where the devices are and how to try them. */
import { realpathSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Instance } from '../src/core/index.js';
import { resolveSocketPath } from '../src/control/socket-path.js';

const realpath = (p: string): string | null => {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
};

/** A word as sh reads it: quoted only when it has to be. */
const shellWord = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/**
 * How to run this same executable from any folder: `cdevemu` when that name
 * on PATH is this script (after `npm link` or `npm install -g`), else node
 * with the script's absolute path (`npm start`, `npx cdevemu` inside a
 * project). Only absolute PATH entries are looked at: the mount is never
 * touched by this process.
 */
export function selfCommand(script = process.argv[1]): string {
  const me = script ? realpath(script) : null;
  if (!me) return 'cdevemu';
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => isAbsolute(dir))
    .map((dir) => realpath(join(dir, 'cdevemu')))
    .find((p) => p !== null);
  return onPath === me ? 'cdevemu' : `node ${shellWord(me)}`;
}

export function tryItText(s: { mountpoint: string; socket: string }, devices: ReadonlyArray<Instance<unknown>>): string {
  const self = selfCommand();
  const sock = s.socket === resolveSocketPath() ? '' : ` --socket ${shellWord(s.socket)}`;
  const cli = (cmd: string): string => `${self} ${cmd}${sock}`;
  const dev = (name: string): string => shellWord(join(s.mountpoint, 'dev', name));
  const byModel = (model: string): Instance<unknown> | undefined => devices.find((d) => d.model === model);
  const tips: Array<[string, string]> = [];
  const tip = (cmd: string, why = ''): void => void tips.push([cmd, why]);
  const echo = byModel('echo');
  if (echo) {
    tip(`cat ${dev(echo.nodePath)} &`, 'blocks until something is written');
    tip(`echo hello > ${dev(echo.nodePath)}`);
  }
  const zero = byModel('zero');
  if (zero) tip(`head -c 16 ${dev(zero.nodePath)} | od -An -tx1`);
  const full = byModel('full');
  if (full) tip(`echo x > ${dev(full.nodePath)}`, 'No space left on device');
  const evdev = byModel('evdev');
  if (evdev) {
    tip(`evtest ${dev(evdev.nodePath)} &`);
    tip(cli(`action ${evdev.name} key '{"code":30}'`), 'evtest shows KEY_A');
  }
  const rtc = byModel('rtc');
  if (rtc) tip(`hwclock --show -f ${dev(rtc.nodePath)}`);
  const uio = byModel('uio');
  if (uio) tip(cli(`action ${uio.name} irq`), `raise an interrupt on ${uio.nodePath}`);
  tip(cli('ls'));
  if (zero) tip(cli(`fault add device=${zero.name} op=read action=fail errno=EIO`), 'reads now fail');
  tip(`curl --unix-socket ${shellWord(s.socket)} http://cdevemu/v1/devices`);
  tip(cli('events --history'), 'follow the lifecycle events');
  if (echo) {
    tip(cli(`unplug ${echo.name} --wait-release 5`), 'the cat gets EIO and exits; exit 0 once all are closed');
    tip(cli(`replug ${echo.name}`));
  }
  const lines = [
    `cdevemu serves ${devices.length} device(s) under ${join(s.mountpoint, 'dev')}: ${devices.map((d) => d.nodePath).join(', ') || 'none'}`,
    'Try, from another shell:',
    ...tips.flatMap(([cmd, why]) => (why ? [`  # ${why}`, `  ${cmd}`] : [`  ${cmd}`])),
    'Stop with Ctrl-C (or SIGTERM): every device is unplugged, then the mount is removed.',
  ];
  return lines.join('\n') + '\n';
}
