import { describe, expect, it } from 'vitest';
import { distribution, median, percentile } from './stats.js';

describe('distribution', () => {
  it('interpolates percentiles between ranks as numpy does', () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    // numpy.percentile(range(1, 11), [50, 90, 99]) = 5.5, 9.1, 9.91
    expect(distribution(values)).toEqual({
      count: 10,
      mean: 5.5,
      p50: 5.5,
      p90: expect.closeTo(9.1, 10),
      p99: expect.closeTo(9.91, 10),
    });
    expect(percentile([3], 99)).toBe(3);
  });

  it('is null when nothing was measured, and ignores non-finite values', () => {
    expect(distribution([])).toBeNull();
    expect(distribution([Number.NaN])).toBeNull();
    expect(distribution([2, Number.POSITIVE_INFINITY, 4])?.mean).toBe(3);
  });

  it('takes the median of repeated runs regardless of order', () => {
    expect(median([30, 10, 20])).toBe(20);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
