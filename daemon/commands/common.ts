/** What every client command shares: --socket, the client, JSON arguments. */
import { InvalidArgumentError, type Command } from 'commander';
import { ControlClient, type EventsOptions } from '../../src/control/client.js';
import { toJson, type DeviceEvent } from '../../src/control/protocol.js';
import { resolveSocketPath } from '../../src/control/socket-path.js';
import { parseKeyValue } from '../../src/config/key-value.js';
import { CliError, Exit } from '../exit.js';
import { MAX_DURATION_MS, MAX_DURATION_TEXT } from '../../src/limits.js';

export interface SocketOpts {
  socket?: string;
}

/** Adds --socket to a client command. */
export function withSocket(cmd: Command): Command {
  return cmd.option('--socket <path>', 'control socket (default: $CDEVEMU_SOCKET, else the default path)');
}

/**
 * The control client of the commands: a daemon that closes the connection
 * before it answers (it was stopped, or died, mid-request: Node's "socket
 * hang up", ECONNRESET) or in the middle of the event stream is said in one
 * line, exit 3 like a daemon that is not there, instead of a Node stack.
 */
class CliClient extends ControlClient {
  override async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await super.call<T>(method, path, body);
    } catch (err) {
      throw this.wentAway(err, 'before it answered');
    }
  }

  override async *events(o: EventsOptions = {}): AsyncGenerator<DeviceEvent, void, undefined> {
    try {
      yield* super.events(o);
    } catch (err) {
      throw this.wentAway(err, 'in the middle of the event stream');
    }
  }

  /** `err` as exit 3 when it is the connection's end; else `err` itself. */
  private wentAway(err: unknown, when: string): unknown {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ECONNRESET' && code !== 'EPIPE') return err;
    return new CliError(Exit.unreachable, `the cdevemu daemon at ${this.socketPath} went away ${when} (it was stopped, or died)`);
  }
}

export function clientFor(o: SocketOpts): ControlClient {
  return new CliClient(resolveSocketPath(o.socket));
}

/** Parses a JSON command-line argument; bad JSON is a usage error (exit 2). */
export function parseJsonArg(what: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliError(Exit.usage, `${what}: not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * commander argParser for repeatable `--option k=v`; v is JSON when it
 * parses, else a string. A key given twice is refused rather than the last
 * taken: `op=read op=write` would otherwise fault writes alone, silently.
 * commander passes no `prev` for the first; the keys in `names` take their
 * value as text (parseKeyValue).
 */
export function collectOption(kv: string, prev: Record<string, unknown> = {}, names?: ReadonlySet<string>): Record<string, unknown> {
  const pair = parseKeyValue(kv, names);
  if (!pair) throw new InvalidArgumentError(`expected KEY=VALUE, got ${JSON.stringify(kv)}`);
  const [key, value] = pair;
  if (Object.hasOwn(prev, key)) {
    throw new InvalidArgumentError(`${key} is given twice (${toJson(prev[key])} and ${toJson(value)}); give each key once`);
  }
  return { ...prev, [key]: value };
}

/** The options object of `--option k=v ...` or `--options JSON` (not both); undefined if neither. */
export function modelOptions(o: { option?: Record<string, unknown>; options?: string }): unknown {
  if (o.option && o.options !== undefined) throw new CliError(Exit.usage, 'give either --option k=v or --options JSON, not both');
  if (o.options !== undefined) return parseJsonArg('--options', o.options);
  return o.option;
}

/** A non-negative number of `unit`s, bounded so that it still fits a timer once in ms. */
export function nonNegativeInt(what: string, unitMs = 1): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v.trim()) || !Number.isFinite(n)) throw new InvalidArgumentError(`${what}: expected a non-negative number, got ${JSON.stringify(v)}`);
    if (n * unitMs > MAX_DURATION_MS) throw new InvalidArgumentError(`${what}: ${MAX_DURATION_TEXT}, got ${v}`);
    return n;
  };
}
