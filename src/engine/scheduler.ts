import { GgufInsights, InsufficientMemoryError, type Llama, readGgufFileInfo, type Token } from 'node-llama-cpp';
import type { Logger } from 'pino';
import { describeError, HearthError, isHearthError } from '../errors.js';
import { type AttentionSettings, DEFAULT_ATTENTION, inProcessAttention } from './attention.js';
import type { MemoryBudget } from './budget.js';
import { generatesText } from './capabilities.js';
import type { GpuHealth } from './gpu-health.js';
import { ChatWrappers, LoadedWeights, ModelInstance, type SequenceSlot } from './instance.js';
import { clientClosed, InstancePool, shuttingDown } from './instances.js';
import type { Backend } from './llama.js';
import { addMemory, budgetedBytes, describeNeed, estimateContext, estimateWeights, NO_MEMORY } from './memory.js';
import type { EngineObserver } from './observer.js';
import { effectiveLoadOptions, instanceKey, type ModelFacts } from './options.js';
import type { LoadedModel, LoadOptions, ModelSpec } from './types.js';

/** What a request needs from an instance. */
export type Want = 'sequence' | 'embedding' | 'none';

export interface AcquireRequest {
  spec: ModelSpec;
  /** normalised (see normalizeLoadOptions); the scheduler makes it effective (effectiveLoadOptions) */
  load: LoadOptions;
  keepAliveMs: number;
  want: Want;
  signal?: AbortSignal;
  /** the prompt's tokens on an instance, to pick the sequence already holding the longest prefix */
  prompt?: (instance: ModelInstance) => readonly Token[];
}

/** A request's hold on an instance (and a sequence of it); `release()` exactly once when done. */
export interface Lease {
  readonly instance: ModelInstance;
  /** the sequence held (want 'sequence') */
  readonly slot: SequenceSlot | null;
  /** ns spent loading the instance this request waited for (0 when it was loaded already) */
  readonly loadDurationNs: number;
  /** `unload`: the instance failed (GPU) and must not serve again */
  release(opts?: { unload?: boolean }): void;
}

export interface SchedulerOptions {
  llama: Llama;
  backend: Backend;
  gpu: GpuHealth;
  maxLoadedModels: number;
  maxQueue: number;
  /** bytes, see EngineOptions.memoryBudget */
  memoryBudget: number;
  loadWaitMs: number;
  log: Logger;
  /** told of loads and unloads (the metrics) */
  observer?: EngineObserver;
  /** the node's memory budget shared with image models (budget.ts); without it, this scheduler's own */
  budget?: MemoryBudget;
  /** flash attention and the KV cache type (resolved, see attention.ts); default auto and f16 */
  attention?: AttentionSettings;
}

/**
 * Decides which instance serves a request, loads and unloads instances, and
 * bounds the queue. Requests wait (counted in queueDepth) for a free sequence
 * or for a load; loads run one at a time so memory estimates add up; idle
 * instances are evicted least recently used first when a load needs room.
 */
export class Scheduler {
  private readonly pool: InstancePool<ModelInstance, AcquireRequest, Lease, SequenceSlot | null>;
  private readonly weights = new Map<string, LoadedWeights>();
  private readonly chatWrappers = new ChatWrappers();
  /** per blob digest: what decides its instances' effective options */
  private readonly facts = new Map<string, ModelFacts>();
  private readonly factsPending = new Map<string, Promise<ModelFacts>>();

  constructor(private readonly opts: SchedulerOptions) {
    const { backend } = opts;
    // What differs from the server engine's pool is deliberate: a request takes a sequence or the
    // embedding context (not a count of slots), an instance can be retired after a GPU failure
    // (a llama-server crash is noticed by its process exiting instead), and weights shared by
    // instances count once.
    this.pool = new InstancePool(opts, {
      start: (key, req) => this.loadInstance(key, req.spec, req.load),
      stop: (instance, reason) => this.unloadInstance(instance, reason),
      claim: (instance, req) => claim(instance, req),
      unclaim: (instance, req, slot, now) => {
        if (slot) {
          slot.busy = false;
          slot.lastUsed = now;
        }
        if (req.want === 'embedding') instance.embeddingBusy = false;
      },
      lease: (instance, slot, loadDurationNs, release) => ({
        instance,
        slot,
        loadDurationNs,
        release: (opts) => release(opts?.unload ? 'failed on the GPU' : undefined),
      }),
      // Weights shared by several instances count once: each instance carries its share.
      tenantBytes: (i) =>
        budgetedBytes(backend, i.memory) + budgetedBytes(backend, i.weights.memory) / i.weights.holders,
      usedBytes: () => this.usedBytes(),
    });
  }

  private get instances(): Map<string, ModelInstance> {
    return this.pool.instances;
  }

  queueDepth(): number {
    return this.pool.queueDepth();
  }

  /** Gets an instance (loading it if needed) and what the request wants of it; waits in the queue when busy. */
  acquire(req: AcquireRequest): Promise<Lease> {
    if (this.pool.isClosed) return Promise.reject(shuttingDown());
    if (req.signal?.aborted) return Promise.reject(clientClosed());
    // Instances are keyed by the options they really run with, so the model's facts come first
    // (read once a blob, from its GGUF header).
    const facts = this.facts.get(req.spec.digest);
    if (facts) return this.acquireKeyed({ ...req, load: effectiveLoadOptions(req.load, facts) });
    return this.modelFacts(req.spec).then((f) =>
      this.acquireKeyed({ ...req, load: effectiveLoadOptions(req.load, f) }),
    );
  }

  /** What decides a model's effective options, read once a blob (the server engine's pool reads them here too). */
  modelFacts(spec: ModelSpec): Promise<ModelFacts> {
    // every request of the server engine asks: reading a GGUF header again (its whole vocabulary,
    // 30k strings and more) cost a one-token request about 150 ms (docs/benchmarks.md)
    const known = this.facts.get(spec.digest);
    if (known) return Promise.resolve(known);
    let pending = this.factsPending.get(spec.digest);
    if (!pending) {
      pending = (async () => {
        const file = await spec.resolveFile();
        try {
          const insights = await readInsights(file.path, this.opts.llama, spec.name);
          const facts = {
            trainContextSize: insights.trainContextSize,
            generates: generatesText(insights.ggufFileInfo),
          };
          this.facts.set(spec.digest, facts);
          return facts;
        } finally {
          file.release();
        }
      })().finally(() => this.factsPending.delete(spec.digest));
      this.factsPending.set(spec.digest, pending);
    }
    return pending;
  }

  private acquireKeyed(req: AcquireRequest): Promise<Lease> {
    return this.pool.acquire(instanceKey(req.spec.digest, req.load), req);
  }

  loaded(): LoadedModel[] {
    return [...this.instances.values()]
      .filter((i) => i.state === 'ready')
      .map((i) => {
        const total = addMemory(i.memory, i.weights.memory);
        return {
          name: i.spec.name,
          digest: i.spec.digest,
          size: Math.round(total.ram + total.vram),
          sizeVram: Math.round(total.vram),
          contextLength: i.contextSize,
          expiresAt: i.projectedExpiry(),
          load: { ...i.load },
          activeSequences: i.activeSequences,
          parallel: i.context ? i.slots.length : 1,
        };
      });
  }

  /** Unloads every instance of a blob: idle ones now, busy ones when their last request ends. */
  unload(digest: string): Promise<boolean> {
    return this.pool.unload(digest);
  }

  /** Marks an instance broken (GPU failure): it serves nothing more and unloads when idle. */
  retire(instance: ModelInstance): void {
    this.pool.retire(instance, 'failed on the GPU');
  }

  async close(graceMs = 10_000): Promise<void> {
    await this.pool.close(graceMs);
    // weights still pinned by nothing (a load that failed late) are released here
    await Promise.allSettled([...this.weights.values()].map((w) => w.dispose()));
    this.weights.clear();
  }

  // ---- loading ----

  private async loadInstance(
    key: string,
    spec: ModelSpec,
    load: LoadOptions,
  ): Promise<{ instance: ModelInstance; loadDurationNs: number }> {
    const started = process.hrtime.bigint();
    const { llama, backend, gpu, log } = this.opts;
    const attention = this.opts.attention ?? DEFAULT_ATTENTION;
    // refused before anything loads: a quantized KV cache is the server engine's
    const contextAttention = inProcessAttention(attention, spec.name);
    const gpuLayers = gpu.layersFor(load.numGpu);
    const weightsKey = `${spec.digest}|gpu=${gpuLayers}|mmap=${load.useMmap ? 1 : 0}`;
    let weights = this.weights.get(weightsKey) ?? null;
    let file: { path: string; release(): void } | null = null;
    if (weights) weights.holders++;
    try {
      let insights: GgufInsights;
      if (weights) {
        insights = weights.model.fileInsights;
      } else {
        file = await spec.resolveFile();
        insights = await readInsights(file.path, llama, spec.name);
      }
      const trained = insights.trainContextSize ?? load.numCtx;
      const numCtx = Math.min(load.numCtx, trained);
      const generates = weights ? weights.capabilities.completion : generatesText(insights.ggufFileInfo);
      const sequences = generates ? load.numParallel : 1;
      const estimatedLayers = gpuLayers < 0 ? insights.totalLayers : Math.min(gpuLayers, insights.totalLayers);
      const weightsNeed = weights ? NO_MEMORY : estimateWeights(insights, estimatedLayers, load.useMmap);
      const contextNeed = estimateContext(insights, {
        contextSize: numCtx,
        sequences,
        batchSize: generates ? Math.min(load.numBatch, numCtx * sequences) : numCtx,
        gpuLayers: estimatedLayers,
        embedding: !generates,
        attention,
      });
      // With numGpu -1 on a GPU, llama.cpp offloads what fits and keeps the rest in RAM: VRAM is no hard limit there.
      const strict = backend === 'cpu' || gpuLayers >= 0;
      const need = addMemory(weightsNeed, contextNeed);
      await this.pool.makeRoom(key, spec, {
        bytes: budgetedBytes(backend, need),
        describe: describeNeed(backend, need),
        strict,
      });
      if (!weights) {
        const loadingFile = file!;
        file = null; // owned by the weights from here on, released when they are disposed
        try {
          weights = await LoadedWeights.load({
            key: weightsKey,
            llama,
            file: loadingFile,
            gpuLayers,
            fitContextSize: numCtx * sequences,
            useMmap: load.useMmap,
            memory: weightsNeed,
            resolveWrapper: (model) => this.chatWrappers.resolve(spec.digest, model),
          });
        } catch (err) {
          loadingFile.release();
          throw err;
        }
        weights.holders++;
        this.weights.set(weightsKey, weights);
      }
      const instance = await ModelInstance.create({
        key,
        spec: { name: spec.name, digest: spec.digest, size: spec.size },
        load: { ...load, numCtx, numParallel: sequences },
        weights,
        memory: contextNeed,
        flashAttention: contextAttention.flashAttention,
      });
      const loadDurationNs = Number(process.hrtime.bigint() - started);
      log.info(
        {
          model: spec.name,
          digest: spec.digest.slice(0, 12),
          numCtx: instance.contextSize,
          parallel: sequences,
          gpuLayers: instance.load.numGpu,
          threads: load.numThread,
          memory: describeNeed(backend, addMemory(weightsNeed, contextNeed)),
          ms: Math.round(loadDurationNs / 1e6),
        },
        'engine: model loaded',
      );
      return { instance, loadDurationNs };
    } catch (err) {
      file?.release();
      if (weights) await this.unpinWeights(weights);
      throw this.loadError(err, spec, gpuLayers);
    }
  }

  private loadError(err: unknown, spec: ModelSpec, gpuLayers: number): unknown {
    if (isHearthError(err)) return err;
    if (err instanceof InsufficientMemoryError) {
      return new HearthError(
        'ENGINE_OUT_OF_MEMORY',
        [
          `not enough memory to load model "${spec.name}" (${describeError(err)}): use a smaller num_ctx or num_parallel, unload other models, or choose a smaller model`,
        ],
        { cause: err },
      );
    }
    if (this.opts.gpu.isGpuFailure(err, gpuLayers)) {
      this.opts.gpu.markUnhealthy(`loading ${spec.name}: ${describeError(err)}`);
      return this.opts.gpu.failedError(`loading model "${spec.name}"`, err);
    }
    return new HearthError(
      'ENGINE_LOAD_FAILED',
      [
        `model "${spec.name}" failed to load (${describeError(err)}): check that the blob is a GGUF this llama.cpp supports (re-pull it if it is damaged)`,
      ],
      { cause: err },
    );
  }

  private usedBytes(): number {
    const { backend } = this.opts;
    let used = 0;
    for (const w of this.weights.values()) used += budgetedBytes(backend, w.memory);
    for (const i of this.instances.values()) used += budgetedBytes(backend, i.memory);
    return used;
  }

  /** Frees an instance the pool stops (its contexts, then its share of the weights). */
  private async unloadInstance(instance: ModelInstance, reason: string): Promise<void> {
    try {
      await instance.dispose();
    } catch (err) {
      this.opts.log.warn({ err, model: instance.spec.name }, 'engine: error while disposing a model instance');
    }
    await this.unpinWeights(instance.weights);
    this.opts.log.info({ model: instance.spec.name, reason }, 'engine: model unloaded');
  }

  private async unpinWeights(weights: LoadedWeights): Promise<void> {
    weights.holders--;
    if (weights.holders > 0) return;
    if (this.weights.get(weights.key) === weights) this.weights.delete(weights.key);
    try {
      await weights.dispose();
    } catch (err) {
      this.opts.log.warn({ err }, 'engine: error while disposing model weights');
    }
  }
}

async function readInsights(path: string, llama: Llama, name: string): Promise<GgufInsights> {
  let insights: GgufInsights;
  try {
    insights = await GgufInsights.from(await readGgufFileInfo(path, { logWarnings: false }), llama);
  } catch (err) {
    throw new HearthError(
      'MODEL_INVALID',
      `engine: model "${name}" is not a readable GGUF (${describeError(err)}): re-pull it`,
      {
        cause: err,
      },
    );
  }
  if (!insights.isSupportedByLlamaCpp) {
    const arch = insights.ggufFileInfo.metadata.general?.architecture ?? 'unknown';
    throw new HearthError(
      'MODEL_INVALID',
      `engine: model "${name}" has architecture "${arch}", which this llama.cpp build does not support: update hearth or choose another model`,
    );
  }
  return insights;
}

/** Takes what a request wants of an instance: a sequence, the embedding context, or nothing (a bare load). */
function claim(instance: ModelInstance, req: AcquireRequest): SequenceSlot | null | undefined {
  if (req.want === 'sequence') {
    if (!instance.context) {
      throw new HearthError(
        'ENGINE_CAPABILITY',
        `model "${req.spec.name}" is an embedding model and does not support generate or chat: use it with /api/embed`,
      );
    }
    const slot = instance.freeSlot(req.prompt ? () => req.prompt!(instance) : undefined);
    if (!slot) return undefined;
    slot.busy = true;
    return slot;
  }
  if (req.want === 'embedding') {
    if (instance.embeddingBusy) return undefined;
    instance.embeddingBusy = true;
  }
  return null;
}
