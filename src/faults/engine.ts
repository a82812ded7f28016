/**
 * The fault engine: the rules in force, matched against every model call
 * the core makes (it is the core's OpInterceptor). Every rule that matches
 * a call counts it; the oldest one whose trigger fires acts on it. Every
 * firing is a `fault_fired` event and counts on the rule and the instance;
 * a trigger whose action changed nothing (a `short` no shorter than the
 * call, or answered as it would have been without it; a `corrupt` of no
 * bytes, or whose flipped bytes the model did not take) is not a firing:
 * a test waiting for the fault must not pass on a call the fault left as
 * it was.
 */
import { Errno, errnoNumber } from '../errno.js';
import type { OpCall, OpInterceptor } from '../core/index.js';
import { globMatcher } from './glob.js';
import { seededRng, type Rng } from './rng.js';
import { parseRule, ruleOps, type FaultRule } from './rule.js';

/** What the engine needs to unplug or replug a device (the DeviceManager). */
export interface DeviceControl {
  unplug(name: string): Promise<unknown>;
  replug(name: string): Promise<unknown>;
}

export interface FaultLogger {
  warn(obj: object, msg: string): void;
}

/** A rule as listed: its definition and what it has done. */
export interface FaultRuleStatus extends FaultRule {
  matched: number;
  fired: number;
}

class ActiveRule {
  matched = 0;
  fired = 0;
  readonly addedAt = performance.now();
  readonly matchesDevice: (name: string) => boolean;
  /** Trigger dice and corruption/jitter positions, from the rule's seed. */
  readonly rng: Rng;
  /** The holds (hang, delay) it has on calls now, each ended by its function: removing the rule ends them. */
  readonly holds = new Set<() => void>();

  constructor(readonly rule: FaultRule) {
    this.matchesDevice = globMatcher(rule.device);
    this.rng = seededRng(rule.seed ?? 1);
  }

  matches(call: OpCall): boolean {
    const r = this.rule;
    const ops = ruleOps(r);
    return (
      ops.includes(call.op) &&
      this.matchesDevice(call.device) &&
      // Not in force yet: such a call is not counted toward nth, every or first.
      (r.afterMs === undefined || performance.now() - this.addedAt >= r.afterMs) &&
      (r.ioctl === undefined || call.cmd === r.ioctl) &&
      (r.pid === undefined || call.caller.of(r.pid)) &&
      (r.comm === undefined || call.caller.named(r.comm))
    );
  }

  /** Counts a matching call and says whether the trigger fires on it. */
  triggers(): boolean {
    const r = this.rule;
    const n = ++this.matched;
    // Draw on every matching call, fired or not, so the sequence of firings
    // depends only on the seed and the sequence of calls.
    const roll = r.probability !== undefined ? this.rng() : 0;
    if (r.nth !== undefined && n !== r.nth) return false;
    if (r.every !== undefined && n % r.every !== 0) return false;
    if (r.first !== undefined && n > r.first) return false;
    if (r.probability !== undefined && roll >= r.probability) return false;
    return true;
  }

  /** The rule is removed: its holds end, and their calls go on to the model. */
  endHolds(): void {
    for (const end of this.holds) end();
  }

  status(): FaultRuleStatus {
    return { ...this.rule, matched: this.matched, fired: this.fired };
  }
}

/**
 * Holds a call for `ms` (null: for ever), or until the rule that placed
 * it is removed (`holds`, the rule's; null: never ended so, as an unplug's
 * hold ends with the unplug); rejects with the signal's reason when the
 * call is interrupted or the device unplugged first.
 */
function hold(signal: AbortSignal, ms: number | null, holds: Set<() => void> | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const end = (interrupted: boolean): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      holds?.delete(lift);
      if (interrupted) reject(signal.reason);
      else resolve();
    };
    const onAbort = (): void => end(true);
    const lift = (): void => end(false);
    const timer = ms === null ? undefined : setTimeout(lift, ms);
    signal.addEventListener('abort', onAbort, { once: true });
    holds?.add(lift);
  });
}

/**
 * The call, once `hold` (a delay, a hang) has passed. A hold its signal
 * ends (the caller interrupted, the device unplugged) fails the call with
 * it, but a release goes on to the model: a close cannot fail, and
 * __fput() calls ->release whatever happened, so a model must see every
 * file it opened close, or keep what it holds for it.
 */
async function held<A, R>(call: OpCall, hold: Promise<unknown>, arg: A, proceed: (arg: A) => R | Promise<R>): Promise<R> {
  try {
    await hold;
  } catch (err) {
    if (call.op !== 'release') throw err;
  }
  return proceed(arg);
}

/**
 * Flips `count` seeded bytes of a copy of `buf`, each a different one (all
 * of them when it is shorter), so that `count` bytes differ; `first` is the
 * lowest flipped. The positions are a partial Fisher-Yates shuffle, one
 * draw each: drawing again on a position already flipped took ~n ln n
 * draws to flip all n bytes, seconds for a 1 MiB read with the event loop
 * held.
 */
function corrupt(buf: Buffer, count: number, rng: Rng): { data: Buffer; first: number } {
  const data = Buffer.from(buf);
  const n = Math.min(count, data.length);
  // The shuffled positions, each stored plus one where not its own (0: untouched).
  const moved = new Uint32Array(data.length);
  let first = data.length;
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rng() * (data.length - i));
    const at = (moved[j] || j + 1) - 1;
    moved[j] = moved[i] || i + 1;
    data[at] = data[at]! ^ (1 + Math.floor(rng() * 255));
    first = Math.min(first, at);
  }
  return { data, first };
}

export class FaultEngine implements OpInterceptor {
  private rules: ActiveRule[] = [];
  /**
   * The common case, no rules: the core skips the engine on every model
   * call. A field kept by add, remove and clear, as every call reads it.
   */
  idle = true;
  private nextId = 1;
  private devices: DeviceControl | null = null;

  /** @internal Made by Emulator.start(), which wires it to the devices. */
  constructor(private readonly log: FaultLogger) {}

  /** @internal The manager the unplug and replug actions act on (it is created after the engine). */
  attach(devices: DeviceControl): void {
    this.devices = devices;
  }

  /** Validates and adds a rule; throws FaultRuleError naming the bad field. */
  add(spec: unknown): FaultRuleStatus {
    // An automatic id skips the ids rules were given explicitly (f2 added by
    // hand must not make every later rule without an id clash with it).
    while (this.has(`f${this.nextId}`)) this.nextId++;
    const rule = parseRule(spec, `f${this.nextId}`);
    if (this.has(rule.id)) throw new Errno('EEXIST', `fault ${rule.id} exists`);
    if (rule.id === `f${this.nextId}`) this.nextId++;
    const active = new ActiveRule(rule);
    this.rules.push(active);
    this.idle = false;
    return active.status();
  }

  private has(id: string): boolean {
    return this.rules.some((r) => r.rule.id === id);
  }

  /**
   * Removes a rule, ending the holds it has on calls (hang, delay): they
   * go on to the model, as when a delay is over. Left held, a call would
   * stay so under no rule listed, freed only by a signal or an unplug.
   */
  remove(id: string): boolean {
    const gone = this.rules.find((r) => r.rule.id === id);
    if (!gone) return false;
    this.rules = this.rules.filter((r) => r !== gone);
    this.idle = this.rules.length === 0;
    gone.endHolds();
    return true;
  }

  /** Removes every rule, as remove() does. */
  clear(): void {
    const gone = this.rules;
    this.rules = [];
    this.idle = true;
    for (const r of gone) r.endHolds();
  }

  list(): FaultRuleStatus[] {
    return this.rules.map((r) => r.status());
  }

  get(id: string): FaultRuleStatus | undefined {
    return this.rules.find((r) => r.rule.id === id)?.status();
  }

  intercept<A, R>(call: OpCall, arg: A, proceed: (arg: A) => R | Promise<R>): R | Promise<R> {
    if (this.rules.length === 0) return proceed(arg);
    // Every matching rule counts the call, so a rule's nth does not depend on
    // the rules before it; the oldest rule that triggers acts.
    let active: ActiveRule | undefined;
    for (const r of this.rules) if (r.matches(call) && r.triggers() && !active) active = r;
    if (!active) return proceed(arg);
    return this.act(active, call, arg, proceed);
  }

  /** The rule acts on the call: counted, and a `fault_fired` event. */
  private fire(active: ActiveRule, call: OpCall): void {
    active.fired++;
    call.fired({ rule: active.rule.id, action: active.rule.action });
  }

  private async act<A, R>(active: ActiveRule, call: OpCall, arg: A, proceed: (arg: A) => R | Promise<R>): Promise<R> {
    const r = active.rule;
    const signal = call.signal;
    switch (r.action) {
      case 'fail':
        this.fire(active, call);
        throw new Errno(errnoNumber(r.errno!), `fault ${r.id}`);
      case 'delay':
        this.fire(active, call);
        return held(call, hold(signal, r.delayMs! + (r.jitterMs ? Math.floor(active.rng() * (r.jitterMs + 1)) : 0), active.holds), arg, proceed);
      case 'short': {
        // read: ask the model for fewer bytes, so nothing is lost; write: hand it fewer.
        const read = call.op === 'read';
        const size = read ? (arg as number) : (arg as Buffer).length;
        if (size <= r.bytes!) return proceed(arg);
        const got = await proceed((read ? r.bytes! : (arg as Buffer).subarray(0, r.bytes!)) as A);
        // A firing only if the model filled the shortened call. One that
        // failed (EAGAIN) or moved fewer bytes (a pipe with less data or room
        // answers so whatever it is asked, pipe_read()/pipe_write()) gave the
        // program what it would have got without the rule.
        if ((read ? (got as Buffer).length : (got as number)) === r.bytes) this.fire(active, call);
        return got;
      }
      case 'corrupt': {
        if (call.op === 'write') {
          if ((arg as Buffer).length === 0) return proceed(arg);
          const { data, first } = corrupt(arg as Buffer, r.count ?? 1, active.rng);
          const took = (await proceed(data as A)) as number;
          // A firing only if the model took a flipped byte: a write it
          // refused (EAGAIN), or took only a clean head of (a pipe with less
          // room), put nothing corrupt into it, and the program writes the
          // rest again, uncorrupted.
          if (took > first) this.fire(active, call);
          return took as R;
        }
        // A read that failed (EAGAIN) or found nothing (EOF) has no bytes to flip.
        const got = (await proceed(arg)) as Buffer;
        if (got.length === 0) return got as R;
        this.fire(active, call);
        return corrupt(got, r.count ?? 1, active.rng).data as R;
      }
      case 'hang':
        this.fire(active, call);
        return held(call, hold(signal, null, active.holds), arg, proceed);
      case 'unplug':
      case 'replug': {
        // Not awaited: unplug drains the handlers in flight, this one
        // included; the call ends when unplug aborts its signal (step 3).
        const devices = this.devices;
        if (!devices) throw new Errno('ENODEV', 'fault engine has no device manager');
        this.fire(active, call);
        const done = r.action === 'unplug' ? devices.unplug(call.device) : devices.replug(call.device);
        done.catch((err: unknown) => this.log.warn({ err, rule: r.id, device: call.device }, `fault ${r.action} failed`));
        return held(call, hold(signal, null, null), arg, proceed);
      }
    }
  }
}
