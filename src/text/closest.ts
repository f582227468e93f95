// "Did you mean …?": the candidate nearest a mistyped word, by edit distance. Used for unknown
// GENESIS_* variables, CLI flags and CLI commands. Pure.

/** Edit distance counting insertions, deletions, substitutions and swaps of neighbours (josn → json: 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate nearest `word`, if it is near enough to be what was meant: at most `max` edits,
 * and fewer than half the word's length (so "x" does not suggest "list").
 */
export function closest(word: string, candidates: Iterable<string>, max = 3): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= max && bestDistance < Math.max(2, word.length / 2) ? best : undefined;
}
