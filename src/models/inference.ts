import type { Engine } from '../engine/index.js';
import type {
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  EmbedRequest,
  LoadOptions,
  ModelCapabilities,
  ModelSpec,
  OutputFormat,
  RerankRequest,
  SamplingOptions,
  ThinkSetting,
  TokenLogprob,
  ToolDefinition,
} from '../engine/types.js';
import { HearthError } from '../errors.js';
import { type ModelEntry, type ModelLibrary, projectorOf } from './library.js';
import { type EngineDefaults, type ModelOptions, resolveOptions } from './options.js';

export interface InferenceSettings extends EngineDefaults {
  /** inference.keepAlive (ms; negative = forever) */
  keepAliveMs: number;
}

export interface PreparedRequest {
  entry: ModelEntry;
  spec: ModelSpec;
  load: LoadOptions;
  sampling: SamplingOptions;
  keepAliveMs: number;
}

/** The capabilities `/api/show` lists, in Ollama's order. */
export type CapabilityName = 'completion' | 'tools' | 'thinking' | 'insert' | 'embedding' | 'vision';

/**
 * The capability names of a model: what its GGUF can do, and `vision` when a
 * projector layer goes with it (`projector`: the model's manifest has one).
 */
export function capabilityNames(caps: ModelCapabilities, opts: { projector: boolean }): CapabilityName[] {
  const names: CapabilityName[] = [];
  if (caps.completion) names.push('completion');
  if (caps.tools) names.push('tools');
  if (caps.thinking) names.push('thinking');
  if (caps.insert) names.push('insert');
  if (caps.embedding) names.push('embedding');
  if (caps.vision || (opts.projector && caps.completion)) names.push('vision');
  return names;
}

/** What an API asks of a chat turn, in no API's words (the conversation has its prelude and knowledge already). */
export interface ChatInputs {
  messages: ChatMessage[];
  signal?: AbortSignal | undefined;
  tools?: ToolDefinition[] | undefined;
  toolChoice?: ChatRequest['toolChoice'] | undefined;
  format?: OutputFormat | undefined;
  /** whether (and how hard) the model should think; undefined leaves it to the model's template */
  think?: ThinkSetting | undefined;
  /**
   * What `think` does on a model that cannot think: `refuse` (Ollama's `think`, a 400 as Ollama answers)
   * or `ignore` (OpenAI's `reasoning_effort`, Responses' `reasoning`, Anthropic's `thinking`: every model accepts them).
   */
  thinkUnsupported?: 'refuse' | 'ignore';
  /** log-probabilities with this many alternatives per token (0-20); undefined: none */
  logprobs?: number | undefined;
  onText?: ((text: string, logprobs?: TokenLogprob[]) => void) | undefined;
  onThinking?: ((text: string) => void) | undefined;
}

/** A raw prompt (no chat template), or fill-in-the-middle with `suffix`. */
export interface CompletionInputs {
  prompt: string;
  suffix?: string | undefined;
  signal?: AbortSignal | undefined;
  format?: OutputFormat | undefined;
  logprobs?: number | undefined;
  onText?: ((text: string, logprobs?: TokenLogprob[]) => void) | undefined;
}

export interface EmbedInputs {
  inputs: string[];
  signal?: AbortSignal | undefined;
  truncate: boolean;
  dimensions?: number | undefined;
}

export interface RerankInputs {
  query: string;
  documents: string[];
  signal?: AbortSignal | undefined;
  /** the best N only (default: all) */
  topN?: number | undefined;
}

/**
 * What every API (Ollama, OpenAI, Anthropic, the UI, jobs, workflows) does
 * before it asks the engine for tokens: find the model, merge its Modelfile
 * parameters with the request's options, resolve keep-alive, check what the
 * model can do, and build the engine request. One path, so the APIs cannot
 * drift apart.
 */
export class InferencePlanner {
  constructor(
    private readonly library: ModelLibrary,
    private readonly engine: Engine,
    private readonly settings: InferenceSettings,
  ) {}

  async prepare(model: string, options: ModelOptions, keepAliveMs: number | undefined): Promise<PreparedRequest> {
    if (typeof model !== 'string' || model.trim() === '') {
      throw new HearthError('BAD_REQUEST', 'model is required', { details: { param: 'model' } });
    }
    const entry = await this.library.get(model);
    const { load, sampling } = resolveOptions(entry.parameters, options, this.settings);
    return {
      entry,
      spec: this.library.spec(entry),
      load,
      sampling,
      keepAliveMs: keepAliveMs ?? this.settings.keepAliveMs,
    };
  }

  /** The model's SYSTEM and MESSAGE lines go before the conversation, unless the request brings its own system prompt. */
  withModelPrelude(entry: ModelEntry, messages: ChatMessage[], system?: string): ChatMessage[] {
    const out: ChatMessage[] = [];
    const hasSystem = system !== undefined || messages.some((m) => m.role === 'system');
    if (system !== undefined && system !== '') out.push({ role: 'system', content: system });
    else if (!hasSystem && entry.system) out.push({ role: 'system', content: entry.system });
    for (const m of entry.messages) out.push({ role: m.role, content: m.content });
    out.push(...messages);
    return out;
  }

  /**
   * The engine request of a chat turn. Tools, thinking and images are checked
   * against what the model can do here, once, so every API refuses alike.
   */
  async chat(prepared: PreparedRequest, inputs: ChatInputs): Promise<ChatRequest> {
    const wantsTools = (inputs.tools?.length ?? 0) > 0 && inputs.toolChoice !== 'none';
    const wantsImages = inputs.messages.some((m) => (m.images?.length ?? 0) > 0);
    let think = inputs.think;
    const caps = wantsTools || wantsImages || think !== undefined ? await this.modelCapabilities(prepared.entry) : null;
    const name = prepared.entry.name;
    if (caps && wantsImages && !caps.includes('vision')) {
      throw new HearthError('ENGINE_CAPABILITY', `model "${name}" does not support images`, {
        details: { param: 'images' },
      });
    }
    if (caps && wantsTools && !caps.includes('tools')) {
      // Ollama's words ("... does not support tools"): clients look for them to retry without tools
      throw new HearthError(
        'ENGINE_CAPABILITY',
        `model "${name}" does not support tools: its chat template has no tool calling; leave tools out or use a model whose template has it`,
        { details: { param: 'tools' } },
      );
    }
    if (caps && think !== undefined && !caps.includes('thinking')) {
      if (inputs.thinkUnsupported !== 'ignore' && think !== false) {
        throw new HearthError('ENGINE_CAPABILITY', `"${name}" does not support thinking`, {
          details: { param: 'think' },
        });
      }
      think = undefined;
    }
    return {
      kind: 'chat',
      model: prepared.spec,
      load: prepared.load,
      keepAliveMs: prepared.keepAliveMs,
      sampling: prepared.sampling,
      messages: inputs.messages,
      ...(inputs.signal ? { signal: inputs.signal } : {}),
      ...(inputs.tools?.length ? { tools: inputs.tools } : {}),
      ...(inputs.toolChoice ? { toolChoice: inputs.toolChoice } : {}),
      ...(inputs.format ? { format: inputs.format } : {}),
      ...(think !== undefined ? { think } : {}),
      ...(inputs.logprobs !== undefined ? { logprobs: { top: inputs.logprobs } } : {}),
      ...(inputs.onText ? { onText: inputs.onText } : {}),
      ...(inputs.onThinking ? { onThinking: inputs.onThinking } : {}),
    };
  }

  /** The engine request of a raw prompt (Ollama `raw`, `suffix`; OpenAI /v1/completions). */
  completion(prepared: PreparedRequest, inputs: CompletionInputs): CompletionRequest {
    return {
      kind: 'completion',
      model: prepared.spec,
      load: prepared.load,
      keepAliveMs: prepared.keepAliveMs,
      sampling: prepared.sampling,
      prompt: inputs.prompt,
      ...(inputs.suffix !== undefined ? { suffix: inputs.suffix } : {}),
      ...(inputs.signal ? { signal: inputs.signal } : {}),
      ...(inputs.format ? { format: inputs.format } : {}),
      ...(inputs.logprobs !== undefined ? { logprobs: { top: inputs.logprobs } } : {}),
      ...(inputs.onText ? { onText: inputs.onText } : {}),
    };
  }

  /** The engine request of an embedding. */
  embedding(prepared: PreparedRequest, inputs: EmbedInputs): EmbedRequest {
    return {
      model: prepared.spec,
      load: prepared.load,
      keepAliveMs: prepared.keepAliveMs,
      inputs: inputs.inputs,
      truncate: inputs.truncate,
      ...(inputs.signal ? { signal: inputs.signal } : {}),
      ...(inputs.dimensions !== undefined ? { dimensions: inputs.dimensions } : {}),
    };
  }

  /** The engine request of a reranking (/api/rerank, /v1/rerank, knowledge retrieval). */
  rerank(prepared: PreparedRequest, inputs: RerankInputs): RerankRequest {
    return {
      model: prepared.spec,
      load: prepared.load,
      keepAliveMs: prepared.keepAliveMs,
      query: inputs.query,
      documents: inputs.documents,
      ...(inputs.signal ? { signal: inputs.signal } : {}),
      ...(inputs.topN !== undefined ? { topN: inputs.topN } : {}),
    };
  }

  /** What a model can do (`/api/show` capabilities, and the checks above). */
  async capabilities(entry: ModelEntry): Promise<CapabilityName[]> {
    return this.modelCapabilities(entry);
  }

  private async modelCapabilities(entry: ModelEntry): Promise<CapabilityName[]> {
    // Reading metadata straight from Atlas avoids copying a multi-GB blob into the cache just to describe it.
    const direct = this.library.localPath(entry);
    const local = direct ? { path: direct, release: () => {} } : await this.library.spec(entry).resolveFile();
    try {
      // vision: the model has a projector layer (the GGUF alone cannot say)
      return capabilityNames(await this.engine.capabilities(local.path), { projector: projectorOf(entry) !== null });
    } finally {
      local.release();
    }
  }
}
