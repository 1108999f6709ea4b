import type { Logger } from 'pino';
import { describeError, HearthError, isHearthError } from '../errors.js';
import { formatBytes } from '../units.js';
import { type AttentionSettings, DEFAULT_ATTENTION, resolveAttention } from './attention.js';
import { MemoryBudget } from './budget.js';
import { readCapabilities } from './capabilities.js';
import { prepareChat } from './chat.js';
import { prepareCompletion } from './completion.js';
import { embedInputs } from './embed.js';
import { generationResult, type PreparedGeneration } from './generation.js';
import { GpuHealth } from './gpu-health.js';
import { OutputGrammars } from './grammars.js';
import type { ModelInstance } from './instance.js';
import { clientClosed } from './instances.js';
import { acquireLlama, type Backend, type LlamaLease } from './llama.js';
import { defaultMemoryBudget } from './memory.js';
import type { EngineObserver, InferenceRequestObserver } from './observer.js';
import { type EngineOptions, normalizeLoadOptions } from './options.js';
import { Scheduler } from './scheduler.js';
import { type ServerBinary, ServerEngine } from './server/engine.js';
import { defaultThreadCount } from './threads.js';
import type {
  EmbedRequest,
  EmbedResult,
  GenerateRequest,
  GenerateResult,
  LoadedModel,
  LoadOptions,
  ModelCapabilities,
  ModelSpec,
  RerankRequest,
  RerankResult,
} from './types.js';
import { checkImages } from './vision.js';

const DEFAULT_LOAD_WAIT_MS = 5 * 60_000;
const MAX_CACHED_CAPABILITIES = 256;

/**
 * The inference engine: llama.cpp in-process through node-llama-cpp, with a
 * scheduler that shares model instances between requests (continuous
 * batching over parallel sequences, prompt cache, keep-alive, memory budget).
 * The HTTP layers speak only the types in ./types.ts to it.
 */
export class Engine {
  /** the backend llama.cpp runs on */
  readonly backend: Backend;
  /** CPU threads per instance when a request does not set numThread */
  readonly threads: number;
  private readonly scheduler: Scheduler;
  private readonly grammars: OutputGrammars;
  private readonly gpu: GpuHealth;
  private readonly observer: EngineObserver | undefined;
  private readonly capabilitiesCache = new Map<string, Promise<ModelCapabilities>>();
  /** aborts every running request when the engine closes */
  private readonly shutdown = new AbortController();
  private closing: Promise<void> | null = null;
  /** llama-server processes serve once a binary is attached (attachServer); until then llama.cpp in-process */
  private server: ServerEngine | null = null;
  private readonly settings: {
    maxLoadedModels: number;
    maxQueue: number;
    memoryBudget: number;
    loadWaitMs: number;
    serverReadyTimeoutMs: number | undefined;
    attention: AttentionSettings;
  };
  private readonly onServerCrash: ((model: string) => void) | undefined;
  /** the node's memory budget: language models here and image models (src/images) load within it */
  readonly memory: MemoryBudget;

  private constructor(
    private readonly lease: LlamaLease,
    private readonly log: Logger,
    settings: {
      threads: number;
      maxLoadedModels: number;
      maxQueue: number;
      memoryBudget: number;
      loadWaitMs: number;
      serverReadyTimeoutMs?: number | undefined;
      attention: AttentionSettings;
    },
    gpuFallback: 'cpu' | 'none',
    observer?: EngineObserver,
    onServerCrash?: (model: string) => void,
  ) {
    this.settings = { ...settings, serverReadyTimeoutMs: settings.serverReadyTimeoutMs };
    this.onServerCrash = onServerCrash;
    this.backend = lease.backend;
    this.observer = observer;
    this.threads = settings.threads;
    this.gpu = new GpuHealth(lease.backend, gpuFallback, log);
    this.grammars = new OutputGrammars(lease.llama);
    this.memory = new MemoryBudget(settings.memoryBudget, log);
    this.scheduler = new Scheduler({
      budget: this.memory,
      llama: lease.llama,
      backend: lease.backend,
      gpu: this.gpu,
      maxLoadedModels: settings.maxLoadedModels,
      maxQueue: settings.maxQueue,
      memoryBudget: settings.memoryBudget,
      loadWaitMs: settings.loadWaitMs,
      attention: settings.attention,
      log,
      ...(observer ? { observer } : {}),
    });
  }

  /** Starts llama.cpp (one Llama per process, prebuilt binaries only) and the scheduler. */
  static async open(opts: EngineOptions): Promise<Engine> {
    for (const [name, value, min] of [
      ['threads', opts.threads, 0],
      ['maxLoadedModels', opts.maxLoadedModels, 0],
      ['maxQueue', opts.maxQueue, 0],
      ['numParallel', opts.numParallel, 1],
    ] as const) {
      if (!Number.isInteger(value) || value < min) {
        throw new HearthError('CONFIG_INVALID', `engine: ${name} must be an integer >= ${min}, got ${String(value)}`);
      }
    }
    // a quantized KV cache with flash attention off is refused here, before llama.cpp starts
    const attention = resolveAttention(opts.attention ?? DEFAULT_ATTENTION);
    const lease = await acquireLlama(opts);
    try {
      const { llama, backend } = lease;
      const threads = opts.threads > 0 ? opts.threads : defaultThreadCount(llama.cpuMathCores);
      const gpus = backend === 'cpu' ? 1 : Math.max(1, (await llama.getGpuDeviceNames()).length);
      const maxLoadedModels = opts.maxLoadedModels > 0 ? opts.maxLoadedModels : 3 * gpus;
      const memoryBudget = opts.memoryBudget ?? (await defaultMemoryBudget(llama, backend));
      const engine = new Engine(
        lease,
        opts.log,
        {
          threads,
          maxLoadedModels,
          maxQueue: opts.maxQueue,
          memoryBudget,
          loadWaitMs: opts.loadWaitMs ?? DEFAULT_LOAD_WAIT_MS,
          serverReadyTimeoutMs: opts.serverReadyTimeoutMs,
          attention,
        },
        opts.gpuFallback,
        opts.observer,
        opts.onServerCrash,
      );
      if (opts.server) engine.attachServer(opts.server);
      opts.log.info(
        {
          backend,
          threads,
          maxLoadedModels,
          maxQueue: opts.maxQueue,
          memoryBudget: formatBytes(memoryBudget),
          flashAttention: attention.flashAttention,
          kvCacheType: attention.kvCacheType,
        },
        'engine: ready',
      );
      return engine;
    } catch (err) {
      await lease.release();
      throw err;
    }
  }

  /**
   * From now on, requests run on llama-server processes started from `binary`
   * (the in-process instances already loaded finish their requests and expire).
   */
  attachServer(binary: ServerBinary): void {
    if (this.server || this.closing) return;
    this.server = new ServerEngine({
      binary,
      llama: this.lease.llama,
      backend: this.backend,
      gpu: this.gpu,
      modelFacts: (spec) => this.scheduler.modelFacts(spec),
      maxLoadedModels: this.settings.maxLoadedModels,
      maxQueue: this.settings.maxQueue,
      memoryBudget: this.settings.memoryBudget,
      budget: this.memory,
      loadWaitMs: this.settings.loadWaitMs,
      attention: this.settings.attention,
      ...(this.settings.serverReadyTimeoutMs !== undefined
        ? { readyTimeoutMs: this.settings.serverReadyTimeoutMs }
        : {}),
      log: this.log,
      ...(this.observer ? { observer: this.observer } : {}),
      ...(this.onServerCrash ? { onCrash: this.onServerCrash } : {}),
    });
    this.log.info({ binary: binary.path, origin: binary.origin }, 'engine: llama-server processes serve from now on');
  }

  /** Which engine serves requests now, and with what. */
  serving(): { engine: 'server' | 'inprocess'; backend: Backend; binary?: ServerBinary } {
    return this.server
      ? { engine: 'server', backend: this.backend, binary: this.server.binary }
      : { engine: 'inprocess', backend: this.backend };
  }

  /** The llama-server processes running now (empty in-process). */
  serverPids(): number[] {
    return this.server?.pool.pids() ?? [];
  }

  /** Whether loads may still use the GPU (false after a GPU failure). */
  get gpuHealthy(): boolean {
    return this.gpu.healthy;
  }

  /**
   * Marks the GPU unusable (what a failed load or generation on it does), so later loads run on the CPU
   * (gpuFallback: cpu) or are refused (none). Also the hook for a health probe or a test.
   */
  markGpuUnhealthy(reason: string): void {
    this.gpu.markUnhealthy(reason);
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const started = process.hrtime.bigint();
    this.assertOpen();
    checkImages(req, this.server !== null);
    const load = normalizeLoadOptions(req.load, this.threads);
    const server = this.server;
    if (server) {
      const observedServer = this.observer?.requestQueued({ model: req.model.name, kind: req.kind });
      return this.observe(observedServer, () =>
        this.withRequestSignal(req.signal, (signal) => server.generate(req, load, signal, observedServer)),
      );
    }
    if (req.kind === 'chat' && req.think !== undefined && req.think !== false) {
      throw new HearthError(
        'ENGINE_CAPABILITY',
        `model "${req.model.name}" thinks only on the server engine (llama-server): the in-process engine serves now; run \`hearth engine build\` and set inference.engine to auto or server, or send think: false`,
        { details: { param: 'think' } },
      );
    }
    if (req.logprobs) {
      throw new HearthError(
        'ENGINE_CAPABILITY',
        'logprobs come only from the server engine (llama-server): the in-process engine serves now; run `hearth engine build` and set inference.engine to auto or server, or leave logprobs out',
        { details: { param: 'logprobs' } },
      );
    }
    const grammar = req.format ? await this.grammars.get(req.format) : undefined;
    const prepared: PreparedGeneration =
      req.kind === 'chat' ? prepareChat(req, grammar) : prepareCompletion(req, grammar);
    const observed = this.observer?.requestQueued({ model: req.model.name, kind: req.kind });
    return this.observe(observed, async () =>
      this.withRequestSignal(req.signal, async (signal) => {
        const lease = await this.scheduler.acquire({
          spec: req.model,
          load,
          keepAliveMs: req.keepAliveMs,
          want: 'sequence',
          signal,
          prompt: (instance) => prepared.promptTokens(instance),
        });
        observed?.started();
        return this.holding(lease, signal, 'generation', async () => {
          const outcome = await prepared.run(
            lease.instance,
            lease.slot!,
            signal,
            observed && ((n) => observed.tokens(n)),
          );
          return generationResult(outcome, observed, lease.loadDurationNs, started);
        });
      }),
    );
  }

  async embed(req: EmbedRequest): Promise<EmbedResult> {
    const started = process.hrtime.bigint();
    this.assertOpen();
    const load = normalizeLoadOptions(req.load, this.threads);
    const observed = this.observer?.requestQueued({ model: req.model.name, kind: 'embedding' });
    const server = this.server;
    if (server) {
      return this.observe(observed, () =>
        this.withRequestSignal(req.signal, (signal) => server.embed(req, load, signal, observed)),
      );
    }
    return this.observe(observed, async () =>
      this.withRequestSignal(req.signal, async (signal) => {
        const lease = await this.scheduler.acquire({
          spec: req.model,
          load,
          keepAliveMs: req.keepAliveMs,
          want: 'embedding',
          signal,
        });
        observed?.started();
        return this.holding(lease, signal, 'embedding', async () => {
          const { embeddings, promptTokens } = await embedInputs(lease.instance, req.inputs, {
            truncate: req.truncate,
            ...(req.dimensions !== undefined ? { dimensions: req.dimensions } : {}),
            signal,
          });
          observed?.finished({ promptTokens, promptTokensEvaluated: promptTokens, generatedTokens: 0 });
          return {
            embeddings,
            promptTokens,
            loadDurationNs: lease.loadDurationNs,
            totalDurationNs: Number(process.hrtime.bigint() - started),
          };
        });
      }),
    );
  }

  /** Reranking runs on the server engine only (llama-server's --rerank mode). */
  async rerank(req: RerankRequest): Promise<RerankResult> {
    this.assertOpen();
    const server = this.server;
    if (!server) {
      throw new HearthError(
        'ENGINE_CAPABILITY',
        `reranking with model "${req.model.name}" needs the server engine (llama-server), and the in-process engine serves: run \`hearth engine build\` and set inference.engine to auto or server`,
      );
    }
    const load = normalizeLoadOptions(req.load, this.threads);
    const observed = this.observer?.requestQueued({ model: req.model.name, kind: 'rerank' });
    return this.observe(observed, () =>
      this.withRequestSignal(req.signal, (signal) => server.rerank(req, load, signal, observed)),
    );
  }

  /**
   * Runs `fn` while holding a lease, then gives it back; an error is mapped to
   * what the client should see, and a GPU failure unloads the instance.
   */
  private async holding<T>(
    lease: Awaited<ReturnType<Scheduler['acquire']>>,
    signal: AbortSignal,
    kind: 'generation' | 'embedding',
    fn: () => Promise<T>,
  ): Promise<T> {
    let broken = false;
    try {
      return await fn();
    } catch (err) {
      const mapped = this.requestError(err, lease.instance, signal, kind);
      broken = isHearthError(mapped, 'ENGINE_GPU_FAILED');
      throw mapped;
    } finally {
      lease.release({ unload: broken });
    }
  }

  /** Loads a model without generating (Ollama: an empty prompt); waits in the queue like any request. */
  async load(model: ModelSpec, load: LoadOptions, keepAliveMs: number): Promise<{ loadDurationNs: number }> {
    this.assertOpen();
    if (this.server) {
      return this.server.load(model, normalizeLoadOptions(load, this.threads), keepAliveMs, this.shutdown.signal);
    }
    const lease = await this.scheduler.acquire({
      spec: model,
      load: normalizeLoadOptions(load, this.threads),
      keepAliveMs,
      want: 'none',
      signal: this.shutdown.signal,
    });
    lease.release();
    return { loadDurationNs: lease.loadDurationNs };
  }

  /** Unloads every instance of a model (by digest): idle ones now, busy ones when their requests end. False if none is loaded. */
  async unload(digest: string): Promise<boolean> {
    const [inProcess, server] = await Promise.all([
      this.scheduler.unload(digest),
      this.server?.unload(digest) ?? Promise.resolve(false),
    ]);
    return inProcess || server;
  }

  /** What `ollama ps` shows. */
  loaded(): LoadedModel[] {
    return [...this.scheduler.loaded(), ...(this.server?.loaded() ?? [])];
  }

  /** What a GGUF can do, from its metadata alone (cached by path: blobs are content-addressed). */
  capabilities(path: string): Promise<ModelCapabilities> {
    let cached = this.capabilitiesCache.get(path);
    if (!cached) {
      cached = readCapabilities(path, this.lease.llama);
      cached.catch(() => this.capabilitiesCache.delete(path));
      this.capabilitiesCache.set(path, cached);
      if (this.capabilitiesCache.size > MAX_CACHED_CAPABILITIES) {
        this.capabilitiesCache.delete(this.capabilitiesCache.keys().next().value as string);
      }
    }
    return cached;
  }

  /** GPU memory as the backend reports it (bytes); null on the CPU backend. */
  async vram(): Promise<{ total: number; used: number } | null> {
    if (this.backend === 'cpu') return null;
    const state = await this.lease.llama.getVramState();
    return { total: state.total, used: state.used };
  }

  /** Requests waiting for a sequence or a load right now. */
  queueDepth(): number {
    return this.scheduler.queueDepth() + (this.server?.queueDepth() ?? 0);
  }

  /** Aborts running requests, refuses waiting ones, unloads everything and lets go of llama.cpp. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.shutdown.abort(new HearthError('SHUTTING_DOWN', 'engine: shutting down'));
      try {
        await Promise.all([this.scheduler.close(), this.server?.close()]);
      } finally {
        await this.lease.release();
        this.log.info('engine: closed');
      }
    })();
    return this.closing;
  }

  /** Tells the request's observer how it failed (whatever failed: the queue, the load or the generation). */
  private async observe<T>(observed: InferenceRequestObserver | undefined, fn: () => Promise<T>): Promise<T> {
    if (!observed) return fn();
    try {
      return await fn();
    } catch (err) {
      observed.failed({ code: isHearthError(err) ? err.code : 'INTERNAL' });
      throw err;
    }
  }

  private assertOpen(): void {
    if (this.closing) throw new HearthError('SHUTTING_DOWN', 'engine: shutting down; retry after the restart');
  }

  /** Runs `fn` with a signal that aborts when the client goes away or the engine closes. */
  private async withRequestSignal<T>(
    signal: AbortSignal | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    if (!signal) return fn(this.shutdown.signal);
    const combined = new AbortController();
    const forward = (source: AbortSignal) => () => combined.abort(source.reason);
    const onClient = forward(signal);
    const onShutdown = forward(this.shutdown.signal);
    if (signal.aborted) throw clientClosed();
    signal.addEventListener('abort', onClient, { once: true });
    this.shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    try {
      return await fn(combined.signal);
    } finally {
      signal.removeEventListener('abort', onClient);
      this.shutdown.signal.removeEventListener('abort', onShutdown);
    }
  }

  /** The error a request sees; a native failure on the GPU marks it unhealthy. */
  private requestError(err: unknown, instance: ModelInstance, signal: AbortSignal, what: string): unknown {
    if (isHearthError(err)) return err;
    if (signal.aborted) {
      return this.shutdown.signal.aborted
        ? new HearthError('SHUTTING_DOWN', 'engine: shutting down; the request was cut short')
        : clientClosed();
    }
    if (this.gpu.isGpuFailure(err, instance.load.numGpu)) {
      this.gpu.markUnhealthy(`${what} with ${instance.spec.name}: ${describeError(err)}`);
      return this.gpu.failedError(`${what} with model "${instance.spec.name}"`, err);
    }
    this.log.error({ err, model: instance.spec.name }, `engine: ${what} failed`);
    return new HearthError(
      'INTERNAL',
      `engine: ${what} with model "${instance.spec.name}" failed: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
}
