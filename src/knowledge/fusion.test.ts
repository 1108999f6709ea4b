import { describe, expect, it } from 'vitest';
import { RRF_K, reciprocalRankFusion } from './fusion.js';

describe('reciprocal rank fusion', () => {
  it('sums 1/(60 + rank) over the lists, as computed by hand', () => {
    // full text: a b c; vectors: c a d
    const fused = reciprocalRankFusion([
      ['a', 'b', 'c'],
      ['c', 'a', 'd'],
    ]);
    expect(RRF_K).toBe(60);
    // a: 1/61 + 1/62 = 0.0325225...; c: 1/63 + 1/61 = 0.0322664...; b: 1/62; d: 1/63
    expect(fused.map((f) => f.id)).toEqual(['a', 'c', 'b', 'd']);
    expect(fused[0]!.score).toBeCloseTo(1 / 61 + 1 / 62, 12);
    expect(fused[0]!.score).toBeCloseTo(0.03252247488101534, 12);
    expect(fused[1]!.score).toBeCloseTo(0.0322664584959667, 12);
    expect(fused[2]!.score).toBeCloseTo(1 / 62, 12);
    expect(fused[3]!.score).toBeCloseTo(1 / 63, 12);
    expect(fused[0]!.ranks).toEqual([1, 2]);
    expect(fused[3]!.ranks).toEqual([null, 3]);
  });

  it('breaks a tie by the better best rank, and counts a repeated id once', () => {
    // x is 1st in list one only, y 1st in list two only: equal scores, first seen first.
    const fused = reciprocalRankFusion([['x', 'x'], ['y']], 10);
    expect(fused.map((f) => [f.id, f.score])).toEqual([
      ['x', 1 / 11],
      ['y', 1 / 11],
    ]);
  });
});
