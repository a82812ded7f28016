/**
 * Faults on one tcmu device's netlink traffic, for tests of what a daemon
 * does when the family's messages are lost or late (the realistic cause of
 * a device vanishing under tcmu-runner: its netlink socket's queue
 * overflowing, or the daemon stalled while the kernel waits). A rule
 * matches an event the family sends (ADDED/REMOVED/RECONFIG_DEVICE) or the
 * reply it receives (their *_DONE), and drops it (never delivered or never
 * read: no ack either), delays it, or holds it until released.
 *
 * These are the tcmu model's actions (netlink_fault, netlink_release,
 * netlink_faults_clear), not fault rules: fault rules act on file
 * operations of a device (an op, a caller, a path), and a netlink message
 * is none of those; an action reaches the device's family directly and a
 * scenario scripts it with `action` steps.
 */
import { Errno } from '../errno.js';
import { SchemaError } from '../core/index.js';
import { DONE_OF, TcmuCmd, cmdName, type EventCmd } from './family.js';

export type NetlinkFaultMode = 'drop' | 'delay' | 'hold';

export interface NetlinkFaultSpec {
  /** event: a message the family sends; reply: the *_DONE that answers it. */
  on: 'event' | 'reply';
  cmd: EventCmd;
  mode: NetlinkFaultMode;
  delayMs: number;
  /** How many matching messages it acts on (then it is gone). */
  times: number;
}

const EVENTS: Record<string, EventCmd> = {
  ADDED_DEVICE: TcmuCmd.ADDED_DEVICE,
  REMOVED_DEVICE: TcmuCmd.REMOVED_DEVICE,
  RECONFIG_DEVICE: TcmuCmd.RECONFIG_DEVICE,
};

/** An event's name (ADDED_DEVICE, REMOVED_DEVICE, RECONFIG_DEVICE) as its command; EINVAL for anything else. */
export function eventCmd(name: unknown, what: string): EventCmd {
  const cmd = typeof name === 'string' ? EVENTS[name] : undefined;
  if (cmd === undefined) throw new Errno('EINVAL', `tcmu: ${what} must be ADDED_DEVICE, REMOVED_DEVICE or RECONFIG_DEVICE, got ${JSON.stringify(name)}`);
  return cmd;
}

/**
 * The argument of the netlink_fault action, its fields already checked
 * against the action's schema (src/models/tcmu/actions.ts): what is left
 * is what one field says of another.
 */
export function readNetlinkFault(arg: Record<string, unknown>): NetlinkFaultSpec {
  const { on, mode, delayMs, times } = arg as { on: 'event' | 'reply'; mode: NetlinkFaultMode; delayMs: number | undefined; times: number };
  if (mode === 'delay' && delayMs === undefined) throw new SchemaError('tcmu: action netlink_fault: argument delayMs is required for mode delay', 'delayMs');
  return { on, cmd: eventCmd(arg.cmd, 'action netlink_fault: cmd'), mode, delayMs: delayMs ?? 0, times };
}

export class NetlinkFaults {
  private rules: NetlinkFaultSpec[] = [];
  private held: (() => void)[] = [];

  add(spec: NetlinkFaultSpec): void {
    this.rules.push({ ...spec });
  }

  /** Removes every rule; held messages stay held until released. */
  clear(): number {
    const n = this.rules.length;
    this.rules = [];
    return n;
  }

  /** Delivers every held message, in the order held; returns how many. */
  release(): number {
    const held = this.held.splice(0);
    for (const deliver of held) deliver();
    return held.length;
  }

  /**
   * `deliver` sends the event, or handles the reply. With no matching rule
   * it runs now and null is returned; else the rule's mode is applied and
   * returned (drop: it never runs).
   */
  apply(on: 'event' | 'reply', cmd: EventCmd, deliver: () => void): NetlinkFaultMode | null {
    const rule = this.rules.find((r) => r.on === on && r.cmd === cmd);
    if (!rule) {
      deliver();
      return null;
    }
    if (--rule.times === 0) this.rules.splice(this.rules.indexOf(rule), 1);
    if (rule.mode === 'delay') setTimeout(deliver, rule.delayMs);
    else if (rule.mode === 'hold') this.held.push(deliver);
    return rule.mode;
  }

  /** A fault's description for its event: which message, in the kernel's names. */
  static label(on: 'event' | 'reply', cmd: EventCmd): string {
    return cmdName(on === 'event' ? cmd : DONE_OF[cmd]);
  }
}
