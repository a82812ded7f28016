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
  tip(`curl --unix-socket ${s.socket} http://cdevemu/v1/devices`);
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
