/**
 * `cdevemu run`'s definition: its parser, options and help, built for
 * every command line. The run itself (../run-scenario.ts) is loaded when
 * the command runs, so that the other commands start without it.
 */
import type { Command, ParseOptionsResult } from 'commander';
import type { RunFlag } from '../../src/scenario/index.js';
import { PRESETS } from '../../src/scenario/presets.js';
import { CliCommand } from '../command.js';
import { FLAGS_USAGE, type ParsedRun, type RunOpts } from './run-usage.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/**
 * `run`'s parser, which sees the literal `--` (the program keeps
 * positional options for that): an operand after `--` is the program's,
 * so `cdevemu run -- cat /dev/null` forgot the scenario rather than naming
 * a scenario file `cat`, and the scenario flags' program must come after
 * it. It also keeps the scenario flags in the order given, across flags:
 * that order is the timeline's.
 */
class RunCommand extends CliCommand implements ParsedRun {
  /** Operands before `--`: a scenario file's path, or (wrongly) a program given without `--`. */
  operandsBeforeDashes = 0;
  readonly scenarioFlags: RunFlag[] = [];

  override parseOptions(args: string[]): ParseOptionsResult {
    const parsed = super.parseOptions(args);
    const dashes = args.indexOf('--');
    const afterDashes = dashes < 0 ? 0 : args.length - dashes - 1;
    this.operandsBeforeDashes = parsed.operands.length - afterDashes;
    return parsed;
  }

  /** A commander argParser for `--NAME` that records it in order. */
  scenarioFlag(name: RunFlag['name']): (value: string) => string {
    return (value) => {
      this.scenarioFlags.push({ name, value });
      return value;
    };
  }
}

export function registerRunCommand(program: Command): void {
  const run = new RunCommand('run').copyInheritedSettings(program);
  program.addCommand(run);
  run
    .description('run a scenario against a program under test: from a file (the program after --, or the scenario\'s own), or given by flags (the program after --)')
    .usage(`[options] <scenario> [-- command...]\n       ${FLAGS_USAGE}`)
    .argument('[scenario]', 'scenario file (YAML or JSON); none when the scenario is given by flags')
    .argument('[command...]', 'program under test and its arguments, after --; {mount} is replaced by the mount path, {tmp} by a scratch directory removed after the run')
    .option('--socket <path>', 'use the daemon on this control socket instead of a private emulator (default: $CDEVEMU_SOCKET, if set)')
    .option('--junit <file>', 'write a JUnit XML report')
    .option('--report <file>', 'write an HTML report of the run (a self-contained page: timeline, steps, events, program output)')
    .option('--bind <host=mount>', 'bind a mount path over a host path in the program\'s private mount namespace (repeatable)', collect, [])
    .option('--model <file>', 'load a user model module (repeatable; private emulator only)', collect, [])
    .option('--preset <name>', `prepare the program's namespace for a known consumer (${PRESETS.join(', ')}; private emulator only)`)
    .option('--log-level <level>', 'emulator log level (private emulator only)', 'warn')
    .option('--as-user', 'run the program with the ids of the user who runs cdevemu, without capabilities (as an ordinary user, rather than as root of the run\'s user namespace)')
    .option('--device <name=model[:options]>', 'a scenario given by flags: plug this device first; OPTIONS k=v,k=v or a JSON object (repeatable)', run.scenarioFlag('device'))
    .option('--fault <rule>', 'a fault rule added before the program starts, k=v,k=v or JSON (repeatable)', run.scenarioFlag('fault'))
    .option('--action <name:action[=arg][@when]>', 'run a model action; WHEN: opened, read, written or released (by the program, on NAME; :COUNT and :TIMEOUT may follow), or a duration (repeatable, in order)', run.scenarioFlag('action'))
    .option('--unplug <name[:surprise][@when]>', 'unplug the device, WHEN as for --action (repeatable, in order)', run.scenarioFlag('unplug'))
    .option('--replug <name[@when]>', 'replug the device, WHEN as for --action (repeatable, in order)', run.scenarioFlag('replug'))
    .option('--expect <expectation>', 'checked after the steps, in order: released:NAME[:WITHIN], lateReleases:NAME:COUNT[:WITHIN], opened:NAME[:COUNT][:WITHIN], exit:CODE[:WITHIN], running, noStuck (repeatable)', run.scenarioFlag('expect'))
    .option('--name <text>', 'the name of a scenario given by flags (default: the program\'s command line)')
    .option('--timeout <duration>', 'the bound on a run given by flags (default 120s)')
    .action(async (file: string | undefined, command: string[], o: RunOpts) => {
      const { runCommand } = await import('../run-scenario.js');
      process.exitCode = await runCommand(file, command, run, o);
    });
}
