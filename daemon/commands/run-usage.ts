/**
 * What `cdevemu run` is told and how its usage reads: shared by the
 * command's definition (run.ts), built for every command line, and the
 * run itself (../run-scenario.ts), loaded only when `run` or `record` runs.
 */
import type { RunFlag } from '../../src/scenario/index.js';

export interface RunOpts {
  socket?: string;
  preset?: string;
  junit?: string;
  report?: string;
  bind: string[];
  model: string[];
  logLevel: string;
  asUser?: boolean;
  /** The scenario given by flags: its name and bound (a file has its own). */
  name?: string;
  timeout?: string;
}

/** What run's parser saw (run.ts RunCommand): the scenario flags in the order given, and the operands before `--`. */
export interface ParsedRun {
  readonly scenarioFlags: readonly RunFlag[];
  readonly operandsBeforeDashes: number;
}

export const USAGE = 'cdevemu run [options] <scenario> [-- command...]';
export const FLAGS_USAGE = 'cdevemu run [options] --device NAME=MODEL[:OPTIONS]... [--action|--unplug|--replug ...] --expect ... -- command...';
