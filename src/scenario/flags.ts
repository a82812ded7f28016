/**
 * A scenario given as `cdevemu run` flags instead of a file, as
 * umockdev-run takes its devices on the command line (README.md,
 * "One-liners"):
 *
 *   cdevemu run --device uio0=uio --action uio0:irq@opened --unplug uio0@read \
 *       --expect released:uio0:2s --expect exit:0 -- python3 consumer.py '{mount}/dev/uio0'
 *
 *   --device NAME=MODEL[:OPTIONS]     plugged first; OPTIONS k=v,k=v or a JSON object
 *   --fault RULE                      added before the program starts; k=v,k=v or JSON
 *   --action NAME:ACTION[=ARG][@WHEN] a model action; ARG JSON, else a string
 *   --unplug NAME[:surprise][@WHEN]
 *   --replug NAME[@WHEN]
 *   --expect released:NAME[:WITHIN] | lateReleases:NAME:COUNT[:WITHIN] | opened:NAME[:COUNT][:WITHIN]
 *            | exit:CODE[:WITHIN] | running | noStuck
 *
 * WHEN is an event of the program on NAME, `opened`, `read`, `written`
 * or `released`, with an optional `:COUNT` and `:TIMEOUT` (`read:2:5s`):
 * a wait step, so the step happens after the program did that however
 * slow the machine is. Or a duration (`2s`): a sleep after the step
 * before, which races the program. Without WHEN the step follows the one
 * before at once. The steps run in the order given, the expectations
 * after them, in theirs.
 *
 * The flags are written into the document a scenario file would hold and
 * read by the same loader (schema.ts), then checked by the same checks
 * (check.ts), so a one-liner is refused, run and judged as that file
 * would be; explain() says a refusal about the flag it came from.
 */
import { ConfigError, SourceDocument } from '../config/index.js';
import { jsonOrString, parseKeyValue } from '../config/key-value.js';
import { NAME_FIELDS } from '../faults/index.js';
import { readScenario, type Scenario } from './schema.js';

export const RUN_FLAGS = ['device', 'fault', 'action', 'unplug', 'replug', 'expect'] as const;
export type RunFlagName = (typeof RUN_FLAGS)[number];

/** One flag as given, in the order given across all of them. */
export interface RunFlag {
  name: RunFlagName;
  value: string;
}

export interface FlagScenarioOptions {
  flags: readonly RunFlag[];
  /** The scenario's name (`--name`, else the program's command line). */
  name: string;
  /** `--timeout`: the bound on the whole run, a duration as a scenario's `timeout`. */
  timeout?: string;
  /** Where the program's relative paths start. */
  cwd: string;
}

/** What a one-liner's scenario is labelled with where a scenario file's path would go (its JUnit `file`, its setup errors). */
export const FLAGS_LABEL = 'command line';

export interface FlagScenario {
  scenario: Scenario;
  /** The flag behind timeline step `index`, as typed: `--expect released:uio0:2s`. */
  flagOf(index: number): string | undefined;
  /** A refusal of the loader or of check.ts, said about the flag it came from; anything else as it is. */
  explain(err: unknown): unknown;
}

/** Where a field of the document came from; `inner`: the field's path inside it names something the user typed (an option, a rule field). */
interface Origin {
  field: string;
  flag: string;
  inner: boolean;
}

type Doc = Record<string, unknown>;

const DURATION = /^\d+(?:\.\d+)?(?:ms|s|m)$/;
const WAITS = ['opened', 'read', 'written', 'released'];
const WHEN_FORM =
  'opened, read, written or released (the program on the device; :COUNT and :TIMEOUT may follow, e.g. read:2:5s), or a duration such as 2s';
const EXPECT_FORMS = 'released:NAME[:WITHIN], lateReleases:NAME:COUNT[:WITHIN], opened:NAME[:COUNT][:WITHIN], exit:CODE[:WITHIN], running or noStuck';

const refused = (flag: string, detail: string): ConfigError => new ConfigError('', null, '', `${flag}: ${detail}`);

/** `NAME@WHEN`: the text before the last `@`, and WHEN (null without `@`: device names hold no `@`). */
function splitWhen(value: string): [string, string | null] {
  const at = value.lastIndexOf('@');
  return at < 0 ? [value, null] : [value.slice(0, at), value.slice(at + 1)];
}

/** The steps WHEN puts before a flag's own step on `device`. */
function whenSteps(flag: string, when: string | null, device: string): Doc[] {
  if (when === null) return [];
  if (DURATION.test(when)) return [{ sleep: when }];
  const [what = '', ...rest] = when.split(':');
  if (!WAITS.includes(what)) throw refused(flag, `${JSON.stringify(when)} after @ is not a time: expected ${WHEN_FORM}`);
  const wait: Doc = { [what]: device };
  for (const r of rest) {
    if (/^\d+$/.test(r) && wait.count === undefined && wait.timeout === undefined) wait.count = Number(r);
    else if (DURATION.test(r) && wait.timeout === undefined) wait.timeout = r;
    else throw refused(flag, `${JSON.stringify(r)} in @${when}: expected a count, then a timeout with its unit (read:2:5s)`);
  }
  return [{ wait }];
}

/** OPTIONS or a fault RULE: a JSON object, or KEY=VALUE words joined by commas (values JSON when they parse, but for the keys in `names`). */
function readMapping(flag: string, text: string, what: string, names?: ReadonlySet<string>): Doc {
  if (text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text) as Doc;
    } catch (err) {
      throw refused(flag, `${what}: not valid JSON: ${(err as Error).message}`);
    }
  }
  const out: Doc = {};
  for (const word of text.split(',')) {
    const pair = parseKeyValue(word, names);
    if (!pair) throw refused(flag, `${JSON.stringify(word)} is not KEY=VALUE (${what} are KEY=VALUE,KEY=VALUE or a JSON object)`);
    if (Object.hasOwn(out, pair[0])) throw refused(flag, `${pair[0]} is given twice`);
    out[pair[0]] = pair[1];
  }
  return out;
}

/** `NAME=MODEL[:OPTIONS]`: names hold no `=`, models no `:`. */
function deviceEntry(flag: string, value: string): Doc {
  const eq = value.indexOf('=');
  if (eq <= 0) throw refused(flag, 'expected NAME=MODEL[:OPTIONS], e.g. uio0=uio or uio0=uio:size=8192');
  const rest = value.slice(eq + 1);
  const colon = rest.indexOf(':');
  const entry: Doc = { model: colon < 0 ? rest : rest.slice(0, colon), name: value.slice(0, eq) };
  if (colon >= 0) entry.options = readMapping(flag, rest.slice(colon + 1), 'OPTIONS');
  return entry;
}

/** `NAME:ACTION[=ARG]`: an action's name holds neither `:` nor `=`; a device's may hold `:`. */
function actionStep(flag: string, head: string): Doc {
  const eq = head.indexOf('=');
  const target = eq < 0 ? head : head.slice(0, eq);
  const colon = target.lastIndexOf(':');
  if (colon <= 0 || colon === target.length - 1)
    throw refused(flag, 'expected NAME:ACTION[=ARG][@WHEN], e.g. uio0:irq@opened or event0:key={"code":30}');
  const action: Doc = { device: target.slice(0, colon), action: target.slice(colon + 1) };
  if (eq >= 0) action.arg = jsonOrString(head.slice(eq + 1));
  return { action };
}

/** `NAME[:MODE]`: the step, and the device it is about. */
function unplugStep(head: string): [Doc, string] {
  const m = /^(.*):(orderly|surprise)$/.exec(head);
  return m ? [{ unplug: { device: m[1], mode: m[2] } }, m[1]!] : [{ unplug: head }, head];
}

/** `TEXT[:DURATION]`: TEXT, and the duration if the text ends with one. */
function trailingDuration(text: string): [string, string | undefined] {
  const m = /^(.*):(\d+(?:\.\d+)?(?:ms|s|m))$/.exec(text);
  return m ? [m[1]!, m[2]] : [text, undefined];
}

const withWithin = (expect: Doc, within: string | undefined): Doc => ({ expect: within === undefined ? expect : { ...expect, within } });

function expectStep(flag: string, value: string): Doc {
  const colon = value.indexOf(':');
  const kind = colon < 0 ? value : value.slice(0, colon);
  const args = colon < 0 ? null : value.slice(colon + 1);
  const form = (shape: string): ConfigError => refused(flag, `expected ${shape}`);
  switch (kind) {
    case 'released': {
      if (!args) throw form('released:NAME[:WITHIN], e.g. released:uio0:2s');
      const [name, within] = trailingDuration(args);
      return withWithin({ released: name }, within);
    }
    case 'lateReleases': {
      const [head, within] = trailingDuration(args ?? '');
      const m = /^(.+):(\d+)$/.exec(head);
      if (!m) throw form('lateReleases:NAME:COUNT[:WITHIN], e.g. lateReleases:uio0:1');
      return withWithin({ device: m[1], lateReleases: Number(m[2]) }, within);
    }
    case 'opened': {
      // A wait, not a count taken at once: judged right after the program's start,
      // a count would not have seen the opens yet. It fails when the program exits
      // first, so a program given a wrong path, which opens nothing, fails.
      const [head, within] = trailingDuration(args ?? '');
      const m = /^([^:]+)(?::(\d+))?$/.exec(head);
      if (!m || m[2] === '0') throw form('opened:NAME[:COUNT][:WITHIN], COUNT at least 1, e.g. opened:uio0 or opened:uio0:2:30s');
      return { wait: { opened: m[1], count: Number(m[2] ?? 1), ...(within === undefined ? {} : { timeout: within }) } };
    }
    case 'exit': {
      const [code, within] = trailingDuration(args ?? '');
      if (!code || code.includes(':')) throw form('exit:CODE[:WITHIN], CODE a number or a signal name, e.g. exit:0:5s or exit:SIGTERM');
      return withWithin({ exit: /^\d+$/.test(code) ? Number(code) : code }, within);
    }
    case 'running':
    case 'noStuck':
      if (args !== null) throw form(`${kind} alone`);
      return { expect: { [kind]: true } };
    default:
      throw refused(flag, `expected one of ${EXPECT_FORMS}`);
  }
}

/** Builds the scenario the flags describe, through the loader a scenario file goes through. */
export function scenarioFromFlags(o: FlagScenarioOptions): FlagScenario {
  const origins: Origin[] = [];
  const devices: Doc[] = [];
  const faults: Doc[] = [];
  const steps: Array<{ step: Doc; flag: string }> = [];
  const expects: Array<{ step: Doc; flag: string }> = [];
  const plugged = new Map<string, string>();
  for (const { name, value } of o.flags) {
    const flag = `--${name} ${value}`;
    const [head, when] = name === 'action' || name === 'unplug' || name === 'replug' ? splitWhen(value) : [value, null];
    const timed = (step: Doc, device: string): void => {
      for (const s of [...whenSteps(flag, when, device), step]) steps.push({ step: s, flag });
    };
    switch (name) {
      case 'device': {
        const entry = deviceEntry(flag, value);
        const first = plugged.get(entry.name as string);
        if (first) throw refused(flag, `${String(entry.name)} is already plugged by ${first}`);
        plugged.set(entry.name as string, flag);
        origins.push({ field: `devices[${devices.length}]`, flag, inner: true });
        devices.push(entry);
        break;
      }
      case 'fault':
        origins.push({ field: `faults[${faults.length}]`, flag, inner: true });
        faults.push(readMapping(flag, value, 'RULE', NAME_FIELDS));
        break;
      case 'action': {
        const step = actionStep(flag, head);
        timed(step, (step.action as Doc).device as string);
        break;
      }
      case 'unplug':
        timed(...unplugStep(head));
        break;
      case 'replug':
        timed({ replug: head }, head);
        break;
      case 'expect':
        expects.push({ step: expectStep(flag, value), flag });
        break;
    }
  }
  const timeline = [...steps, ...expects];
  timeline.forEach((t, i) => origins.push({ field: `timeline[${i}]`, flag: t.flag, inner: false }));
  if (!timeline.some((t) => 'wait' in t.step || 'expect' in t.step)) {
    throw refused(
      'run',
      'nothing to check: give an --expect (exit:0, released:NAME, ...) or a step @opened, @read...: a run that checks nothing cannot fail',
    );
  }
  const doc: Doc = { name: o.name, devices, faults, timeline: timeline.map((t) => t.step) };
  if (o.timeout !== undefined) {
    doc.timeout = o.timeout;
    origins.push({ field: 'timeout', flag: `--timeout ${o.timeout}`, inner: false });
  }
  const explain = (err: unknown): unknown => {
    if (!(err instanceof ConfigError) || err.file !== FLAGS_LABEL) return err;
    const from = origins.find((g) => err.field === g.field || err.field.startsWith(`${g.field}.`) || err.field.startsWith(`${g.field}[`));
    if (!from) return err;
    const inner = from.inner ? err.field.slice(from.field.length).replace(/^\./, '') : '';
    return refused(from.flag, `${inner ? `${inner}: ` : ''}${err.detail}`);
  };
  try {
    const scenario = readScenario(SourceDocument.fromValue(doc, FLAGS_LABEL), o.cwd);
    return { scenario, flagOf: (i) => timeline[i]?.flag, explain };
  } catch (err) {
    throw explain(err);
  }
}
