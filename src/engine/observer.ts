/**
 * What the engine reports as it works, for metrics (src/metrics implements it). Every call is
 * synchronous and cheap, and an observer must not throw: the engine does not guard against it.
 */
export interface EngineObserver {
  /** A model instance finished loading. */
  modelLoaded(event: { model: string; durationNs: number }): void;
  /** A load failed; `code` is the HearthError code the waiting requests got. */
  modelLoadFailed(event: { model: string; code: string }): void;
  /** A model instance was unloaded. */
  modelUnloaded(event: { model: string; reason: UnloadReason }): void;
  /** A generate or embed request reached the engine; the returned observer follows it to its end. */
  requestQueued(event: { model: string; kind: InferenceKind }): InferenceRequestObserver;
}

/** Why a model instance left memory. */
export type UnloadReason = 'evicted' | 'expired' | 'requested' | 'failed' | 'closing';

/** What a request asks of the engine. */
export type InferenceKind = 'chat' | 'completion' | 'embedding' | 'rerank';

/** One request's way through the engine; `finished` or `failed` is called once at its end. */
export interface InferenceRequestObserver {
  /** It holds a sequence (or the embedding context): its wait in the queue, loads included, is over. */
  started(): void;
  /** `count` tokens were sampled (usually 1); the first call marks the time to first token. */
  tokens(count: number): void;
  finished(figures: { promptTokens: number; promptTokensEvaluated: number; generatedTokens: number }): void;
  /** `code` is the HearthError code (CLIENT_CLOSED when the client went away). */
  failed(event: { code: string }): void;
}
