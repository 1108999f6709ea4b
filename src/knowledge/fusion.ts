/** The k of reciprocal rank fusion: 60, as in Cormack, Clarke and Büttcher (SIGIR 2009) and most RAG stacks. */
export const RRF_K = 60;

export interface Fused<T> {
  id: T;
  /** Σ 1 / (k + rank) over the lists that hold the id; ranks count from 1 */
  score: number;
  /** the id's rank in each list (1-based), null where the list does not hold it */
  ranks: Array<number | null>;
}

/**
 * Reciprocal rank fusion: each list votes 1 / (k + rank) for each id it holds, and ids are ordered by
 * their summed votes (ties: the better best rank first, then first seen). Scores need no calibration
 * between lists (a ts_rank and a cosine are not comparable; their ranks are).
 */
export function reciprocalRankFusion<T>(lists: ReadonlyArray<readonly T[]>, k = RRF_K): Array<Fused<T>> {
  const fused = new Map<T, Fused<T>>();
  lists.forEach((list, which) => {
    list.forEach((id, index) => {
      let entry = fused.get(id);
      if (!entry) {
        entry = { id, score: 0, ranks: lists.map(() => null) };
        fused.set(id, entry);
      }
      if (entry.ranks[which] !== null) return; // a list that repeats an id votes once, at its best rank
      entry.ranks[which] = index + 1;
      entry.score += 1 / (k + index + 1);
    });
  });
  const best = (f: Fused<T>) => Math.min(...f.ranks.map((r) => r ?? Number.POSITIVE_INFINITY));
  return [...fused.values()].sort((a, b) => b.score - a.score || best(a) - best(b));
}
