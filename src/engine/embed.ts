import type { Token } from 'node-llama-cpp';
import { HearthError } from '../errors.js';
import type { ModelInstance } from './instance.js';
import { clientClosed } from './instances.js';
import { estimateContext } from './memory.js';

/**
 * Embeds each input with the instance's embedding context. Vectors are
 * L2-normalised (llama.cpp's pooled output is not); `dimensions` keeps the
 * first N and normalises again (Matryoshka-style truncation, as Ollama does).
 */
export async function embedInputs(
  instance: ModelInstance,
  inputs: readonly string[],
  opts: { truncate: boolean; dimensions?: number; signal: AbortSignal },
): Promise<{ embeddings: number[][]; promptTokens: number }> {
  const model = instance.weights.model;
  const size = model.embeddingVectorSize;
  if (
    opts.dimensions !== undefined &&
    (!Number.isInteger(opts.dimensions) || opts.dimensions < 1 || opts.dimensions > size)
  ) {
    throw new HearthError(
      'BAD_REQUEST',
      `dimensions must be an integer from 1 to ${size} for model "${instance.spec.name}", got ${opts.dimensions}`,
      { details: { param: 'dimensions' } },
    );
  }
  const fresh = !instance.hasEmbeddingContext;
  const context = await instance.embeddingContext();
  if (fresh && instance.context) {
    // a chat model's embedding context is made on first use: count it from now on
    instance.addMemory(
      estimateContext(model.fileInsights, {
        contextSize: instance.embeddingContextSize,
        sequences: 1,
        batchSize: instance.embeddingContextSize,
        gpuLayers: model.gpuLayers,
        embedding: true,
      }),
    );
  }
  // getEmbeddingFor needs fewer tokens than the context holds, BOS/EOS included
  const limit = instance.embeddingContextSize - 1;
  const embeddings: number[][] = [];
  let promptTokens = 0;
  for (const [index, input] of inputs.entries()) {
    if (opts.signal.aborted) throw clientClosed();
    let tokens: Token[] = model.tokenize(input, false);
    let length = context.calculateInputLength(tokens);
    if (length > limit) {
      if (!opts.truncate) {
        throw new HearthError(
          'BAD_REQUEST',
          `input ${index} has ${length} tokens, more than the ${limit} that fit the context of model "${instance.spec.name}": shorten it, raise num_ctx, or set truncate to true`,
          { details: { param: 'input', index, tokens: length, limit } },
        );
      }
      tokens = tokens.slice(0, Math.max(0, tokens.length - (length - limit)));
      length = context.calculateInputLength(tokens);
    }
    promptTokens += length;
    const vector = tokens.length === 0 ? [] : (await context.getEmbeddingFor(tokens)).vector;
    embeddings.push(normalize(vector.length === 0 ? new Array<number>(size).fill(0) : [...vector], opts.dimensions));
  }
  return { embeddings, promptTokens };
}

/** L2-normalises the first `dimensions` values (all when undefined); a zero vector stays zero. */
export function normalize(vector: readonly number[], dimensions?: number): number[] {
  const kept = dimensions === undefined ? [...vector] : vector.slice(0, dimensions);
  let sum = 0;
  for (const v of kept) sum += v * v;
  const norm = Math.sqrt(sum);
  return norm === 0 ? kept : kept.map((v) => v / norm);
}
