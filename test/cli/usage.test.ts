/**
 * Usage errors of the cdevemu executable: what was wrong, and the form or
 * the flag that was meant, on one line (or commander's two), exit 2. The
 * messages are checked on the real executable; "did you mean" is checked
 * for every flag of every command on the real command tree.
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../daemon/program.js';
import { cdevemu } from '../helpers/cli.js';

const FORM = 'write each field as KEY=VALUE with no spaces around =, e.g. cdevemu fault add device=uio0 op=read nth=3 action=fail errno=EIO';

describe('fault add with a space where = belongs', () => {
  it.each([
    [['device', 'zero'], `cdevemu: fault add: "device" is not KEY=VALUE (did you mean device=zero?); ${FORM}\n`],
    [['device', '=', 'zero', 'op=read'], `cdevemu: fault add: "device" is not KEY=VALUE (did you mean device=zero?); ${FORM}\n`],
    [['op=read', '=EIO'], `cdevemu: fault add: "=EIO" is not KEY=VALUE; ${FORM}\n`],
  ])('fault add %j says what was wrong and shows the form', async (words, message) => {
    // No daemon is asked: the socket does not exist.
    const r = await cdevemu(['fault', 'add', ...words, '--socket', '/nonexistent/cdevemu.sock']);
    expect(r.stderr).toBe(message);
    expect(r.code).toBe(2);
  });
});

describe('an unknown flag', () => {
  it('--mountpoint for --mount: did you mean, exit 2', async () => {
    const r = await cdevemu(['daemon', '--mountpoint', '/nonexistent/mnt']);
    expect(r.stderr).toBe("error: unknown option '--mountpoint'\n(Did you mean --mount?)\n(run with --help for usage)\n");
    expect(r.code).toBe(2);
  });

  /** Every command of the tree with the words that reach it (`fault add`). */
  function commands(cmd: Command, path: string[] = []): Array<[string[], Command]> {
    return cmd.commands.flatMap((c) => [[[...path, c.name()], c] as [string[], Command], ...commands(c, [...path, c.name()])]);
  }

  /** What commander writes on stderr for `words`. */
  async function stderrOf(words: string[]): Promise<string> {
    const program = buildProgram(() => {
      throw new Error('no command may run');
    });
    let err = '';
    const capture = (c: Command): void => {
      c.configureOutput({ writeErr: (s) => void (err += s), writeOut: () => {} });
      for (const sub of c.commands) capture(sub);
    };
    capture(program);
    await expect(program.parseAsync(words, { from: 'user' })).rejects.toMatchObject({ code: 'commander.unknownOption' });
    return err;
  }

  const cases = commands(buildProgram(() => {})).flatMap(([path, cmd]) =>
    cmd.options.flatMap((o) => (o.long && o.long !== '--version' ? [[path.join(' '), o.long, path] as const] : [])),
  );

  it('covers every command that takes flags', () => {
    const withFlags = new Set(cases.map(([name]) => name));
    for (const name of ['daemon', 'ls', 'plug', 'unplug', 'replug', 'action', 'events', 'status', 'fault add', 'fault ls', 'fault rm', 'run']) {
      expect(withFlags, name).toContain(name);
    }
  });

  it.each(cases)('%s: %s with a letter missing, or a word too many, gets "did you mean" it', async (_name, flag, path) => {
    const k = Math.floor(flag.length / 2) + 1;
    for (const typed of [flag.slice(0, k) + flag.slice(k + 1), `${flag}-now`]) {
      const err = await stderrOf([...path, typed]);
      expect(err.startsWith(`error: unknown option '${typed}'\n(Did you mean `), err).toBe(true);
      const meant = /\(Did you mean (?:one of )?(.*)\?\)/.exec(err)?.[1]?.split(', ');
      expect(meant, err).toContain(flag);
    }
  });

  it.each([
    [['unplug', 'x', '--wait', '3'], "error: unknown option '--wait'\n(Did you mean --wait-release?)\n"],
    [['plug', 'echo', 'e', '--optionz', '{}'], "error: unknown option '--optionz'\n(Did you mean one of --option, --options?)\n"],
    [['ls', '--frobnicate'], "error: unknown option '--frobnicate'\n"],
  ])('%j: %j', async (words, message) => {
    expect(await stderrOf(words)).toBe(message + '(run with --help for usage)\n');
  });
});
