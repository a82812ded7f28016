/**
 * `cdevemu record --device PATH --out TRACE.jsonl [--name NAME] [--bind
 * HOST=MOUNT]... -- PROGRAM ARGS`: runs PROGRAM against a record device in
 * front of the real node PATH (src/models/record/model.ts), bound over
 * PATH in the program's namespace unless --bind says where, and leaves
 * the device trace in TRACE.jsonl (docs/trace-format.md), complete once
 * the program has ended. It is the one-liner `cdevemu run --device
 * NAME=record:{...} --expect exit:0 --expect opened:NAME -- PROGRAM`
 * (run.ts), so it exits as that does: 0 when the program exited 0 having
 * opened the device, 1 otherwise (a program that never opened it, given
 * the wrong path, recorded nothing). Like run, it loads the run
 * (../run-scenario.ts) only when it runs.
 */
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliCommand } from '../command.js';
import { CliError, Exit } from '../exit.js';

interface RecordOpts {
  device?: string;
  out?: string;
  name?: string;
  bind: string[];
  timeout: string;
  logLevel: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerRecordCommand(program: Command): void {
  const record = new CliCommand('record').copyInheritedSettings(program);
  program.addCommand(record);
  record
    .description('record what a real character device and a program say to each other into a trace the replay model plays back (docs/trace-format.md)')
    .usage('--device PATH --out TRACE.jsonl [options] -- command...')
    .argument('<command...>', 'the program and its arguments, after --; {mount} is replaced by the mount path')
    .option('--device <path>', 'the real device node to record, e.g. /dev/ttyUSB0')
    .option('--out <file>', 'where to write the trace (JSON lines)')
    .option('--name <name>', 'the emulated node\'s name, MOUNT/dev/NAME (default: the device\'s file name)')
    .option('--bind <host=mount>', 'bind a mount path over a host path in the program\'s namespace (repeatable; default: the emulated node over --device)', collect, [])
    .option('--timeout <duration>', 'how long the program may run (ms, s or m)', '60m')
    .option('--log-level <level>', 'emulator log level', 'warn')
    .action(async (command: string[], o: RecordOpts) => {
      // Checked here, not by commander: a mistyped flag is then told as such ("did you mean"), not as a missing one.
      if (o.device === undefined || o.out === undefined) throw new CliError(Exit.usage, `record: --${o.device === undefined ? 'device' : 'out'} is required (usage: cdevemu record --device PATH --out TRACE.jsonl -- command...)`);
      const name = o.name ?? basename(o.device);
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new CliError(Exit.usage, `record: --name ${JSON.stringify(name)}: a node name is letters, digits, _ . -`);
      const options = JSON.stringify({ device: resolve(o.device), trace: resolve(o.out) });
      const flags = [
        { name: 'device' as const, value: `${name}=record:${options}` },
        { name: 'expect' as const, value: `exit:0:${o.timeout}` },
        { name: 'expect' as const, value: `opened:${name}` },
      ];
      const binds = o.bind.length ? o.bind : [`${resolve(o.device)}=dev/${name}`];
      const { flagSource, runFrom } = await import('../run-scenario.js');
      const source = flagSource(flags, command, { name: `record ${o.device}: ${command.join(' ')}`, timeout: o.timeout });
      process.exitCode = await runFrom(source, { bind: binds, model: [], logLevel: o.logLevel });
    });
}
