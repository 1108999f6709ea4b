import type { Logger } from 'pino';
import { describeError, HearthError, isHearthError } from '../../errors.js';
import { formatBytes } from '../../units.js';
import type { AttentionSettings } from '../attention.js';
import type { MemoryBudget } from '../budget.js';
import { InstancePool, PooledInstance } from '../instances.js';
import type { EngineObserver } from '../observer.js';
import { effectiveLoadOptions, instanceKey, type ModelFacts } from '../options.js';
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
export class ServerInstance extends PooledInstance {
  constructor(
    readonly key: string,
    readonly spec: Pick<ModelSpec, 'name' | 'digest' | 'size'>,
    readonly load: LoadOptions,
    readonly mode: ServerMode,
    readonly slots: number,
    readonly bytes: number,
    readonly proc: LlamaServerProcess,
    private readonly file: { release(): void },
  ) {
    super();
  }

  releaseFile(): void {
    this.file.release();
  }
}

export interface ServerLease {
  readonly instance: ServerInstance;
  readonly loadDurationNs: number;
  release(): void;
}

export interface ServerRequest {
  spec: ModelSpec;
  load: LoadOptions;
  mode: ServerMode;
  keepAliveMs: number;
  signal: AbortSignal | undefined;
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
  private readonly pool: InstancePool<ServerInstance, ServerRequest, ServerLease, true>;
  private readonly crashes = new Map<string, number[]>();

  constructor(private readonly opts: ServerPoolOptions) {
    // The queue, load chain, keep-alive and eviction are the in-process engine's (InstancePool);
    // a process that exits on its own leaves through `lost` (onExit), not `stop`.
    this.pool = new InstancePool(opts, {
      start: (key, req) => this.startInstance(key, req),
      stop: (instance, reason) => this.stop(instance, reason),
      // a server runs `slots` requests at once (--parallel); the rest wait
      claim: (instance) => (instance.active < instance.slots ? true : undefined),
      unclaim: () => {},
      lease: (instance, _claim, loadDurationNs, release) => ({ instance, loadDurationNs, release: () => release() }),
      tenantBytes: (i) => i.bytes,
      usedBytes: () => [...this.instances.values()].reduce((n, i) => n + i.bytes, 0),
    });
  }

  private get instances(): Map<string, ServerInstance> {
    return this.pool.instances;
  }

  queueDepth(): number {
    return this.pool.queueDepth();
  }

  /** Instances are keyed by the options they really run with (effectiveLoadOptions; one slot for embeddings). */
  async acquire(req: ServerRequest): Promise<ServerLease> {
    const facts = await this.opts.modelFacts(req.spec);
    const effective = effectiveLoadOptions(req.load, facts);
    if (req.mode !== 'generate') effective.numParallel = 1;
    return this.acquireKeyed({ ...req, load: effective });
  }

  private acquireKeyed(req: ServerRequest): Promise<ServerLease> {
    // the projector is a start-up flag (--mmproj) too: a model given one later is a different instance
    const projector = req.spec.projector && req.mode === 'generate' ? `|mmproj=${req.spec.projector.digest}` : '';
    return this.pool.acquire(`${instanceKey(req.spec.digest, req.load)}|mode=${req.mode}${projector}`, req);
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
        expiresAt: i.projectedExpiry(),
        load: { ...i.load },
        activeSequences: i.active,
        parallel: i.slots,
      }));
  }

  /** Kills every instance of a model: idle ones now, busy ones when their requests end. */
  unload(digest: string): Promise<boolean> {
    return this.pool.unload(digest);
  }

  /** The processes of running instances (tests kill one to check the crash path). */
  pids(): number[] {
    return [...this.instances.values()].map((i) => i.proc.pid);
  }

  close(graceMs = 10_000): Promise<void> {
    return this.pool.close(graceMs);
  }

  // ---- loading ----

  private async startInstance(
    key: string,
    first: ServerRequest,
  ): Promise<{ instance: ServerInstance; loadDurationNs: number }> {
    await this.backOff(key, first);
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
      await this.pool.makeRoom(key, first.spec, {
        bytes: facts.bytes,
        describe: formatBytes(facts.bytes),
        strict: true,
      });
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
      const instance = new ServerInstance(key, first.spec, load, first.mode, slots, facts.bytes, proc, file);
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
  private async backOff(key: string, first: ServerRequest): Promise<void> {
    const now = Date.now();
    const recent = (this.crashes.get(key) ?? []).filter((t) => now - t < CRASH_WINDOW_MS);
    this.crashes.set(key, recent);
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
    this.pool.lost(instance);
  }

  /** Kills an instance's process (the pool has taken it out) and releases its files. */
  private async stop(instance: ServerInstance, reason: string): Promise<void> {
    await instance.proc.kill();
    instance.releaseFile();
    this.opts.log.info({ model: instance.spec.name, pid: instance.proc.pid, reason }, 'engine: llama-server stopped');
  }
}
