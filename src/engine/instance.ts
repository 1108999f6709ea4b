import {
  type ChatWrapper,
  JinjaTemplateChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaModel,
  resolveChatWrapper,
  type Token,
} from 'node-llama-cpp';
import { generatesText } from './capabilities.js';
import { PooledInstance } from './instances.js';
import { addMemory, type MemoryNeed } from './memory.js';
import type { LoadOptions, ModelSpec } from './types.js';

/**
 * Chat wrappers by blob digest. Matching a GGUF's Jinja template to one of
 * node-llama-cpp's wrappers renders it many times (about a second on a small
 * CPU); a model that is unloaded and loaded again reuses the answer: a
 * specialized wrapper is plain settings and is reused as is, a Jinja wrapper
 * holds the model's tokenizer and is made again, without the matching.
 */
export class ChatWrappers {
  private readonly known = new Map<string, ChatWrapper | 'jinja'>();

  resolve(digest: string, model: LlamaModel): ChatWrapper {
    const known = this.known.get(digest);
    if (known === 'jinja') return resolveChatWrapper(model, { type: 'jinjaTemplate', warningLogs: false });
    if (known) return known;
    const wrapper = resolveChatWrapper(model, { warningLogs: false });
    this.known.set(digest, wrapper instanceof JinjaTemplateChatWrapper ? 'jinja' : wrapper);
    if (this.known.size > 256) this.known.delete(this.known.keys().next().value as string);
    return wrapper;
  }
}

/**
 * One loaded LlamaModel (weights), shared by every instance of the same blob
 * with the same GPU offload and mmap choice. Holds the pinned cache file until
 * the last instance using it is unloaded.
 */
export class LoadedWeights {
  /** instances (and loads in progress) using these weights */
  holders = 0;
  private wrapper: ChatWrapper | null = null;

  private constructor(
    readonly key: string,
    readonly model: LlamaModel,
    /** what the instance can serve: chat/completion, or embeddings only */
    readonly capabilities: { completion: boolean; embedding: boolean },
    /** estimated bytes of the weights */
    readonly memory: MemoryNeed,
    private readonly file: { release(): void },
    private readonly resolveWrapper: (model: LlamaModel) => ChatWrapper,
  ) {}

  static async load(opts: {
    key: string;
    llama: Llama;
    file: { path: string; release(): void };
    /** -1 = as many layers as fit next to a context of `fitContextSize` tokens */
    gpuLayers: number;
    fitContextSize: number;
    useMmap: boolean;
    memory: MemoryNeed;
    /** the chat wrapper for the model (ChatWrappers.resolve: cached per blob) */
    resolveWrapper: (model: LlamaModel) => ChatWrapper;
  }): Promise<LoadedWeights> {
    const model = await opts.llama.loadModel({
      modelPath: opts.file.path,
      gpuLayers: opts.gpuLayers < 0 ? { fitContext: { contextSize: opts.fitContextSize } } : opts.gpuLayers,
      useMmap: opts.useMmap,
    });
    const generates = generatesText(model.fileInfo);
    const weights = new LoadedWeights(
      opts.key,
      model,
      { completion: generates, embedding: !generates },
      opts.memory,
      opts.file,
      opts.resolveWrapper,
    );
    // Matching a Jinja template to a chat wrapper renders it many times (up to a second on a small CPU):
    // part of the load, not of the first request's prompt evaluation.
    if (generates) weights.chatWrapper();
    return weights;
  }

  /** The GGUF's own chat template as node-llama-cpp understands it (resolved once). */
  chatWrapper(): ChatWrapper {
    this.wrapper ??= this.resolveWrapper(this.model);
    return this.wrapper;
  }

  async dispose(): Promise<void> {
    try {
      await this.model.dispose();
    } finally {
      this.file.release();
    }
  }
}

/** A sequence of an instance's context; after a request it keeps that request's tokens as a prompt cache. */
export interface SequenceSlot {
  readonly sequence: LlamaContextSequence;
  busy: boolean;
  lastUsed: number;
}

/**
 * A model instance: weights + one LlamaContext with `numParallel` sequences
 * (continuous batching: node-llama-cpp decodes the busy sequences together),
 * plus an embedding context made on first use.
 */
export class ModelInstance extends PooledInstance {
  embeddingBusy = false;
  private embedding: Promise<LlamaEmbeddingContext> | null = null;

  private constructor(
    readonly key: string,
    readonly spec: Pick<ModelSpec, 'name' | 'digest' | 'size'>,
    /** the options this instance really runs with (numCtx capped, numGpu resolved) */
    readonly load: LoadOptions,
    readonly weights: LoadedWeights,
    /** null for embedding-only models */
    readonly context: LlamaContext | null,
    readonly slots: SequenceSlot[],
    /** estimated bytes of this instance's contexts (weights are counted once, in LoadedWeights) */
    public memory: MemoryNeed,
    private readonly threads: number,
  ) {
    super();
  }

  static async create(opts: {
    key: string;
    spec: Pick<ModelSpec, 'name' | 'digest' | 'size'>;
    load: LoadOptions;
    weights: LoadedWeights;
    memory: MemoryNeed;
    /** inference.flashAttention in node-llama-cpp's terms; default auto */
    flashAttention?: 'auto' | boolean;
  }): Promise<ModelInstance> {
    const { load, weights } = opts;
    const resolved: LoadOptions = { ...load, numGpu: weights.model.gpuLayers };
    if (!weights.capabilities.completion) {
      const instance = new ModelInstance(opts.key, opts.spec, resolved, weights, null, [], opts.memory, load.numThread);
      await instance.embeddingContext();
      return instance;
    }
    const context = await weights.model.createContext({
      contextSize: load.numCtx,
      sequences: load.numParallel,
      batchSize: Math.min(load.numBatch, load.numCtx * load.numParallel),
      threads: load.numThread,
      flashAttention: opts.flashAttention ?? 'auto',
      failedCreationRemedy: false,
    });
    const slots: SequenceSlot[] = [];
    for (let i = 0; i < load.numParallel; i++)
      slots.push({ sequence: context.getSequence(), busy: false, lastUsed: 0 });
    return new ModelInstance(
      opts.key,
      opts.spec,
      { ...resolved, numCtx: context.contextSize },
      weights,
      context,
      slots,
      opts.memory,
      load.numThread,
    );
  }

  get contextSize(): number {
    return this.load.numCtx;
  }

  get activeSequences(): number {
    return this.slots.reduce((n, s) => n + (s.busy ? 1 : 0), 0) + (this.embeddingBusy ? 1 : 0);
  }

  /**
   * A free sequence: the one whose cached tokens share the longest prefix with
   * `prompt` (so a growing chat is not evaluated again), else the least recently used.
   */
  freeSlot(prompt?: () => readonly Token[]): SequenceSlot | undefined {
    const free = this.slots.filter((s) => !s.busy);
    if (free.length <= 1) return free[0];
    let tokens: readonly Token[] = [];
    try {
      tokens = prompt?.() ?? [];
    } catch {
      // a template that fails to render fails again in LlamaChat, with a better message
    }
    let best: SequenceSlot | undefined;
    let bestShared = -1;
    for (const slot of free) {
      const shared =
        tokens.length === 0 ? 0 : slot.sequence.compareContextTokens(tokens as Token[]).firstDifferentIndex;
      if (shared > bestShared || (shared === bestShared && best && slot.lastUsed < best.lastUsed)) {
        best = slot;
        bestShared = shared;
      }
    }
    return best;
  }

  get hasEmbeddingContext(): boolean {
    return this.embedding !== null;
  }

  /** Tokens per input the embedding context holds (numCtx, capped at the trained context). */
  get embeddingContextSize(): number {
    return Math.min(this.load.numCtx, this.weights.model.trainContextSize);
  }

  /** The embedding context, made on first use; `contextSize` tokens per input, all in one batch. */
  embeddingContext(): Promise<LlamaEmbeddingContext> {
    if (!this.embedding) {
      const contextSize = this.embeddingContextSize;
      this.embedding = this.weights.model.createEmbeddingContext({
        contextSize,
        // embedding models attend both ways: the whole input must fit one batch
        batchSize: contextSize,
        threads: this.threads,
      });
      this.embedding.catch(() => {
        this.embedding = null;
      });
    }
    return this.embedding;
  }

  /** Adds the estimate of a context made after the load (the embedding context of a chat model). */
  addMemory(need: MemoryNeed): void {
    this.memory = addMemory(this.memory, need);
  }

  /** Disposes the contexts (the weights are the scheduler's to release). */
  async dispose(): Promise<void> {
    this.cancelExpiry();
    const embedding = this.embedding;
    this.embedding = null;
    const results = await Promise.allSettled([
      embedding?.then(
        (e) => e.dispose(),
        () => {}, // never made: nothing to dispose
      ),
      this.context?.dispose(), // disposes its sequences too
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}
