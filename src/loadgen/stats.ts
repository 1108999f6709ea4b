/** Mean and percentiles of a set of measurements, as vLLM's `bench serve` reports them. */
export interface Distribution {
  /** measurements summarised */
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

/**
 * The q-th percentile (0..100) of sorted values, interpolating linearly between
 * the two nearest ranks (numpy's default, which vLLM and GuideLLM use).
 */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (Math.min(100, Math.max(0, q)) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (rank - lo);
}

/** Mean, p50, p90 and p99 of `values`; null when there are none (a metric that was not measured). */
export function distribution(values: readonly number[]): Distribution | null {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return null;
  const sorted = [...finite].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    mean: sum / sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
  };
}

/** The median of repeated runs (benchmark suites report medians, not means: one noisy run must not move them). */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return percentile(sorted, 50);
}
