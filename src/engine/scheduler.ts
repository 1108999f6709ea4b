import { GgufInsights, InsufficientMemoryError, type Llama, readGgufFileInfo, type Token } from 'node-llama-cpp';
import type { Logger } from 'pino';
import { describeError, HearthError, isHearthError } from '../errors.js';
import { formatBytes } from '../units.js';
import { type AttentionSettings, DEFAULT_ATTENTION, inProcessAttention } from './attention.js';
import type { MemoryBudget, MemoryTenant } from './budget.js';
import { generatesText } from './capabilities.js';
import { ChangeSignal } from './changes.js';
import type { GpuHealth } from './gpu-health.js';
import { ChatWrappers, LoadedWeights, ModelInstance, type SequenceSlot } from './instance.js';
import type { Backend } from './llama.js';
import {
  addMemory,
  budgetedBytes,
  describeNeed,
  estimateContext,
  estimateWeights,
  type MemoryNeed,
  NO_MEMORY,
} from './memory.js';
import type { EngineObserver, UnloadReason } from './observer.js';
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

interface Waiter extends AcquireRequest {
  key: string;
  loadDurationNs: number;
  resolve(lease: Lease): void;
  reject(err: unknown): void;
  detach(): void;
}

/**
 * Decides which instance serves a request, loads and unloads instances, and
 * bounds the queue. Requests wait (counted in queueDepth) for a free sequence
 * or for a load; loads run one at a time so memory estimates add up; idle
 * instances are evicted least recently used first when a load needs room.
 */
export class Scheduler {
  private readonly instances = new Map<string, ModelInstance>();
  private readonly weights = new Map<string, LoadedWeights>();
  private readonly loads = new Map<string, Promise<void>>();
  private loadChain: Promise<unknown> = Promise.resolve();
  private readonly waiters: Waiter[] = [];
  private readonly disposing = new Set<Promise<void>>();
  private readonly changes = new ChangeSignal();
  private readonly chatWrappers = new ChatWrappers();
  private closed = false;
  /** per blob digest: what decides its instances' effective options */
  private readonly facts = new Map<string, ModelFacts>();
  private readonly factsPending = new Map<string, Promise<ModelFacts>>();

  constructor(private readonly opts: SchedulerOptions) {
    // Weights shared by several instances count once: each instance carries its share.
    this.tenants = () =>
      [...this.instances.values()].map((i) => ({
        name: i.spec.name,
        kind: 'llm' as const,
        bytes:
          budgetedBytes(opts.backend, i.memory) + budgetedBytes(opts.backend, i.weights.memory) / i.weights.holders,
        lastUsed: i.lastUsed,
        busy: () => i.active > 0 || i.state !== 'ready',
        evict: (reason: string) => this.unloadInstance(i, reason),
      }));
    opts.budget?.addSource(this.tenants);
  }

  /** this scheduler's instances as tenants of the shared memory budget */
  private readonly tenants: () => MemoryTenant[];

  queueDepth(): number {
    return this.waiters.length;
  }

  /** Gets an instance (loading it if needed) and what the request wants of it; waits in the queue when busy. */
  acquire(req: AcquireRequest): Promise<Lease> {
    if (this.closed) return Promise.reject(shuttingDown());
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
    if (this.closed) return Promise.reject(shuttingDown());
    if (req.signal?.aborted) return Promise.reject(clientClosed());
    const key = instanceKey(req.spec.digest, req.load);
    const instance = this.instances.get(key);
    if (instance && !this.waiters.some((w) => w.key === key)) {
      try {
        const lease = this.tryGrant(instance, req, 0);
        if (lease) return Promise.resolve(lease);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.waiters.length >= this.opts.maxQueue) {
      return Promise.reject(new HearthError('QUEUE_FULL', [this.opts.maxQueue]));
    }
    return new Promise<Lease>((resolve, reject) => {
      const onAbort = () => {
        if (!this.removeWaiter(waiter)) return;
        // the engine aborts with SHUTTING_DOWN when it closes; anything else is the client going away
        const reason: unknown = req.signal?.reason;
        waiter.reject(isHearthError(reason) ? reason : clientClosed());
        this.changes.notify();
      };
      const waiter: Waiter = {
        ...req,
        key,
        loadDurationNs: 0,
        resolve: (lease) => {
          waiter.detach();
          resolve(lease);
        },
        reject: (err) => {
          waiter.detach();
          reject(err);
        },
        detach: () => req.signal?.removeEventListener('abort', onAbort),
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
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
  async unload(digest: string): Promise<boolean> {
    const matching = [...this.instances.values()].filter((i) => i.spec.digest === digest);
    await Promise.all(
      matching.map((i) => {
        if (i.active === 0) return this.unloadInstance(i, 'unload requested');
        i.unloadWhenIdle = true;
        return undefined;
      }),
    );
    return matching.length > 0;
  }

  /** Marks an instance broken (GPU failure): it serves nothing more and unloads when idle. */
  retire(instance: ModelInstance): void {
    instance.unloadWhenIdle = true;
    if (this.instances.get(instance.key) === instance) this.instances.delete(instance.key);
    if (instance.active === 0) void this.unloadInstance(instance, 'failed on the GPU');
  }

  async close(graceMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(shuttingDown());
    this.changes.notify();
    await Promise.allSettled([...this.loads.values()]);
    // Running requests were aborted by the engine; give them a moment to hand their sequences back.
    const deadline = Date.now() + graceMs;
    while ([...this.instances.values()].some((i) => i.active > 0) && Date.now() < deadline) {
      await this.changes.wait(deadline - Date.now());
    }
    await Promise.allSettled([...this.instances.values()].map((i) => this.unloadInstance(i, 'engine closing')));
    await Promise.allSettled([...this.disposing]);
    // weights still pinned by nothing (a load that failed late) are released here
    await Promise.allSettled([...this.weights.values()].map((w) => w.dispose()));
    this.weights.clear();
  }

  // ---- granting ----

  private tryGrant(instance: ModelInstance, req: AcquireRequest, loadDurationNs: number): Lease | null {
    if (instance.state !== 'ready') return null;
    let slot: SequenceSlot | null = null;
    if (req.want === 'sequence') {
      if (!instance.context) {
        throw new HearthError(
          'ENGINE_CAPABILITY',
          `model "${req.spec.name}" is an embedding model and does not support generate or chat: use it with /api/embed`,
        );
      }
      slot = instance.freeSlot(req.prompt ? () => req.prompt!(instance) : undefined) ?? null;
      if (!slot) return null;
      slot.busy = true;
    } else if (req.want === 'embedding') {
      if (instance.embeddingBusy) return null;
      instance.embeddingBusy = true;
    }
    instance.active++;
    instance.keepAliveMs = req.keepAliveMs;
    instance.lastUsed = Date.now();
    instance.cancelExpiry();
    let released = false;
    return {
      instance,
      slot,
      loadDurationNs,
      release: (opts) => {
        if (released) return;
        released = true;
        const now = Date.now();
        if (slot) {
          slot.busy = false;
          slot.lastUsed = now;
        }
        if (req.want === 'embedding') instance.embeddingBusy = false;
        instance.active--;
        instance.lastUsed = now;
        if (opts?.unload) this.retire(instance);
        // waiting requests first: keep-alive 0 must not unload a model someone is queued for
        this.pump();
        if (instance.active === 0) this.onIdle(instance);
        this.changes.notify();
      },
    };
  }

  private pump(): void {
    for (const w of [...this.waiters]) {
      const instance = this.instances.get(w.key);
      if (instance) {
        let lease: Lease | null;
        try {
          lease = this.tryGrant(instance, w, w.loadDurationNs);
        } catch (err) {
          this.removeWaiter(w);
          w.reject(err);
          continue;
        }
        if (lease) {
          this.removeWaiter(w);
          w.resolve(lease);
        }
      } else if (!this.loads.has(w.key) && !this.closed) {
        this.startLoad(w);
      }
    }
  }

  private removeWaiter(w: Waiter): boolean {
    const i = this.waiters.indexOf(w);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    return true;
  }

  private onIdle(instance: ModelInstance): void {
    if (instance.state !== 'ready' || this.closed) return;
    if (instance.unloadWhenIdle || instance.keepAliveMs === 0) {
      void this.unloadInstance(instance, instance.unloadWhenIdle ? 'unload requested' : 'keep-alive 0');
      return;
    }
    instance.scheduleExpiry(() => {
      if (instance.active === 0) void this.unloadInstance(instance, 'keep-alive expired');
    });
  }

  // ---- loading ----

  private startLoad(first: Waiter): void {
    const { key, spec, load } = first;
    const run = this.loadChain.then(() => this.loadInstance(key, spec, load));
    const settled = run.then(
      ({ instance, loadDurationNs }) => {
        this.loads.delete(key);
        this.opts.observer?.modelLoaded({ model: spec.name, durationNs: loadDurationNs });
        if (this.closed) {
          void this.unloadInstance(instance, 'engine closing');
          return;
        }
        instance.keepAliveMs = first.keepAliveMs;
        this.instances.set(key, instance);
        for (const w of this.waiters) if (w.key === key) w.loadDurationNs = loadDurationNs;
        this.pump();
        // everyone who asked for it left meanwhile: it idles like any other instance
        if (instance.active === 0) this.onIdle(instance);
        this.changes.notify();
      },
      (err) => {
        this.loads.delete(key);
        this.opts.observer?.modelLoadFailed({ model: spec.name, code: isHearthError(err) ? err.code : 'INTERNAL' });
        for (const w of [...this.waiters]) {
          if (w.key !== key) continue;
          this.removeWaiter(w);
          w.reject(err);
        }
        this.pump();
        this.changes.notify();
      },
    );
    this.loads.set(key, settled);
    this.loadChain = settled;
  }

  private async loadInstance(
    key: string,
    spec: ModelSpec,
    load: LoadOptions,
  ): Promise<{ instance: ModelInstance; loadDurationNs: number }> {
    if (this.closed) throw shuttingDown();
    await Promise.allSettled([...this.disposing]);
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
      await this.makeRoom(key, spec, addMemory(weightsNeed, contextNeed), strict);
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

  /** Evicts idle instances (least recently used first) until `need` fits; waits (bounded) for busy ones. */
  private async makeRoom(key: string, spec: ModelSpec, need: MemoryNeed, strict: boolean): Promise<void> {
    const { backend, memoryBudget, maxLoadedModels, loadWaitMs } = this.opts;
    const needBytes = budgetedBytes(backend, need);
    const deadline = Date.now() + loadWaitMs;
    for (;;) {
      if (this.closed) throw shuttingDown();
      const budget = this.opts.budget;
      // With a shared budget, image models count too, and an idle one may be evicted for this load.
      const used = this.usedBytes() + (budget?.used(this.tenants) ?? 0);
      const fitsCount = this.instances.size < maxLoadedModels;
      const fitsBytes = !strict || used + needBytes <= memoryBudget;
      if (fitsCount && fitsBytes) return;
      if (strict && needBytes > memoryBudget) throw outOfMemory(spec, backend, need, used, memoryBudget);
      const shared = fitsCount ? budget?.victim() : undefined;
      if (shared) {
        await budget!.evict(shared, spec.name, 'llm');
        continue;
      }
      const idle = [...this.instances.values()]
        .filter((i) => i.active === 0 && i.state === 'ready')
        .sort((a, b) => a.lastUsed - b.lastUsed);
      const victim = idle[0];
      if (victim) {
        this.opts.log.info(
          { model: victim.spec.name, for: spec.name },
          fitsCount
            ? 'engine: evicting an idle model to free memory'
            : 'engine: evicting an idle model (maxLoadedModels)',
        );
        await this.unloadInstance(victim, `evicted for ${spec.name}`);
        continue;
      }
      if (!this.waiters.some((w) => w.key === key)) {
        throw new HearthError(
          'CLIENT_CLOSED',
          `engine: load of "${spec.name}" abandoned: nobody waits for it any more`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new HearthError('ENGINE_OUT_OF_MEMORY', [
          `model "${spec.name}" needs ${describeNeed(backend, need)} and waited ${Math.round(loadWaitMs / 1000)} s for busy models to finish (${formatBytes(used)} of ${formatBytes(memoryBudget)} in use, ${this.instances.size}/${maxLoadedModels} models loaded): retry later or raise the memory budget / inference.maxLoadedModels`,
        ]);
      }
      await this.changes.wait(left);
    }
  }

  private usedBytes(): number {
    const { backend } = this.opts;
    let used = 0;
    for (const w of this.weights.values()) used += budgetedBytes(backend, w.memory);
    for (const i of this.instances.values()) used += budgetedBytes(backend, i.memory);
    return used;
  }

  private unloadInstance(instance: ModelInstance, reason: string): Promise<void> {
    if (instance.state !== 'ready') return Promise.resolve();
    instance.state = 'unloading';
    instance.cancelExpiry();
    if (this.instances.get(instance.key) === instance) this.instances.delete(instance.key);
    const done = (async () => {
      try {
        await instance.dispose();
      } catch (err) {
        this.opts.log.warn({ err, model: instance.spec.name }, 'engine: error while disposing a model instance');
      }
      await this.unpinWeights(instance.weights);
      this.opts.log.info({ model: instance.spec.name, reason }, 'engine: model unloaded');
      this.opts.observer?.modelUnloaded({ model: instance.spec.name, reason: unloadReason(reason) });
    })();
    this.disposing.add(done);
    void done.finally(() => {
      this.disposing.delete(done);
      this.changes.notify();
    });
    return done;
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

function outOfMemory(spec: ModelSpec, backend: Backend, need: MemoryNeed, used: number, budget: number): HearthError {
  return new HearthError(
    'ENGINE_OUT_OF_MEMORY',
    [
      `model "${spec.name}" needs ${describeNeed(backend, need)} but the engine's memory budget is ${formatBytes(budget)} (${formatBytes(used)} in use): choose a smaller model, num_ctx or num_parallel, or raise the memory budget`,
    ],
    { details: { needBytes: budgetedBytes(backend, need), budgetBytes: budget, usedBytes: used } },
  );
}

/** The observer's reason for an unload, from the logged one. */
export function unloadReason(reason: string): UnloadReason {
  if (reason.startsWith('evicted')) return 'evicted';
  if (reason.startsWith('keep-alive')) return 'expired';
  if (reason.startsWith('failed')) return 'failed';
  if (reason === 'engine closing') return 'closing';
  return 'requested';
}

export function shuttingDown(): HearthError {
  return new HearthError('SHUTTING_DOWN', 'engine: shutting down; retry on another node or after the restart');
}

export function clientClosed(): HearthError {
  return new HearthError('CLIENT_CLOSED', 'engine: request aborted by the client');
}
