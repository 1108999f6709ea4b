import { describe, expect, it } from 'vitest';
import { rerankerChoice } from './rerank.js';

describe('rerankerChoice', () => {
  it("follows a query's rerank, else knowledge.reranker", () => {
    expect(rerankerChoice(undefined, '')).toBeNull();
    expect(rerankerChoice(undefined, 'bge')).toEqual({ model: 'bge', setting: 'knowledge.reranker' });
    expect(rerankerChoice(true, 'bge')).toEqual({ model: 'bge', setting: 'knowledge.reranker' });
    expect(rerankerChoice(false, 'bge')).toBeNull();
    expect(rerankerChoice('qwen3-reranker', 'bge')).toEqual({ model: 'qwen3-reranker', setting: 'rerank' });
  });

  it('refuses rerank: true when no reranker is configured, saying what to set', () => {
    expect(() => rerankerChoice(true, '')).toThrow(/no reranker is configured: set knowledge\.reranker/);
  });
});
