import { defaultSampling, LOAD_LIMITS } from '../engine/options.js';
import type { LoadOptions, SamplingOptions } from '../engine/types.js';
import { HearthError } from '../errors.js';

/**
 * Ollama's `options` (api/types.go), in one table: the Modelfile's PARAMETER,
 * the `options` of /api/generate|chat|embed and the OpenAI fields all land here.
 * Unknown names are refused, as Ollama refuses them.
 */
const OPTION_TYPES = {
  // sampling (per request)
  num_keep: 'int',
  seed: 'int',
  num_predict: 'int',
  top_k: 'int',
  top_p: 'float',
  min_p: 'float',
  typical_p: 'float',
  repeat_last_n: 'int',
  temperature: 'float',
  repeat_penalty: 'float',
  presence_penalty: 'float',
  frequency_penalty: 'float',
  stop: 'strings',
  // load time (decide the model instance)
  num_ctx: 'int',
  num_batch: 'int',
  num_gpu: 'int',
  main_gpu: 'int',
  num_thread: 'int',
  use_mmap: 'bool',
  num_parallel: 'int',
  // accepted for compatibility, no effect on llama.cpp here (documented in docs/api.md)
  numa: 'bool',
  use_mlock: 'bool',
  low_vram: 'bool',
  vocab_only: 'bool',
  penalize_newline: 'bool',
  mirostat: 'int',
  mirostat_tau: 'float',
  mirostat_eta: 'float',
  tfs_z: 'float',
} as const;

export type OptionName = keyof typeof OPTION_TYPES;

const INT32_MAX = 2 ** 31 - 1;

/**
 * The range of each integer option: a value outside is refused with 400 naming the option and the
 * range, never clamped silently (num_ctx 1e9 used to load a model per absurd value). Load-time bounds
 * are the engine's (LOAD_LIMITS); num_thread's real bound, the node's CPU count, is checked by the
 * engine, which knows the node (normalizeLoadOptions). Unlisted: any safe integer (seed).
 */
const INT_RANGES: Partial<Record<OptionName, readonly [number, number]>> = {
  num_keep: [-1, LOAD_LIMITS.numCtx],
  num_predict: [-2, INT32_MAX],
  top_k: [0, INT32_MAX],
  repeat_last_n: [-1, INT32_MAX],
  num_ctx: [16, LOAD_LIMITS.numCtx],
  num_batch: [1, LOAD_LIMITS.numBatch],
  num_gpu: [-1, LOAD_LIMITS.numGpu],
  main_gpu: [0, 1024],
  num_thread: [0, 4096],
  num_parallel: [1, LOAD_LIMITS.numParallel],
  mirostat: [0, 2],
};
export type ModelOptions = Partial<Record<OptionName, number | boolean | string[]>>;

export const LOAD_TIME_OPTIONS: readonly OptionName[] = [
  'num_ctx',
  'num_batch',
  'num_gpu',
  'main_gpu',
  'num_thread',
  'use_mmap',
  'num_parallel',
];

export function isOptionName(name: string): name is OptionName {
  return Object.hasOwn(OPTION_TYPES, name);
}

/**
 * Validates and coerces one option. `raw` is a JSON value (API) or a string
 * (Modelfile PARAMETER). Errors name the option and what it expects.
 */
export function coerceOption(name: string, raw: unknown, where: string): number | boolean | string[] {
  if (!isOptionName(name)) {
    throw new HearthError('BAD_REQUEST', `${where}: unknown option "${name}"`, { details: { param: name } });
  }
  const type = OPTION_TYPES[name];
  const bad = (expected: string) =>
    new HearthError('BAD_REQUEST', `${where}: option "${name}" must be ${expected}, got ${JSON.stringify(raw)}`, {
      details: { param: name },
    });
  switch (type) {
    case 'int': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      const [min, max] = INT_RANGES[name] ?? [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
        throw bad(INT_RANGES[name] ? `an integer from ${min} to ${max}` : 'an integer');
      }
      return n;
    }
    case 'float': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n)) throw bad('a number');
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === 'false') return raw === 'true';
      throw bad('true or false');
    }
    case 'strings': {
      if (typeof raw === 'string') return [raw];
      if (Array.isArray(raw) && raw.every((s) => typeof s === 'string')) return raw as string[];
      throw bad('a string or an array of strings');
    }
  }
}

/** Validates a whole `options` object (API requests). */
export function parseOptions(raw: unknown, where = 'options'): ModelOptions {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new HearthError('BAD_REQUEST', `${where} must be an object`, { details: { param: where } });
  }
  const out: ModelOptions = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === null) continue;
    out[name as OptionName] = coerceOption(name, value, where);
  }
  return out;
}

/** Ollama's sampling defaults: the engine's, so there is one table of them. */
const SAMPLING_DEFAULTS: SamplingOptions = defaultSampling();

export interface EngineDefaults {
  numCtx: number;
  numBatch: number;
  numParallel: number;
}

/**
 * Resolves what the engine gets: request options over the model's Modelfile
 * parameters over the defaults. This is the one place Ollama option names
 * become engine options.
 */
export function resolveOptions(
  modelParams: ModelOptions,
  request: ModelOptions,
  defaults: EngineDefaults,
): { load: LoadOptions; sampling: SamplingOptions } {
  const o: ModelOptions = { ...modelParams, ...request };
  const num = (k: OptionName) => (typeof o[k] === 'number' ? (o[k] as number) : undefined);
  const load: LoadOptions = {
    numCtx: num('num_ctx') ?? defaults.numCtx,
    numBatch: num('num_batch') ?? defaults.numBatch,
    numGpu: num('num_gpu') ?? -1,
    numThread: num('num_thread') ?? 0,
    useMmap: typeof o.use_mmap === 'boolean' ? o.use_mmap : true,
    numParallel: num('num_parallel') ?? defaults.numParallel,
  };
  if (load.numCtx < 16) throw new HearthError('BAD_REQUEST', `num_ctx must be at least 16, got ${load.numCtx}`);
  if (load.numBatch < 1) throw new HearthError('BAD_REQUEST', `num_batch must be at least 1, got ${load.numBatch}`);
  if (load.numParallel < 1)
    throw new HearthError('BAD_REQUEST', `num_parallel must be at least 1, got ${load.numParallel}`);
  const sampling: SamplingOptions = {
    temperature: num('temperature') ?? SAMPLING_DEFAULTS.temperature,
    topK: num('top_k') ?? SAMPLING_DEFAULTS.topK,
    topP: num('top_p') ?? SAMPLING_DEFAULTS.topP,
    minP: num('min_p') ?? SAMPLING_DEFAULTS.minP,
    typicalP: num('typical_p') ?? SAMPLING_DEFAULTS.typicalP,
    repeatPenalty: num('repeat_penalty') ?? SAMPLING_DEFAULTS.repeatPenalty,
    repeatLastN: num('repeat_last_n') ?? SAMPLING_DEFAULTS.repeatLastN,
    presencePenalty: num('presence_penalty') ?? SAMPLING_DEFAULTS.presencePenalty,
    frequencyPenalty: num('frequency_penalty') ?? SAMPLING_DEFAULTS.frequencyPenalty,
    numPredict: num('num_predict') ?? SAMPLING_DEFAULTS.numPredict,
    stop: Array.isArray(o.stop) ? o.stop : [],
  };
  const seed = num('seed');
  if (seed !== undefined && seed >= 0) sampling.seed = seed;
  const numKeep = num('num_keep');
  if (numKeep !== undefined) sampling.numKeep = numKeep;
  if (sampling.temperature < 0) throw new HearthError('BAD_REQUEST', 'temperature must be >= 0');
  if (sampling.topP < 0 || sampling.topP > 1) throw new HearthError('BAD_REQUEST', 'top_p must be between 0 and 1');
  return { load, sampling };
}
