import { describe, expect, it } from 'vitest';
import { decodeVector, encodeVector, VectorIndex } from './vectors.js';

function unit(dims: number, seed: number): Float32Array {
  let x = seed;
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    v[i] = x / 2147483648 - 0.5;
    norm += v[i]! * v[i]!;
  }
  return v.map((a) => a / Math.sqrt(norm));
}

describe('vector index', () => {
  it('round-trips vectors through the stored bytea form', () => {
    const v = unit(16, 3);
    expect([...decodeVector(encodeVector(v))]).toEqual([...v]);
  });

  it('finds the nearest vectors, exact and indexed alike, with cosine scores', () => {
    const builder = VectorIndex.builder(96);
    const vectors = Array.from({ length: 5000 }, (_, i) => unit(96, i + 1));
    for (const [i, v] of vectors.entries()) builder.add(i + 1, v);
    const index = builder.build();
    // a query near vector 1234
    const query = vectors[1233]!.map((a, i) => a + 0.02 * (unit(96, 99_999)[i] ?? 0));
    const exact = index.search(query, 5, 'exact');
    const indexed = index.search(query, 5, 'indexed');
    expect(exact[0]!.id).toBe(1234);
    expect(exact[0]!.score).toBeGreaterThan(0.95);
    expect(indexed[0]).toEqual(exact[0]);
  });
});
