/**
 * The fault rules a run adds (its `faults`, its `fault` steps, `--fault`).
 * A rule that never fired put the program under nothing, and a test of
 * how it copes with the fault would pass without it: so each must have
 * fired by the end of the run (README, "What a scenario checks"), unless
 * the scenario judges its firings itself, with a wait or an expectation on
 * `fault_fired` events that names it by `rule`. Such a filter must name a
 * rule there was: one naming none (a misspelt id) holds `count: 0`
 * whatever fired. On a daemon's target,
 * which outlives the run, they are removed when the run ends, so the next
 * run against it is not judged under them.
 */
import { describeFault, type FaultRuleSpec } from '../faults/index.js';
import { CoreEvent } from '../core/events.js';
import { holds, type FieldTest } from './compare.js';
import type { Scenario } from './schema.js';
import type { ScenarioTarget } from './target.js';

export class RunFaults {
  private readonly added: string[] = [];

  constructor(
    private readonly target: ScenarioTarget,
    private readonly s: Scenario,
  ) {}

  async add(rule: FaultRuleSpec): Promise<void> {
    this.added.push(await this.target.addFault(rule));
  }

  /** Why the run fails for the rules it added that never fired, or null. */
  async unfired(): Promise<string | null> {
    if (this.added.length === 0) return null;
    const mine = new Set(this.added);
    const idle = (await this.target.listFaults()).filter((r) => mine.has(r.id) && r.fired === 0 && !this.judged(r.id));
    if (idle.length === 0) return null;
    const rules = idle.map((r) => `${r.id} (${describeFault(r)}; it matched ${r.matched} call(s))`).join(', ');
    return (
      `fault rule(s) never fired: ${rules}: the program was never put under them. ` +
      `A rule that may rightly not fire is judged by a wait or expectation on fault_fired events naming it (rule: ID)`
    );
  }

  /**
   * Why the run fails for a `fault_fired` filter whose `rule` no rule of the
   * run, nor of the target at the end, satisfies, or null. Judged at the
   * end, when every rule is known: ids are given by the engine when a rule
   * has none (f1, f2...), and a daemon has rules of its own.
   */
  async namedNowhere(): Promise<string | null> {
    const tests = this.s.filters.flatMap((f) => (f.type === CoreEvent.fault_fired ? f.tests.filter(isRuleTest) : []));
    if (tests.length === 0) return null;
    const ids = new Set([...this.added, ...(await this.target.listFaults()).map((r) => r.id)]);
    const stray = tests.find((t) => ![...ids].some((id) => holds(t.cmp, id)));
    if (!stray) return null;
    return (
      `the fault_fired filter at line ${this.s.doc.line(stray.at)} (rule ${stray.cmp.text}) matches no rule the run had ` +
      `(its rules: ${[...ids].sort().join(', ') || 'none'}): it could only ever count 0`
    );
  }

  /** Removes the run's rules from a target that outlives the run; a rule removed meanwhile is no error. */
  async removeFromShared(): Promise<void> {
    if (!this.target.shared) return;
    for (const id of this.added.splice(0)) await this.target.removeFault(id).catch(() => {});
  }

  /** Whether a `fault_fired` filter of the scenario compares `rule` with a value `id` satisfies. */
  private judged(id: string): boolean {
    return this.s.filters.some((f) => f.type === CoreEvent.fault_fired && f.tests.some((t) => isRuleTest(t) && holds(t.cmp, id)));
  }
}

const isRuleTest = (t: FieldTest): boolean => t.path.length === 1 && t.path[0] === 'rule';
