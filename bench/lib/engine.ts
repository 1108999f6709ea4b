// hearth's engine in this process (no HTTP): what the gateway adds on top of it is the HTTP layer.
import { Engine } from '../../src/engine/index.js';
import { acquireLlama, type LlamaLease } from '../../src/engine/llama.js';
import { defaultLoadOptions, defaultSampling } from '../../src/engine/options.js';
import { localSpec } from '../../src/engine/test-support.js';
import type { LoadOptions, ModelSpec } from '../../src/engine/types.js';
import { silentLogger } from '../../src/log.js';
import type { DecodeRun } from './direct.js';

export async function openEngine(threads: number, numParallel: number): Promise<Engine> {
  return Engine.open({
    gpu: 'cpu',
    gpuFallback: 'cpu',
    threads,
    maxLoadedModels: 2,
    maxQueue: 64,
    numParallel,
    log: silentLogger(),
  });
}

export async function modelSpec(path: string, name: string): Promise<ModelSpec> {
  return localSpec(path, name);
}

export function loadOptions(opts: {
  numCtx: number;
  numBatch: number;
  numThread: number;
  numParallel: number;
}): LoadOptions {
  return defaultLoadOptions({ ...opts, numGpu: 0, useMmap: true });
}

/** A raw completion through Engine.generate, timed from the engine's own figures. */
export async function engineDecode(
  engine: Engine,
  spec: ModelSpec,
  load: LoadOptions,
  prompt: string,
  tokens: number,
  seed: number,
): Promise<DecodeRun & { stoppedEarly: boolean }> {
  const r = await engine.generate({
    kind: 'completion',
    model: spec,
    load,
    keepAliveMs: -1,
    prompt,
    sampling: defaultSampling({ numPredict: tokens, seed }),
  });
  return {
    promptTokens: r.promptTokens,
    ttftMs: r.promptEvalDurationNs / 1e6,
    tokens: r.evalTokens,
    decodeTokS: r.evalTokens > 1 ? (r.evalTokens - 1) / (r.evalDurationNs / 1e9) : Number.NaN,
    stoppedEarly: r.doneReason === 'stop',
  };
}

/**
 * A seed for which hearth generates all `tokens` for `prompt` (random-weight models sample an
 * end-of-generation token now and then; hearth stops there, as it must). Same engine code, same
 * seed, same prompt: the same tokens on every run, in-process or over HTTP.
 */
export async function fullLengthSeed(
  engine: Engine,
  spec: ModelSpec,
  load: LoadOptions,
  prompt: string,
  tokens: number,
  maxTries = 40,
): Promise<number> {
  let best = { seed: 1, tokens: -1 };
  for (let seed = 1; seed <= maxTries; seed++) {
    const r = await engine.generate({
      kind: 'completion',
      model: spec,
      load,
      keepAliveMs: -1,
      prompt,
      sampling: defaultSampling({ numPredict: tokens, seed }),
    });
    if (r.doneReason === 'length' && r.evalTokens >= tokens) return seed;
    if (r.evalTokens > best.tokens) best = { seed, tokens: r.evalTokens };
  }
  return best.seed;
}

/** The process's Llama, shared with any Engine in this process (hearth's settings: prebuilt CPU binaries, maxThreads 0). */
export function sharedLlama(): Promise<LlamaLease> {
  return acquireLlama({ gpu: 'cpu', gpuFallback: 'cpu', log: silentLogger() });
}
