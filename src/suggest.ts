/**
 * "Did you mean": the known name a mistyped one most likely meant, for the
 * CLI's flags and the daemon's models, actions and options alike.
 */

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`: optimal string alignment distance. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The names `typed` most likely meant (the closest, several on a tie), or none: one a few edits away (a
 * typo: `--jsn`, `tcum`), else one that `typed` begins with or that begins with
 * `typed` (a longer or shorter word: `--mountpoint` for `--mount`,
 * `--wait` for `--wait-release`). Flags are given with their dashes.
 */
export function closestNames(typed: string, flags: readonly string[]): string[] {
  const word = typed.replace(/^--/, '').toLowerCase();
  if (word.length < 2) return [];
  let best: string[] = [];
  let bestDistance = Infinity;
  for (const flag of new Set(flags)) {
    const name = flag.replace(/^--/, '');
    const distance = editDistance(word, name);
    const typo = distance <= Math.min(3, Math.floor(Math.max(word.length, name.length) / 2));
    const shorter = name.length >= 3 && word.startsWith(name);
    const longer = word.length >= 3 && name.startsWith(word);
    if (!typo && !shorter && !longer) continue;
    if (distance < bestDistance) [best, bestDistance] = [[flag], distance];
    else if (distance === bestDistance) best.push(flag);
  }
  return best;
}

/** " (did you mean X?)", " (did you mean one of X, Y?)" or "", for an error message about `typed`. */
export function didYouMean(typed: string, known: readonly string[]): string {
  const guess = closestNames(typed, known);
  return guess.length ? ` (did you mean ${meant(guess)}?)` : '';
}

/** "X", or "one of X, Y" for several guesses. */
export function meant(guess: readonly string[]): string {
  return guess.length > 1 ? `one of ${guess.join(', ')}` : guess[0]!;
}
