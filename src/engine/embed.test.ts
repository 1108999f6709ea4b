import { describe, expect, it } from 'vitest';
import { normalize } from './embed.js';

describe('embedding normalisation', () => {
  it('makes unit vectors from the first N dimensions and leaves a zero vector alone', () => {
    expect(normalize([3, 4])).toEqual([0.6, 0.8]);
    expect(normalize([3, 4, 12], 2)).toEqual([0.6, 0.8]);
    expect(normalize([0, 0])).toEqual([0, 0]);
  });
});
