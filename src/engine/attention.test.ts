// The attention settings' rules, without a model: the flags, the refusals, the per-model fallback.
import { describe, expect, it } from 'vitest';
import { attentionFlags, attentionForModel, inProcessAttention, resolveAttention } from './attention.js';

describe('attention settings', () => {
  it('passes --flash-attn and both cache types; a quantized cache turns auto to on', () => {
    expect(attentionFlags({ flashAttention: 'auto', kvCacheType: 'f16' })).toEqual([
      '--flash-attn',
      'auto',
      '--cache-type-k',
      'f16',
      '--cache-type-v',
      'f16',
    ]);
    expect(attentionFlags({ flashAttention: 'auto', kvCacheType: 'q4_0' }).slice(0, 2)).toEqual(['--flash-attn', 'on']);
    expect(attentionFlags({ flashAttention: 'off', kvCacheType: 'f16' }).slice(0, 2)).toEqual(['--flash-attn', 'off']);
  });

  it('refuses a quantized cache with flash attention off, naming both keys', () => {
    expect(() => resolveAttention({ flashAttention: 'off', kvCacheType: 'q8_0' })).toThrow(
      /inference\.kvCacheType q8_0 needs flash attention .* inference\.flashAttention is off/,
    );
    expect(resolveAttention({ flashAttention: 'on', kvCacheType: 'q8_0' })).toEqual({
      flashAttention: 'on',
      kvCacheType: 'q8_0',
    });
  });

  it('keeps f16 for a model whose heads are no multiple of 32, saying why', () => {
    const q8 = { flashAttention: 'auto', kvCacheType: 'q8_0' } as const;
    expect(attentionForModel(q8, { k: 64, v: 64 })).toEqual({ attention: q8, fallback: null });
    const small = attentionForModel(q8, { k: 16, v: 16 });
    expect(small.attention).toEqual({ flashAttention: 'auto', kvCacheType: 'f16' });
    expect(small.fallback).toMatch(/K 16, V 16 elements\) are no multiple of the 32 a q8_0 block holds/);
  });

  it('maps flash attention onto node-llama-cpp in process and refuses a quantized cache there', () => {
    expect(inProcessAttention({ flashAttention: 'auto', kvCacheType: 'f16' }, 'm')).toEqual({ flashAttention: 'auto' });
    expect(inProcessAttention({ flashAttention: 'on', kvCacheType: 'f16' }, 'm')).toEqual({ flashAttention: true });
    expect(inProcessAttention({ flashAttention: 'off', kvCacheType: 'f16' }, 'm')).toEqual({ flashAttention: false });
    expect(() => inProcessAttention({ flashAttention: 'on', kvCacheType: 'q8_0' }, 'm')).toThrow(
      /only the server engine \(llama-server\) quantizes the KV cache/,
    );
  });
});
