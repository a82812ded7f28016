/**
 * A scenario given as `cdevemu run` flags (src/scenario/flags.ts): read by
 * the scenario loader into the very timeline its file form has, checked by
 * the same checks, and refused with one line naming the flag. No mount, no
 * root; test/scenario/oneliner.test.ts runs the one-liners.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinModels } from '../../src/models/index.js';
import { checkScenario, eventCatalog } from '../../src/scenario/check.js';
import { scenarioFromFlags, type RunFlag } from '../../src/scenario/flags.js';
import { loadScenario } from '../../src/scenario/schema.js';
import { UIO_UNPLUG_FLAGS } from '../fixtures/uio-unplug-flags.js';
import { repoRoot } from '../helpers/cli.js';
import { refusal } from '../helpers/refusal.js';

/** `['--device', 'uio0=uio', ...]` as the command line gives them, in order. */
function flags(words: string[]): RunFlag[] {
  const out: RunFlag[] = [];
  for (let i = 0; i < words.length; i += 2) out.push({ name: words[i]!.slice(2) as RunFlag['name'], value: words[i + 1]! });
  return out;
}

const build = (words: string[], timeout?: string) =>
  scenarioFromFlags({ flags: flags(words), name: 'one-liner', cwd: '/srv', ...(timeout === undefined ? {} : { timeout }) });

/** What `cdevemu run` does with the flags before it plugs anything: build, then check against the built-in models. */
function load(words: string[]): void {
  const built = build(words);
  try {
    checkScenario(built.scenario, [], eventCatalog(builtinModels));
  } catch (err) {
    throw built.explain(err);
  }
}

describe('a scenario given by flags', () => {
  it('is the example uio scenario, step for step, when it says what the file says', async () => {
    const file = await loadScenario(join(repoRoot, 'examples/scenarios/uio-unplug.yaml'));
    const { scenario } = build(UIO_UNPLUG_FLAGS);
    expect(scenario.devices).toEqual(file.devices);
    expect(scenario.faults).toEqual(file.faults);
    expect(scenario.timeline.map((t) => [t.title, t.step])).toEqual(file.timeline.map((t) => [t.title, t.step]));
    expect(scenario.timeoutMs).toBe(file.timeoutMs);
  });

  it('runs the steps in the order given across flags, each after its WHEN, and the expectations after them', () => {
    const { scenario, flagOf } = build([
      '--expect',
      'exit:SIGTERM',
      '--device',
      'e0=echo',
      '--unplug',
      'e0:surprise@written:3:5s',
      '--expect',
      'running',
      '--replug',
      'e0@1.5s',
      '--action',
      'e0:poke={"n":1}',
      '--unplug',
      'e0@opened',
    ]);
    expect(scenario.timeline.map((t) => t.step)).toEqual([
      { kind: 'wait', what: 'written', device: 'e0', count: 3, timeoutMs: 5000 },
      { kind: 'unplug', device: 'e0', mode: 'surprise' },
      { kind: 'sleep', ms: 1500 },
      { kind: 'replug', device: 'e0' },
      { kind: 'action', device: 'e0', action: 'poke', arg: { n: 1 } },
      { kind: 'wait', what: 'opened', device: 'e0', count: 1, timeoutMs: 10_000 },
      { kind: 'unplug', device: 'e0' },
      { kind: 'expect', what: 'exit', code: 'SIGTERM', withinMs: 10_000 },
      { kind: 'expect', what: 'running' },
    ]);
    expect([0, 1, 4, 5, 7, 8].map(flagOf)).toEqual([
      '--unplug e0:surprise@written:3:5s',
      '--unplug e0:surprise@written:3:5s',
      '--action e0:poke={"n":1}',
      '--unplug e0@opened',
      '--expect exit:SIGTERM',
      '--expect running',
    ]);
  });

  it('takes OPTIONS and RULE as k=v,k=v or as JSON, values JSON where they parse; an action argument likewise', () => {
    const kv = build([
      '--device',
      'u:0=uio:size=8192,name=x',
      '--fault',
      'device=u:0,op=read,nth=2,action=fail,errno=EIO',
      '--action',
      'u:0:irq=go',
      '--expect',
      'running',
    ]);
    const json = build([
      '--device',
      'u:0=uio:{"size":8192,"name":"x"}',
      '--fault',
      '{"device":"u:0","op":"read","nth":2,"action":"fail","errno":"EIO"}',
      '--action',
      'u:0:irq="go"',
      '--expect',
      'running',
    ]);
    expect(kv.scenario.devices).toEqual([{ model: 'uio', name: 'u:0', options: { size: 8192, name: 'x' } }]);
    expect(json.scenario.devices).toEqual(kv.scenario.devices);
    expect(json.scenario.faults).toEqual(kv.scenario.faults);
    expect(kv.scenario.faults[0]).toMatchObject({ device: 'u:0', op: 'read', nth: 2, action: 'fail', errno: 'EIO' });
    expect(json.scenario.timeline[0]!.step).toEqual({ kind: 'action', device: 'u:0', action: 'irq', arg: 'go' });
    expect(kv.scenario.timeline[0]!.step).toEqual(json.scenario.timeline[0]!.step);
  });

  it('takes a RULE\'s device and comm as names, even where they read as JSON: the device null, the process 123', () => {
    const { scenario } = build(['--device', 'null=null', '--fault', 'device=null,comm=123,op=write,action=fail,errno=EIO', '--expect', 'running']);
    expect(scenario.faults[0]).toMatchObject({ device: 'null', comm: '123' });
    expect(build(['--device', 'null=null', '--fault', 'device="null",op=write,action=fail,errno=EIO', '--expect', 'running']).scenario.faults[0]).toMatchObject({
      device: 'null',
    });
  });

  it('takes --name and --timeout', () => {
    const { scenario } = build(['--device', 'e0=echo', '--expect', 'running'], '90s');
    expect(scenario.name).toBe('one-liner');
    expect(scenario.timeoutMs).toBe(90_000);
  });
});

describe('refused with one line naming the flag', () => {
  const device = ['--device', 'uio0=uio'];
  const cases: Array<[string, string[], string]> = [
    // The checks of check.ts: no verdict about a device the run does not have.
    [
      'an expectation on a device not plugged',
      [...device, '--expect', 'released:uio1'],
      '--expect released:uio1: unknown device "uio1" (known: uio0)',
    ],
    [
      'a step on a device not plugged',
      [...device, '--unplug', 'uio9@opened', '--expect', 'exit:0'],
      '--unplug uio9@opened: unknown device "uio9" (known: uio0)',
    ],
    [
      'a fault rule whose glob matches no device',
      [...device, '--fault', 'device=e*,op=read,action=fail,errno=EIO', '--expect', 'exit:0'],
      '--fault device=e*,op=read,action=fail,errno=EIO: device: "e*" matches no device (known: uio0)',
    ],
    // The loader's own refusals.
    [
      'nothing that can fail',
      [...device, '--unplug', 'uio0@2s'],
      'run: nothing to check: give an --expect (exit:0, released:NAME, ...) or a step @opened, @read...: a run that checks nothing cannot fail',
    ],
    [
      'a device name with %d',
      ['--device', 'uio%d=uio', '--expect', 'exit:0'],
      '--device uio%d=uio: name: a scenario names its devices (uio0, not uio%d): its steps and expectations refer to them by name',
    ],
    [
      'a bad fault field',
      [...device, '--fault', 'device=uio0,op=read,action=fail,errno=EWHAT', '--expect', 'exit:0'],
      '--fault device=uio0,op=read,action=fail,errno=EWHAT: errno: expected an errno name such as EIO',
    ],
    [
      'a count of 0',
      [...device, '--action', 'uio0:irq@read:0', '--expect', 'exit:0'],
      '--action uio0:irq@read:0: must be at least 1, got 0',
    ],
    [
      'an unknown signal',
      [...device, '--expect', 'exit:SIGNOPE'],
      '--expect exit:SIGNOPE: expected a signal name such as SIGTERM, got "SIGNOPE"',
    ],
    // The flags' own grammar.
    [
      'a time that is none',
      [...device, '--unplug', 'uio0@soon', '--expect', 'exit:0'],
      '--unplug uio0@soon: "soon" after @ is not a time: expected opened, read, written or released (the program on the device; :COUNT and :TIMEOUT may follow, e.g. read:2:5s), or a duration such as 2s',
    ],
    [
      'a timeout before a count',
      [...device, '--unplug', 'uio0@read:5s:2', '--expect', 'exit:0'],
      '--unplug uio0@read:5s:2: "2" in @read:5s:2: expected a count, then a timeout with its unit (read:2:5s)',
    ],
    [
      'a device without a model',
      ['--device', 'uio0', '--expect', 'exit:0'],
      '--device uio0: expected NAME=MODEL[:OPTIONS], e.g. uio0=uio or uio0=uio:size=8192',
    ],
    [
      'an option without a value',
      ['--device', 'uio0=uio:size', '--expect', 'exit:0'],
      '--device uio0=uio:size: "size" is not KEY=VALUE (OPTIONS are KEY=VALUE,KEY=VALUE or a JSON object)',
    ],
    [
      'options that are not JSON',
      ['--device', 'uio0=uio:{size:1}', '--expect', 'exit:0'],
      '--device uio0=uio:{size:1}: OPTIONS: not valid JSON: ',
    ],
    [
      'options that are not a mapping',
      ['--device', 'uio0=uio:{"a":1}', '--device', 'e=echo:[1]', '--expect', 'exit:0'],
      '--device e=echo:[1]: "[1]" is not KEY=VALUE',
    ],
    [
      'an option given twice',
      ['--device', 'uio0=uio:size=1,size=2', '--expect', 'exit:0'],
      '--device uio0=uio:size=1,size=2: size is given twice',
    ],
    [
      'a device given twice',
      [...device, '--device', 'uio0=echo', '--expect', 'exit:0'],
      '--device uio0=echo: uio0 is already plugged by --device uio0=uio',
    ],
    ['an action without a device', [...device, '--action', 'irq', '--expect', 'exit:0'], '--action irq: expected NAME:ACTION[=ARG][@WHEN]'],
    [
      'an unknown expectation',
      [...device, '--expect', 'gone:uio0'],
      '--expect gone:uio0: expected one of released:NAME[:WITHIN], lateReleases:NAME:COUNT[:WITHIN], opened:NAME[:COUNT][:WITHIN], exit:CODE[:WITHIN], running or noStuck',
    ],
    [
      'lateReleases without a count',
      [...device, '--expect', 'lateReleases:uio0'],
      '--expect lateReleases:uio0: expected lateReleases:NAME:COUNT[:WITHIN], e.g. lateReleases:uio0:1',
    ],
    ['running with an argument', [...device, '--expect', 'running:uio0'], '--expect running:uio0: expected running alone'],
  ];
  it.each(cases)('%s', (_what, words, message) => {
    const said = refusal(() => load(words));
    expect(said.startsWith(message), said).toBe(true);
    expect(said.split('\n')).toHaveLength(1);
  });

  it('--timeout that is no duration', () => {
    expect(refusal(() => build(['--device', 'e0=echo', '--expect', 'running'], 'soon'))).toBe(
      '--timeout soon: expected a duration such as 500ms, 2s or 250 (ms), got "soon"',
    );
  });
});
