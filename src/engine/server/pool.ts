import type { Logger } from 'pino';
import { describeError, HearthError, isHearthError } from '../../errors.js';
import { formatBytes } from '../../units.js';
import type { AttentionSettings } from '../attention.js';
import type { MemoryBudget } from '../budget.js';
import { ChangeSignal } from '../changes.js';
import type { EngineObserver } from '../observer.js';
import { effectiveLoadOptions, instanceKey, type ModelFacts } from '../options.js';
import { clientClosed, shuttingDown, unloadReason } from '../scheduler.js';
import type { LoadedModel, LoadOptions, ModelSpec } from '../types.js';
import { type ServerMode, serverArgs } from './flags.js';
import { LlamaServerProcess } from './process.js';

/** What the pool needs to know about a GGUF before starting a server for it (from its metadata). */
export interface ServerModelFacts {
  /** bytes the instance is estimated to hold (weights + KV cache + a vision projector) in the budgeted memory */
  bytes: number;
  /** false for embedding models and rerankers */
  generates: boolean;
  /** an embedding model's GGUF names no pooling type: use mean pooling */
  needsPooling: boolean;
  /** a reranker (rank pooling and a classifier head) */
  reranks: boolean;
  /** flash attention and the KV cache type this model runs with (f16 where its heads cannot be quantized) */
  attention: AttentionSettings;
}

export interface ServerPoolOptions {
  /** the llama-server executable and the folder of its shared libraries */
  binary: string;
  libDir?: string;
  /** the folder ggml loads its backend libraries from (see ServerBinary.backendDir) */
  backendDir?: string;
  maxLoadedModels: number;
  maxQueue: number;
  memoryBudget: number;
  loadWaitMs: number;
  /** start, model load and first /health 200 */
  readyTimeoutMs: number;
  /** reads the GGUF's facts (memory estimate for these load options and the projector, if any; trained context) */
  facts: (path: string, load: LoadOptions, mode: ServerMode, projectorPath?: string) => Promise<ServerModelFacts>;
  /** what decides a model's effective options (the in-process Scheduler's cache: read once a blob) */
  modelFacts: (spec: ModelSpec) => Promise<ModelFacts>;
  log: Logger;
  observer?: EngineObserver;
  /** told of each crash of a server process (the restarts metric) */
  onCrash?: (model: string) => void;
  /** the node's memory budget shared with image models (budget.ts); without it, this pool's own */
  budget?: MemoryBudget;
}

/** One running llama-server for one model instance (model + load options + mode). */
export class ServerInstance {
  state: 'ready' | 'unloading' | 'crashed' = 'ready';
  active = 0;
  lastUsed = Date.now();
  keepAliveMs = 0;
  expiresAt: Date | null = null;
  unloadWhenIdle = false;
  expiry: NodeJS.Timeout | null = null;

  constructor(
    readonly key: string,
    readonly spec: Pick<ModelSpec, 'name' | 'digest' | 'size'>,
    readonly load: LoadOptions,
    readonly mode: ServerMode,
    readonly slots: number,
    readonly bytes: number,
    readonly proc: LlamaServerProcess,
    private readonly file: { release(): void },
  ) {}

  releaseFile(): void {
    this.file.release();
  }
}

export interface ServerLease {
  readonly instance: ServerInstance;
  readonly loadDurationNs: number;
  release(): void;
}

interface Waiter {
  key: string;
  spec: ModelSpec;
  load: LoadOptions;
  mode: ServerMode;
  keepAliveMs: number;
  signal: AbortSignal | undefined;
  loadDurationNs: number;
  resolve(lease: ServerLease): void;
  reject(err: unknown): void;
}

const CRASH_WINDOW_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;

/**
 * The server engine's scheduler: one llama-server process per instance, with
 * hearth's rules (the in-process Scheduler's): a bounded queue (QUEUE_FULL),
 * loads one at a time within maxLoadedModels and the memory budget, idle
 * instances evicted least recently used first, keep-alive. A process that
 * exits while serving is dropped (its requests fail); the next request starts
 * a new one, after a back-off when it keeps crashing.
 */
export class ServerPool {
  private readonly instances = new Map<string, ServerInstance>();
  private readonly loads = new Map<string, Promise<void>>();
  private loadChain: Promise<unknown> = Promise.resolve();
  private readonly waiters: Waiter[] = [];
  private readonly changes = new ChangeSignal();
  private readonly crashes = new Map<string, number[]>();
  private readonly stopping = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly opts: ServerPoolOptions) {
    opts.budget?.addSource(() =>
      [...this.instances.values()].map((i) => ({
        name: i.spec.name,
        kind: 'llm' as const,
        bytes: i.bytes,
        lastUsed: i.lastUsed,
        busy: () => i.active > 0 || i.state !== 'ready',
        evict: (reason: string) => this.stop(i, reason),
      })),
    );
  }

  queueDepth(): number {
    return this.waiters.length;
  }

  /** Instances are keyed by the options they really run with (effectiveLoadOptions; one slot for embeddings). */
  async acquire(req: Omit<Waiter, 'key' | 'loadDurationNs' | 'resolve' | 'reject'>): Promise<ServerLease> {
    const facts = await this.opts.modelFacts(req.spec);
    const effective = effectiveLoadOptions(req.load, facts);
    if (req.mode !== 'generate') effective.numParallel = 1;
    return this.acquireKeyed({ ...req, load: effective });
  }

  private acquireKeyed(req: Omit<Waiter, 'key' | 'loadDurationNs' | 'resolve' | 'reject'>): Promise<ServerLease> {
    if (this.closed) return Promise.reject(shuttingDown());
    if (req.signal?.aborted) return Promise.reject(clientClosed());
    // the projector is a start-up flag (--mmproj) too: a model given one later is a different instance
    const projector = req.spec.projector && req.mode === 'generate' ? `|mmproj=${req.spec.projector.digest}` : '';
    const key = `${instanceKey(req.spec.digest, req.load)}|mode=${req.mode}${projector}`;
    const instance = this.instances.get(key);
    if (instance && !this.waiters.some((w) => w.key === key)) {
      const lease = this.tryGrant(instance, req, 0);
      if (lease) return Promise.resolve(lease);
    }
    if (this.waiters.length >= this.opts.maxQueue) {
      return Promise.reject(new HearthError('QUEUE_FULL', [this.opts.maxQueue]));
    }
    return new Promise<ServerLease>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        const reason: unknown = req.signal?.reason;
        reject(isHearthError(reason) ? reason : clientClosed());
        this.changes.notify();
      };
      const waiter: Waiter = {
        ...req,
        key,
        loadDurationNs: 0,
        resolve: (lease) => {
          req.signal?.removeEventListener('abort', onAbort);
          resolve(lease);
        },
        reject: (err) => {
          req.signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  loaded(): LoadedModel[] {
    return [...this.instances.values()]
      .filter((i) => i.state === 'ready')
      .map((i) => ({
        name: i.spec.name,
        digest: i.spec.digest,
        size: i.bytes,
        sizeVram: 0,
        contextLength: i.load.numCtx,
        expiresAt: i.keepAliveMs < 0 ? null : i.active > 0 ? new Date(Date.now() + i.keepAliveMs) : i.expiresAt,
        load: { ...i.load },
        activeSequences: i.active,
        parallel: i.slots,
      }));
  }

  /** Kills every instance of a model: idle ones now, busy ones when their requests end. */
  async unload(digest: string): Promise<boolean> {
    const matching = [...this.instances.values()].filter((i) => i.spec.digest === digest);
    await Promise.all(
      matching.map((i) => {
        if (i.active === 0) return this.stop(i, 'unload requested');
        i.unloadWhenIdle = true;
        return undefined;
      }),
    );
    return matching.length > 0;
  }

  /** The processes of running instances (tests kill one to check the crash path). */
  pids(): number[] {
    return [...this.instances.values()].map((i) => i.proc.pid);
  }

  async close(graceMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(shuttingDown());
    this.changes.notify();
    await Promise.allSettled([...this.loads.values()]);
    const deadline = Date.now() + graceMs;
    while ([...this.instances.values()].some((i) => i.active > 0) && Date.now() < deadline) {
      await this.changes.wait(deadline - Date.now());
    }
    await Promise.allSettled([...this.instances.values()].map((i) => this.stop(i, 'engine closing')));
    await Promise.allSettled([...this.stopping]);
  }

  // ---- granting ----

  private tryGrant(
    instance: ServerInstance,
    req: { keepAliveMs: number; spec: ModelSpec },
    loadDurationNs: number,
  ): ServerLease | null {
    if (instance.state !== 'ready' || instance.active >= instance.slots) return null;
    instance.active++;
    instance.keepAliveMs = req.keepAliveMs;
    instance.lastUsed = Date.now();
    if (instance.expiry) clearTimeout(instance.expiry);
    instance.expiry = null;
    let released = false;
    return {
      instance,
      loadDurationNs,
      release: () => {
        if (released) return;
        released = true;
        instance.active--;
        instance.lastUsed = Date.now();
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
        const lease = this.tryGrant(instance, w, w.loadDurationNs);
        if (lease) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(lease);
        }
      } else if (!this.loads.has(w.key) && !this.closed) {
        this.startLoad(w);
      }
    }
  }

  private onIdle(instance: ServerInstance): void {
    if (instance.state !== 'ready' || this.closed) return;
    if (instance.unloadWhenIdle || instance.keepAliveMs === 0) {
      void this.stop(instance, instance.unloadWhenIdle ? 'unload requested' : 'keep-alive 0');
      return;
    }
    if (instance.keepAliveMs < 0) {
      instance.expiresAt = null;
      return;
    }
    const delay = Math.min(instance.keepAliveMs, 2 ** 31 - 1);
    instance.expiresAt = new Date(Date.now() + instance.keepAliveMs);
    instance.expiry = setTimeout(() => {
      instance.expiry = null;
      if (instance.active === 0) void this.stop(instance, 'keep-alive expired');
    }, delay);
    instance.expiry.unref();
  }

  // ---- loading ----

  private startLoad(first: Waiter): void {
    const { key, spec } = first;
    const settled = this.loadChain
      .then(() => this.startInstance(first))
      .then(
        ({ instance, loadDurationNs }) => {
          this.loads.delete(key);
          this.opts.observer?.modelLoaded({ model: spec.name, durationNs: loadDurationNs });
          if (this.closed) {
            void this.stop(instance, 'engine closing');
            return;
          }
          instance.keepAliveMs = first.keepAliveMs;
          this.instances.set(key, instance);
          for (const w of this.waiters) if (w.key === key) w.loadDurationNs = loadDurationNs;
          this.pump();
          if (instance.active === 0) this.onIdle(instance);
          this.changes.notify();
        },
        (err: unknown) => {
          this.loads.delete(key);
          this.opts.observer?.modelLoadFailed({ model: spec.name, code: isHearthError(err) ? err.code : 'INTERNAL' });
          for (const w of [...this.waiters]) {
            if (w.key !== key) continue;
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.reject(err);
          }
          this.pump();
          this.changes.notify();
        },
      );
    this.loads.set(key, settled);
    this.loadChain = settled;
  }

  private async startInstance(first: Waiter): Promise<{ instance: ServerInstance; loadDurationNs: number }> {
    if (this.closed) throw shuttingDown();
    await this.backOff(first);
    const started = process.hrtime.bigint();
    const model = await first.spec.resolveFile();
    let projector: { path: string; release(): void } | undefined;
    const file = {
      path: model.path,
      release: () => {
        model.release();
        projector?.release();
      },
    };
    try {
      if (first.spec.projector && first.mode === 'generate') projector = await first.spec.projector.resolveFile();
      const facts = await this.opts.facts(file.path, first.load, first.mode, projector?.path);
      if (first.mode === 'generate' && !facts.generates) {
        throw new HearthError(
          'ENGINE_CAPABILITY',
          facts.reranks
            ? `model "${first.spec.name}" is a reranker and does not support generate or chat: use it with /api/rerank`
            : `model "${first.spec.name}" is an embedding model and does not support generate or chat: use it with /api/embed`,
        );
      }
      if (first.mode === 'rerank' && !facts.reranks) {
        throw new HearthError(
          'ENGINE_CAPABILITY',
          `model "${first.spec.name}" is not a reranker (its GGUF has no rank pooling and classifier head): rerank with a reranker GGUF such as bge-reranker or Qwen3-Reranker`,
          { details: { param: 'model' } },
        );
      }
      const load = first.load;
      await this.makeRoom(first, facts.bytes);
      const log = this.opts.log.child({ model: first.spec.name });
      const proc = await LlamaServerProcess.start({
        binary: this.opts.binary,
        ...(this.opts.libDir ? { libDir: this.opts.libDir } : {}),
        ...(this.opts.backendDir ? { backendDir: this.opts.backendDir } : {}),
        args: serverArgs({
          modelPath: file.path,
          load,
          mode: first.mode,
          needsPooling: facts.needsPooling,
          ...(projector ? { projectorPath: projector.path } : {}),
          attention: facts.attention,
        }),
        readyTimeoutMs: this.opts.readyTimeoutMs,
        log,
      });
      const slots = load.numParallel;
      const instance = new ServerInstance(first.key, first.spec, load, first.mode, slots, facts.bytes, proc, file);
      proc.onExit((why) => this.onExit(instance, why));
      const loadDurationNs = Number(process.hrtime.bigint() - started);
      this.opts.log.info(
        {
          model: first.spec.name,
          pid: proc.pid,
          mode: first.mode,
          numCtx: load.numCtx,
          parallel: slots,
          threads: load.numThread,
          memory: formatBytes(facts.bytes),
          ms: Math.round(loadDurationNs / 1e6),
        },
        'engine: llama-server started',
      );
      return { instance, loadDurationNs };
    } catch (err) {
      file.release();
      if (isHearthError(err)) throw err;
      throw new HearthError(
        'ENGINE_LOAD_FAILED',
        [`model "${first.spec.name}" failed to load (${describeError(err)})`],
        { cause: err },
      );
    }
  }

  /** A key whose process crashed twice or more in the last minute waits before starting again: 1 s, 2 s, 4 s ... 30 s. */
  private async backOff(first: Waiter): Promise<void> {
    const now = Date.now();
    const recent = (this.crashes.get(first.key) ?? []).filter((t) => now - t < CRASH_WINDOW_MS);
    this.crashes.set(first.key, recent);
    if (recent.length < 2) return;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (recent.length - 2));
    this.opts.log.warn(
      { model: first.spec.name, crashes: recent.length, delayMs: delay },
      `engine: llama-server for "${first.spec.name}" crashed ${recent.length} times in the last minute; waiting ${delay / 1000} s before starting it again`,
    );
    await new Promise((r) => setTimeout(r, delay).unref());
  }

  private onExit(instance: ServerInstance, why: string): void {
    if (instance.state !== 'ready') return;
    instance.state = 'crashed';
    if (instance.expiry) clearTimeout(instance.expiry);
    if (this.instances.get(instance.key) === instance) this.instances.delete(instance.key);
    instance.releaseFile();
    const list = this.crashes.get(instance.key) ?? [];
    list.push(Date.now());
    this.crashes.set(instance.key, list);
    this.opts.log.error(
      { model: instance.spec.name, pid: instance.proc.pid, inFlight: instance.active },
      `engine: llama-server for "${instance.spec.name}" ${why}; its requests fail, the next one starts a new process`,
    );
    this.opts.onCrash?.(instance.spec.name);
    this.opts.observer?.modelUnloaded({ model: instance.spec.name, reason: 'failed' });
    this.pump();
    this.changes.notify();
  }

  private async makeRoom(first: Waiter, bytes: number): Promise<void> {
    const { memoryBudget, maxLoadedModels, loadWaitMs, log } = this.opts;
    if (bytes > memoryBudget) {
      throw new HearthError('ENGINE_OUT_OF_MEMORY', [
        `model "${first.spec.name}" needs ${formatBytes(bytes)} but the engine's memory budget is ${formatBytes(memoryBudget)}: choose a smaller model, num_ctx or num_parallel, or raise the memory budget`,
      ]);
    }
    const deadline = Date.now() + loadWaitMs;
    for (;;) {
      if (this.closed) throw shuttingDown();
      const budget = this.opts.budget;
      // With a shared budget, image models count too, and an idle one may be evicted for this load.
      const used = budget ? budget.used() : [...this.instances.values()].reduce((n, i) => n + i.bytes, 0);
      const fitsCount = this.instances.size < maxLoadedModels;
      if (fitsCount && used + bytes <= memoryBudget) return;
      const shared = fitsCount ? budget?.victim() : undefined;
      if (shared) {
        await budget!.evict(shared, first.spec.name, 'llm');
        continue;
      }
      const victim = [...this.instances.values()]
        .filter((i) => i.active === 0 && i.state === 'ready')
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (victim) {
        log.info({ model: victim.spec.name, for: first.spec.name }, 'engine: evicting an idle model');
        await this.stop(victim, `evicted for ${first.spec.name}`);
        continue;
      }
      if (!this.waiters.some((w) => w.key === first.key)) {
        throw new HearthError(
          'CLIENT_CLOSED',
          `engine: load of "${first.spec.name}" abandoned: nobody waits for it any more`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new HearthError('ENGINE_OUT_OF_MEMORY', [
          `model "${first.spec.name}" needs ${formatBytes(bytes)} and waited ${Math.round(loadWaitMs / 1000)} s for busy models to finish (${formatBytes(used)} of ${formatBytes(memoryBudget)} in use, ${this.instances.size}/${maxLoadedModels} models loaded): retry later or raise the memory budget / inference.maxLoadedModels`,
        ]);
      }
      await this.changes.wait(left);
    }
  }

  private stop(instance: ServerInstance, reason: string): Promise<void> {
    if (instance.state !== 'ready') return Promise.resolve();
    instance.state = 'unloading';
    if (instance.expiry) clearTimeout(instance.expiry);
    if (this.instances.get(instance.key) === instance) this.instances.delete(instance.key);
    const done = (async () => {
      await instance.proc.kill();
      instance.releaseFile();
      this.opts.log.info({ model: instance.spec.name, pid: instance.proc.pid, reason }, 'engine: llama-server stopped');
      this.opts.observer?.modelUnloaded({ model: instance.spec.name, reason: unloadReason(reason) });
    })();
    this.stopping.add(done);
    void done.finally(() => {
      this.stopping.delete(done);
      this.changes.notify();
    });
    return done;
  }
}
