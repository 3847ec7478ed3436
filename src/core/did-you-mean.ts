/**
 * Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`:
 * the optimal string alignment distance, so `--prot` is one edit from `--port`.
 */
export function editDistance(a: string, b: string): number {
  // rows[i][j]: the distance between the first i characters of a and the first j of b.
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      rows[i][j] = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1);
    }
  }
  return rows[a.length][b.length];
}

/**
 * The candidates nearest to a mistyped `name`, best first (ties in the
 * candidates' order), or none when none is close. Close means few edits for
 * the length of the word: a guess from a far-off name misleads more than
 * the plain list does (`--ref` is not a typo of `--env`).
 */
export function didYouMean(name: string, candidates: readonly string[]): string[] {
  const typed = name.toLowerCase();
  const allowed = (candidate: string) => (candidate.length <= 4 ? 1 : candidate.length <= 8 ? 2 : 3);
  const scored = candidates
    .map((candidate) => ({ candidate, distance: editDistance(typed, candidate.toLowerCase()) }))
    .filter(({ candidate, distance }) => distance <= allowed(candidate));
  const best = Math.min(...scored.map(({ distance }) => distance));
  return scored.filter(({ distance }) => distance === best).map(({ candidate }) => candidate);
}
