/**
 * Runs a scenario: plugs its devices, adds its faults, starts the program
 * under test, and walks the timeline, printing each step as it passes. The
 * first failed step ends the run. The program is stopped on every path out.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CoreEvent, type DeviceEvent } from '../core/events.js';
import { namespaceCommand, needsNamespace, type Bind, type NamespaceOptions } from './bind.js';
import { LogFollower } from './follow.js';
import { MAX_DURATION_MS } from '../limits.js';
import { heldFds } from './holders.js';
import { everOpened, heldAtUnplug, Ledger, stillAsleep, type GenerationRecord } from './ledger.js';
import { freeTcpPort } from './free-port.js';
import { describeExit, Program, type ProgramExit } from './program.js';
import { within } from '../awaitable.js';
import { openedUnder, stopProgram, type ProgramInstance } from './restart.js';
import { BIND_FORM, parseBind, type Scenario, type Step, type TimelineStep } from './schema.js';
import type { ScenarioTarget, TargetDevice } from './target.js';
import { absentSubject, eventExpectationFails, judgedBy, matches, resultExpectationFails, shortfall } from './values.js';
import { describeThreads, unstoppedThreads } from './stopped.js';
import { describeWhereThreadsAre, type ThreadState } from './threads.js';
import { RunTrace, type RunTraceData } from './trace.js';
import { ANOTHER_CLIENT, CallerProcesses, CountWindow, instanceOf } from './window.js';
import { DeviceFailures } from './device-failures.js';
import { unjudgedEnds } from './program-ends.js';
import { describeCrash, ProcessCrashes } from './process-crashes.js';
import { isRunEvent } from './run-events.js';
import { RunFaults } from './run-faults.js';
import { taskRuns } from '../sys/procstat.js';

/** How long a verdict waits for the releases of exited programs' files (settleReleases()). */
const RELEASE_SETTLE_MS = 2000;

export interface StepResult {
  title: string;
  line: number | null;
  status: 'passed' | 'failed' | 'skipped';
  /** ms since the start of the run when the step ended. */
  atMs: number;
  durationMs: number;
  message?: string;
}

export interface ScenarioResult {
  name: string;
  file: string;
  passed: boolean;
  steps: StepResult[];
  program: ProgramExit | null;
  durationMs: number;
  /** The programs, their output and the events, for a report (trace.ts). */
  trace: RunTraceData;
}

export interface RunOptions {
  target: ScenarioTarget;
  /** The program under test from the command line (`-- CMD ARGS`); replaces the scenario's. */
  command?: string[];
  /** --bind HOSTPATH=MOUNTPATH from the command line, added to the scenario's. */
  binds?: string[];
  /** An empty directory the bind namespace may stage overlays in. */
  stageDir: string;
  /** Run the program as these ids, in a user namespace of its own (NamespaceOptions.asUser). */
  asUser?: NamespaceOptions['asUser'];
  /** The run's scratch directory, `{tmp}` in the scenario; the caller removes it after the run. */
  tmpDir: string;
  out: (line: string) => void;
  /** Aborting it (Ctrl-C) fails the current step and ends the run; the program is stopped as always. */
  signal?: AbortSignal;
  /** More environment for the program under test (CDEVEMU_SOCKET, say). */
  env?: Record<string, string>;
  /** What a preset prepared for the program: binds made before the scenario's, environment, log files to relay. */
  setup?: ProgramSetup;
  presetName?: string;
}

/** A program's prepared surroundings (src/tcmu/preset.ts makes one). */
export interface ProgramSetup {
  binds: Bind[];
  env: Record<string, string>;
  logFiles: string[];
  /** Told the program's pid as soon as it is spawned (before it can send anything the setup must attribute to it). */
  started?(pid: number): void;
}

/** The scenario could not be set up (unknown model, bad fault...): a bad scenario, exit 2. */
export class ScenarioSetupError extends Error {}

/** A failed step: the message says what was expected and what happened. */
class StepFailed extends Error {}

const POLL_MS = 10;
/** How long a failed wait's report waits for the device's status. */
const STATUS_MS = 2000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const secs = (ms: number): string => `${(ms / 1000).toFixed(3)}s`;

class Run {
  private readonly events: DeviceEvent[] = [];
  private readonly ledger: Ledger;
  private readonly t0 = performance.now();
  private readonly trace = new RunTrace(() => this.elapsed);
  /** The current instance of the program under test (restart.ts); null before the first starts, or if there is none. */
  private program: Program | null = null;
  private readonly instances: ProgramInstance[] = [];
  /** What waits and event expectations count: since the current instance started (window.ts). */
  private window = CountWindow.open(0, [], 1);
  /** The stopped instance each event came from, as it came in (window.ts instanceOf); an event of none is not in it. */
  private readonly cameFrom = new WeakMap<DeviceEvent, number>();
  /** The process of each thread events named (window.ts). */
  private readonly callers = new CallerProcesses();
  /** Events that fail the run whatever its steps say (device-failures.ts). */
  private readonly failures: DeviceFailures;
  /** The fault rules the run added (run-faults.ts). */
  private readonly faults: RunFaults;
  /** Crashes of the processes the program started (process-crashes.ts). */
  private readonly crashes: ProcessCrashes;
  /** Action results saved with `as`. */
  private readonly results = new Map<string, unknown>();
  private logs: LogFollower | null = null;
  /** Unplug steps with `background: true` still running, and where they are: each settles to its failure, or null. */
  private readonly background: { ts: TimelineStep; failure: Promise<string | null> }[] = [];
  /** `{port}`: a free TCP port on 127.0.0.1, chosen when the run starts. */
  private port = 0;
  /** Rejects when the run is interrupted; raced against every step. */
  private readonly interrupted: Promise<never>;

  constructor(
    private readonly s: Scenario,
    private readonly o: RunOptions,
  ) {
    this.interrupted = new Promise<never>((_, reject) => {
      const fail = (): void => reject(new StepFailed('interrupted'));
      if (o.signal?.aborted) fail();
      else o.signal?.addEventListener('abort', fail, { once: true });
    });
    this.interrupted.catch(() => {});
    this.ledger = new Ledger(o.target.shared);
    this.failures = new DeviceFailures(s, o.target.shared);
    this.faults = new RunFaults(o.target, s);
    this.crashes = new ProcessCrashes(
      judgedBy(s),
      (e, instance, parentComm) => {
        this.events.push(e);
        this.cameFrom.set(e, instance); // counted by the windows of that instance only, like its processes' device events
        this.trace.event(e);
        this.o.out(`${this.stamp()} process crashed: ${describeCrash(e, parentComm)}`);
      },
    );
  }

  private get elapsed(): number {
    return performance.now() - this.t0;
  }

  async run(): Promise<ScenarioResult> {
    const unsubscribe = await this.o.target.subscribe(
      (e) => {
        this.events.push(e);
        // A file's later events name its opener, who may be gone: the file, placed at its open, places them (ledger.ts).
        const from = this.instances.length > 0 && this.ledger.ofOthersFile(e) ? ANOTHER_CLIENT : instanceOf(e, this.instances, this.callers, this.o.target.shared);
        if (from !== undefined) this.cameFrom.set(e, from);
        this.ledger.record(e, from === ANOTHER_CLIENT);
        this.trace.event(e);
        const failure = this.failures.note(e, from !== undefined && from !== ANOTHER_CLIENT);
        if (failure) this.o.out(`${this.stamp()} ${failure}`);
      },
      (reason) => (this.ledger.lost = reason),
    );
    const steps: StepResult[] = [];
    try {
      const atStart = await this.o.target.devices();
      this.ledger.start(atStart);
      this.window = CountWindow.open(0, atStart, 1);
      this.port = await freeTcpPort();
      await this.crashes.start();
      await this.setUp();
      this.startProgram();
      const deadline = this.s.timeoutMs;
      for (const ts of this.s.timeline) {
        if (steps.some((r) => r.status === 'failed')) {
          steps.push({ title: ts.title, line: ts.line, status: 'skipped', atMs: this.elapsed, durationMs: 0 });
          continue;
        }
        steps.push(await this.runStep(ts, deadline));
      }
      for (const b of this.background.splice(0)) {
        // After a failure the run ends now, as its other steps do: stopping the program ends what waits on it.
        if (steps.some((r) => r.status === 'failed')) steps.push({ title: `${b.ts.title} ended`, line: b.ts.line, status: 'skipped', atMs: this.elapsed, durationMs: 0 });
        else steps.push(await this.endBackground(b, deadline));
      }
      if (this.program && !this.program.exit) this.o.out(`${this.stamp()} program still running at the end; stopping it`);
      const program = this.program ? await this.program.stop() : null;
      await this.settleReleases();
      const unended = await this.endSessions();
      if (unended) steps.push(this.failedAtEnd('every device ended its session', unended));
      const synced = await this.o.target.sync().then(
        () => null,
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      );
      if (synced) steps.push(this.failedAtEnd('every event came', `${synced}: what the devices saw at the end is unknown`));
      const broken = this.failures.failure();
      if (broken) steps.push(this.failedAtEnd('no device saw a failure', broken));
      // Every process of the program's has exited by now, and the kernel queued each exit as it happened.
      this.crashes.sync();
      const crashed = this.crashes.failure();
      if (crashed) steps.push(this.failedAtEnd('no process the program started crashed', crashed));
      // After a failed step the run was cut short, and that step said what went wrong first:
      // a rule not reached then, or the program's end, says nothing more.
      if (steps.every((r) => r.status !== 'failed')) {
        const ends = unjudgedEnds(this.instances);
        if (ends) steps.push(this.failedAtEnd('the program ran and did not crash', ends));
        const { unfired, stray } = await this.faults.judge(this.events, (e) => this.cameFrom.get(e) === ANOTHER_CLIENT);
        if (unfired) steps.push(this.failedAtEnd('every fault rule fired', unfired));
        if (stray) steps.push(this.failedAtEnd('every rule a fault_fired filter names was there', stray));
      }
      this.noteNothingOpened();
      const unwatched = this.instances.length > 0 ? this.crashes.note() : null;
      if (unwatched) this.o.out(`${this.stamp()} ${unwatched}`);
      // Steps race the interruption, but the run's end does not (stopping the program, its checks):
      // an interruption (a signal to cdevemu run) that came after the last step still cut the run short, and must not pass it.
      // A signal that came as the program exited may be queued behind its exit in the event loop's
      // batch, the rest of the end having run in microtasks since: one turn lets it be dispatched.
      await new Promise((resolve) => setImmediate(resolve));
      if (this.o.signal?.aborted && steps.every((r) => r.status !== 'failed')) {
        steps.push(this.failedAtEnd('the run was not interrupted', 'interrupted after the last step, while the run ended: its verdict is unknown'));
      }
      const passed = steps.every((r) => r.status !== 'failed');
      return { name: this.s.name, file: this.s.file, passed, steps, program, durationMs: this.elapsed, trace: this.trace.result };
    } finally {
      await this.program?.stop();
      await this.logs?.stop();
      await this.faults.removeFromShared();
      await this.crashes.close();
      unsubscribe();
    }
  }

  /**
   * Waits, bounded, for the releases of files whose opener has exited: the
   * kernel sends RELEASE after close() and exit() have returned, and a
   * model may judge the program there (replay's replay_incomplete), which
   * a verdict taken at once would miss.
   */
  private async settleReleases(): Promise<void> {
    const from = this.events.length;
    let devices: TargetDevice[];
    try {
      devices = await this.o.target.devices();
    } catch {
      return; // a daemon gone: nothing more will come
    }
    const pending = devices.flatMap((d) => d.holders.filter((h) => !taskRuns(h.pid)).map((h) => `${d.name}:${h.pid}`));
    const end = performance.now() + RELEASE_SETTLE_MS;
    let seen = from;
    while (pending.length > 0 && performance.now() < end) {
      for (; seen < this.events.length; seen++) {
        const e = this.events[seen]!;
        const i = e.type === 'released' || e.type === 'late_released' ? pending.indexOf(`${e.device}:${String(e.pid)}`) : -1;
        if (i >= 0) pending.splice(i, 1);
      }
      if (pending.length > 0) await sleep(POLL_MS);
    }
  }

  /**
   * Says so when no file of the run's own emulator was ever opened: a
   * program given a wrong path (no {mount}, a forgotten --bind) tested
   * nothing, and a run judged by its exit alone passes. Not a failure: a
   * program may rightly use only the control API, sysfs or {port}. On a
   * daemon, whose devices others open, it would say nothing sure.
   */
  private noteNothingOpened(): void {
    const gens = this.ledger.all();
    if (this.o.target.shared || gens.length === 0 || gens.some(everOpened)) return;
    this.o.out(`${this.stamp()} note: no device of the run was ever opened; if the program was meant to use one, check the path it was given ({mount}/dev/NAME, or --bind)`);
  }

  /**
   * Tells each live device of the run that the program has ended, so a
   * model that judges the whole session (replay: a recording not used up)
   * does so before the verdict, not at the device's removal after it.
   * Why a device could not be told, or null.
   */
  private async endSessions(): Promise<string | null> {
    try {
      const live = (await this.o.target.devices()).filter((d) => d.state === 'live' && this.failures.ours(d.name));
      for (const d of live) await this.o.target.endSession(d.name);
      return null;
    } catch (err) {
      return `could not end the session: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  private stamp(): string {
    return `[${secs(this.elapsed).padStart(8)}]`;
  }

  /**
   * `{mount}` (the mount path), `{tmp}` (the run's scratch directory,
   * removed afterwards) and `{port}` (a TCP port free when the run started,
   * the same one wherever it appears) in a string, or in every string
   * inside options.
   */
  private expand<T>(v: T): T {
    if (typeof v === 'string') {
      return v.replaceAll('{mount}', this.o.target.mountpoint).replaceAll('{tmp}', this.o.tmpDir).replaceAll('{port}', String(this.port)) as T;
    }
    if (Array.isArray(v)) return v.map((e: unknown) => this.expand(e)) as T;
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, this.expand(e)])) as T;
    return v;
  }

  private async setUp(): Promise<void> {
    try {
      for (const d of this.s.devices) await this.o.target.plug(this.expand(d));
      for (const f of this.s.faults) await this.faults.add(f);
    } catch (err) {
      throw new ScenarioSetupError(`${this.s.file}: setting up: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The program to start: the command line's (`-- CMD`), the scenario's, or none. */
  private get programCommand(): string[] | undefined {
    const argv = this.o.command ?? this.s.program?.command;
    return argv && argv.length > 0 ? argv : undefined;
  }

  /** Starts an instance of the program: the first with the run, others for a `start` step (`again`), which may give its own command and environment. */
  private startProgram(again?: Extract<Step, { kind: 'start' }>): void {
    const spec = this.s.program;
    // A command from the command line runs where cdevemu run was started;
    // the scenario's own, and a start step's, relative to the scenario file.
    const argv = again?.command ?? this.programCommand;
    const cwd = again?.command ? again.cwd : this.o.command ? process.cwd() : spec?.cwd;
    if (!argv) return;
    const mount = this.o.target.mountpoint;
    const setup = this.o.setup;
    const binds: Bind[] = [
      ...(setup?.binds ?? []),
      ...[...(spec?.bind ?? []), ...(this.o.binds ?? [])].map((b) => {
        const p = parseBind(b);
        if (!p) throw new ScenarioSetupError(`bad bind ${JSON.stringify(b)}: ${BIND_FORM}`);
        return { host: p.host, source: `${mount}/${p.mount}` };
      }),
    ];
    const cmd = this.expand(argv);
    const ns: NamespaceOptions = { binds, stageDir: this.stageDir(), asUser: this.o.asUser ?? null, notifyFd3: true };
    const wrapped = needsNamespace(ns);
    const full = wrapped ? namespaceCommand(cmd, ns) : cmd;
    const indent = ' '.repeat(11);
    if (setup?.logFiles.length && !this.logs) {
      this.logs = new LogFollower(setup.logFiles, (_file, line) => (this.trace.line('log', line), this.o.out(`${indent}~ ${line}`)));
      this.logs.start();
    }
    const startedAt = Date.now();
    const n = this.instances.length + 1;
    // Before the spawn: an event about its pid from earlier was another process's (process-crashes.ts).
    const spawnedAfter = process.hrtime.bigint();
    this.program = new Program(full, {
      env: { ...process.env, ...setup?.env, ...this.o.env, ...this.expand(spec?.env), ...this.expand(again?.env), CDEVEMU_MOUNT: mount, CDEVEMU_TMP: this.o.tmpDir },
      ...(cwd ? { cwd } : {}),
      onLine: (stream, line) => (this.trace.line(stream, line, n), this.o.out(`${indent}${stream === 'err' ? '!' : '|'} ${line}`)),
      readyPipe: wrapped,
      known: () => this.crashes.processesOf(n),
    });
    const program = this.program;
    this.crashes.track(n, program.pid, spawnedAfter, (sig) => program.wasSent(sig));
    if (this.program.pid !== undefined) setup?.started?.(this.program.pid);
    const instance: ProgramInstance = { n, program: this.program, startedAt, endedAt: null, exitJudged: false };
    this.instances.push(instance);
    this.trace.started(n, cmd, this.program.pid);
    const binding = (binds.length ? ` with ${binds.length} bind(s)` : '') + (ns.asUser ? ` as uid ${ns.asUser.uid} gid ${ns.asUser.gid}` : '');
    const which = instance.n > 1 ? `, instance ${instance.n}` : '';
    this.o.out(`${this.stamp()} started ${cmd.join(' ')} (pid ${this.program.pid ?? '?'}${which})${binding}${this.o.presetName ? `, preset ${this.o.presetName}` : ''}`);
    void this.program.exited.then((e) => {
      instance.endedAt = Date.now();
      this.trace.exited(n, e);
      this.o.out(`${this.stamp()} program ${describeExit(e)}`);
    });
  }

  /** Where an instance's bind namespace stages its overlays: an empty directory each. */
  private stageDir(): string {
    if (this.instances.length === 0) return this.o.stageDir;
    const dir = join(this.o.stageDir, `instance-${this.instances.length + 1}`);
    mkdirSync(dir);
    return dir;
  }

  /** A background unplug at the end of the timeline: it must end, without error, within the scenario's timeout. */
  private async endBackground(b: { ts: TimelineStep; failure: Promise<string | null> }, deadlineMs: number): Promise<StepResult> {
    const start = this.elapsed;
    const title = `${b.ts.title} ended`;
    const failure = await within(b.failure, Math.max(0, deadlineMs - start), () => `still running at the scenario's timeout (${deadlineMs} ms)`);
    if (failure === null) {
      this.o.out(`${this.stamp()} ok    ${title}`);
      return { title, line: b.ts.line, status: 'passed', atMs: this.elapsed, durationMs: this.elapsed - start };
    }
    this.o.out(`${this.stamp()} FAIL  ${title}${b.ts.line !== null ? ` (${this.s.file}:${b.ts.line})` : ''}`);
    this.o.out(`           ${failure}`);
    return { title, line: b.ts.line, status: 'failed', atMs: this.elapsed, durationMs: this.elapsed - start, message: failure };
  }

  /** A check the run makes of its own at the end, not a step of the file's, that failed. */
  private failedAtEnd(title: string, message: string): StepResult {
    this.o.out(`${this.stamp()} FAIL  ${title}`);
    for (const l of message.split('\n')) this.o.out(`           ${l}`);
    return { title, line: null, status: 'failed', atMs: this.elapsed, durationMs: 0, message };
  }

  private async runStep(ts: TimelineStep, deadlineMs: number): Promise<StepResult> {
    const start = this.elapsed;
    const where = ts.line !== null ? ` (${this.s.file}:${ts.line})` : '';
    try {
      const left = deadlineMs - start;
      if (left <= 0) throw new StepFailed(`the scenario's timeout (${deadlineMs} ms) has passed`);
      await within(Promise.race([this.step(ts.step), this.interrupted]), left, () => {
        throw new StepFailed(`the scenario's timeout (${deadlineMs} ms) passed during this step`);
      });
      this.o.out(`${this.stamp()} ok    ${ts.title}`);
      return { title: ts.title, line: ts.line, status: 'passed', atMs: this.elapsed, durationMs: this.elapsed - start };
    } catch (err) {
      const message = err instanceof StepFailed ? err.message : `error: ${err instanceof Error ? err.message : String(err)}`;
      this.o.out(`${this.stamp()} FAIL  ${ts.title}${where}`);
      for (const l of message.split('\n')) this.o.out(`           ${l}`);
      return { title: ts.title, line: ts.line, status: 'failed', atMs: this.elapsed, durationMs: this.elapsed - start, message };
    }
  }

  private async step(s: Step): Promise<void> {
    const t = this.o.target;
    switch (s.kind) {
      case 'sleep':
        return sleep(s.ms);
      case 'wait':
        return this.wait(s);
      case 'action': {
        const result = await t.action(s.device, s.action, s.arg);
        if (s.as !== undefined) this.results.set(s.as, result);
        return;
      }
      case 'fault':
        return this.faults.add(s.rule);
      case 'plug':
        await t.plug(this.expand(s.spec));
        return;
      case 'unplug': {
        const unplugging = t.unplug(s.device, { drainTimeoutMs: s.drainTimeoutMs, mode: s.mode, noticeTimeoutMs: s.noticeTimeoutMs }).then((r) => {
          for (const h of r.stuck) this.o.out(`           stuck: ${h.op} by pid ${h.pid} (${h.comm}), running ${h.sinceMs} ms`);
        });
        if (!s.background) return unplugging;
        // An unplug that waits on its consumer (an orderly one, the consumer
        // stopped): the timeline goes on, and the run's end waits for it.
        const ts = this.s.timeline.find((x) => x.step === s)!;
        this.background.push({ ts, failure: unplugging.then(() => null, (err: unknown) => (err instanceof Error ? err.message : String(err))) });
        return;
      }
      case 'replug':
        return t.replug(s.device, this.expand(s.options));
      case 'signal': {
        const p = this.program;
        // Not `p.exit`: Node learns of an exit a turn after it, and kill(2) on the zombie succeeds (program.ts running).
        if (!p?.pid || !p.running || !p.send(s.signal)) throw new StepFailed(`there is no running program to send ${s.signal} to`);
        if (s.signal === 'SIGSTOP') await this.allStopped(p.pid, s.timeoutMs);
        return;
      }
      case 'stop':
        return this.stop(s);
      case 'start':
        return this.start(s);
      case 'expect':
        return this.expect(s);
    }
  }

  /** The events in the window: since the current instance of the program started, and none of a stopped instance's processes. */
  private get counted(): DeviceEvent[] {
    return this.events.slice(this.window.firstEvent).filter((e) => this.window.counts(this.cameFrom.get(e)));
  }

  private count(pred: (e: DeviceEvent) => boolean): number {
    return this.counted.filter(pred).length;
  }

  /** Ends the current instance (restart.ts); fails if it had already exited, or needed SIGKILL. */
  private async stop(s: Extract<Step, { kind: 'stop' }>): Promise<void> {
    const p = this.program;
    if (!p) throw new StepFailed('there is no program under test to stop');
    if (!p.running) throw new StepFailed(`the program ${describeExit(await p.exited)} before this step: there was nothing to stop`);
    const t = performance.now();
    const r = await stopProgram(p, s.signal, s.timeoutMs);
    const ms = Math.round(performance.now() - t);
    if (!r.killed) {
      this.o.out(`           stopped: ${s.signal}, then the program ${describeExit(r.exit)} after ${ms} ms`);
      return;
    }
    const after = r.exit ? `; it then ${describeExit(r.exit)}` : `, and it had still not exited ${s.timeoutMs} ms later`;
    throw new StepFailed(`the program (pid ${p.pid}) did not exit within ${s.timeoutMs} ms of ${s.signal}: killed it with SIGKILL${after}`);
  }

  /**
   * Starts another instance once the current one has exited, and opens a
   * new count window (window.ts): taken after a round trip to the target,
   * so what a daemon sent of the stopped instance's events is in.
   */
  private async start(s: Extract<Step, { kind: 'start' }>): Promise<void> {
    const p = this.program;
    if (p?.running) throw new StepFailed(`the program (pid ${p.pid}) is still running: stop it first (a stop step)`);
    await p?.stop(); // reaped, and what it left in its group and its tree gone
    // The round trip first: the events that come in during it are the stopped instance's.
    const devices = await this.o.target.devices();
    this.window = CountWindow.open(this.events.length, devices, this.instances.length + 1);
    this.startProgram(s);
  }

  /**
   * Waits until every thread of the program is stopped (stopped.ts): what
   * the timeline does next cannot be taken by a thread still running.
   */
  private async allStopped(pid: number, timeoutMs: number): Promise<void> {
    let running: ThreadState[] | null = null;
    try {
      await this.until(() => (running = unstoppedThreads(pid))?.length === 0, timeoutMs, `the stop of every thread of the program (pid ${pid})`, true);
    } catch (err) {
      if (!(err instanceof StepFailed) || !running) throw err;
      throw new StepFailed(`${err.message}: still not stopped: ${describeThreads(running)}`);
    }
  }

  /**
   * Fails a step about process_crashed events where the run cannot see
   * them (no process events for this user): `count: 0` would hold
   * whatever crashed.
   */
  private assertRunEventsSeen(type: string): void {
    const why = isRunEvent(type) ? this.crashes.unavailable : null;
    if (why) throw new StepFailed(`${type} events cannot be seen in this run: ${why}`);
  }

  /** Fails the step if the daemon's event stream has ended: what happened since is unknown. */
  private assertEventsWhole(): void {
    if (this.ledger.lost) throw new StepFailed(`the daemon's event stream ended (${this.ledger.lost}): what happened since is unknown`);
  }

  /** Polls `done` until it holds; fails after timeoutMs, or at once if the program exits and `needsProgram`. */
  private async until(done: () => Promise<boolean> | boolean, timeoutMs: number, what: string, needsProgram: boolean): Promise<void> {
    const end = this.elapsed + timeoutMs;
    for (;;) {
      this.assertEventsWhole();
      // The exit is read before the look: what the program did before it
      // exited is then in what done() sees, once the events still on their
      // way from a daemon have come (the stream's barrier). Read after, an
      // exit during the look failed a program that had done it all.
      const exit = needsProgram ? this.program?.exit : undefined;
      if (exit) {
        await this.o.target.sync().catch(() => {});
        this.assertEventsWhole(); // a stream that ended is what to say then
      }
      if (await done()) return;
      if (exit) throw new StepFailed(`the program ${describeExit(exit)} before ${what}`);
      if (this.elapsed >= end) throw new StepFailed(`${what} did not happen within ${timeoutMs} ms`);
      await sleep(POLL_MS);
    }
  }

  /**
   * A wait that fails says what things looked like then, so a hang seen
   * once on a loaded machine can be told from a slow step without running
   * it again: for the device it names, the program's calls still running
   * in the model (a consumer stuck in our handler, or one that never
   * asked) and the model's `status` action where it has one (a tcmu ring's
   * counters and workload, a port's termios); and where each thread of the
   * program sleeps (threads.ts).
   */
  private async wait(s: Extract<Step, { kind: 'wait' }>): Promise<void> {
    try {
      return await this.waitFor(s);
    } catch (err) {
      if (!(err instanceof StepFailed)) throw err;
      const dev = s.what === 'event' ? s.filter.device : s.device;
      const then = dev === undefined ? [] : await this.deviceThen(dev);
      const pid = this.program?.running ? this.program.pid : undefined;
      const threads = pid === undefined ? null : describeWhereThreadsAre(pid);
      if (threads !== null) then.push(`program threads then: ${threads}`);
      throw then.length ? new StepFailed([err.message, ...then].join('\n')) : err;
    }
  }

  private async deviceThen(dev: string): Promise<string[]> {
    const lines: string[] = [];
    const calls = (await this.o.target.devices().catch(() => [])).filter((d) => d.name === dev).flatMap((d) => d.inFlight);
    if (calls.length) {
      lines.push(`${dev} calls in flight then: ${calls.map((c) => `${c.op} by ${c.comm} (pid ${c.pid}) for ${c.sinceMs} ms${c.stuck ? ', stuck' : ''}${c.sleeping ? ', asleep since the unplug' : ''}`).join('; ')}`);
    }
    const status = await within(
      this.o.target.action(dev, 'status').then(
        (r) => JSON.stringify(r),
        () => null, // no status action, or the device is gone
      ),
      STATUS_MS,
      () => null, // a model's status that does not answer holds up no report
    );
    if (status !== null) lines.push(`${dev} status then: ${status}`);
    return lines;
  }

  private async waitFor(s: Extract<Step, { kind: 'wait' }>): Promise<void> {
    if (s.what === 'event') {
      this.assertRunEventsSeen(s.filter.type);
      const what = `event ${s.filter.text}${s.count > 1 ? ` x${s.count}` : ''}`;
      try {
        return await this.until(() => this.count((e) => matches(e, s.filter)) >= s.count, s.timeoutMs, what, false);
      } catch (err) {
        if (!(err instanceof StepFailed) || this.ledger.lost) throw err;
        throw new StepFailed(`${err.message}: ${shortfall(this.counted, s.filter, s.count)}`);
      }
    }
    const dev = s.device;
    const byType = (types: string[]) => () => this.count((e) => e.device === dev && types.includes(e.type));
    // The calls since the window opened. On a daemon others use, those of
    // the program's files: another client's reads must not meet a wait
    // about the program's. On the run's own emulator, where no one else
    // calls, the device's counters, on the instances still listed (a freed
    // generation takes its counts with it).
    const ops = (counter: 'reads' | 'writes') => async (): Promise<number> => {
      const devices = (await this.o.target.devices()).filter((d) => d.name === dev);
      // Synced after the list, as held() is: a file the list no longer has was released before it, and its release, which carries its count, is in.
      if (this.o.target.shared) await this.o.target.sync();
      const programs = this.o.target.shared ? this.ledger.programsCalls(this.counted, devices, dev, counter) : null;
      return programs ?? devices.reduce((n, d) => n + this.window.opsSince(d, counter), 0);
    };
    const [seen, one, many, needsProgram] = {
      opened: [byType(['opened']), 'an open of', 'opens of', true] as const,
      released: [byType(['released', 'late_released']), 'a close of', 'closes of', false] as const,
      read: [ops('reads'), 'a read on', 'reads on', true] as const,
      written: [ops('writes'), 'a write on', 'writes on', true] as const,
    }[s.what];
    const what = s.count > 1 ? `${s.count} ${many} ${dev}` : `${one} ${dev}`;
    try {
      return await this.until(async () => (await seen()) >= s.count, s.timeoutMs, what, needsProgram);
    } catch (err) {
      if (!(err instanceof StepFailed) || s.count === 1 || this.ledger.lost) throw err;
      throw new StepFailed(`${err.message} (${await seen()} seen)`);
    }
  }

  /**
   * Waits up to `withinMs` for `dev` to have unplugged generations for
   * which `final` holds, and returns them. Fails when `dev` was never
   * plugged, was not unplugged within the time, `final` did not hold by then
   * (`notFinal` says why), or no file of those generations was open when
   * its unplug began (never opened, or all closed first: a program that
   * exited before the unplug): the release an expectation is about cannot
   * have happened then.
   */
  private async unpluggedGenerations(
    dev: string,
    withinMs: number,
    final: (gens: GenerationRecord[]) => Promise<boolean> | boolean,
    notFinal: (gens: GenerationRecord[]) => Promise<string> | string,
  ): Promise<GenerationRecord[]> {
    const end = this.elapsed + withinMs;
    for (;;) {
      this.assertEventsWhole();
      const all = this.ledger.generations(dev);
      if (all.length === 0) throw new StepFailed(`there is no device ${dev} in this run (devices: ${this.ledger.names().join(', ') || 'none'})`);
      const gens = all.filter((g) => g.unplugged);
      if (gens.length > 0 && (await final(gens))) {
        const which = gens.map((g) => g.generation).join(', ');
        if (!gens.some(everOpened)) throw new StepFailed(`no file of ${dev} (generation ${which}) was open in this run: there was nothing to release`);
        // Closed before the unplug (a program that exited first): it holds whatever the program does on unplug.
        if (!gens.some(heldAtUnplug)) {
          throw new StepFailed(`every file the program opened of ${dev} (generation ${which}) was closed before its unplug began: the unplug found nothing of it to release, so this tested nothing of what the program does on unplug`);
        }
        return gens;
      }
      if (this.elapsed >= end) {
        if (gens.length === 0) throw new StepFailed(`${dev} was not unplugged within ${withinMs} ms: this expectation is about its unplugged generation`);
        throw new StepFailed(await notFinal(gens));
      }
      await sleep(POLL_MS);
    }
  }

  /**
   * The listed instances of `gens` that the program still holds open, each
   * with its holders of the program's files (ledger.ts): against a daemon,
   * another client that holds on says nothing of the program. The events
   * are synced after the list, so an open it shows is placed.
   */
  private async held(gens: GenerationRecord[]): Promise<TargetDevice[]> {
    const devices = (await this.o.target.devices()).filter((d) => gens.some((g) => g.name === d.name && g.generation === d.generation));
    await this.o.target.sync();
    return devices
      .map((d) => ({ ...d, holders: d.holders.filter((h) => this.ledger.programsFile(d.name, d.generation, h.file)) }))
      .filter((d) => d.holders.length > 0);
  }

  private async expect(s: Extract<Step, { kind: 'expect' }>): Promise<void> {
    switch (s.what) {
      case 'released': {
        await this.unpluggedGenerations(
          s.device,
          s.withinMs,
          async (gens) => (await this.held(gens)).length === 0,
          async (gens) => this.leakReport(s.device, await this.held(gens), s.withinMs),
        );
        return;
      }
      case 'lateReleases': {
        // The kernel sends FUSE_RELEASE asynchronously after the last close (fuse_release ->
        // fuse_file_put), and a late release is recorded only after remove() (fops.ts
        // lateRelease): the count is final once the events show every file closed.
        const late = (gens: GenerationRecord[]): number => gens.reduce((n, g) => n + g.lateReleases, 0);
        const open = (gens: GenerationRecord[]): number => gens.reduce((n, g) => n + g.programsOpen, 0);
        const tooMany = (gens: GenerationRecord[]): void => {
          if (late(gens) > s.count) throw new StepFailed(`expected ${s.count} lateRelease(s) on ${s.device} within ${s.withinMs} ms, saw ${late(gens)}`);
        };
        const gens = await this.unpluggedGenerations(
          s.device,
          s.withinMs,
          (g) => (tooMany(g), open(g) <= 0),
          (g) => `${s.device} still has ${open(g)} file(s) open after ${s.withinMs} ms: its lateRelease count (${late(g)} so far) is not final`,
        );
        if (late(gens) !== s.count) throw new StepFailed(`expected ${s.count} lateRelease(s) on ${s.device} within ${s.withinMs} ms, saw ${late(gens)}`);
        return;
      }
      case 'exit': {
        const p = this.program;
        if (!p) throw new StepFailed('there is no program under test');
        const e = await within<ProgramExit | null>(p.exited, s.withinMs, () => null);
        if (!e) throw new StepFailed(`the program (pid ${p.pid}) is still running after ${s.withinMs} ms`);
        const ended = typeof s.code === 'number' ? e.code === s.code : e.signal === s.code;
        const wanted = typeof s.code === 'number' ? `exit code ${s.code}` : `a kill by ${s.code}`;
        if (e.notStarted || !ended) throw new StepFailed(`expected ${wanted}; the program ${describeExit(e)}`);
        this.instances[this.instances.length - 1]!.exitJudged = true;
        return;
      }
      case 'running': {
        const p = this.program;
        if (!p) throw new StepFailed('there is no program under test');
        if (!p.running) throw new StepFailed(`the program ${p.exit ? describeExit(p.exit) : 'has exited'}`);
        return;
      }
      case 'noStuck': {
        // Stuck handlers are found by an unplug's drain: with none, there is nothing to hold.
        // On a daemon, another client's unplug of a device it holds says nothing of the program's.
        const unplugged = (): GenerationRecord[] => this.ledger.all().filter((g) => g.unplugged && this.failures.ours(g.name));
        // Against a daemon, the events of the unplugs begun so far may still be on their way.
        this.assertEventsWhole();
        await this.o.target.sync();
        if (unplugged().length === 0) throw new StepFailed('no device was unplugged in this run: noStuck is about what an unplug found; put it after one');
        // Wait for every drain begun to end (each is bounded by its drainTimeoutMs); the scenario's timeout bounds the rest.
        await this.until(() => unplugged().every((g) => g.drained), MAX_DURATION_MS, 'the end of every unplug\'s drain', false);
        // The stuck handlers of the run's unplugs that are the program's: against a daemon, another
        // client's call stuck in a device the run unplugs, or a stuck call of another run's unplug,
        // is not the program's hang. A drain that counted more than its events say fails as before.
        const of = (g: GenerationRecord, e: DeviceEvent): boolean => e.device === g.name && e.generation === g.generation;
        const drainedStuck = this.events.filter((e) => e.type === CoreEvent.stuck && unplugged().some((g) => of(g, e)));
        const stuck = drainedStuck.filter((e) => this.cameFrom.get(e) !== ANOTHER_CLIENT);
        const counted = unplugged().filter((g) => g.stuck > drainedStuck.filter((e) => of(g, e)).length);
        // A read the device put to sleep (rtc_dev_read() after unregister) is the program's hang, as on a real machine;
        // another client's is not (a daemon's other clients may read the device the run unplugs).
        const programs = this.events.filter((e) => this.cameFrom.get(e) !== ANOTHER_CLIENT);
        const asleep = unplugged().flatMap((g) => stillAsleep(programs, g));
        if (stuck.length || counted.length || asleep.length) {
          const lines = stuck.map((e) => `${e.device}: ${String(e.op)} by pid ${String(e.pid)} (${String(e.comm)}) stuck after ${String(e.sinceMs)} ms`);
          if (lines.length === 0) lines.push(...counted.map((g) => `${g.name}: ${g.stuck} handler(s) stuck at unplug`));
          lines.push(...asleep);
          throw new StepFailed(lines.join('\n'));
        }
        // Only a call on an open file can be stuck: with none, noStuck would hold whatever the program does.
        if (!unplugged().some(heldAtUnplug)) {
          const which = unplugged().map((g) => `${g.name} generation ${g.generation}`).join(', ');
          throw new StepFailed(`no file the program opened of ${which} was open when it was unplugged: no handler of it could be stuck; noStuck is about an unplug of a device the program holds`);
        }
        return;
      }
      case 'event': {
        this.assertRunEventsSeen(s.filter.type);
        // With `for`, looked at until it has held that long: fails at the first look it does not.
        const start = this.elapsed;
        for (;;) {
          this.assertEventsWhole();
          // Against a daemon, events may still be on their way: judge every one recorded by now.
          await this.o.target.sync();
          this.crashes.sync();
          const gens = s.filter.device === undefined ? this.ledger.all() : this.ledger.generations(s.filter.device);
          const why = eventExpectationFails(this.counted, s) ?? absentSubject(s, gens);
          if (why) throw new StepFailed(s.forMs === undefined ? why : `${why} (${Math.round(this.elapsed - start)} ms into ${s.forMs})`);
          if (this.elapsed - start >= (s.forMs ?? 0)) return;
          await sleep(POLL_MS);
        }
      }
      case 'result': {
        // The step that saves it ran before this one (schema.ts checks the order), and a failed step ends the run.
        const why = resultExpectationFails(this.results.get(s.name), s);
        if (why) throw new StepFailed(why);
        return;
      }
    }
  }

  private leakReport(dev: string, held: TargetDevice[], withinMs: number): string {
    const lines = [`${dev} was not released within ${withinMs} ms:`];
    for (const d of held) {
      for (const h of d.holders) {
        const fds = heldFds(h.pid, this.o.target.mountpoint).map((f) => `fd ${f.fd} (${f.path})`);
        const held = fds.length ? `holds ${fds.join(', ')}` : 'holds an open file description';
        const under = openedUnder(this.instances, h.pid, h.openedAt);
        lines.push(`  pid ${h.pid} (${h.comm || '?'}) ${held} on generation ${d.generation}, open ${secs(Date.now() - h.openedAt)}${under}`);
      }
    }
    return lines.join('\n');
  }
}

export function runScenario(s: Scenario, o: RunOptions): Promise<ScenarioResult> {
  return new Run(s, o).run();
}
