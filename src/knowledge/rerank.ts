import type { Engine } from '../engine/index.js';
import { HearthError, isHearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import { passageText } from './ingest.js';

/** Which reranker a retrieval uses, and the setting that named it (for messages). */
export interface RerankerChoice {
  model: string;
  setting: 'knowledge.reranker' | 'rerank';
}

export interface RerankDeps {
  engine: Pick<Engine, 'rerank'>;
  inference: Pick<InferencePlanner, 'prepare' | 'rerank'>;
  log: Logger;
}

/**
 * The reranker of a retrieval: a query's `rerank` (false: none; true: the configured one; a name: that
 * model), else `knowledge.reranker` when it is set. Null: the fusion order stands.
 */
export function rerankerChoice(option: boolean | string | undefined, configured: string): RerankerChoice | null {
  if (option === false) return null;
  if (typeof option === 'string') return { model: option, setting: 'rerank' };
  if (configured) return { model: configured, setting: 'knowledge.reranker' };
  if (option === true) {
    throw new HearthError(
      'KNOWLEDGE_INVALID',
      'rerank is true but no reranker is configured: set knowledge.reranker, or name the model ("rerank": "<reranker>")',
      { details: { param: 'rerank' } },
    );
  }
  return null;
}

/**
 * Orders retrieved chunks by a reranker model's relevance to the question, with the engine's reranking
 * (the request the planner builds, as /api/rerank's): the best `limit`, each with its `rerank_score`
 * (the fusion `score` stays). A reranker that is missing or is not a reranker is an error naming the
 * setting; with `fallback` (chat retrieval) any failure is logged and the fusion order is kept.
 */
export async function rerankHits<H extends { heading: string; text: string; rerank_score?: number }>(
  deps: RerankDeps,
  choice: RerankerChoice,
  question: string,
  hits: H[],
  limit: number,
  fallback: boolean,
): Promise<H[]> {
  if (hits.length === 0) return hits;
  try {
    const prepared = await deps.inference.prepare(choice.model, {}, undefined).catch((err: unknown) => {
      if (isHearthError(err, 'MODEL_NOT_FOUND')) {
        throw new HearthError(
          'MODEL_NOT_FOUND',
          `reranker ${JSON.stringify(choice.model)} (${choice.setting}) is not in the library: create it from a reranker GGUF (bge-reranker, Qwen3-Reranker), or name another`,
          { details: { param: choice.setting } },
        );
      }
      throw err;
    });
    const result = await deps.engine.rerank(
      deps.inference.rerank(prepared, {
        query: question,
        documents: hits.map((h) => passageText(h.heading, h.text)),
        topN: limit,
      }),
    );
    return result.results.slice(0, limit).map((r) => ({ ...hits[r.index]!, rerank_score: r.relevanceScore }));
  } catch (err) {
    const failure =
      isHearthError(err, 'ENGINE_CAPABILITY') && !err.message.startsWith(choice.setting)
        ? new HearthError('ENGINE_CAPABILITY', `${choice.setting}: ${err.message}`, {
            details: { param: choice.setting },
          })
        : err;
    if (!fallback) throw failure;
    deps.log.warn(
      { reranker: choice.model, error: failure instanceof Error ? failure.message : String(failure) },
      'knowledge: reranking failed; the sources keep the fusion order',
    );
    return hits.slice(0, limit);
  }
}
