/**
 * Device-name globs: `*` any run of characters, `?` one character.
 *
 * Matched by the two-pointer wildcard walk the kernel's glob_match()
 * (lib/glob.c) uses: on a mismatch it returns to the last `*` only and lets
 * it swallow one more character, so a match costs at most
 * O(pattern × name) steps whatever the pattern. A regular expression built
 * from the glob backtracks exponentially on patterns such as `***…*x` and
 * would freeze the daemon's only thread on one device name.
 */
export function globMatcher(pattern: string): (name: string) => boolean {
  if (!/[*?]/.test(pattern)) return (name) => name === pattern;
  // Runs of stars match what one star matches.
  const p = pattern.replace(/\*+/g, '*');
  return (name) => globMatch(p, name);
}

function globMatch(p: string, s: string): boolean {
  let pi = 0;
  let si = 0;
  // Where the last star was, and how much of `s` it has swallowed so far.
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    const c = p[pi];
    if (c === '*') {
      starP = pi++;
      starS = si;
    } else if (c !== undefined && (c === '?' || c === s[si])) {
      pi++;
      si++;
    } else if (starP >= 0) {
      pi = starP + 1;
      si = ++starS;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}
