import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { parseKeepAlive } from '../models/keep-alive.js';
import { parseOptions } from '../models/options.js';
import { clientGone } from './stream.js';
import { parseRequest } from './validate.js';

/** llama.cpp's and Jina's rerank request; a document may be a string or Jina's `{text}`. */
const rerankSchema = z.object({
  model: z.string({ error: 'model is required: a reranker GGUF in the library' }).min(1, 'model is required'),
  query: z.string({ error: 'query is required: the text to rank the documents against' }),
  documents: z
    .array(z.union([z.string(), z.object({ text: z.string() })]), {
      error: 'documents is required: an array of strings',
    })
    .min(1, 'documents must hold at least one document')
    .max(1000, 'documents holds at most 1000 documents: rank them in batches'),
  top_n: z.int('top_n must be a whole number').min(1, 'top_n must be at least 1').optional().nullable(),
  return_documents: z.boolean().optional().nullable(),
  options: z.record(z.string(), z.unknown()).optional().nullable(),
  keep_alive: z.union([z.string(), z.number()]).optional().nullable(),
});

/**
 * POST /api/rerank and /v1/rerank: hearth's reranking (Ollama has none), in
 * the shape llama.cpp's server and Jina use: `{model, query, documents,
 * top_n, return_documents}` → `{model, object: "list", usage, results: [{index,
 * relevance_score, document?}]}`, best first. Runs a reranker GGUF on the
 * server engine (llama-server --rerank).
 */
async function rerank(ctx: AppContext, raw: unknown, signal: AbortSignal) {
  const body = parseRequest(rerankSchema, raw);
  const documents = body.documents.map((d) => (typeof d === 'string' ? d : d.text));
  const prepared = await ctx.inference.prepare(
    body.model,
    parseOptions(body.options ?? {}),
    parseKeepAlive(body.keep_alive ?? undefined),
  );
  const result = await ctx.engine.rerank(
    ctx.inference.rerank(prepared, {
      signal,
      query: body.query,
      documents,
      ...(body.top_n ? { topN: body.top_n } : {}),
    }),
  );
  return {
    model: body.model,
    object: 'list',
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
    results: result.results.map((r) => ({
      index: r.index,
      relevance_score: r.relevanceScore,
      ...(body.return_documents ? { document: { text: documents[r.index] } } : {}),
    })),
  };
}

/** POST /api/rerank (Ollama-style errors). */
export async function ollamaRerankRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  app.post('/api/rerank', (request, reply) => rerank(opts.ctx, request.body, clientGone(reply)));
}

/** POST /v1/rerank (registered with the OpenAI routes: OpenAI-style errors). */
export async function openaiRerankRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  app.post('/v1/rerank', (request, reply) => rerank(opts.ctx, request.body, clientGone(reply)));
}
