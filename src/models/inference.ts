import type { Engine } from '../engine/index.js';
import type { ChatMessage, LoadOptions, ModelSpec, SamplingOptions } from '../engine/types.js';
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

/**
 * What every API (Ollama, OpenAI, the UI, jobs) does before it asks the engine
 * for tokens: find the model, merge its Modelfile parameters with the request's
 * options, and resolve keep-alive. One path, so the APIs cannot drift apart.
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

  async capabilities(entry: ModelEntry): Promise<string[]> {
    // Reading metadata straight from Atlas avoids copying a multi-GB blob into the cache just to describe it.
    const direct = this.library.localPath(entry);
    const local = direct ? { path: direct, release: () => {} } : await this.library.spec(entry).resolveFile();
    try {
      const caps = { ...(await this.engine.capabilities(local.path)) };
      // vision: the model has a projector layer (the GGUF alone cannot say)
      if (projectorOf(entry)) caps.vision = true;
      return (['completion', 'tools', 'insert', 'embedding', 'vision'] as const).filter((c) => caps[c]);
    } finally {
      local.release();
    }
  }
}
