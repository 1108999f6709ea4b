import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { AtlasDb } from '../atlas/db/index.js';
import type { FileStore } from '../atlas/files/index.js';
import type { Engine } from '../engine/index.js';
import { HearthError } from '../errors.js';
import type { ImageRuntime } from '../images/runtime.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import { OutputCache } from './cache.js';
import { type FrameListener, WorkflowEvents } from './events.js';
import { type PromptRejection, planPrompt } from './graph.js';
import { builtinNodes } from './nodes/index.js';
import { openPromptQueue, type PromptQueue } from './queue.js';
import type { NodeRegistry, ObjectInfo } from './registry.js';
import { PromptRunner, ticketFor } from './runner.js';
import { type SavedWorkflow, savedWorkflows } from './saved.js';
import { type PromptRow, promptStore } from './store.js';
import type { NodeUi, Prompt } from './types.js';

export type { FrameListener, WorkflowFrame } from './events.js';

export interface WorkflowSettings {
  /** bytes of node outputs kept on the node's disk (workflows.cacheMaxBytes) */
  cacheMaxBytes: number;
  /** bytes of node outputs kept in memory (workflows.memoryCacheMaxBytes) */
  memoryCacheMaxBytes: number;
  /** ms between looks for queued prompts when idle */
  pollIntervalMs: number;
  /** ms a running prompt's lease lasts without a heartbeat */
  leaseMs: number;
  /** runs of a prompt before node loss marks it failed */
  maxAttempts: number;
  /** ms between looks for expired leases (one node per interval); default min(lease, 15 s) */
  maintenanceIntervalMs?: number;
}

export interface WorkflowServiceOptions {
  db: AtlasDb;
  /** `atlas.database` ('embedded' or the PostgreSQL URL): the prompt queue (pg-boss) opens on it */
  database: string;
  files: FileStore;
  engine: Engine;
  inference: InferencePlanner;
  images: ImageRuntime;
  /** node.cacheDir: the output cache and the preview temp area go under `workflows/` there */
  cacheDir: string;
  /** this node's id: who holds a running prompt's lease */
  nodeId: string;
  log: Logger;
  settings: WorkflowSettings;
  /** false: this node takes no prompts (API only); default true */
  runPrompts?: boolean;
}

/** POST /prompt's body (ComfyUI). */
export interface PromptSubmission {
  prompt: unknown;
  client_id?: string;
  prompt_id?: string;
  front?: boolean;
  extra_data?: Record<string, unknown>;
}

/** The prompt was invalid: the body is ComfyUI's 400 `{error, node_errors}`, which `rejection` holds as ComfyUI sends it. */
export class PromptRejected extends HearthError<'WORKFLOW_INVALID'> {
  override readonly name = 'PromptRejected';
  constructor(readonly rejection: PromptRejection) {
    super('WORKFLOW_INVALID', rejection.error.message, { details: { node_errors: rejection.node_errors } });
  }
}

/** ComfyUI's queue item: `[number, prompt_id, prompt, extra_data, outputs_to_execute]`. */
export type QueueItem = [number, string, Prompt, Record<string, unknown>, string[]];

export interface HistoryEntry {
  prompt: QueueItem;
  outputs: Record<string, NodeUi>;
  status: {
    status_str: 'success' | 'error';
    completed: boolean;
    messages: Array<[string, Record<string, unknown>]>;
    /** hearth's addition: the id (`node.id`) of the node that ran the prompt last, when several share one Atlas */
    node: string | null;
  };
  meta: Record<string, { node_id: string; display_node: string }>;
}

/**
 * Workflow prompts (docs/workflows.md): validated on submit, recorded on Atlas (store.ts) with a ticket
 * on the jobs' lease queue (queue.ts), run by whichever node takes the ticket (runner.ts), with frames
 * to WebSocket clients (events.ts). Queue and history survive restarts and are shared by every node.
 */
export class WorkflowService {
  readonly registry: NodeRegistry;
  /** the disposable preview area (PreviewImage; `/view?type=temp`) */
  readonly tempDir: string;
  private readonly o: WorkflowServiceOptions;
  private readonly cache: OutputCache;
  private readonly _queue: PromptQueue;
  private readonly events: WorkflowEvents;
  private runner: PromptRunner | undefined;

  private constructor(opts: WorkflowServiceOptions, cache: OutputCache, queue: PromptQueue) {
    this.o = opts;
    this.cache = cache;
    this._queue = queue;
    this.registry = builtinNodes();
    this.tempDir = join(opts.cacheDir, 'workflows', 'temp');
    this.events = new WorkflowEvents(opts.log, () => this.queueRemaining());
  }

  static async open(opts: WorkflowServiceOptions): Promise<WorkflowService> {
    const { settings } = opts;
    const queue = await openPromptQueue({
      db: opts.db,
      database: opts.database,
      log: opts.log,
      node: opts.nodeId,
      leaseMs: settings.leaseMs,
      maxAttempts: settings.maxAttempts,
      maintenanceIntervalMs: settings.maintenanceIntervalMs ?? Math.min(settings.leaseMs, 15_000),
    });
    let cache: OutputCache;
    try {
      cache = await OutputCache.open({
        dir: join(opts.cacheDir, 'workflows', 'outputs'),
        memoryMaxBytes: settings.memoryCacheMaxBytes,
        diskMaxBytes: settings.cacheMaxBytes,
        log: opts.log,
      });
    } catch (err) {
      await queue.close();
      throw err;
    }
    const service = new WorkflowService(opts, cache, queue);
    if (opts.runPrompts !== false) {
      service.runner = new PromptRunner({
        db: opts.db,
        queue,
        events: service.events,
        registry: service.registry,
        refreshChoices: () => service.refreshChoices(),
        cache,
        tempDir: service.tempDir,
        files: opts.files,
        engine: opts.engine,
        inference: opts.inference,
        images: opts.images,
        log: opts.log,
        node: opts.nodeId,
        pollIntervalMs: settings.pollIntervalMs,
        leaseMs: settings.leaseMs,
        maxAttempts: settings.maxAttempts,
      });
      service.runner.start();
    }
    return service;
  }

  /** Frames for WebSocket clients; returns an unsubscribe function. */
  subscribe(listener: FrameListener): () => void {
    return this.events.subscribe(listener);
  }

  /** Validates and queues a prompt. Throws PromptRejected (400 with node_errors) and queues nothing if it is invalid. */
  async submit(
    body: PromptSubmission,
  ): Promise<{ prompt_id: string; number: number; node_errors: Record<string, never> }> {
    await this.refreshChoices();
    const planned = planPrompt(body.prompt, this.registry);
    if (!planned.ok) throw new PromptRejected(planned.rejection);
    const id = body.prompt_id ?? randomUUID();
    if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
      throw new HearthError('WORKFLOW_INVALID', 'prompt_id must be a string of 1 to 200 characters');
    }
    const extra = { ...(body.extra_data ?? {}), ...(body.client_id ? { client_id: body.client_id } : {}) };
    const ticket = randomUUID();
    // The record and its ticket exist together or not at all.
    const number = await this.o.db.transaction(async (tx) => {
      const n = await promptStore.insert(tx, {
        id,
        prompt: body.prompt,
        extra,
        clientId: body.client_id ?? null,
        front: body.front === true,
        ticket,
      });
      if (n !== null) await this._queue.send(tx, [ticketFor(id, ticket, n)], [ticket]);
      return n;
    });
    if (number === null)
      throw new HearthError('WORKFLOW_INVALID', `prompt_id ${id} is already taken: leave it out to get a fresh one`, {
        status: 409,
      });
    await this.events.broadcastStatus();
    this.runner?.notify();
    return { prompt_id: id, number, node_errors: {} };
  }

  /**
   * Fills the combos whose choices live elsewhere: installed checkpoints (image models in the library)
   * and uploaded images (Atlas inputs/), as ComfyUI lists its models and input folder.
   */
  async refreshChoices(): Promise<void> {
    const { images, files } = this.o;
    this.registry.setChoices('checkpoints', images ? await images.names() : []);
    const uploads = files ? await files.list('inputs/') : [];
    this.registry.setChoices(
      'inputs',
      uploads.map((f) => f.key.slice('inputs/'.length)).filter((k) => /\.(png|jpe?g|webp|gif|bmp|tiff?)$/i.test(k)),
    );
  }

  /** GET /object_info (or one class), with the current checkpoints and uploads in their combos. */
  async objectInfo(name?: string): Promise<Record<string, ObjectInfo>> {
    await this.refreshChoices();
    return name === undefined ? this.registry.objectInfo() : this.registry.objectInfoOf(name);
  }

  queueRemaining(): Promise<number> {
    return promptStore.remaining(this.o.db);
  }

  /** GET /queue: running and pending prompts, oldest first. */
  async queue(): Promise<{ queue_running: QueueItem[]; queue_pending: QueueItem[] }> {
    const rows = await promptStore.live(this.o.db);
    return {
      queue_running: rows.filter((r) => r.state === 'running').map((r) => this.item(r)),
      queue_pending: rows.filter((r) => r.state === 'pending').map((r) => this.item(r)),
    };
  }

  /** POST /queue {clear} / {delete: [ids]}: removes pending prompts (a running one needs /interrupt). */
  async deleteQueued(ids: string[] | 'all'): Promise<number> {
    const deleted = await this.o.db.transaction(async (tx) => {
      const gone = await promptStore.deletePending(tx, ids);
      for (const id of gone) await this._queue.cancelWhere(tx, 'promptId', id);
      return gone;
    });
    await this.events.broadcastStatus();
    return deleted.length;
  }

  /**
   * POST /interrupt: stops a running prompt at its next node boundary or progress point, on whichever
   * node runs it (the flag is on Atlas; its heartbeat sees it). Without an id: every running prompt.
   */
  async interrupt(promptId?: string): Promise<number> {
    const n = await promptStore.requestInterrupt(this.o.db, promptId);
    this.runner?.interruptHere(promptId);
    return n;
  }

  /** GET /history: finished prompts, newest first. */
  async history(opts: { maxItems?: number; offset?: number; id?: string } = {}): Promise<Record<string, HistoryEntry>> {
    const out: Record<string, HistoryEntry> = {};
    for (const r of await promptStore.finished(this.o.db, opts)) {
      out[r.id] = {
        prompt: this.item(r),
        outputs: r.outputs,
        status: {
          status_str: r.state === 'success' ? 'success' : 'error',
          completed: r.state === 'success',
          messages: r.messages,
          node: r.node,
        },
        meta: Object.fromEntries(Object.keys(r.outputs).map((n) => [n, { node_id: n, display_node: n }])),
      };
    }
    return out;
  }

  /** POST /history {clear} / {delete: [ids]}: forgets finished prompts (their saved files stay on Atlas). */
  deleteHistory(ids: string[] | 'all'): Promise<number> {
    return promptStore.deleteFinished(this.o.db, ids);
  }

  /** Saved workflows (the editor's documents), by name. */
  listSaved(): Promise<Array<{ name: string; updated_at: Date }>> {
    return savedWorkflows.list(this.o.db);
  }

  getSaved(name: string): Promise<SavedWorkflow> {
    return savedWorkflows.get(this.o.db, name);
  }

  putSaved(name: string, workflow: unknown): Promise<void> {
    return savedWorkflows.put(this.o.db, name, workflow);
  }

  /** Renames a saved workflow in one statement: the old name is gone exactly when the new one exists. */
  renameSaved(name: string, to: string): Promise<void> {
    return savedWorkflows.rename(this.o.db, name, to);
  }

  deleteSaved(name: string): Promise<void> {
    return savedWorkflows.delete(this.o.db, name);
  }

  /** Stops taking prompts; a prompt running here goes back to the queue for the next node (or the next start). */
  async close(): Promise<void> {
    await this.runner?.close();
    await this._queue.close();
    this.cache.close();
    this.events.clear();
  }

  private item(r: PromptRow): QueueItem {
    const outputs = Object.keys(r.prompt).filter((id) => {
      const cls = (r.prompt[id] as { class_type?: string } | undefined)?.class_type;
      return cls ? this.registry.get(cls)?.outputNode === true : false;
    });
    // Stored only after planPrompt accepted it: a map of nodes with their class and inputs.
    return [Number(r.number), r.id, r.prompt as Prompt, r.extra_data, outputs];
  }
}
