import { stat } from 'node:fs/promises';
import { GgufInsights, type Llama, readGgufFileInfo } from 'node-llama-cpp';
import type { Logger } from 'pino';
import { describeError, HearthError, isHearthError } from '../../errors.js';
import { type AttentionSettings, attentionForModel, DEFAULT_ATTENTION, headSizes } from '../attention.js';
import type { MemoryBudget } from '../budget.js';
import { generatesText, isEmbeddingModel, isReranker } from '../capabilities.js';
import { generationResult } from '../generation.js';
import type { GpuHealth } from '../gpu-health.js';
import type { Backend } from '../llama.js';
import { addMemory, budgetedBytes, estimateContext, estimateWeights, type MemoryNeed, NO_MEMORY } from '../memory.js';
import type { EngineObserver, InferenceRequestObserver } from '../observer.js';
import type { ModelFacts } from '../options.js';
import type {
  EmbedRequest,
  EmbedResult,
  GenerateRequest,
  GenerateResult,
  LoadedModel,
  LoadOptions,
  ModelSpec,
  RerankRequest,
  RerankResult,
} from '../types.js';
import type { ServerMode } from './flags.js';
import { type ServerLease, type ServerModelFacts, ServerPool } from './pool.js';
import { ServerExited } from './process.js';
import { embedOnServer, generateOnServer, rerankOnServer } from './requests.js';

/** Which llama-server runs the models, and why (for `hearth doctor` and the start-up log). */
export interface ServerBinary {
  path: string;
  /** folder of its shared libraries (a linked build: node-llama-cpp's prebuilt backend) */
  libDir?: string;
  /**
   * the folder ggml loads its backend libraries from (the process's working folder; default libDir):
   * a folder of links when the CUDA library that suits this node is node-llama-cpp's fallback (./cuda-runtime.ts)
   */
  backendDir?: string;
  /** what it is: "hearth engine build (linked to the cpu prebuilt libraries)", "inference.llamaServer" ... */
  origin: string;
  /** llama-quantize built with it (hearth create --quantize); absent for inference.llamaServer */
  quantize?: string;
}

export interface ServerEngineOptions {
  binary: ServerBinary;
  llama: Llama;
  backend: Backend;
  gpu: GpuHealth;
  /** what decides a model's effective options (the in-process Scheduler's cache) */
  modelFacts: (spec: ModelSpec) => Promise<ModelFacts>;
  maxLoadedModels: number;
  maxQueue: number;
  memoryBudget: number;
  loadWaitMs: number;
  readyTimeoutMs?: number;
  log: Logger;
  observer?: EngineObserver;
  onCrash?: (model: string) => void;
  /** the node's memory budget, shared with image models */
  budget?: MemoryBudget;
  /** flash attention and the KV cache type (resolved, attention.ts); default auto and f16 */
  attention?: AttentionSettings;
}

/**
 * Generation and embeddings through llama-server processes (one per
 * instance, see ServerPool). The Engine delegates here once a server binary is
 * attached; the contract (./types.ts) is the same as in-process.
 */
export class ServerEngine {
  readonly pool: ServerPool;

  constructor(private readonly opts: ServerEngineOptions) {
    this.pool = new ServerPool({
      binary: opts.binary.path,
      ...(opts.binary.libDir ? { libDir: opts.binary.libDir } : {}),
      ...(opts.binary.backendDir ? { backendDir: opts.binary.backendDir } : {}),
      maxLoadedModels: opts.maxLoadedModels,
      maxQueue: opts.maxQueue,
      memoryBudget: opts.memoryBudget,
      loadWaitMs: opts.loadWaitMs,
      readyTimeoutMs: opts.readyTimeoutMs ?? 5 * 60_000,
      facts: (path, load, mode, projector) => this.facts(path, load, mode, projector),
      modelFacts: opts.modelFacts,
      log: opts.log,
      ...(opts.observer ? { observer: opts.observer } : {}),
      ...(opts.onCrash ? { onCrash: opts.onCrash } : {}),
      ...(opts.budget ? { budget: opts.budget } : {}),
    });
  }

  get binary(): ServerBinary {
    return this.opts.binary;
  }

  async generate(
    req: GenerateRequest,
    load: LoadOptions,
    signal: AbortSignal,
    observed: InferenceRequestObserver | undefined,
  ): Promise<GenerateResult> {
    const started = process.hrtime.bigint();
    const lease = await this.pool.acquire({
      spec: req.model,
      load: this.serverLoad(load),
      mode: 'generate',
      keepAliveMs: req.keepAliveMs,
      signal,
    });
    observed?.started();
    try {
      const outcome = await generateOnServer(lease.instance.proc, req, signal, observed && ((n) => observed.tokens(n)));
      return generationResult(outcome, observed, lease.loadDurationNs, started);
    } catch (err) {
      throw this.requestError(err, lease, 'generation');
    } finally {
      lease.release();
    }
  }

  async embed(
    req: EmbedRequest,
    load: LoadOptions,
    signal: AbortSignal,
    observed: InferenceRequestObserver | undefined,
  ): Promise<EmbedResult> {
    const started = process.hrtime.bigint();
    const lease = await this.pool.acquire({
      spec: req.model,
      load: this.serverLoad(load),
      mode: 'embedding',
      keepAliveMs: req.keepAliveMs,
      signal,
    });
    observed?.started();
    try {
      const { embeddings, promptTokens } = await embedOnServer(lease.instance.proc, req.inputs, {
        ...(req.dimensions !== undefined ? { dimensions: req.dimensions } : {}),
        truncate: req.truncate,
        contextSize: lease.instance.load.numCtx,
        model: req.model.name,
        signal,
      });
      const size = embeddings[0]?.length ?? 0;
      if (
        req.dimensions !== undefined &&
        (req.dimensions < 1 || !Number.isInteger(req.dimensions) || req.dimensions > size)
      ) {
        throw new HearthError(
          'BAD_REQUEST',
          `dimensions must be an integer from 1 to ${size} for model "${req.model.name}", got ${req.dimensions}`,
          { details: { param: 'dimensions' } },
        );
      }
      observed?.finished({ promptTokens, promptTokensEvaluated: promptTokens, generatedTokens: 0 });
      return {
        embeddings,
        promptTokens,
        loadDurationNs: lease.loadDurationNs,
        totalDurationNs: Number(process.hrtime.bigint() - started),
      };
    } catch (err) {
      throw this.requestError(err, lease, 'embedding');
    } finally {
      lease.release();
    }
  }

  async rerank(
    req: RerankRequest,
    load: LoadOptions,
    signal: AbortSignal,
    observed: InferenceRequestObserver | undefined,
  ): Promise<RerankResult> {
    const started = process.hrtime.bigint();
    const lease = await this.pool.acquire({
      spec: req.model,
      load: this.serverLoad(load),
      mode: 'rerank',
      keepAliveMs: req.keepAliveMs,
      signal,
    });
    observed?.started();
    try {
      const { results, promptTokens } = await rerankOnServer(lease.instance.proc, req, signal);
      observed?.finished({ promptTokens, promptTokensEvaluated: promptTokens, generatedTokens: 0 });
      return {
        results,
        promptTokens,
        loadDurationNs: lease.loadDurationNs,
        totalDurationNs: Number(process.hrtime.bigint() - started),
      };
    } catch (err) {
      throw this.requestError(err, lease, 'reranking');
    } finally {
      lease.release();
    }
  }

  async load(
    model: ModelSpec,
    load: LoadOptions,
    keepAliveMs: number,
    signal: AbortSignal,
  ): Promise<{ loadDurationNs: number }> {
    const lease = await this.pool.acquire({
      spec: model,
      load: this.serverLoad(load),
      mode: 'generate',
      keepAliveMs,
      signal,
    });
    lease.release();
    return { loadDurationNs: lease.loadDurationNs };
  }

  unload(digest: string): Promise<boolean> {
    return this.pool.unload(digest);
  }

  loaded(): LoadedModel[] {
    return this.pool.loaded();
  }

  queueDepth(): number {
    return this.pool.queueDepth();
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /** The GPU rules hold: after a GPU failure (gpuFallback: cpu), new processes start with no layers offloaded. */
  private serverLoad(load: LoadOptions): LoadOptions {
    return { ...load, numGpu: this.opts.gpu.layersFor(load.numGpu) };
  }

  private requestError(err: unknown, lease: ServerLease, what: string): unknown {
    if (err instanceof ServerExited || (lease.instance.state === 'crashed' && !isHearthError(err))) {
      return new HearthError('ENGINE_CRASHED', [lease.instance.spec.name, what, describeError(err)], { cause: err });
    }
    if (isHearthError(err)) return err;
    this.opts.log.error({ err, model: lease.instance.spec.name }, `engine: ${what} failed`);
    return new HearthError(
      'INTERNAL',
      `engine: ${what} with model "${lease.instance.spec.name}" failed: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }

  private async facts(
    path: string,
    load: LoadOptions,
    mode: ServerMode,
    projectorPath?: string,
  ): Promise<ServerModelFacts> {
    let insights: GgufInsights;
    try {
      insights = await GgufInsights.from(await readGgufFileInfo(path, { logWarnings: false }), this.opts.llama);
    } catch (err) {
      throw new HearthError(
        'MODEL_INVALID',
        `engine: ${path} is not a readable GGUF (${describeError(err)}): re-pull it`,
        {
          cause: err,
        },
      );
    }
    const info = insights.ggufFileInfo;
    const { attention, fallback } = attentionForModel(this.opts.attention ?? DEFAULT_ATTENTION, headSizes(info));
    if (fallback)
      this.opts.log.warn({ path }, `engine: inference.kvCacheType does not apply to this model: ${fallback}`);
    const generates = generatesText(info);
    const numCtx = load.numCtx; // effective already (capped at the trained context)
    const layers = load.numGpu < 0 ? insights.totalLayers : Math.min(load.numGpu, insights.totalLayers);
    const sequences = mode === 'generate' ? load.numParallel : 1;
    const need = addMemory(
      addMemory(
        estimateWeights(insights, layers, load.useMmap),
        await projectorMemory(projectorPath, this.opts.backend, layers),
      ),
      estimateContext(insights, {
        contextSize: numCtx,
        sequences,
        batchSize: mode === 'generate' ? Math.min(load.numBatch, numCtx * sequences) : numCtx,
        gpuLayers: layers,
        embedding: mode !== 'generate',
        attention,
      }),
    );
    return {
      bytes: budgetedBytes(this.opts.backend, need),
      generates,
      needsPooling: mode === 'embedding' && !isEmbeddingModel(info),
      reranks: isReranker(info),
      attention,
    };
  }
}

/**
 * A vision projector's weights (its mmproj file, tensors all but a header): llama-server loads them
 * beside the model's, on the GPU when the model's layers go there (its --mmproj-offload default), else
 * in RAM. Its compute buffer for one image is not counted (small beside the weights at these sizes).
 */
async function projectorMemory(path: string | undefined, backend: Backend, gpuLayers: number): Promise<MemoryNeed> {
  if (!path) return NO_MEMORY;
  const { size } = await stat(path);
  return backend !== 'cpu' && gpuLayers > 0 ? { ram: 0, vram: size } : { ram: size, vram: 0 };
}
