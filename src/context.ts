import { hostname } from 'node:os';
import { join } from 'node:path';
import { type AtlasDb, openAtlasDb } from './atlas/db/index.js';
import { type FileStore, openWritableFileStore, STALE_TEMPORARY_MS } from './atlas/files/index.js';
import { ChatService } from './chat/index.js';
import { embeddedDbDir, engineDirOf, type HearthConfig } from './config/index.js';
import { Engine } from './engine/index.js';
import { buildInBackground, selectServer } from './engine/server/select.js';
import { HearthError } from './errors.js';
import { imageCounters } from './images/pipeline.js';
import { executionProviders, ImageRuntime } from './images/runtime.js';
import { type EngineFaultPlan, JobService } from './jobs/index.js';
import { KnowledgeService, knowledgeForMessage } from './knowledge/index.js';
import type { Logger } from './log.js';
import { HearthMetrics } from './metrics/index.js';
import { InferencePlanner } from './models/inference.js';
import { ModelLibrary } from './models/library.js';
import { ModelPuller } from './models/pull.js';
import { PullTasks } from './models/pull-tasks.js';
import { NodeCache } from './node/index.js';
import { ResponseStore } from './responses/store.js';
import { HEARTH_VERSION } from './version.js';
import { WorkflowService } from './workflows/index.js';

/**
 * The application context: everything a service needs, passed in rather than
 * reached through module singletons, so a test can run two nodes in one process.
 */
export interface AppContext {
  readonly config: HearthConfig;
  readonly log: Logger;
  readonly version: string;
  /** Authoritative: what a person would be upset to lose lives here. */
  readonly atlas: { readonly db: AtlasDb; readonly files: FileStore };
  /** Disposable: may be wiped at any time; start-up never needs it. */
  readonly node: { readonly id: string; readonly hostname: string; readonly cache: NodeCache };
  /** llama.cpp, one per process */
  readonly engine: Engine;
  /** the model library (manifests and blobs on Atlas) */
  readonly models: ModelLibrary;
  readonly pull: ModelPuller;
  /** pulls as server-side tasks on Atlas (the Models page): they outlive the page that started them */
  readonly pulls: PullTasks;
  /** the one path from an API request to engine options */
  readonly inference: InferencePlanner;
  /** the chat UI's accounts, sessions, conversations and presets (on Atlas) */
  readonly chat: ChatService;
  /** Prometheus metrics of this context (its own registry), served on `metrics` listeners */
  readonly metrics: HearthMetrics;
  /** batch jobs: submit, inspect, cancel, retry; and this node's workers (node.jobs.concurrency) */
  readonly jobs: JobService;
  /** image models on ONNX Runtime (src/images) */
  readonly images: ImageRuntime;
  /** knowledge bases: documents on Atlas, ingestion as jobs, hybrid retrieval */
  readonly knowledge: KnowledgeService;
  /** workflow prompts (ComfyUI API): queue and history on Atlas, run by whichever node claims them */
  readonly workflows: WorkflowService;
  /** stored responses of the OpenAI Responses API (on Atlas) */
  readonly responses: ResponseStore;
  /** Closers run in reverse order by closeContext (services register theirs here). */
  readonly closers: Array<() => Promise<void>>;
}

/** What only tests set: `hearth serve` passes none. */
export interface ContextOptions {
  testHooks?: {
    /** engine calls of this context's job workers to fail as a lost GPU does */
    engineFault?: EngineFaultPlan;
  };
}

export async function openContext(
  config: HearthConfig,
  log: Logger,
  options: ContextOptions = {},
): Promise<AppContext> {
  const files = await openWritableFileStore(config.atlas.files);
  // Writes killed mid-way (kill -9 during an upload) leave temporaries nothing else removes.
  const swept = await files.staleTemporaries(STALE_TEMPORARY_MS, { remove: true });
  if (swept.count > 0) {
    log.info(swept, `atlas.files: removed ${swept.count} temporary file(s) left by interrupted writes`);
  }
  const db = await openAtlasDb({
    database: config.atlas.database,
    embeddedDir: embeddedDbDir(config),
    log: log.child({ component: 'atlas.db' }),
  });
  const closers: Array<() => Promise<void>> = [() => db.close()];
  const metrics = new HearthMetrics({ version: HEARTH_VERSION, nodeId: config.node.id });
  closers.push(async () => metrics.close());
  try {
    const cache = await NodeCache.open({
      dir: config.node.cacheDir,
      maxBytes: config.node.cacheMaxBytes,
      log: log.child({ component: 'node.cache' }),
    });
    closers.push(() => cache.close());
    const engine = await Engine.open({
      gpu: config.node.gpu,
      gpuFallback: config.node.gpuFallback,
      threads: config.node.threads,
      maxLoadedModels: config.inference.maxLoadedModels,
      maxQueue: config.inference.maxQueue,
      numParallel: config.inference.numParallel,
      ...(config.inference.memoryBudget > 0 ? { memoryBudget: config.inference.memoryBudget } : {}),
      observer: metrics.engine,
      onServerCrash: (model) => metrics.engine.serverCrashed(model),
      attention: { flashAttention: config.inference.flashAttention, kvCacheType: config.inference.kvCacheType },
      log: log.child({ component: 'engine' }),
    });
    closers.push(() => engine.close());
    await startServerEngine(engine, config, log.child({ component: 'engine' }), closers);
    const models = new ModelLibrary({ db, files, cache, log: log.child({ component: 'models' }) });
    const inference = new InferencePlanner(models, engine, {
      keepAliveMs: config.inference.keepAlive,
      numCtx: config.inference.numCtx,
      numBatch: config.inference.numBatch,
      numParallel: config.inference.numParallel,
    });
    const knowledge = new KnowledgeService({
      db,
      files,
      engine,
      inference,
      log: log.child({ component: 'knowledge' }),
      cacheDir: join(config.node.cacheDir, 'knowledge'),
      settings: {
        embeddingModel: config.knowledge.embeddingModel,
        chunkTokens: config.knowledge.chunkTokens,
        chunkOverlap: config.knowledge.chunkOverlap,
        maxFileBytes: config.knowledge.maxFileSize,
        topK: config.knowledge.topK,
        template: config.knowledge.template,
        reranker: config.knowledge.reranker,
      },
      observer: metrics.knowledge,
    });
    const chat = await ChatService.open({
      db,
      inference,
      engine,
      log: log.child({ component: 'chat' }),
      nodeId: config.node.id,
      sessionTtlMs: config.ui.sessionTtl,
      generateTitles: config.ui.generateTitles,
      files,
      retrieve: (user, question, attached) =>
        knowledgeForMessage(knowledge, { userId: user.id, admin: user.role === 'admin' }, question, attached),
    });
    closers.push(() => chat.close());
    // Workers start here (every `hearth serve` runs them); closing hands their work back to the queue.
    const jobs = await JobService.open({
      handlers: new Map([['knowledge', knowledge.ingestion]]),
      db,
      files,
      engine,
      inference,
      log: log.child({ component: 'jobs' }),
      database: config.atlas.database,
      node: config.node.id,
      version: HEARTH_VERSION,
      settings: {
        concurrency: config.node.jobs.concurrency,
        shardSize: config.jobs.shardSize,
        maxAttempts: config.jobs.maxAttempts,
        leaseMs: config.jobs.lease,
        retryDelayMs: config.jobs.retryDelay,
        maintenanceIntervalMs: config.jobs.maintenanceInterval,
        pollIntervalMs: config.jobs.pollInterval,
      },
      engineFault: options.testHooks?.engineFault,
    });
    closers.push(() => jobs.close());
    const images = new ImageRuntime(
      models,
      {
        executionProviders: executionProviders(config.images.executionProvider),
        keepAliveMs: config.inference.keepAlive,
        maxLoaded: config.images.maxLoadedModels,
        threads: config.node.threads,
        budget: engine.memory,
      },
      log.child({ component: 'images' }),
    );
    closers.push(() => images.close());
    knowledge.attachJobs(jobs);
    const workflows = await WorkflowService.open({
      db,
      database: config.atlas.database,
      files,
      engine,
      inference,
      images,
      cacheDir: config.node.cacheDir,
      nodeId: config.node.id,
      log: log.child({ component: 'workflows' }),
      settings: {
        cacheMaxBytes: config.workflows.cacheMaxBytes,
        memoryCacheMaxBytes: config.workflows.memoryCacheMaxBytes,
        pollIntervalMs: config.workflows.pollInterval,
        leaseMs: config.workflows.lease,
        maxAttempts: config.workflows.maxAttempts,
      },
    });
    closers.push(() => workflows.close());
    const pull = new ModelPuller({
      library: models,
      // Partial downloads are node-local and disposable; they survive a restart so a pull resumes.
      partialDir: join(config.node.cacheDir, 'partial'),
      log: log.child({ component: 'pull' }),
      ...(process.env['HF_ENDPOINT'] ? { hfEndpoint: process.env['HF_ENDPOINT'] } : {}),
    });
    const pulls = await PullTasks.open({
      db,
      puller: pull,
      nodeId: config.node.id,
      log: log.child({ component: 'pull' }),
    });
    closers.push(() => pulls.close());
    const ctx: AppContext = {
      config,
      log,
      version: HEARTH_VERSION,
      atlas: { db, files },
      node: { id: config.node.id, hostname: hostname(), cache },
      engine,
      models,
      metrics,
      pull,
      pulls,
      inference,
      chat,
      jobs,
      knowledge,
      workflows,
      responses: new ResponseStore({
        db,
        retentionMs: config.inference.responsesRetention,
        nodeId: config.node.id,
      }),
      images,
      closers,
    };
    metrics.watch({
      images: {
        steps: () => imageCounters.steps,
        images: () => imageCounters.images,
        provider: () => images.provider,
        loaded: () => images.loadedNames().length,
      },
      cache,
      atlasDb: db,
      engine: {
        backend: engine.backend,
        loaded: () => engine.loaded(),
        queueDepth: () => engine.queueDepth(),
        vram: () => engine.vram(),
      },
    });
    await registerNode(ctx);
    return ctx;
  } catch (err) {
    await closeAll(closers, log);
    throw err;
  }
}

/**
 * Attaches the llama-server engine when there is one (inference.llamaServer,
 * or a build in node.engineDir); else builds it: in the background with
 * `inference.engine: auto` (in-process serves meanwhile), before serving with `server`.
 */
async function startServerEngine(
  engine: Engine,
  config: HearthConfig,
  log: Logger,
  closers: Array<() => Promise<void>>,
): Promise<void> {
  const engineDir = engineDirOf(config);
  const selection = await selectServer({
    engine: config.inference.engine,
    llamaServer: config.inference.llamaServer,
    engineDir,
    backend: engine.backend,
  });
  log.info(`engine: ${selection.why}`);
  if (selection.warning) log.warn(`engine: ${selection.warning}`);
  if (selection.binary) {
    engine.attachServer(selection.binary);
    return;
  }
  if (!selection.buildNeeded) return;
  const background = buildInBackground({
    engineDir,
    backend: engine.backend,
    log,
    attach: (b) => engine.attachServer(b),
  });
  closers.push(() => background.cancel());
  if (config.inference.engine === 'server') {
    await background.done;
    if (engine.serving().engine !== 'server') {
      throw new HearthError(
        'ENGINE_BUILD_FAILED',
        'engine: inference.engine is server but llama-server could not be built (see the log; `hearth engine build` shows why): set inference.engine to auto to serve in-process meanwhile',
      );
    }
  }
}

export async function closeContext(ctx: AppContext): Promise<void> {
  await closeAll(ctx.closers, ctx.log);
}

async function closeAll(closers: Array<() => Promise<void>>, log: Logger): Promise<void> {
  for (const close of closers.splice(0).reverse()) {
    try {
      await close();
    } catch (err) {
      log.warn({ err }, 'error while closing');
    }
  }
}

/** Nodes sharing one Atlas see each other here (invariant 5: coordination goes through the database). */
async function registerNode(ctx: AppContext): Promise<void> {
  await ctx.atlas.db.query(
    `insert into nodes (id, hostname, version, started_at, last_seen) values ($1, $2, $3, now(), now())
     on conflict (id) do update set hostname = excluded.hostname, version = excluded.version,
       started_at = excluded.started_at, last_seen = excluded.last_seen`,
    [ctx.node.id, ctx.node.hostname, ctx.version],
  );
}
