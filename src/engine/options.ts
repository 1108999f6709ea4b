import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { HearthError } from '../errors.js';
import type { AttentionSettings } from './attention.js';
import type { EngineObserver } from './observer.js';
import type { ServerBinary } from './server/engine.js';
import type { LoadOptions, SamplingOptions } from './types.js';

/** How `Engine.open` sets up llama.cpp and the scheduler. */
export interface EngineOptions {
  /** Backend to run on: `auto` picks a GPU whose binary loads and falls back to CPU by itself. */
  gpu: 'auto' | 'cuda' | 'vulkan' | 'metal' | 'cpu';
  /**
   * What to do when the GPU fails (its backend does not start, or a load or a generation fails on it):
   * `cpu` keeps serving on the CPU (logged as an error), `none` fails those requests with ENGINE_GPU_FAILED.
   */
  gpuFallback: 'cpu' | 'none';
  /** CPU threads per model instance; 0 = the measured default (see docs/engine.md: one core is left to the JS thread on small machines). */
  threads: number;
  /** Model instances loaded at once; 0 = auto (3 per GPU, or 3 on CPU), then limited by the memory budget. */
  maxLoadedModels: number;
  /**
   * Requests waiting for a sequence or a load; one more is refused with QUEUE_FULL (HTTP 503).
   * The bound holds for models that are already loaded too (unlike Ollama, issue #7758).
   */
  maxQueue: number;
  /** Default parallel sequences per model instance (LoadOptions.numParallel overrides). */
  numParallel: number;
  /**
   * Bytes the engine may use for loaded models (weights + KV cache): VRAM on a GPU backend, RAM on CPU.
   * Default: the free VRAM (GPU) or free RAM (CPU) when the engine opens, less llama.cpp's safety padding.
   */
  memoryBudget?: number;
  /**
   * How long a load may wait for busy instances to go idle when the memory budget or maxLoadedModels is
   * exhausted, before it fails with ENGINE_OUT_OF_MEMORY. Default 5 minutes (Ollama's load timeout).
   */
  loadWaitMs?: number;
  /** Told about loads, unloads and every request's progress (the metrics); none by default. */
  observer?: EngineObserver;
  /** A llama-server to run models with from the start (see Engine.attachServer); none: in-process until one is attached. */
  server?: ServerBinary;
  /** Bound on a llama-server's start: process, model load, first ready answer. Default 5 minutes. */
  serverReadyTimeoutMs?: number;
  /** Told of each llama-server that exits while serving (the restarts metric). */
  onServerCrash?: (model: string) => void;
  /** Flash attention and the KV cache type of every instance (inference.flashAttention, inference.kvCacheType); default auto and f16. */
  attention?: AttentionSettings;
  log: Logger;
}

/** Ollama's load-time defaults; `partial` fields that are undefined are ignored. */
export function defaultLoadOptions(
  partial: Partial<LoadOptions> = {},
  engineDefaults: { numParallel: number } = { numParallel: 1 },
): LoadOptions {
  return {
    numCtx: partial.numCtx ?? 2048,
    numBatch: partial.numBatch ?? 512,
    numGpu: partial.numGpu ?? -1,
    numThread: partial.numThread ?? 0,
    useMmap: partial.useMmap ?? true,
    numParallel: partial.numParallel ?? engineDefaults.numParallel,
  };
}

/** Ollama's sampling defaults (api/types.go DefaultOptions); `partial` fields that are undefined are ignored. */
export function defaultSampling(partial: Partial<SamplingOptions> = {}): SamplingOptions {
  const out: SamplingOptions = {
    temperature: partial.temperature ?? 0.8,
    topK: partial.topK ?? 40,
    topP: partial.topP ?? 0.9,
    minP: partial.minP ?? 0,
    typicalP: partial.typicalP ?? 1,
    repeatPenalty: partial.repeatPenalty ?? 1.1,
    repeatLastN: partial.repeatLastN ?? 64,
    presencePenalty: partial.presencePenalty ?? 0,
    frequencyPenalty: partial.frequencyPenalty ?? 0,
    numPredict: partial.numPredict ?? -1,
    stop: partial.stop ?? [],
  };
  if (partial.seed !== undefined) out.seed = partial.seed;
  if (partial.numKeep !== undefined) out.numKeep = partial.numKeep;
  return out;
}

/**
 * The largest value of each load option the engine accepts: beyond these a request is absurd, not
 * ambitious (no GGUF trains a context of 16M tokens; llama.cpp's sequence ids are small). numThread's
 * bound is the node's CPU count (see normalizeLoadOptions).
 */
export const LOAD_LIMITS = {
  numCtx: 1 << 24,
  numBatch: 1 << 20,
  numParallel: 256,
  numGpu: 1 << 16,
} as const;

/** This node's CPU count: the most threads an instance may have (more only thrash, issue 18). */
export function nodeCpuCount(): number {
  return availableParallelism();
}

/**
 * Checks load options and fills in what the engine decides: numThread 0 becomes the engine's
 * default, so `0` and the default's value share one instance. numThread may not exceed this
 * node's CPU count (or the configured default, when that is larger): more threads than cores
 * only spin against each other.
 */
export function normalizeLoadOptions(load: LoadOptions, engineThreads: number, cpuCount = nodeCpuCount()): LoadOptions {
  const ranges: Array<[keyof LoadOptions, string, number, number]> = [
    ['numCtx', 'num_ctx', 1, LOAD_LIMITS.numCtx],
    ['numBatch', 'num_batch', 1, LOAD_LIMITS.numBatch],
    ['numParallel', 'num_parallel', 1, LOAD_LIMITS.numParallel],
    ['numGpu', 'num_gpu', -1, LOAD_LIMITS.numGpu],
    ['numThread', 'num_thread', 0, Math.max(cpuCount, engineThreads)],
  ];
  for (const [key, option, min, max] of ranges) {
    const value = load[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      const why = key === 'numThread' ? ` (this node has ${cpuCount} CPUs; 0 = the default, ${engineThreads})` : '';
      throw new HearthError(
        'BAD_REQUEST',
        `${option} must be an integer from ${min} to ${max}${why}, got ${String(value)}`,
        { details: { param: option } },
      );
    }
  }
  return { ...load, numThread: load.numThread === 0 ? engineThreads : load.numThread };
}

/** What the engine knows of a model file that decides the options its instances really run with. */
export interface ModelFacts {
  /** `context_length` the model was trained with (none in some GGUFs) */
  trainContextSize: number | undefined;
  /** whether it generates text (an embedding-only model needs one sequence) */
  generates: boolean;
}

/**
 * The options an instance really runs with: numCtx capped at the trained context, one sequence
 * for a model that does not generate. Instances are keyed by these (instanceKey), so requests that
 * differ only in what the model ignores (num_ctx 100000 and 4096 on a 2048-token model) share one
 * instance. One place for this mapping, for every backend.
 */
export function effectiveLoadOptions(load: LoadOptions, facts: ModelFacts): LoadOptions {
  return {
    ...load,
    numCtx: Math.min(load.numCtx, facts.trainContextSize ?? load.numCtx),
    numParallel: facts.generates ? load.numParallel : 1,
  };
}

/** The instance cache key: a request asking for different load options gets a different instance. */
export function instanceKey(digest: string, load: LoadOptions): string {
  return [
    digest,
    `ctx=${load.numCtx}`,
    `batch=${load.numBatch}`,
    `gpu=${load.numGpu}`,
    `threads=${load.numThread}`,
    `mmap=${load.useMmap ? 1 : 0}`,
    `parallel=${load.numParallel}`,
  ].join('|');
}
