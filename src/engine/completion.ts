import {
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaGrammarEvaluationState,
  type LlamaModel,
  LlamaVocabularyType,
  type Token,
} from 'node-llama-cpp';
import { HearthError } from '../errors.js';
import {
  emptyOutcome,
  GenerationClock,
  type PreparedGeneration,
  repeatPenaltyOf,
  safeText,
  samplerOptions,
  stopSequences,
} from './generation.js';
import type { ModelInstance } from './instance.js';
import type { CompletionRequest, SamplingOptions } from './types.js';

/** Tokens of a trailing partial UTF-8 character waited for before the text is given up on. */
const MAX_PARTIAL_TOKENS = 4;

/**
 * Raw text (no template), or fill-in-the-middle with `suffix`. The loop runs on
 * the sequence directly rather than through LlamaCompletion, which can sample
 * one token past maxTokens when a character spans two tokens: Ollama's
 * num_predict is an exact count of generated tokens.
 */
export function prepareCompletion(req: CompletionRequest, grammar: LlamaGrammar | undefined): PreparedGeneration {
  const inputs = new WeakMap<ModelInstance, Token[]>();
  const inputOf = (instance: ModelInstance): Token[] => {
    let tokens = inputs.get(instance);
    if (!tokens) {
      tokens = completionInput(instance, req);
      inputs.set(instance, tokens);
    }
    return tokens;
  };
  return {
    promptTokens: inputOf,
    async run(instance, slot, signal, onTokens) {
      const model = instance.weights.model;
      const contextSize = instance.contextSize;
      const input = fitContext(model, inputOf(instance), contextSize, req.sampling.numKeep ?? 0);
      if (input.length === 0) {
        throw new HearthError('BAD_REQUEST', 'prompt is empty: send some text to complete', {
          details: { param: 'prompt' },
        });
      }
      if (req.sampling.numPredict === 0) return emptyOutcome(input.length);
      const clock = new GenerationClock();
      const out = await generateRaw({
        sequence: slot.sequence,
        model,
        input,
        maxTokens: req.sampling.numPredict > 0 ? req.sampling.numPredict : Number.POSITIVE_INFINITY,
        sampling: req.sampling,
        contextSize,
        grammar,
        ...(req.onText ? { onText: safeText(req.onText) } : {}),
        signal,
        clock,
        ...(onTokens ? { onTokens } : {}),
      });
      clock.end();
      return {
        text: out.text,
        toolCalls: [],
        doneReason: out.doneReason,
        promptTokens: input.length,
        promptTokensEvaluated: out.promptTokensEvaluated,
        evalTokens: out.sampled,
        context: [...input, ...out.tokens],
        ...clock.durations(),
      };
    },
  };
}

/** The tokens to evaluate: BOS (when the model wants one) + prompt, or the infill layout around prefix and suffix. */
function completionInput(instance: ModelInstance, req: CompletionRequest): Token[] {
  const model = instance.weights.model;
  const bos = beginningToken(model);
  const start = bos === null ? [] : [bos];
  const prompt = rawTokens(model, req.prompt);
  if (req.suffix === undefined || req.suffix === '') return [...start, ...prompt];
  const { prefix, middle, suffix } = model.tokens.infill;
  if (prefix === null || suffix === null) {
    throw new HearthError(
      'ENGINE_CAPABILITY',
      `model "${instance.spec.name}" does not support insert (fill-in-the-middle): it has no infill tokens; drop suffix or use a code model with FIM tokens`,
      { details: { param: 'suffix' } },
    );
  }
  const after = rawTokens(model, req.suffix);
  // llama.cpp's layouts: prefix-suffix-middle when there is a middle token, else suffix-prefix
  return middle !== null
    ? [...start, prefix, ...prompt, suffix, ...after, middle]
    : [...start, suffix, ...after, prefix, ...prompt];
}

/** Raw prompts may carry the template's special tokens (Ollama `raw`): they are parsed; a BOS written out is not doubled. */
function rawTokens(model: LlamaModel, text: string): Token[] {
  const tokens = model.tokenize(text, true);
  const bos = model.tokens.bos;
  return bos !== null && tokens[0] === bos ? tokens.slice(1) : tokens;
}

/** The token put before a prompt (as node-llama-cpp's resolveBeginningTokenToPrepend decides). */
function beginningToken(model: LlamaModel): Token | null {
  if (model.vocabularyType === LlamaVocabularyType.rwkv || model.vocabularyType === LlamaVocabularyType.ugm)
    return null;
  if (model.vocabularyType === LlamaVocabularyType.wpm) return model.tokens.bos;
  return model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
}

/**
 * A prompt longer than the context loses its middle, as Ollama does: the first
 * `numKeep` tokens (and BOS) stay, then as much of the end as leaves a tenth of
 * the context to generate into.
 */
function fitContext(model: LlamaModel, input: Token[], contextSize: number, numKeep: number): Token[] {
  const room = contextSize - Math.max(1, Math.floor(contextSize / 10));
  if (input.length <= room) return input;
  const bos = beginningToken(model);
  const keepHead = Math.min(Math.max(0, numKeep) + (bos !== null && input[0] === bos ? 1 : 0), Math.floor(room / 2));
  return [...input.slice(0, keepHead), ...input.slice(input.length - (room - keepHead))];
}

interface RawGeneration {
  text: string;
  /** generated tokens, the stop token excluded */
  tokens: Token[];
  doneReason: 'stop' | 'length';
  promptTokensEvaluated: number;
  /** tokens sampled, an end-of-generation token included (Ollama's eval_count) */
  sampled: number;
}

async function generateRaw(opts: {
  sequence: LlamaContextSequence;
  model: LlamaModel;
  input: Token[];
  maxTokens: number;
  sampling: SamplingOptions;
  contextSize: number;
  grammar: LlamaGrammar | undefined;
  onText?: (text: string) => void;
  signal: AbortSignal;
  clock: GenerationClock;
  onTokens?: (count: number) => void;
}): Promise<RawGeneration> {
  const { sequence, model, input, signal, grammar } = opts;
  // Prompt cache: keep what the sequence shares with the input; the last input token is always decoded for fresh logits.
  await sequence.adaptStateToTokens(input.slice(0, -1), false);
  const toEvaluate = input.slice(sequence.nextTokenIndex);
  const generated: Token[] = [];
  const penalty = repeatPenaltyOf(opts.sampling, opts.contextSize);
  const stops = [
    ...stopSequences(opts.sampling),
    // a grammar's own stop text (JSON: four newlines, node-llama-cpp's guard against endless whitespace)
    ...(grammar?.stopGenerationTriggers.map((t) => t.toString()).filter((t) => t !== '') ?? []),
  ];
  const text = new StopAwareText(stops, opts.onText);
  let pending: Token[] = [];
  let sampled = 0;
  let doneReason: 'stop' | 'length' = 'length';
  const iterator = sequence.evaluate(toEvaluate, {
    ...samplerOptions(opts.sampling),
    ...(grammar ? { grammarEvaluationState: new LlamaGrammarEvaluationState({ model, grammar }) } : {}),
    ...(penalty
      ? {
          repeatPenalty: {
            punishTokens: () => generated.slice(-penalty.lastTokens),
            maxPunishTokens: penalty.lastTokens,
            penalty: penalty.penalty,
            presencePenalty: penalty.presencePenalty,
            frequencyPenalty: penalty.frequencyPenalty,
          },
        }
      : {}),
    yieldEogToken: true,
  });
  for await (const token of iterator) {
    if (signal.aborted) throw signal.reason;
    opts.clock.firstToken();
    opts.onTokens?.(1);
    sampled++;
    if (model.isEogToken(token)) {
      doneReason = 'stop';
      break;
    }
    generated.push(token);
    pending.push(token);
    const piece = model.detokenize(pending, false, generated.slice(0, generated.length - pending.length));
    // a character split over tokens: wait for the rest (a few tokens at most)
    if (!piece.endsWith('\uFFFD') || pending.length >= MAX_PARTIAL_TOKENS) {
      pending = [];
      if (text.push(piece)) {
        doneReason = 'stop';
        break;
      }
    }
    if (sampled >= opts.maxTokens || sequence.nextTokenIndex >= opts.contextSize - 1) break;
  }
  if (signal.aborted) throw signal.reason;
  if (pending.length > 0 && doneReason === 'length') {
    text.push(model.detokenize(pending, false, generated.slice(0, generated.length - pending.length)));
  }
  let final = text.finish();
  if (grammar?.trimWhitespaceSuffix) final = final.trimEnd();
  return { text: final, tokens: generated, doneReason, promptTokensEvaluated: toEvaluate.length, sampled };
}

/**
 * Generated text with stop sequences: text that may be the start of a stop
 * sequence is held back from the stream until it is known not to be one, and
 * a stop sequence ends the text without appearing in it.
 */
export class StopAwareText {
  private text = '';
  private emitted = 0;
  private stopped = false;

  constructor(
    private readonly stops: readonly string[],
    private readonly onText?: (text: string) => void,
  ) {}

  /** Adds generated text; true when a stop sequence was found (the text ends before it). */
  push(piece: string): boolean {
    if (this.stopped) return true;
    const searchFrom = Math.max(0, this.text.length - this.longestStop());
    this.text += piece;
    let cut = -1;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, searchFrom);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.text = this.text.slice(0, cut);
      this.stopped = true;
      this.emit(this.text.length);
      return true;
    }
    this.emit(this.text.length - this.heldBack());
    return false;
  }

  /** The whole text; whatever was held back is streamed now. */
  finish(): string {
    this.emit(this.text.length);
    return this.text;
  }

  private emit(upTo: number): void {
    if (upTo <= this.emitted) return;
    const chunk = this.text.slice(this.emitted, upTo);
    this.emitted = upTo;
    this.onText?.(chunk);
  }

  /** Length of the longest end of the text that is a proper start of a stop sequence. */
  private heldBack(): number {
    let held = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, this.text.length); n > held; n--) {
        if (this.text.endsWith(stop.slice(0, n))) {
          held = n;
          break;
        }
      }
    }
    return held;
  }

  private longestStop(): number {
    return this.stops.reduce((n, s) => Math.max(n, s.length), 0);
  }
}
