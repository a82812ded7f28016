/**
 * `cdevemu run SCENARIO [-- CMD ARGS...]`: runs a scenario against an
 * emulator of its own on a temporary mount (or, with --socket, against a
 * running daemon), prints each step as it passes, and exits 0 when every
 * expectation held, 1 on the first that did not, 2 for a bad scenario,
 * 3 when --socket names no daemon.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command, ParseOptionsResult } from 'commander';
import { startEmulator, type EmulatorHandle } from '../../src/api.js';
import { LOG_LEVELS, type LogLevel } from '../../src/config/index.js';
import { ControlClient } from '../../src/control/client.js';
import { ControlServer } from '../../src/control/server.js';
import { resolveSocketPath } from '../../src/control/socket-path.js';
import {
  checkProgramSteps,
  checkScenario,
  eventCatalog,
  htmlReport,
  junitXml,
  loadScenario,
  LocalTarget,
  parseBind,
  RemoteTarget,
  runScenario,
  ScenarioSetupError,
  type ScenarioTarget,
} from '../../src/scenario/index.js';
import { builtinModels } from '../../src/models/index.js';
import { BIND_FORM, PRESETS } from '../../src/scenario/schema.js';
import { prepareTcmu, type TcmuSetup } from '../../src/tcmu/preset.js';
import { ShimBuildError } from '../../src/tcmu/shim.js';
import { CliCommand } from '../command.js';
import { CliError, Exit } from '../exit.js';
import { createLogger } from '../logger.js';
import { loadUserModels } from '../models.js';
import { runInUserNamespace, takeRunNamespace } from '../run-userns.js';
import { VERSION } from '../version.js';

interface RunOpts {
  socket?: string;
  preset?: string;
  junit?: string;
  report?: string;
  bind: string[];
  model: string[];
  logLevel: string;
  asUser?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

const USAGE = 'cdevemu run [options] <scenario> [-- command...]';

/**
 * `run`'s parser, which sees the literal `--` (the program keeps
 * positional options for that): an operand after `--` is the program's,
 * so `cdevemu run -- cat /dev/null` forgot the scenario rather than naming
 * a scenario file `cat`.
 */
class RunCommand extends CliCommand {
  override parseOptions(args: string[]): ParseOptionsResult {
    const parsed = super.parseOptions(args);
    const dashes = args.indexOf('--');
    const afterDashes = dashes < 0 ? 0 : args.length - dashes - 1;
    if (dashes >= 0 && parsed.operands.length === afterDashes) {
      const example = afterDashes ? ` -- ${args.slice(dashes + 1).join(' ')}` : '';
      throw new CliError(Exit.usage, `run: expected a scenario file first (usage: ${USAGE}), e.g. cdevemu run scenario.yaml${example}`);
    }
    return parsed;
  }
}

export function registerRunCommand(program: Command): void {
  const run = new RunCommand('run').copyInheritedSettings(program);
  program.addCommand(run);
  run
    .description('run a scenario file against a program under test (the program after --, or the scenario\'s own)')
    .argument('<scenario>', 'scenario file (YAML or JSON)')
    .argument('[command...]', 'program under test and its arguments, after --; {mount} is replaced by the mount path, {tmp} by a scratch directory removed after the run')
    .option('--socket <path>', 'use the daemon on this control socket instead of a private emulator')
    .option('--junit <file>', 'write a JUnit XML report')
    .option('--report <file>', 'write an HTML report of the run (a self-contained page: timeline, steps, events, program output)')
    .option('--bind <host=mount>', 'bind a mount path over a host path in the program\'s private mount namespace (repeatable)', collect, [])
    .option('--model <file>', 'load a user model module (repeatable; private emulator only)', collect, [])
    .option('--preset <name>', `prepare the program's namespace for a known consumer (${PRESETS.join(', ')}; private emulator only)`)
    .option('--log-level <level>', 'emulator log level (private emulator only)', 'warn')
    .option('--as-user', 'run the program with the ids of the user who runs cdevemu, without capabilities (as an ordinary user, rather than as root of the run\'s user namespace)')
    .action(async (file: string, command: string[], o: RunOpts) => {
      checkOptions(o);
      process.exitCode = process.getuid?.() === 0 ? await runScenarioFile(file, command, o) : await runAsUser(file, o);
    });
}

/**
 * An ordinary user's run starts again in a user namespace of its own
 * (../run-userns.ts), once its scenario is known to be good: the tcmu
 * preset's netlink family needs a network namespace there too.
 */
async function runAsUser(file: string, o: RunOpts): Promise<number> {
  const scenario = await loadScenario(file);
  return runInUserNamespace({ needsFuse: !isRemote(o), privateNetwork: (o.preset ?? scenario.preset) === 'tcmu' });
}

const isRemote = (o: RunOpts): boolean => o.socket !== undefined || Boolean(process.env.CDEVEMU_SOCKET);

function checkOptions(o: RunOpts): void {
  for (const b of o.bind) if (!parseBind(b)) throw new CliError(Exit.usage, `--bind ${b}: ${BIND_FORM}`);
  if (!(LOG_LEVELS as readonly string[]).includes(o.logLevel)) {
    throw new CliError(Exit.usage, `--log-level ${o.logLevel}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  if (o.preset !== undefined && !(PRESETS as readonly string[]).includes(o.preset)) {
    throw new CliError(Exit.usage, `--preset ${o.preset}: expected one of ${PRESETS.join(', ')}`);
  }
}

async function runScenarioFile(file: string, command: string[], o: RunOpts): Promise<number> {
  // Set when this is an ordinary user's run, started again in its namespace: null for root.
  const userns = takeRunNamespace();
  // A bad file is reported before anything is mounted (ConfigError: exit 2).
  const scenario = await loadScenario(file);
  checkProgramSteps(scenario, command.length > 0);
  const presetName = o.preset ?? scenario.preset;
  const remote = isRemote(o);
  if (presetName && remote) throw new CliError(Exit.usage, `preset ${presetName} needs the private emulator (its netlink family is served by this process), not --socket`);
  const scratch = userns?.dir ?? (await mkdtemp(join(tmpdir(), 'cdevemu-run-')));
  const stageDir = join(scratch, 'ns');
  const tmpDir = join(scratch, 'tmp');
  let emu: EmulatorHandle | null = null;
  let control: ControlServer | null = null;
  let setup: TcmuSetup | null = null;
  const env: Record<string, string> = {};
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let target: ScenarioTarget;
    const log = await createLogger(o.logLevel as LogLevel);
    // Every name and event filter the scenario uses is checked against what the target will
    // have (src/scenario/check.ts) before anything is plugged or mounted: exit 2.
    if (remote) {
      target = await RemoteTarget.connect(new ControlClient(resolveSocketPath(o.socket)));
      checkScenario(scenario, (await target.devices()).map((d) => d.name), eventCatalog(null));
    } else {
      const models = await loadUserModels(o.model, log, builtinModels.map((m) => m.name));
      checkScenario(scenario, [], eventCatalog([...builtinModels, ...models]));
      emu = await startEmulator({ mountpoint: join(scratch, 'mnt'), logger: log, models });
      target = new LocalTarget(emu);
      // The private emulator answers the control API too, so the CLI (and
      // the program under test, through $CDEVEMU_SOCKET) can act on it.
      const socketPath = join(scratch, 'ctl.sock');
      control = await ControlServer.listen({
        socketPath,
        devices: emu.emulator.devices,
        faults: emu.emulator.faults,
        mountpoint: emu.mountpoint,
        version: VERSION,
        logger: log,
      });
      env.CDEVEMU_SOCKET = socketPath;
    }
    await mkdir(stageDir);
    await mkdir(tmpDir);
    if (emu && presetName === 'tcmu') {
      try {
        setup = await prepareTcmu(emu, join(scratch, 'preset'), log, userns ? { dir: userns.dir, problem: userns.dirProblem } : undefined);
      } catch (err) {
        if (err instanceof ShimBuildError) throw new CliError(Exit.usage, `preset tcmu: ${err.message}`);
        throw err;
      }
    }
    // A reader that went away (`cdevemu run | head`) ends the report, not the
    // run: the program must still be stopped and the mount taken down.
    let reading = true;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      reading = false;
    });
    const out = (line: string): void => {
      if (reading) process.stdout.write(line + '\n');
    };
    out(`scenario ${scenario.name} (${file}) on ${target.mountpoint}${env.CDEVEMU_SOCKET ? `, control socket ${env.CDEVEMU_SOCKET}` : ''}`);
    const result = await runScenario(scenario, {
      target,
      ...(command.length ? { command } : {}),
      binds: o.bind,
      stageDir,
      // As root the program runs as root, the user who ran cdevemu, already.
      asUser: o.asUser && userns ? { uid: userns.uid, gid: userns.gid } : null,
      tmpDir,
      out,
      signal: ac.signal,
      env,
      ...(setup ? { setup, presetName } : {}),
    });
    const failed = result.steps.find((s) => s.status === 'failed');
    const verdict = failed
      ? `FAIL ${scenario.name}: ${failed.title}${failed.line !== null ? ` (${file}:${failed.line})` : ''}`
      : `PASS ${scenario.name}: ${result.steps.length} step(s) in ${(result.durationMs / 1000).toFixed(2)}s`;
    out(verdict);
    if (o.junit) await writeFile(o.junit, junitXml([result]));
    if (o.report) await writeFile(o.report, htmlReport({ scenario, result, verdict, mountpoint: target.mountpoint, version: VERSION }));
    return result.passed ? Exit.ok : Exit.failed;
  } catch (err) {
    if (err instanceof ScenarioSetupError) throw new CliError(Exit.usage, err.message);
    throw err;
  } finally {
    // Still listening while it cleans up: a signal now (a second Ctrl-C, or
    // the SIGTERM an ordinary user's run gets once for each thread of its
    // dying parent: PR_SET_PDEATHSIG, ../run-userns.ts) must not cut the
    // clean-up short and leave the mount and the run's directory behind.
    try {
      await control?.close();
      await setup?.close();
      await emu?.stop({ releaseTimeoutMs: 500 });
      await rm(scratch, { recursive: true, force: true });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}
