/**
 * The fault rules a run adds (its `faults`, its `fault` steps, `--fault`).
 * A rule that never fired put the program under nothing, and a test of
 * how it copes with the fault would pass without it: so each must have
 * fired by the end of the run (README, "What a scenario checks"), unless
 * the scenario judges its firings itself, with a wait or an expectation on
 * `fault_fired` events that names it by `rule`. Such a filter must name a
 * rule there was: one naming none (a misspelt id) holds `count: 0`
 * whatever fired. On a daemon others use, a rule that fired only on
 * another client's calls did not fire for the program. On a daemon's target,
 * which outlives the run, they are removed when the run ends, so the next
 * run against it is not judged under them.
 */
import { describeFault, type FaultRuleSpec, type FaultRuleStatus } from '../faults/index.js';
import { CoreEvent, type DeviceEvent } from '../core/events.js';
import { holds, type FieldTest } from './compare.js';
import type { Scenario } from './schema.js';
import type { ScenarioTarget } from './target.js';

export class RunFaults {
  private readonly added: string[] = [];
  /** The scenario's comparisons of a `fault_fired` event's `rule`. */
  private readonly ruleTests: FieldTest[];

  constructor(
    private readonly target: ScenarioTarget,
    private readonly s: Scenario,
  ) {
    this.ruleTests = s.filters.flatMap((f) => (f.type === CoreEvent.fault_fired ? f.tests.filter(isRuleTest) : []));
  }

  async add(rule: FaultRuleSpec): Promise<void> {
    this.added.push(await this.target.addFault(rule));
  }

  /**
   * Why the run fails for its rules, each null when it does not, judged at
   * the end, from one listing of the target's rules:
   * - `unfired`: rules it added that never fired;
   * - `stray`: a `fault_fired` filter whose `rule` no rule of the run, nor
   *   of the target at the end, satisfies. Only then is every rule known:
   *   ids are given by the engine when a rule has none (f1, f2...), and a
   *   daemon has rules of its own.
   */
  async judge(events: readonly DeviceEvent[], ofAnotherClient: (e: DeviceEvent) => boolean): Promise<{ unfired: string | null; stray: string | null }> {
    if (this.added.length === 0 && this.ruleTests.length === 0) return { unfired: null, stray: null };
    const rules = await this.target.listFaults();
    const why = [this.unfired(rules), this.removedUnfired(rules, events), this.firedOnOthers(events, ofAnotherClient)].filter((w) => w !== null);
    return { unfired: why.length ? why.join('\n') : null, stray: this.stray(rules) };
  }

  /** Removes the run's rules from a target that outlives the run; a rule removed meanwhile is no error. */
  async removeFromShared(): Promise<void> {
    if (!this.target.shared) return;
    for (const id of this.added.splice(0)) await this.target.removeFault(id).catch(() => {});
  }

  private unfired(rules: readonly FaultRuleStatus[]): string | null {
    const mine = new Set(this.added);
    const idle = rules.filter((r) => mine.has(r.id) && r.fired === 0 && !this.ruleTests.some((t) => holds(t.cmp, r.id)));
    if (idle.length === 0) return null;
    const described = idle.map((r) => `${r.id} (${describeFault(r)}; it matched ${r.matched} call(s))`).join(', ');
    return (
      `fault rule(s) never fired: ${described}: the program was never put under them. ` +
      `A rule that may rightly not fire is judged by a wait or expectation on fault_fired events naming it (rule: ID)`
    );
  }

  /**
   * Rules of the run that another client (or the program, through the
   * control API) removed before the end without a `fault_fired` naming
   * them: the listing no longer says whether they fired, and the events
   * say they did not.
   */
  private removedUnfired(rules: readonly FaultRuleStatus[], events: readonly DeviceEvent[]): string | null {
    const listed = new Set(rules.map((r) => r.id));
    const fired = new Set(events.flatMap((e) => (e.type === CoreEvent.fault_fired ? [e.rule] : [])));
    const gone = this.added.filter((id) => !listed.has(id) && !fired.has(id) && !this.ruleTests.some((t) => holds(t.cmp, id)));
    if (gone.length === 0) return null;
    return `fault rule(s) removed before the end of the run, never having fired: ${gone.join(', ')}: the program was never put under them`;
  }

  /**
   * Rules of the run that fired, on a daemon others use, only on another
   * client's calls (window.ts ANOTHER_CLIENT): a `first: 1` another
   * program's open used up put the program under nothing.
   */
  private firedOnOthers(events: readonly DeviceEvent[], ofAnotherClient: (e: DeviceEvent) => boolean): string | null {
    const fired = events.filter((e) => e.type === CoreEvent.fault_fired);
    const described = this.added.flatMap((id) => {
      const firings = fired.filter((e) => e.rule === id);
      if (firings.length === 0 || !firings.every(ofAnotherClient) || this.ruleTests.some((t) => holds(t.cmp, id))) return [];
      return [`${id} (on ${[...new Set(firings.map((e) => `pid ${String(e.pid)} (${String(e.comm)})`))].join(', ')})`];
    });
    if (described.length === 0) return null;
    return `fault rule(s) fired only on another client's calls: ${described.join(', ')}: the program was never put under them`;
  }

  private stray(rules: readonly FaultRuleStatus[]): string | null {
    const ids = [...new Set([...this.added, ...rules.map((r) => r.id)])];
    const stray = this.ruleTests.find((t) => !ids.some((id) => holds(t.cmp, id)));
    if (!stray) return null;
    return (
      `the fault_fired filter at line ${this.s.doc.line(stray.at)} (rule ${stray.cmp.text}) matches no rule the run had ` +
      `(its rules: ${ids.sort().join(', ') || 'none'}): it could only ever count 0`
    );
  }
}

const isRuleTest = (t: FieldTest): boolean => t.path.length === 1 && t.path[0] === 'rule';
