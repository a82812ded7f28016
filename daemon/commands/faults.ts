/** `cdevemu fault add | ls | rm`: fault rules on a running daemon (README.md, "Fault injection"). */
import { InvalidArgumentError, type Command } from 'commander';
import { NAME_FIELDS, describeFault, faultAction, faultMatch, faultTrigger, type FaultRuleStatus } from '../../src/faults/index.js';
import { globMatcher } from '../../src/faults/glob.js';
import { CliError, Exit } from '../exit.js';
import { table } from '../format.js';
import { clientFor, collectOption, parseJsonArg, withSocket, type SocketOpts } from './common.js';

const EXAMPLE = 'cdevemu fault add device=uio0 op=read nth=3 action=fail errno=EIO';

/**
 * The KEY=VALUE words of `fault add` added to `rule` (--json's). A word
 * without `=` is a usage error that says what was wrong and shows the form;
 * `device zero` and `device = zero` (the shell split the pair) get the word
 * they meant. A field given twice, in words or in words and --json, is
 * refused: which one was meant?
 */
function ruleFields(words: readonly string[], rule: Record<string, unknown>): Record<string, unknown> {
  for (const [i, word] of words.entries()) {
    if (word.indexOf('=') > 0) {
      rule = addField(word, rule);
      continue;
    }
    // The shell split a pair: `device zero` or `device = zero`.
    const [a, b] = words.slice(i + 1, i + 3);
    const value = a === '=' ? b : a !== undefined && !a.includes('=') ? a : undefined;
    const meant = !word.includes('=') && value !== undefined ? `${word}=${value}` : null;
    throw new CliError(
      Exit.usage,
      `fault add: ${JSON.stringify(word)} is not KEY=VALUE${meant ? ` (did you mean ${meant}?)` : ''}; write each field as KEY=VALUE with no spaces around =, e.g. ${EXAMPLE}`,
    );
  }
  return rule;
}

/** collectOption's, with its refusal said as `fault add`'s usage error (it is not commander's to print here). */
function addField(word: string, rule: Record<string, unknown>): Record<string, unknown> {
  try {
    return collectOption(word, rule, NAME_FIELDS);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new CliError(Exit.usage, `fault add: ${err.message}`);
    throw err;
  }
}

export function registerFaultCommands(program: Command): void {
  const fault = program.command('fault').description('fault rules: add, list, remove');

  withSocket(fault.command('add'))
    .description('add a fault rule, e.g.: fault add device=uio0 op=read nth=3 action=fail errno=EIO')
    .argument('[fields...]', 'rule fields as KEY=VALUE (values parsed as JSON when they are JSON, but device and comm: names)')
    .option('--json <rule>', 'the whole rule as one JSON object')
    .action(async (fields: string[], o: SocketOpts & { json?: string }) => {
      let rule: Record<string, unknown> = {};
      if (o.json !== undefined) {
        const parsed = parseJsonArg('--json', o.json);
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError(Exit.usage, '--json: expected a JSON object');
        rule = parsed as Record<string, unknown>;
      }
      rule = ruleFields(fields, rule);
      if (Object.keys(rule).length === 0) throw new CliError(Exit.usage, `give the rule as KEY=VALUE fields or --json, e.g. ${EXAMPLE}`);
      // Unchecked user input: the daemon validates it and names a bad field.
      const client = clientFor(o);
      const added = await client.call<FaultRuleStatus>('POST', '/faults', rule);
      process.stdout.write(`added fault ${added.id}: ${describeFault(added)}\n`);
      // The daemon takes a glob no device matches yet (one may be plugged
      // later), but a misspelt name would leave the rule firing on nothing.
      const names = (await client.listDevices()).map((d) => d.name);
      if (!names.some(globMatcher(added.device))) {
        process.stderr.write(`note: no device matches ${JSON.stringify(added.device)} now (devices: ${names.join(', ') || 'none'}); the rule acts on one plugged later\n`);
      }
    });

  withSocket(fault.command('ls'))
    .description('list fault rules with how often each matched and fired')
    .option('--json', 'print the raw JSON')
    .action(async (o: SocketOpts & { json?: boolean }) => {
      const rules = await clientFor(o).listFaults();
      if (o.json) process.stdout.write(JSON.stringify(rules, null, 2) + '\n');
      else {
        process.stdout.write(
          table(
            ['ID', 'MATCH', 'TRIGGER', 'ACTION', 'MATCHED', 'FIRED'],
            rules.map((r) => [r.id, faultMatch(r), faultTrigger(r), faultAction(r), String(r.matched), String(r.fired)]),
          ),
        );
      }
    });

  withSocket(fault.command('rm'))
    .description('remove a fault rule, or all of them with --all')
    .argument('[id]')
    .option('--all', 'remove every rule')
    .action(async (id: string | undefined, o: SocketOpts & { all?: boolean }) => {
      if ((id === undefined) === !o.all) throw new CliError(Exit.usage, 'give a rule id or --all');
      const { removed } = await clientFor(o).removeFault(o.all ? undefined : id);
      process.stdout.write(removed.length ? `removed ${removed.join(', ')}\n` : 'no rules\n');
    });
}
