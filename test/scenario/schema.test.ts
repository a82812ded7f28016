/**
 * Scenario files (src/scenario/schema.ts) as a user writes them: every step
 * kind is read into the runner's shape, and a bad file is refused with one
 * file:line: field line. No mount, no root.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SourceDocument } from '../../src/config/index.js';
import { CORE_EVENT_FIELDS } from '../../src/core/events.js';
import { builtinModels } from '../../src/models/index.js';
import type { AnyDeviceModel } from '../../src/core/index.js';
import { checkHasProgram, checkProgramSteps, checkScenario, eventCatalog, pluggedModels } from '../../src/scenario/check.js';
import { describeModel, type ModelView } from '../../src/core/model-view.js';
import { parseBind, readScenario } from '../../src/scenario/schema.js';
import { itRefuses, refusal } from '../helpers/refusal.js';

const read = (text: string) => readScenario(SourceDocument.parse(text, 's.yaml'), '/srv/scen');
/** What `cdevemu run` does before it plugs anything: read the file, then check its names and filters against the built-in models. */
const load = (text: string) => checkScenario(read(text), [], eventCatalog(builtinModels));
/** The built-in models as a daemon lists them (GET /v1/models). */
const daemonModels = builtinModels.map(describeModel);
/** As with --socket: the daemon's devices (`uio0` of model uio: the name without its number) and its models, as it lists them. */
const loadRemote = (text: string, present: string[], models: ModelView[] = daemonModels) =>
  checkScenario(
    read(text),
    present.map((name) => ({ name, model: name.replace(/\d+$/, '') })),
    eventCatalog(models, 'any'),
  );

describe('scenario schema', () => {
  it('reads devices, program and every kind of step', () => {
    const s = read(
      [
        'name: demo',
        'devices: [{ model: uio, name: uio0 }]',
        'program: { command: [python3, ./c.py, "{mount}/dev/uio0"], bind: ["/dev/uio0=dev/uio0"] }',
        'timeout: 30s',
        'timeline:',
        '  - wait: { opened: uio0, timeout: 5s }',
        '  - action: { device: uio0, action: irq }',
        '  - fault: { device: uio0, op: read, nth: 2, action: fail, errno: EIO }',
        '  - sleep: 200ms',
        '  - unplug: uio0',
        '  - replug: uio0',
        '  - expect: { released: uio0, within: 2s }',
        '  - expect: { device: uio0, lateReleases: 1 }',
        '  - expect: { exit: 0, within: 5s }',
        '  - expect: { noStuck: true }',
      ].join('\n'),
    );
    expect(s.name).toBe('demo');
    expect(s.timeoutMs).toBe(30_000);
    expect(s.devices).toEqual([{ model: 'uio', name: 'uio0' }]);
    expect(s.program?.bind).toEqual(['/dev/uio0=dev/uio0']);
    expect(s.timeline.map((t) => t.step.kind)).toEqual([
      'wait',
      'action',
      'fault',
      'sleep',
      'unplug',
      'replug',
      'expect',
      'expect',
      'expect',
      'expect',
    ]);
    expect(s.timeline[0]).toMatchObject({ line: 6, step: { kind: 'wait', what: 'opened', device: 'uio0', timeoutMs: 5000 } });
    expect(s.timeline[3]!.step).toEqual({ kind: 'sleep', ms: 200 });
    expect(s.timeline[6]!.step).toMatchObject({ kind: 'expect', what: 'released', device: 'uio0', withinMs: 2000 });
  });

  itRefuses(read, [
    ['an unknown step', 'timeline:\n  - sleep: 1s\n  - dance: 3\n', 's.yaml:3: timeline[1].dance: unknown field'],
    ['a bad duration', 'timeline:\n  - sleep: soon\n', 's.yaml:2: timeline[0].sleep: expected a duration'],
    ['an unknown errno', 'timeline:\n  - fault:\n      action: fail\n      errno: EWHATEVER\n', 's.yaml:4: timeline[0].fault.errno: '],
    ['no timeline', 'name: x\n', 's.yaml:1: timeline: missing'],
    [
      'a relative bind host path',
      'program: { command: [x], bind: ["dev/uio0=dev/uio0"] }\ntimeline: []\n',
      's.yaml:1: program.bind[0]: expected HOSTPATH=MOUNTPATH: an absolute host path and a path in the mount, without . or .., e.g. /dev/uio0=dev/uio0',
    ],
  ]);

  it('reads an unplug step with a notice bound and in the background', () => {
    const sc = read('devices: [{ model: tcmu, name: uio0 }]\ntimeline:\n  - unplug: { device: uio0, noticeTimeout: 5s, background: true }\n  - expect: { released: uio0, within: 2s }\n');
    expect(sc.timeline[0]).toMatchObject({ step: { kind: 'unplug', device: 'uio0', noticeTimeoutMs: 5000, background: true }, title: 'unplug uio0 (background)' });
  });

  it('reads the example scenarios, and their names and filters check', () => {
    const dir = join(import.meta.dirname, '../../examples/scenarios');
    const names = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(names.length).toBeGreaterThan(8);
    for (const name of names) {
      const file = join(dir, name);
      expect(() => checkScenario(readScenario(SourceDocument.parse(readFileSync(file, 'utf8'), file), '/'), [], eventCatalog(builtinModels))).not.toThrow();
    }
  });

  // Every one of these ran, and could pass, before it was refused: an
  // expectation on a name the run never has holds for want of a subject.
  itRefuses(load, [
    [
      'a released expectation on a device the scenario does not plug',
      'devices: [{ model: uio, name: uio0 }]\ntimeline:\n  - unplug: uio0\n  - expect: { released: uio, within: 2s }\n',
      's.yaml:4: timeline[1].expect.released: unknown device "uio" (known: uio0)',
    ],
    [
      'lateReleases on a device the scenario does not plug',
      'devices: [{ model: uio, name: uio0 }]\ntimeline:\n  - unplug: uio0\n  - expect: { device: uio1, lateReleases: 0 }\n',
      's.yaml:4: timeline[1].expect.device: unknown device "uio1" (known: uio0)',
    ],
    ['a wait on an unknown device', 'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - wait: { opened: e1 }\n', 's.yaml:3: timeline[0].wait.opened: unknown device "e1" (known: e0)'],
    [
      'an event filter on an unknown device',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - wait: { event: { type: opened, device: e9 } }\n',
      's.yaml:3: timeline[0].wait.event.device: unknown device "e9" (known: e0)',
    ],
    [
      'an action on an unknown device',
      'devices: [{ model: uio, name: uio0 }]\ntimeline:\n  - action: { device: uio2, action: irq }\n  - expect: { running: true }\n',
      's.yaml:3: timeline[0].action.device: unknown device "uio2" (known: uio0)',
    ],
    ['an unplug of an unknown device', 'timeline:\n  - unplug: uio0\n  - expect: { noStuck: true }\n', 's.yaml:2: timeline[0].unplug: unknown device "uio0" (known: none)'],
    [
      'a surprise unplug of an unknown device',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - unplug: { device: e1, mode: surprise }\n  - expect: { noStuck: true }\n',
      's.yaml:3: timeline[0].unplug.device: unknown device "e1" (known: e0)',
    ],
    ['a replug of an unknown device', 'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - replug: e1\n  - expect: { running: true }\n', 's.yaml:3: timeline[0].replug: unknown device'],
    [
      'a device used before the step that plugs it',
      'timeline:\n  - wait: { opened: uio1 }\n  - plug: { model: uio, name: uio1 }\n',
      's.yaml:2: timeline[0].wait.opened: unknown device "uio1" (known: none; uio1 is plugged only later, at line 3)',
    ],
    [
      "a fault rule's device glob that matches no device",
      'devices: [{ model: uio, name: uio0 }]\nfaults: [{ device: "uoi*", op: read, action: fail, errno: EIO }]\ntimeline:\n  - expect: { running: true }\n',
      's.yaml:2: faults[0].device: "uoi*" matches no device (known: uio0)',
    ],
    [
      "a fault step's device that matches no device",
      'devices: [{ model: uio, name: uio0 }]\ntimeline:\n  - fault: { device: uio1, op: read, action: fail, errno: EIO }\n  - expect: { running: true }\n',
      's.yaml:3: timeline[0].fault.device: "uio1" matches no device (known: uio0)',
    ],
    [
      'a template name, which no step could refer to',
      'devices: [{ model: uio, name: "uio%d" }]\ntimeline:\n  - expect: { running: true }\n',
      's.yaml:1: devices[0].name: a scenario names its devices (uio0, not uio%d)',
    ],
    [
      'a misspelled field in an event filter',
      'devices: [{ model: tcmu, name: uio0 }]\ntimeline:\n  - wait:\n      event: { type: tcmu_removed, device: uio0, lsot: 0 }\n',
      's.yaml:4: timeline[0].wait.event.lsot: tcmu_removed events have no field lsot (their fields: device, generation, endedByRemoval, doubleEnds, lost,',
    ],
    [
      'a misspelled core event field',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - wait: { event: { type: fault_fired, device: e0, rul: f1 } }\n',
      's.yaml:3: timeline[0].wait.event.rul: fault_fired events have no field rul (their fields: device, generation, rule, action, op, pid, comm)',
    ],
    [
      'an event type no model has',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - wait: { event: { type: fualt_fired } }\n',
      's.yaml:3: timeline[0].wait.event.type: unknown event type "fualt_fired" (known: action, ',
    ],
    [
      'an event filter with a list, which no event field equals',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - wait: { event: { type: drained, device: e0, stuck: [0] } }\n',
      's.yaml:3: timeline[0].wait.event.stuck: expected a value (a string, number, true/false or null) or a mapping of operators',
    ],
    [
      'an event filter on generation 0, which never exists',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - wait: { event: { type: plugged, device: e0, generation: 0 } }\n',
      's.yaml:3: timeline[0].wait.event.generation: must be at least 1',
    ],
    [
      'two expectations in one step (the second was never checked)',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - expect: { released: e0, exit: 0 }\n',
      's.yaml:3: timeline[0].expect.exit: one expectation per step: released and exit are two',
    ],
    [
      'a field an expectation does not take (it was ignored)',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - expect: { exit: 0, device: e0 }\n',
      's.yaml:3: timeline[0].expect.device: not a field of a exit expectation (exit, within)',
    ],
    [
      'a timeline with nothing that can fail',
      'devices: [{ model: echo, name: e0 }]\ntimeline:\n  - unplug: e0\n  - sleep: 1s\n',
      's.yaml:2: timeline: no wait or expect step: a scenario that checks nothing cannot fail',
    ],
  ]);

  it('knows the names a step plugs from that step on, and those the target has (a daemon, with --socket)', () => {
    expect(() =>
      load('timeline:\n  - plug: { model: uio, name: uio1 }\n  - wait: { opened: uio1 }\n  - unplug: uio1\n  - expect: { released: uio1 }\n'),
    ).not.toThrow();
    // A fault rule given first applies to a device plugged later.
    expect(() => load('faults: [{ device: "uio*", action: fail, errno: EIO }]\ntimeline:\n  - plug: { model: uio, name: uio1 }\n  - expect: { running: true }\n')).not.toThrow();
    expect(() => loadRemote('timeline:\n  - unplug: echo0\n  - expect: { released: echo0 }\n', ['echo0', 'uio0'])).not.toThrow();
    expect(refusal(() => loadRemote('timeline:\n  - unplug: echo1\n  - expect: { released: echo1 }\n', ['echo0', 'uio0']))).toBe(
      's.yaml:2: timeline[0].unplug: unknown device "echo1" (known: echo0, uio0)',
    );
  });

  it("checks a daemon's events as far as it can: core fields always, any type when a model of the daemon's leaves its events undeclared", () => {
    // A model the daemon loaded without declaring its events may emit any type; a core event's fields are known.
    const d: ModelView = { ...daemonModels[0]!, name: 'd', events: null };
    expect(() => loadRemote('timeline:\n  - wait: { event: { type: my_model_event, device: d0, level: 3 } }\n', ['d0'], [...daemonModels, d])).not.toThrow();
    expect(refusal(() => loadRemote('timeline:\n  - wait: { event: { type: opened, device: d0, pdi: 3 } }\n', ['d0'], [...daemonModels, d]))).toMatch(
      /^s\.yaml:2: timeline\[0\]\.wait\.event\.pdi: opened events have no field pdi/,
    );
  });

  it("checks a daemon's model events against the models it lists: a misspelt type, and a type its device's model never emits", () => {
    const expectNone = (filter: string): string => `timeline:\n  - expect: { event: ${filter}, count: 0 }\n`;
    expect(refusal(() => loadRemote(expectNone('{ type: expird, device: watchdog0 }'), ['watchdog0']))).toMatch(/^s\.yaml:2: .*unknown event type "expird"/);
    expect(refusal(() => loadRemote(expectNone('{ type: expired, device: uio0 }'), ['uio0', 'watchdog0']))).toMatch(/uio0 \(uio\) emits no expired events/);
    expect(() => loadRemote(expectNone('{ type: expired, device: watchdog0, count: 1 }'), ['watchdog0'])).not.toThrow();
    // Without a device: another client may plug a watchdog into the daemon during the run.
    expect(() => loadRemote(expectNone('{ type: expired }'), ['uio0'])).not.toThrow();
    // A model of the daemon's that does not declare its events may emit any type.
    const quiet: ModelView = { ...daemonModels[0]!, name: 'quiet', events: null };
    expect(() => loadRemote(expectNone('{ type: expird, device: quiet0 }'), ['quiet0'], [...daemonModels, quiet])).not.toThrow();
  });

  it('lists the core event fields docs/control-api.md lists', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/control-api.md'), 'utf8');
    const rows = Object.fromEntries(
      [...doc.matchAll(/^\| `(\w+)` \| [^|]+\|([^|]*)\|$/gm)].map((m) => [m[1]!, [...m[2]!.matchAll(/`(\w+)`/g)].map((f) => f[1]!)]),
    );
    for (const [type, fields] of Object.entries(CORE_EVENT_FIELDS)) expect([type, rows[type]]).toEqual([type, Object.keys(fields)]);
  });

  it('knows every built-in model\'s events, so a misspelled event type is refused whatever the scenario plugs', () => {
    // One model without `events` makes the catalog incomplete, and every unknown type is then taken unchecked.
    expect(builtinModels.filter((m) => m.events === undefined).map((m) => m.name)).toEqual([]);
    expect(eventCatalog(builtinModels).complete).toBe(true);
  });

  it('takes an unknown event type unchecked only when a model the run plugs leaves its events undeclared: one loaded and not plugged changes nothing', () => {
    const quiet = { ...builtinModels.find((m) => m.name === 'echo')!, name: 'quiet', events: undefined } as AnyDeviceModel;
    const check = (devices: string): void => {
      const s = read(`devices: ${devices}\ntimeline:\n  - expect: { event: { type: fault_fire, device: e0 }, count: 0 }\n`);
      checkScenario(s, [], eventCatalog([...builtinModels, quiet], pluggedModels(s)));
    };
    expect(() => check('[{ model: echo, name: e0 }]')).toThrow('unknown event type "fault_fire"');
    expect(() => check('[{ model: echo, name: e0 }, { model: quiet, name: q0 }]')).not.toThrow();
  });

  it('parses --bind pairs', () => {
    expect(parseBind('/dev/uio0=dev/uio0')).toEqual({ host: '/dev/uio0', mount: 'dev/uio0' });
    expect(parseBind('//dev//input/=/dev/input')).toEqual({ host: '/dev/input', mount: 'dev/input' });
    expect(parseBind('dev/uio0=dev/uio0')).toBeNull();
    expect(parseBind('/=dev')).toBeNull();
    // The bind namespace walks the host path up by its text: `..` would make it another directory than the kernel's.
    expect(parseBind('/tmp/a/../../x/uio0=dev/uio0')).toBeNull();
    expect(parseBind('/tmp/./x=dev/uio0')).toBeNull();
    expect(parseBind('/x=dev/../etc')).toBeNull();
  });
});

/**
 * Comparisons, saved action results and restarts (README.md, "Comparing
 * values", "Restarting the program"): read into the runner's shape, and
 * every comparison that could never hold, or could hold for want of its
 * subject, refused before the run with file:line.
 */
describe('scenario values and restarts', () => {
  const devices = 'devices: [{ model: uio, name: uio0 }, { model: watchdog, name: watchdog0 }]\nprogram: { command: [sleep, "30"] }\ntimeline:\n';
  const steps = (...lines: string[]): string => devices + lines.map((l) => `  - ${l}\n`).join('');

  it('reads comparisons, saved results, event expectations, stop and start', () => {
    const s = read(
      steps(
        "wait: { event: { type: opened, device: uio0, generation: { '>=': 2 }, pid: { '!=': 1 } } }",
        'action: { device: uio0, action: irq, as: irq1 }',
        "expect: { result: irq1, fields: { count: { between: [1, 3] }, delivered: true, sense.key: { '<': 5, '>': 0 } } }",
        "expect: { event: { type: opened, device: uio0 }, count: { '>=': 1 }, fields: { flags: { '>': 0 } } }",
        'expect: { event: { type: drained }, count: 0 }',
        'stop: { signal: SIGINT, timeout: 2s }',
        'stop: SIGKILL',
        'stop: {}',
        'expect: { exit: SIGTERM }',
        'start: {}',
        'start: { command: "python3 x.py {mount}/dev/uio0", env: { A: 1 } }',
      ),
    );
    const [wait, action, result, event, none, stop, kill, term, exit, again, other] = s.timeline.map((t) => t.step);
    expect(wait).toMatchObject({ kind: 'wait', what: 'event', filter: { type: 'opened', device: 'uio0' } });
    if (wait?.kind !== 'wait' || wait.what !== 'event') throw new Error('not an event wait');
    expect(wait.filter.tests.map((t) => [t.name, t.cmp.text])).toEqual([
      ['generation', '>= 2'],
      ['pid', '!= 1'],
    ]);
    expect(action).toEqual({ kind: 'action', device: 'uio0', action: 'irq', as: 'irq1' });
    if (result?.kind !== 'expect' || result.what !== 'result') throw new Error('not a result expectation');
    expect(result.name).toBe('irq1');
    expect(result.fields.map((t) => [t.path, t.cmp.text])).toEqual([
      [['count'], 'between 1 and 3'],
      [['delivered'], '== true'],
      [['sense', 'key'], '< 5 and > 0'],
    ]);
    expect(s.timeline[2]!.title).toBe('expect result irq1: count between 1 and 3, delivered == true, sense.key < 5 and > 0');
    expect(s.timeline[3]!.title).toBe('expect event {"type":"opened","device":"uio0"}: count >= 1; flags > 0');
    expect(event).toMatchObject({ what: 'event', count: { text: '>= 1' } });
    expect(none).toMatchObject({ what: 'event', count: { text: '== 0' }, fields: [] });
    expect(stop).toEqual({ kind: 'stop', signal: 'SIGINT', timeoutMs: 2000 });
    expect(kill).toEqual({ kind: 'stop', signal: 'SIGKILL', timeoutMs: 10_000 });
    expect(term).toEqual({ kind: 'stop', signal: 'SIGTERM', timeoutMs: 10_000 });
    expect(exit).toMatchObject({ what: 'exit', code: 'SIGTERM' });
    expect(again).toEqual({ kind: 'start', cwd: '/srv/scen', env: {} });
    expect(other).toEqual({ kind: 'start', command: ['python3', 'x.py', '{mount}/dev/uio0'], cwd: '/srv/scen', env: { A: '1' } });
    expect(() => load(steps('wait: { event: { type: expired, device: watchdog0, count: { ">": 1 }, timeout: 30 } }'))).not.toThrow();
  });

  it('reads a signal step: a name, or {signal, timeout} where the timeout bounds SIGSTOP\'s wait for every thread to stop', () => {
    const s = read(steps('signal: SIGTERM', 'signal: cont', 'signal: { signal: SIGSTOP, timeout: 20s }', 'signal: { signal: SIGSTOP }', 'expect: { running: true }'));
    expect(s.timeline.slice(0, 4).map((t) => t.step)).toEqual([
      { kind: 'signal', signal: 'SIGTERM', timeoutMs: 10_000 },
      { kind: 'signal', signal: 'SIGCONT', timeoutMs: 10_000 },
      { kind: 'signal', signal: 'SIGSTOP', timeoutMs: 20_000 },
      { kind: 'signal', signal: 'SIGSTOP', timeoutMs: 10_000 },
    ]);
    expect(s.timeline[2]!.title).toBe('signal SIGSTOP to the program');
  });

  itRefuses(load, [
    [
      'a comparison on a field the event type does not carry',
      steps("wait: { event: { type: opened, device: uio0, pdi: { '>': 1 } } }"),
      's.yaml:4: timeline[0].wait.event.pdi: opened events have no field pdi (their fields: device, generation, file, pid, comm, flags)',
    ],
    [
      "an event expectation's field the type does not carry",
      steps('expect: { event: { type: drained, device: uio0 }, fields: { stuk: 0 } }'),
      's.yaml:4: timeline[0].expect.fields.stuk: drained events have no field stuk (their fields: device, generation, drainedInMs, stuck)',
    ],
    [
      'a string core field compared with >=',
      steps("wait: { event: { type: opened, device: uio0, comm: { '>=': 3 } } }"),
      "s.yaml:4: timeline[0].wait.event.comm: opened's comm is a string; >= 3 compares a number: it can never hold",
    ],
    [
      'a number core field equal to a string',
      steps('expect: { event: { type: opened, device: uio0 }, fields: { pid: "1" } }'),
      `s.yaml:4: timeline[0].expect.fields.pid: opened's pid is a number; == "1" compares a string: it can never hold`,
    ],
    [
      "a model's typed field compared with a string",
      steps('wait: { event: { type: expired, device: watchdog0, timeout: { "!=": soon } } }'),
      `s.yaml:4: timeline[0].wait.event.timeout: expired's timeout is a number; != "soon" compares a string: it can never hold`,
    ],
    [
      "an event of another device's model: no uio expires, so count 0 would hold whatever happened",
      steps('expect: { event: { type: expired, device: uio0 }, count: 0 }'),
      's.yaml:4: timeline[0].expect.event.type: uio0 (uio) emits no expired events: expired is an event of watchdog, so the filter would match nothing whatever happened',
    ],
    [
      'an event no model the scenario plugs emits, the filter naming no device',
      steps('wait: { event: { type: tcmu_removed } }'),
      's.yaml:4: timeline[0].wait.event.type: no device the scenario plugs (uio, watchdog) emits tcmu_removed events: tcmu_removed is an event of tcmu',
    ],
    [
      'a comm longer than the kernel keeps: the open by my-device-consumer is named my-device-consu, and count 0 held',
      steps('expect: { event: { type: opened, device: uio0, comm: my-device-consumer }, count: 0 }'),
      `s.yaml:4: timeline[0].expect.event.comm: opened's comm is the task's name as the kernel keeps it (/proc/PID/comm), at most 15 bytes: "my-device-consumer" is never one (the kernel keeps "my-device-consu")`,
    ],
    [
      "a comm longer than the kernel keeps, with '!='",
      steps("wait: { event: { type: opened, device: uio0, comm: { '!=': my-device-consumer } } }"),
      `s.yaml:4: timeline[0].wait.event.comm: opened's comm is the task's name as the kernel keeps it (/proc/PID/comm), at most 15 bytes`,
    ],
    [
      'a list compared as a whole',
      steps('expect: { event: { type: plugged, device: uio0 }, fields: { regions: 1 } }'),
      "s.yaml:4: timeline[0].expect.fields.regions: plugged's regions is a list: compare a field inside it (regions.0 is its first item)",
    ],
    [
      'a field inside a number',
      steps('expect: { event: { type: opened }, fields: { pid.x: 1 } }'),
      `s.yaml:4: timeline[0].expect.fields["pid.x"]: opened's pid is a number, with no fields inside`,
    ],
    ['>= with a string', steps('action: { device: uio0, action: irq, as: r }', "expect: { result: r, fields: { count: { '>=': abc } } }"), 's.yaml:5: timeline[1].expect.fields.count[">="]: >= compares numbers, not "abc"'],
    ['between with one end', steps('action: { device: uio0, action: irq, as: r }', 'expect: { result: r, fields: { count: { between: [1] } } }'), 's.yaml:5: timeline[1].expect.fields.count.between: expected [low, high]'],
    [
      'between upside down',
      steps('action: { device: uio0, action: irq, as: r }', 'expect: { result: r, fields: { count: { between: [3, 1] } } }'),
      's.yaml:5: timeline[1].expect.fields.count.between: low 3 is above high 1: no value is between them',
    ],
    [
      'a comparison no value satisfies',
      steps('action: { device: uio0, action: irq, as: r }', "expect: { result: r, fields: { count: { '>': 5, '<=': 5 } } }"),
      's.yaml:5: timeline[1].expect.fields.count: > 5 and <= 5 can never hold',
    ],
    [
      'an equality its other test excludes',
      steps('action: { device: uio0, action: irq, as: r }', "expect: { result: r, fields: { count: { '==': 2, '!=': 2 } } }"),
      's.yaml:5: timeline[1].expect.fields.count: == 2 and != 2 can never hold',
    ],
    [
      'a string and a number at once',
      steps('action: { device: uio0, action: irq, as: r }', "expect: { result: r, fields: { count: { '==': a, '>': 1 } } }"),
      's.yaml:5: timeline[1].expect.fields.count: compares a string and a number: no value is both',
    ],
    [
      'an operator that is not one',
      steps('action: { device: uio0, action: irq, as: r }', "expect: { result: r, fields: { count: { '=>': 1 } } }"),
      `s.yaml:5: timeline[1].expect.fields.count["=>"]: not an operator: expected a value`,
    ],
    [
      'a nested mapping instead of a dotted name',
      steps('action: { device: uio0, action: irq, as: r }', 'expect: { result: r, fields: { sense: { key: 5 } } }'),
      's.yaml:5: timeline[1].expect.fields.sense.key: not an operator: expected a value (a string, number, true/false or null) or a mapping of operators',
    ],
    ['an empty comparison', steps('action: { device: uio0, action: irq, as: r }', 'expect: { result: r, fields: { count: {} } }'), 's.yaml:5: timeline[1].expect.fields.count: an empty comparison holds on anything'],
    [
      'an event count that holds on every count: it checks nothing, and would excuse the rule it names from firing',
      steps("expect: { event: { type: fault_fired, device: uio0 }, count: { '>=': 0 } }"),
      's.yaml:4: timeline[0].expect.count: count >= 0 holds on every count, 0 included: the expectation would check nothing (count: 0 expects none)',
    ],
    ["an event count of '!=' a count there cannot be", steps("expect: { event: { type: opened, device: uio0 }, count: { '>': -1, '!=': -3 } }"), 's.yaml:4: timeline[0].expect.count: count > -1 and != -3 holds on every count'],
    ['a result expectation with no fields', steps('action: { device: uio0, action: irq, as: r }', 'expect: { result: r, fields: {} }'), 's.yaml:5: timeline[1].expect.fields: expected at least one field'],
    [
      'a result no step saves',
      steps('action: { device: uio0, action: irq, as: r }', 'expect: { result: report, fields: { count: 1 } }'),
      's.yaml:5: timeline[1].expect.result: no earlier action saves a result as report (results saved before it: r; an action saves with `as: report`)',
    ],
    [
      'a result saved only after the expectation',
      steps('expect: { result: r, fields: { count: 1 } }', 'action: { device: uio0, action: irq, as: r }'),
      's.yaml:4: timeline[0].expect.result: no earlier action saves a result as r (no step before it saves one',
    ],
    ['a result name that is not a word', steps('action: { device: uio0, action: irq, as: "a.b" }', 'expect: { running: true }'), 's.yaml:4: timeline[0].action.as: expected a name of letters, digits and _'],
    [
      'fields with a count that allows no event (they would check nothing)',
      steps("expect: { event: { type: opened, device: uio0 }, count: { '<=': 2 }, fields: { pid: 1 } }"),
      's.yaml:4: timeline[0].expect.count: count <= 2 allows no event at all, and then fields would check nothing',
    ],
    ['a count that is not a number', steps('expect: { event: { type: opened }, count: many }'), 's.yaml:4: timeline[0].expect.count: a count compares numbers'],
    [
      'an event expectation on a device the scenario does not plug',
      steps('expect: { event: { type: opened, device: uio9 } }'),
      's.yaml:4: timeline[0].expect.event.device: unknown device "uio9" (known: uio0, watchdog0)',
    ],
    ['a timeout on a signal that does not wait', steps('signal: { signal: SIGTERM, timeout: 2s }', 'expect: { running: true }'), 's.yaml:4: timeline[0].signal.timeout: only SIGSTOP waits (for every thread of the program to stop); SIGTERM is sent and the step ends'],
    ['a signal step without its signal', steps('signal: { timeout: 2s }', 'expect: { running: true }'), 's.yaml:4: timeline[0].signal.signal: missing (expected a string)'],
    ['an unknown signal to stop with', steps('stop: { signal: SIGNOPE }', 'expect: { running: true }'), 's.yaml:4: timeline[0].stop.signal: expected a signal name'],
    ['a start with an unknown field', steps('start: { cmd: [x] }', 'expect: { running: true }'), 's.yaml:4: timeline[0].start.cmd: unknown field (expected one of: command, env)'],
  ]);

  it('refuses a stop, or a start of the same program, when there is no program (unless one comes after --)', () => {
    const none = (step: string): string => `devices: [{ model: uio, name: uio0 }]\ntimeline:\n  - ${step}\n  - expect: { running: true }\n`;
    expect(refusal(() => checkProgramSteps(read(none('stop: SIGTERM')), false))).toBe(
      's.yaml:3: timeline[0].stop: there is no program under test to stop (give the scenario a program, or a command after --)',
    );
    expect(refusal(() => checkProgramSteps(read(none('start: {}')), false))).toBe(
      's.yaml:3: timeline[0].start: there is no program under test to start again (give the scenario a program, or a command after --)',
    );
    expect(() => checkProgramSteps(read(none('stop: SIGTERM')), true)).not.toThrow();
    expect(() => checkProgramSteps(read(none('start: { command: [sleep, "1"] }')), false)).not.toThrow();
  });

  it('refuses a run on its own emulator with no program at all, where every expectation about files would hold for want of one; a start step brings one', () => {
    const text = 'devices: [{ model: uio, name: uio0 }]\ntimeline:\n  - unplug: uio0\n  - expect: { event: { type: late_released, device: uio0 }, count: 0 }\n';
    expect(refusal(() => checkHasProgram(read(text), false))).toBe(
      's.yaml:3: timeline: there is no program under test (give the scenario a program, or a command after --): on its own emulator, nothing else would act on the devices',
    );
    expect(() => checkHasProgram(read(text), true)).not.toThrow();
    expect(() => checkHasProgram(read(text.replace('  - unplug: uio0', '  - start: { command: [sleep, "5"] }\n  - unplug: uio0')), false)).not.toThrow();
  });
});
