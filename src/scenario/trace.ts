/**
 * What happened in a run, kept for its report (`cdevemu run --report`,
 * html-report.ts): each instance of the program with its command, pid and
 * exit, every line it wrote (and the log files a preset follows), and the
 * events, each with the time since the run began. The runner records; the
 * report reads the trace once the run is over.
 */
import type { DeviceEvent } from '../core/events.js';
import type { ProgramExit } from './program.js';

export interface TracedProgram {
  /** 1 for the program the run starts, then one more for each `start` step (restart.ts). */
  n: number;
  command: string[];
  pid: number | null;
  /** ms since the run began. */
  startMs: number;
  /** ms since the run began when its exit was seen; null if it was still running at the end of the trace. */
  endMs: number | null;
  exit: ProgramExit | null;
}

export interface TracedLine {
  /** ms since the run began. */
  atMs: number;
  /** The instance that wrote it; a log file's line is given to the instance running when it was read. */
  program: number;
  /** stdout, stderr, or a log file the run follows. */
  stream: 'out' | 'err' | 'log';
  text: string;
}

export interface RunTraceData {
  /** Epoch ms when the run began: events carry epoch times (DeviceEvent.at). */
  startedAt: number;
  programs: TracedProgram[];
  output: TracedLine[];
  /** Every event the run received, in order (with --socket, from the daemon's stream). */
  events: DeviceEvent[];
}

export class RunTrace {
  private readonly data: RunTraceData;

  /** `elapsed` is the run's own clock (ms since it began), so trace times match its steps' times. */
  constructor(private readonly elapsed: () => number) {
    this.data = { startedAt: Date.now() - elapsed(), programs: [], output: [], events: [] };
  }

  started(n: number, command: readonly string[], pid: number | undefined): void {
    this.data.programs.push({ n, command: [...command], pid: pid ?? null, startMs: this.elapsed(), endMs: null, exit: null });
  }

  exited(n: number, exit: ProgramExit): void {
    const p = this.data.programs.find((q) => q.n === n);
    if (p) Object.assign(p, { endMs: this.elapsed(), exit });
  }

  /** A line instance `program` wrote; a log file's (`log`) goes to the newest instance. */
  line(stream: TracedLine['stream'], text: string, program = this.data.programs.at(-1)?.n ?? 0): void {
    this.data.output.push({ atMs: this.elapsed(), program, stream, text });
  }

  event(e: DeviceEvent): void {
    this.data.events.push(e);
  }

  /** The trace so far (the runner's result holds it). */
  get result(): RunTraceData {
    return this.data;
  }
}
