/**
 * The Command class of every command of the cdevemu executable: commander's,
 * with a "did you mean" for unknown flags (src/suggest.ts).
 */
import { Command, type OptionValueSource } from 'commander';
import { closestNames, meant } from '../src/suggest.js';

const longFlags = (cmd: Command): string[] => cmd.createHelp().visibleOptions(cmd).flatMap((o) => (o.long ? [o.long] : []));

/**
 * commander's Command with a "did you mean" for every unknown flag
 * commander's own guess misses: it suggests only within three edits, so
 * `--mountpoint` got nothing for `--mount`. Subcommands are made by
 * createCommand, so every command of the tree gets it.
 */
export class CliCommand extends Command {
  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  /**
   * A flag of one value given twice (`run --timeout 1s --timeout 60s`) is
   * refused: commander keeps the last and drops the first without a word,
   * and a run bound by the dropped one would pass where the user said it
   * must fail. Repeatable flags collect through a parser of their own
   * (`--bind`, `--device`), and a switch given twice says nothing new.
   */
  override setOptionValueWithSource(key: string, value: unknown, source: OptionValueSource): this {
    const option = this.options.find((o) => o.attributeName() === key);
    if (option && source === 'cli' && this.getOptionValueSource(key) === 'cli' && !option.isBoolean() && !option.parseArg) {
      const [first, again] = [this.getOptionValue(key), value].map((v) => JSON.stringify(v));
      this.error(`error: option '${option.flags}' given twice (${first} and ${again}); give it once`, { code: 'commander.optionRepeated' });
    }
    return super.setOptionValueWithSource(key, value, source);
  }

  /** commander calls this for a flag no command on the path declares (lib/command.js unknownOption). */
  unknownOption(flag: string): void {
    // This command's flags and its parents', as commander looks for them.
    const flags = longFlags(this);
    for (let cmd = this.parent; cmd; cmd = cmd.parent) flags.push(...longFlags(cmd));
    const guess = flag.startsWith('--') ? closestNames(flag, flags) : [];
    // The wording of commander's own suggestion (lib/suggestSimilar.js).
    const hint = guess.length ? `\n(Did you mean ${meant(guess)}?)` : '';
    this.error(`error: unknown option '${flag}'${hint}`, { code: 'commander.unknownOption' });
  }
}

