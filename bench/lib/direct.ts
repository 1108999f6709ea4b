// Decoding with node-llama-cpp called directly, in this process: the baseline hearth's overhead is
// measured against. Sampling mirrors hearth's defaults (Ollama's: temperature 0.8, top-k 40,
// top-p 0.9, repeat penalty 1.1 over the last 64 tokens) with a fixed seed.
import { performance } from 'node:perf_hooks';
import { type Llama, LlamaCompletion, type LlamaContext, type LlamaModel, type Token } from 'node-llama-cpp';

/** One decode: a fresh prompt, then `tokens` generated tokens. Times in ms. */
export interface DecodeRun {
  promptTokens: number;
  /** prompt evaluation until the first generated token */
  ttftMs: number;
  /** tokens generated */
  tokens: number;
  /** tokens after the first, per second of the time after the first: the steady decode rate */
  decodeTokS: number;
}

export const SAMPLING = { temperature: 0.8, topK: 40, topP: 0.9, minP: 0 } as const;
const REPEAT_LAST_N = 64;
const REPEAT_PENALTY = 1.1;

export function decodeRate(tokens: number, firstAt: number, lastAt: number): number {
  return tokens > 1 && lastAt > firstAt ? (tokens - 1) / ((lastAt - firstAt) / 1000) : Number.NaN;
}

export interface DirectSetup {
  model: LlamaModel;
  context: LlamaContext;
  dispose(): Promise<void>;
}

/** Loads a model and one context as hearth's engine would for the same options (CPU, mmap). */
export async function directSetup(
  llama: Llama,
  path: string,
  opts: { threads: number; contextSize: number; batchSize: number; sequences: number; performanceTracking?: boolean },
): Promise<DirectSetup> {
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: true });
  const context = await model.createContext({
    contextSize: opts.contextSize,
    sequences: opts.sequences,
    batchSize: opts.batchSize,
    threads: opts.threads,
    performanceTracking: opts.performanceTracking ?? false,
  });
  return {
    model,
    context,
    dispose: async () => {
      await context.dispose();
      await model.dispose();
    },
  };
}

/**
 * The low-level loop hearth's completion path uses: `sequence.evaluate` yielding each sampled
 * token. End-of-generation tokens do not stop it, so every run decodes exactly `tokens`.
 */
export async function evaluateDecode(
  setup: DirectSetup,
  promptText: string,
  tokens: number,
  seed: number,
): Promise<DecodeRun> {
  const sequence = setup.context.getSequence();
  try {
    const prompt = setup.model.tokenize(promptText, false);
    const input = setup.model.tokens.bos !== null ? [setup.model.tokens.bos, ...prompt] : prompt;
    const generated: Token[] = [];
    const started = performance.now();
    let firstAt = 0;
    let lastAt = 0;
    const iterator = sequence.evaluate(input, {
      ...SAMPLING,
      seed,
      repeatPenalty: {
        punishTokens: () => generated.slice(-REPEAT_LAST_N),
        maxPunishTokens: REPEAT_LAST_N,
        penalty: REPEAT_PENALTY,
        presencePenalty: 0,
        frequencyPenalty: 0,
      },
      yieldEogToken: true,
    });
    for await (const token of iterator) {
      lastAt = performance.now();
      if (generated.length === 0) firstAt = lastAt;
      generated.push(token);
      if (generated.length >= tokens) break;
    }
    return {
      promptTokens: input.length,
      ttftMs: firstAt - started,
      tokens: generated.length,
      decodeTokS: decodeRate(generated.length, firstAt, lastAt),
    };
  } finally {
    sequence.dispose();
  }
}

/** node-llama-cpp's high-level LlamaCompletion with its defaults (stops at an end-of-generation token). */
export async function completionDecode(
  setup: DirectSetup,
  promptText: string,
  tokens: number,
  seed: number,
): Promise<DecodeRun> {
  const sequence = setup.context.getSequence();
  const completion = new LlamaCompletion({ contextSequence: sequence });
  try {
    let count = 0;
    let firstAt = 0;
    let lastAt = 0;
    const started = performance.now();
    await completion.generateCompletion(promptText, {
      maxTokens: tokens,
      ...SAMPLING,
      seed,
      repeatPenalty: { lastTokens: REPEAT_LAST_N, penalty: REPEAT_PENALTY },
      onToken: (t) => {
        lastAt = performance.now();
        if (count === 0) firstAt = lastAt;
        count += t.length;
      },
    });
    return {
      promptTokens: setup.model.tokenize(promptText, false).length + 1,
      ttftMs: firstAt - started,
      tokens: count,
      decodeTokS: decodeRate(count, firstAt, lastAt),
    };
  } finally {
    completion.dispose({ disposeSequence: true });
  }
}
