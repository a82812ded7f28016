/** `cdevemu ls | plug | unplug | replug | action`: the device commands. */
import type { Command } from 'commander';
import { ApiError, DaemonUnreachableError, type ControlClient } from '../../src/control/client.js';
import { toJson, type DeviceView, type HolderView } from '../../src/control/protocol.js';
import { CliError, Exit } from '../exit.js';
import { devicesTable, duration } from '../format.js';
import { clientFor, collectOption, modelOptions, nonNegativeInt, parseJsonArg, withSocket, type SocketOpts } from './common.js';

interface OptionOpts {
  option?: Record<string, unknown>;
  options?: string;
}

const described = (d: DeviceView): string => `${d.name} (${d.model}, generation ${d.generation}) at ${d.path}`;

export function registerDeviceCommands(program: Command): void {
  withSocket(program.command('ls'))
    .description('list devices, zombies (unplugged, still open) included')
    .option('--json', 'print the raw JSON')
    .action(async (o: SocketOpts & { json?: boolean }) => {
      const devices = await clientFor(o).listDevices();
      process.stdout.write(o.json ? JSON.stringify(devices, null, 2) + '\n' : devicesTable(devices));
    });

  withSocket(program.command('plug'))
    .description('plug a new device')
    .argument('<model>', 'model name (`cdevemu models` lists them)')
    .argument('<name>', "device name; '%d' takes the lowest free number (uio%d)")
    .option('--option <key=value>', 'a model option (repeatable; value parsed as JSON when it is JSON)', collectOption)
    .option('--options <json>', 'all model options as one JSON object')
    .action(async (model: string, name: string, o: SocketOpts & OptionOpts) => {
      const options = modelOptions(o);
      const d = await clientFor(o).plug(options === undefined ? { model, name } : { model, name, options });
      process.stdout.write(`plugged ${described(d)}\n`);
    });

  withSocket(program.command('unplug'))
    .description('hot-unplug a device; answers once it is drained')
    .argument('<name>')
    .option('--drain-timeout <ms>', 'how long to wait for running handlers before reporting them stuck', nonNegativeInt('--drain-timeout'))
    .option(
      '--wait-release <sec>',
      'then wait up to SEC seconds for every open file of the device to be closed; exit 1 and name the holders if not',
      nonNegativeInt('--wait-release', 1000),
    )
    .option('--surprise', 'pull the device with no notice to its consumers (no tcmu REMOVED_DEVICE event), like hardware vanishing')
    .option(
      '--notice-timeout <ms>',
      "bound each wait of an orderly unplug's notice (tcmu: the drain of its commands, the wait for REMOVED_DEVICE_DONE); default: none, as the kernel",
      nonNegativeInt('--notice-timeout'),
    )
    .action(async (name: string, o: SocketOpts & { drainTimeout?: number; waitRelease?: number; surprise?: boolean; noticeTimeout?: number }) => {
      const client = clientFor(o);
      const report = await client.unplug(name, {
        ...(o.drainTimeout === undefined ? {} : { drainTimeoutMs: o.drainTimeout }),
        ...(o.surprise ? { mode: 'surprise' as const } : {}),
        ...(o.noticeTimeout === undefined ? {} : { noticeTimeoutMs: o.noticeTimeout }),
      });
      process.stdout.write(`unplugged ${report.device} (generation ${report.generation}), drained in ${duration(report.drainedInMs)}\n`);
      for (const s of report.stuck) {
        process.stderr.write(`stuck: ${s.op} by pid ${s.pid} (${s.comm || '?'}), running for ${duration(s.sinceMs)}\n`);
      }
      if (o.waitRelease !== undefined) await waitRelease(client, report.device, report.generation, o.waitRelease);
    });

  withSocket(program.command('replug'))
    .description('unplug a device if it is plugged, then plug a new generation')
    .argument('<name>')
    .option('--option <key=value>', 'replace the model options (repeatable)', collectOption)
    .option('--options <json>', 'replace the model options with this JSON object')
    .action(async (name: string, o: SocketOpts & OptionOpts) => {
      const options = modelOptions(o);
      const d = await clientFor(o).replug(name, options === undefined ? {} : { options });
      process.stdout.write(`replugged ${described(d)}\n`);
    });

  withSocket(program.command('action'))
    .description("run a model action (push an input event, raise an irq...); prints its result as JSON")
    .argument('<name>')
    .argument('<action>')
    .argument('[arg-json]', 'the action argument, as JSON')
    .action(async (name: string, action: string, argJson: string | undefined, o: SocketOpts) => {
      const arg = argJson === undefined ? undefined : parseJsonArg('ARG-JSON', argJson);
      const result = await clientFor(o).action(name, action, arg);
      process.stdout.write(toJson(result) + '\n');
    });
}

/**
 * The leak detector: waits until no file of generation `generation` of
 * `name` is open (the instance is freed, or has no holders). On a terminal
 * a progress line is redrawn on stderr; on a pipe nothing is printed until
 * the end.
 */
async function waitRelease(client: ControlClient, name: string, generation: number, seconds: number): Promise<void> {
  const started = Date.now();
  const deadline = started + seconds * 1000;
  const tty = process.stderr.isTTY === true;
  let drawn = false;
  let holders: HolderView[];
  try {
    for (;;) {
      try {
        holders = (await client.getDevice(name, { generation })).holders;
      } catch (err) {
        // 404: the generation was freed, so every file was released.
        if (err instanceof ApiError && err.status === 404) holders = [];
        else if (err instanceof DaemonUnreachableError || (err instanceof CliError && err.exitCode === Exit.unreachable)) {
          // Stopped meanwhile: it releases every file as it unmounts, which says nothing of the program's closes.
          throw new CliError(Exit.unreachable, `the cdevemu daemon at ${client.socketPath} went away while waiting for ${name} (generation ${generation}) to be released`);
        } else throw err;
      }
      if (holders.length === 0) return;
      const now = Date.now();
      if (now >= deadline) break;
      if (tty && now - started >= 300) {
        process.stderr.write(
          `\r\x1b[Kwaiting for ${name} (generation ${generation}): ${holders.length} open file(s), ${duration(now - started)} of ${seconds} s`,
        );
        drawn = true;
      }
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, deadline - now))));
    }
  } finally {
    if (drawn) process.stderr.write('\r\x1b[K');
  }
  const lines = holders.map((h) => `  pid ${h.pid} (${h.comm || '?'}), open for ${duration(h.openForMs)}`);
  throw new CliError(
    Exit.failed,
    `${name} (generation ${generation}): ${holders.length} file(s) still open ${seconds} s after unplug:\n${lines.join('\n')}`,
  );
}
