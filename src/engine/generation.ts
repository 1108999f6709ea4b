import type { Token } from 'node-llama-cpp';
import type { ModelInstance, SequenceSlot } from './instance.js';
import type { InferenceRequestObserver } from './observer.js';
import type { GenerateResult, SamplingOptions } from './types.js';

/** What a generation produces; the engine adds the load and total durations. */
export type GenerationOutcome = Omit<GenerateResult, 'loadDurationNs' | 'totalDurationNs'>;

/** A request turned into node-llama-cpp terms, ready to run on whichever instance and sequence the scheduler grants. */
export interface PreparedGeneration {
  /** the prompt's tokens on an instance (for the prompt cache's choice of sequence) */
  promptTokens(instance: ModelInstance): readonly Token[];
  /** `onTokens` is told of every sampled token (an observer's time to first token and inter-token latency). */
  run(
    instance: ModelInstance,
    slot: SequenceSlot,
    signal: AbortSignal,
    onTokens?: (count: number) => void,
  ): Promise<GenerationOutcome>;
}

/** Repeat penalties as Ollama sets them: repeat_last_n 0 disables them, -1 means the whole context. */
export function repeatPenaltyOf(
  s: SamplingOptions,
  contextSize: number,
): { penalty: number; lastTokens: number; presencePenalty: number; frequencyPenalty: number } | null {
  const lastTokens = s.repeatLastN < 0 ? contextSize : s.repeatLastN;
  const penalize = lastTokens > 0 && (s.repeatPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0);
  if (!penalize) return null;
  return {
    penalty: s.repeatPenalty,
    lastTokens,
    presencePenalty: s.presencePenalty,
    frequencyPenalty: s.frequencyPenalty,
  };
}

/** Ollama's samplers in node-llama-cpp's terms (typical_p has no counterpart there: ignored). */
export function samplerOptions(s: SamplingOptions) {
  return {
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    minP: s.minP,
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
  };
}

/** Stop sequences that can match (an empty one would stop everything at once). */
export function stopSequences(s: SamplingOptions): string[] {
  return s.stop.filter((x) => x !== '');
}

/** Prompt-eval and eval timing: the prompt is evaluated until the first token comes out. */
export class GenerationClock {
  readonly started = process.hrtime.bigint();
  private first: bigint | null = null;
  private ended: bigint | null = null;

  firstToken(): void {
    this.first ??= process.hrtime.bigint();
  }

  end(): void {
    this.ended = process.hrtime.bigint();
  }

  durations(): { promptEvalDurationNs: number; evalDurationNs: number } {
    const end = this.ended ?? process.hrtime.bigint();
    const first = this.first ?? end;
    return { promptEvalDurationNs: Number(first - this.started), evalDurationNs: Number(end - first) };
  }
}

/**
 * A generation's result, either engine's: the observer is told its counts (the token metrics), and
 * the lease's load time and the time since the request reached the engine are added.
 */
export function generationResult(
  outcome: GenerationOutcome,
  observed: InferenceRequestObserver | undefined,
  loadDurationNs: number,
  started: bigint,
): GenerateResult {
  observed?.finished({
    promptTokens: outcome.promptTokens,
    promptTokensEvaluated: outcome.promptTokensEvaluated,
    generatedTokens: outcome.evalTokens,
  });
  return { ...outcome, loadDurationNs, totalDurationNs: Number(process.hrtime.bigint() - started) };
}

export function emptyOutcome(promptTokens: number): GenerationOutcome {
  return {
    text: '',
    toolCalls: [],
    doneReason: 'length',
    promptTokens,
    promptTokensEvaluated: 0,
    evalTokens: 0,
    promptEvalDurationNs: 0,
    evalDurationNs: 0,
  };
}

/** A client callback that throws must not break the generation (the HTTP layer notices a closed stream itself). */
export function safeText(onText: (text: string) => void): (text: string) => void {
  return (text) => {
    if (text === '') return;
    try {
      onText(text);
    } catch {
      // ignored on purpose, see above
    }
  };
}
