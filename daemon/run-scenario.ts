/**
 * `cdevemu run SCENARIO [-- CMD ARGS...]`, or `cdevemu run --device
 * NAME=MODEL ... --expect ... -- CMD ARGS...` (the scenario given by flags,
 * src/scenario/flags.ts): runs a scenario against an emulator of its own
 * on a temporary mount (or, with --socket, against a running daemon),
 * prints each step as it passes, and exits 0 when every expectation held,
 * 1 on the first that did not, 2 for a bad scenario, 3 when --socket
 * names no daemon.
 *
 * This is the run itself, loaded when `run` or `record` runs; the
 * command's definition is commands/run.ts.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startEmulator, type EmulatorHandle } from '../src/api.js';
import { LOG_LEVELS, type LogLevel } from '../src/config/index.js';
import { ControlClient } from '../src/control/client.js';
import { ControlServer } from '../src/control/server.js';
import { resolveSocketPath } from '../src/control/socket-path.js';
import {
  checkHasProgram,
  checkProgramSteps,
  checkScenario,
  eventCatalog,
  pluggedModels,
  htmlReport,
  junitXml,
  loadScenario,
  LocalTarget,
  parseBind,
  RemoteTarget,
  runScenario,
  scenarioFromFlags,
  ScenarioSetupError,
  type EventCatalog,
  type PresentDevice,
  type RunFlag,
  type Scenario,
  type ScenarioTarget,
} from '../src/scenario/index.js';
import { builtinModels } from '../src/models/index.js';
import { BIND_FORM } from '../src/scenario/schema.js';
import { PRESETS } from '../src/scenario/presets.js';
import { prepareTcmu, type TcmuSetup } from '../src/tcmu/preset.js';
import { ShimBuildError } from '../src/tcmu/shim.js';
import { CliError, Exit } from './exit.js';
import { createLogger } from './logger.js';
import { loadUserModels } from './models.js';
import { clearDeadRuns, makeRunScratch } from './run-scratch.js';
import { runInUserNamespace, STOP_SIGNALS, takeRunNamespace } from './run-userns.js';
import { VERSION } from './version.js';
import { FLAGS_USAGE, USAGE, type ParsedRun, type RunOpts } from './commands/run-usage.js';

/** `cdevemu run`'s action: the options checked, the scenario loaded (from its file or flags), then run. Resolves to the exit code. */
export async function runCommand(file: string | undefined, command: string[], parsed: ParsedRun, o: RunOpts): Promise<number> {
  // An earlier run's report at these paths must not stand for this one,
  // which may end without writing its own (exit 2): a CI job would read it.
  for (const f of [o.junit, o.report]) if (f !== undefined) await rm(f, { force: true });
  checkOptions(o);
  return runFrom(await loadSource(file, command, parsed, o), o);
}

/** What a run runs: a scenario file, or the scenario its flags describe. */
export interface RunSource {
  scenario: Scenario;
  /** The program after `--`. */
  command: string[];
  /** Where step `index` (at `line`) comes from, for the verdict: `file:line`, or the flag. */
  where(index: number, line: number | null): string | null;
  /** A refusal of the scenario checks, said about what the user wrote. */
  explain(err: unknown): unknown;
}

/**
 * The scenario file (the first operand), or, when any scenario flag is
 * given, the scenario they describe: then there is no file, and the
 * program comes after `--`. Refusals are usage errors (exit 2).
 */
async function loadSource(file: string | undefined, rest: string[], cmd: ParsedRun, o: RunOpts): Promise<RunSource> {
  const operands = file === undefined ? rest : [file, ...rest];
  const flags = cmd.scenarioFlags;
  if (flags.length === 0) {
    const byFlags = ['name', 'timeout'].filter((k) => o[k as 'name' | 'timeout'] !== undefined);
    if (byFlags.length) throw new CliError(Exit.usage, `run: --${byFlags[0]} goes with a scenario given by flags (usage: ${FLAGS_USAGE}); a scenario file has its own ${byFlags[0]}:`);
    if (cmd.operandsBeforeDashes === 0) {
      const example = operands.length ? ` -- ${operands.join(' ')}` : '';
      throw new CliError(Exit.usage, `run: expected a scenario file first (usage: ${USAGE}), e.g. cdevemu run scenario.yaml${example}; or give the scenario as flags (usage: ${FLAGS_USAGE})`);
    }
    const scenario = await loadScenario(file!);
    return { scenario, command: rest, where: (_i, line) => (line === null ? null : `${file}:${line}`), explain: (err) => err };
  }
  if (cmd.operandsBeforeDashes > 0) {
    throw new CliError(Exit.usage, `run: ${JSON.stringify(operands[0])}: with --${flags[0]!.name} the scenario is given by flags, not a file; the program goes after -- (usage: ${FLAGS_USAGE})`);
  }
  if (operands.length === 0) throw new CliError(Exit.usage, `run: the program under test goes after -- (usage: ${FLAGS_USAGE})`);
  return flagSource(flags, operands, o);
}

/** The run a scenario given by flags describes, with the program `command` (the record command builds its own). */
export function flagSource(flags: readonly RunFlag[], command: string[], o: Pick<RunOpts, 'name' | 'timeout'>): RunSource {
  const built = scenarioFromFlags({ flags, name: o.name ?? command.join(' '), ...(o.timeout === undefined ? {} : { timeout: o.timeout }), cwd: process.cwd() });
  return { scenario: built.scenario, command, where: (i) => built.flagOf(i) ?? null, explain: built.explain };
}

/** Runs `source`: here as root, else in a user namespace of its own (ordinary users). Resolves to the exit code. */
export async function runFrom(source: RunSource, o: RunOpts): Promise<number> {
  checkOptions(o);
  return process.getuid?.() === 0 ? await runSource(source, o) : await runAsUser(source.scenario, o);
}

/**
 * An ordinary user's run starts again in a user namespace of its own
 * (../run-userns.ts), once its scenario is known to be good: the tcmu
 * preset's netlink family needs a network namespace there too.
 */
async function runAsUser(scenario: Scenario, o: RunOpts): Promise<number> {
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

async function runSource(source: RunSource, o: RunOpts): Promise<number> {
  // Set when this is an ordinary user's run, started again in its namespace: null for root.
  const userns = takeRunNamespace();
  // A bad file or flag was reported before anything is mounted (ConfigError: exit 2).
  const { scenario, command } = source;
  checkProgramSteps(scenario, command.length > 0);
  const presetName = o.preset ?? scenario.preset;
  const remote = isRemote(o);
  if (presetName && remote) throw new CliError(Exit.usage, `preset ${presetName} needs the private emulator (its netlink family is served by this process), not --socket`);
  // What runs killed outright left: a root run's mount outlives it (an ordinary user's dies with its namespace).
  if (!remote && !userns) await clearDeadRuns();
  const scratch = userns?.dir ?? (await makeRunScratch());
  const stageDir = join(scratch, 'ns');
  const tmpDir = join(scratch, 'tmp');
  let emu: EmulatorHandle | null = null;
  let control: ControlServer | null = null;
  let setup: TcmuSetup | null = null;
  const env: Record<string, string> = {};
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    let target: ScenarioTarget;
    const log = await createLogger(o.logLevel as LogLevel);
    // Every name and event filter the scenario uses is checked against what the target will
    // have (src/scenario/check.ts) before anything is plugged or mounted: exit 2.
    const check = (present: readonly PresentDevice[], events: EventCatalog): void => {
      try {
        checkScenario(scenario, present, events);
      } catch (err) {
        throw source.explain(err);
      }
    };
    if (remote) {
      const client = new ControlClient(resolveSocketPath(o.socket));
      target = await RemoteTarget.connect(client);
      check(await target.devices(), eventCatalog(await client.listModels(), 'any'));
    } else {
      const models = await loadUserModels(o.model, log, builtinModels.map((m) => m.name));
      check([], eventCatalog([...builtinModels, ...models], pluggedModels(scenario)));
      checkHasProgram(scenario, command.length > 0);
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
    // Against a daemon (--socket, or $CDEVEMU_SOCKET set in the shell) the first line says so.
    const on = remote ? `, the daemon at ${resolveSocketPath(o.socket)}` : `, control socket ${env.CDEVEMU_SOCKET}`;
    out(`scenario ${scenario.name} (${scenario.file}) on ${target.mountpoint}${on}`);
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
    const failedAt = result.steps.findIndex((s) => s.status === 'failed');
    const failed = result.steps[failedAt];
    const where = failed && source.where(failedAt, failed.line);
    const verdict = failed
      ? `FAIL ${scenario.name}: ${failed.title}${where ? ` (${where})` : ''}`
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
      for (const s of STOP_SIGNALS) process.off(s, onSignal);
    }
  }
}
