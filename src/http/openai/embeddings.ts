import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import { clientGone } from '../stream.js';
import { parseRequest } from '../validate.js';
import { invalidParam, prepareModel } from './options.js';
import { embeddingSchema } from './schemas.js';

/** OpenAI's `base64` encoding: the vector's float32 values, little-endian, base64. */
export function encodeBase64Embedding(vector: readonly number[]): string {
  const bytes = Buffer.allocUnsafe(vector.length * 4);
  for (const [i, v] of vector.entries()) bytes.writeFloatLE(v, i * 4);
  return bytes.toString('base64');
}

/** POST /v1/embeddings */
export async function embeddingRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.post('/v1/embeddings', async (request, reply) => {
    const body = parseRequest(embeddingSchema, request.body);
    const { input } = body;
    let inputs: string[];
    if (typeof input === 'string') inputs = [input];
    else if (input.length === 0)
      throw invalidParam('input', 'input must not be an empty array: send a string or strings');
    else if (input.every((i) => typeof i === 'string')) inputs = input as string[];
    else throw invalidParam('input', 'token-array inputs are not supported: send the input as text');
    const prepared = await prepareModel(ctx, body.model, {});
    const result = await ctx.engine.embed(
      ctx.inference.embedding(prepared, {
        inputs,
        signal: clientGone(reply),
        // OpenAI refuses an input longer than the model's context rather than cutting it silently.
        truncate: false,
        dimensions: body.dimensions || undefined,
      }),
    );
    const base64 = body.encoding_format === 'base64';
    return {
      object: 'list',
      data: result.embeddings.map((embedding, index) => ({
        object: 'embedding',
        index,
        embedding: base64 ? encodeBase64Embedding(embedding) : embedding,
      })),
      model: body.model,
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
    };
  });
}
