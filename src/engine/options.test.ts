import { describe, expect, it } from 'vitest';
import { type HearthError, isHearthError } from '../errors.js';
import {
  defaultLoadOptions,
  defaultSampling,
  effectiveLoadOptions,
  instanceKey,
  normalizeLoadOptions,
} from './options.js';
import { defaultThreadCount } from './threads.js';

describe('defaults', () => {
  it("are Ollama's, with the engine's numParallel, and partial values override them", () => {
    expect(defaultLoadOptions()).toEqual({
      numCtx: 2048,
      numBatch: 512,
      numGpu: -1,
      numThread: 0,
      useMmap: true,
      numParallel: 1,
    });
    expect(defaultLoadOptions({ numCtx: 8192, numGpu: undefined }, { numParallel: 4 })).toMatchObject({
      numCtx: 8192,
      numGpu: -1,
      numParallel: 4,
    });
    expect(defaultSampling()).toEqual({
      temperature: 0.8,
      topK: 40,
      topP: 0.9,
      minP: 0,
      typicalP: 1,
      repeatPenalty: 1.1,
      repeatLastN: 64,
      presencePenalty: 0,
      frequencyPenalty: 0,
      numPredict: -1,
      stop: [],
    });
    expect(defaultSampling({ seed: 7, temperature: 0 })).toMatchObject({ seed: 7, temperature: 0, topK: 40 });
  });
});

describe('load options', () => {
  it('fill numThread 0 with the engine default, so both share one instance', () => {
    const explicit = normalizeLoadOptions(defaultLoadOptions({ numThread: 3 }), 3);
    const byDefault = normalizeLoadOptions(defaultLoadOptions(), 3);
    expect(instanceKey('abc', byDefault)).toBe(instanceKey('abc', explicit));
    expect(instanceKey('abc', byDefault)).not.toBe(instanceKey('abc', { ...byDefault, numCtx: 4096 }));
    expect(instanceKey('abc', byDefault)).not.toBe(instanceKey('abd', byDefault));
  });

  it('refuse nonsense with BAD_REQUEST naming the option', () => {
    let err: unknown;
    try {
      normalizeLoadOptions(defaultLoadOptions({ numCtx: 0 }), 1);
    } catch (e) {
      err = e;
    }
    expect(isHearthError(err, 'BAD_REQUEST')).toBe(true);
    expect((err as Error).message).toMatch(/num_ctx must be an integer from 1 to/);
  });

  it('refuse more threads than the node has CPUs, naming the option, the bound and the default', () => {
    expect(normalizeLoadOptions(defaultLoadOptions({ numThread: 4 }), 3, 4).numThread).toBe(4);
    // a configured default above the CPU count stays allowed: node.threads keeps its meaning
    expect(normalizeLoadOptions(defaultLoadOptions({ numThread: 8 }), 8, 4).numThread).toBe(8);
    for (const numThread of [600, 5, 1e9, 1.5, -1]) {
      let err: unknown;
      try {
        normalizeLoadOptions(defaultLoadOptions({ numThread }), 3, 4);
      } catch (e) {
        err = e;
      }
      expect(isHearthError(err, 'BAD_REQUEST'), String(numThread)).toBe(true);
      expect((err as HearthError).status).toBe(400);
      expect((err as HearthError).details?.['param']).toBe('num_thread');
      expect((err as Error).message).toContain('num_thread must be an integer from 0 to 4 (this node has 4 CPUs');
    }
  });

  it('are effective: numCtx capped at the trained context and one sequence for an embedding model, in the key', () => {
    const load = normalizeLoadOptions(defaultLoadOptions({ numCtx: 1_000_000, numParallel: 4 }), 2, 2);
    const chat = effectiveLoadOptions(load, { trainContextSize: 2048, generates: true });
    expect(chat).toMatchObject({ numCtx: 2048, numParallel: 4 });
    expect(instanceKey('abc', chat)).toBe(
      instanceKey('abc', effectiveLoadOptions({ ...load, numCtx: 4096 }, { trainContextSize: 2048, generates: true })),
    );
    expect(effectiveLoadOptions(load, { trainContextSize: undefined, generates: false })).toMatchObject({
      numCtx: 1_000_000,
      numParallel: 1,
    });
  });
});

describe('default thread count', () => {
  it('leaves one core to the JS thread (measured: docs/engine.md)', () => {
    expect(defaultThreadCount(1)).toBe(1);
    expect(defaultThreadCount(2)).toBe(1);
    expect(defaultThreadCount(16)).toBe(15);
  });
});
