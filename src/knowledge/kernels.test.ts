import { describe, expect, it } from 'vitest';
import { Quantiser, SignBits } from './kernels.js';

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

describe('quantising (WebAssembly)', () => {
  it('gives the codes, sign bits and scale the JavaScript definition gives', () => {
    let seed = 11;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648 - 0.5;
    };
    for (const dims of [1, 31, 33, 96, 768]) {
      const quantiser = new Quantiser(dims);
      for (const vector of [Float32Array.from({ length: dims }, random), new Float32Array(dims)]) {
        const max = Math.max(...vector.map(Math.abs));
        const scale = max === 0 ? 0 : max / 127;
        const inverse = scale === 0 ? 0 : 1 / scale;
        const codes = Int8Array.from(vector, (x) => Math.round(x * inverse));
        const bits = new Uint32Array(Math.ceil(dims / 32));
        vector.forEach((x, i) => {
          if (x > 0) bits[i >>> 5]! |= 1 << (i & 31);
        });
        expect(Math.fround(quantiser.quantise(vector))).toBe(Math.fround(scale));
        expect([...quantiser.codes]).toEqual([...codes]);
        expect([...quantiser.bits]).toEqual([...bits]);
      }
    }
  });
});
