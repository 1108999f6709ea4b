import { describe, expect, it } from 'vitest';
import { SignBits } from './kernels.js';

function popcount(x: number): number {
  let n = 0;
  for (let b = x >>> 0; b; b >>>= 1) n += b & 1;
  return n;
}

describe('sign-bit Hamming distances (WebAssembly)', () => {
  it('equal a bit-by-bit count for every vector, whatever the number of words', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return (seed * 2) >>> 0;
    };
    for (const words of [1, 3, 24]) {
      const count = 1000;
      const bits = Uint32Array.from({ length: count * words }, random);
      const query = Uint32Array.from({ length: words }, random);
      const distances = [...new SignBits(bits, count, words).distancesTo(query)];
      const expected = Array.from({ length: count }, (_, v) => {
        let d = 0;
        for (let w = 0; w < words; w++) d += popcount(bits[v * words + w]! ^ query[w]!);
        return d;
      });
      expect(distances).toEqual(expected);
    }
  });

  it('answers for an empty index', () => {
    expect([...new SignBits(new Uint32Array(0), 0, 24).distancesTo(new Uint32Array(24))]).toEqual([]);
  });
});
