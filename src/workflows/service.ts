import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { type AtlasDb, jsonForAtlas } from '../atlas/db/index.js';
import type { FileStore } from '../atlas/files/index.js';
import type { Engine } from '../engine/index.js';
import { HearthError } from '../errors.js';
import type { ImageRuntime } from '../images/runtime.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import { OutputCache } from './cache.js';
import { ExecutionInterrupted, executePlan, NodeExecutionError } from './executor.js';
import { type PromptRejection, planPrompt } from './graph.js';
import { builtinNodes } from './nodes/index.js';
import type { NodeRegistry, ObjectInfo } from './registry.js';
import type { NodeUi } from './types.js';

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
}

export interface WorkflowServiceOptions {
  db: AtlasDb;
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

/** A ComfyUI WebSocket frame. */
export interface WorkflowFrame {
  type: string;
  data: Record<string, unknown>;
}

/** Receives frames: `clientId` null = for every client (status), else for the client that submitted the prompt. */
export type FrameListener = (frame: WorkflowFrame, clientId: string | null) => void;

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
export type QueueItem = [number, string, Record<string, unknown>, Record<string, unknown>, string[]];

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

interface PromptRow {
  id: string;
  number: string;
  prompt: Record<string, unknown>;
  extra_data: Record<string, unknown>;
  client_id: string | null;
  state: string;
  node: string | null;
  outputs: Record<string, NodeUi>;
  messages: Array<[string, Record<string, unknown>]>;
  attempts: number;
}

const FINISHED = `state in ('success', 'error', 'interrupted')`;

/**
 * Workflow prompts: validated on submit, queued in the Atlas database, run by whichever node claims
 * them first (FOR UPDATE SKIP LOCKED), with history kept on Atlas. Queue and history survive restarts.
 */
export class WorkflowService {
  readonly registry: NodeRegistry;
  /** the disposable preview area (PreviewImage; `/view?type=temp`) */
  readonly tempDir: string;
  readonly #o: WorkflowServiceOptions;
  readonly #cache: OutputCache;
  readonly #listeners = new Set<FrameListener>();
  #timer: NodeJS.Timeout | undefined;
  #running: { id: string; controller: AbortController; done: Promise<void>; handBack: boolean } | undefined;
  #closed = false;
  #pumping = false;
  #pumpAgain = false;

  private constructor(opts: WorkflowServiceOptions, cache: OutputCache) {
    this.#o = opts;
    this.#cache = cache;
    this.registry = builtinNodes();
    this.tempDir = join(opts.cacheDir, 'workflows', 'temp');
  }

  static async open(opts: WorkflowServiceOptions): Promise<WorkflowService> {
    const cache = await OutputCache.open({
      dir: join(opts.cacheDir, 'workflows', 'outputs'),
      memoryMaxBytes: opts.settings.memoryCacheMaxBytes,
      diskMaxBytes: opts.settings.cacheMaxBytes,
      log: opts.log,
    });
    const service = new WorkflowService(opts, cache);
    // This node restarted: whatever it was running died with it, so it goes back to the queue now
    // rather than after the lease runs out.
    await opts.db.query(
      `update workflow_prompts set state = 'pending', node = null, lease_until = null where state = 'running' and node = $1`,
      [opts.nodeId],
    );
    if (opts.runPrompts !== false) {
      service.#timer = setInterval(() => service.#pump(), opts.settings.pollIntervalMs);
      service.#timer.unref();
      service.#pump();
    }
    return service;
  }

  /** Frames for WebSocket clients; returns an unsubscribe function. */
  subscribe(listener: FrameListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
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
    const rows = await this.#o.db.query<{ number: string }>(
      `insert into workflow_prompts (id, number, prompt, extra_data, client_id, state)
       values ($1, case when $5 then -nextval('workflow_prompt_number') else nextval('workflow_prompt_number') end, $2, $3, $4, 'pending')
       on conflict (id) do nothing returning number`,
      [id, JSON.stringify(body.prompt), JSON.stringify(extra), body.client_id ?? null, body.front === true],
    );
    if (rows.length === 0)
      throw new HearthError('WORKFLOW_INVALID', `prompt_id ${id} is already taken: leave it out to get a fresh one`, {
        status: 409,
      });
    await this.#broadcastStatus();
    this.#pump();
    return { prompt_id: id, number: Number(rows[0]!.number), node_errors: {} };
  }

  /**
   * Fills the combos whose choices live elsewhere: installed checkpoints (image models in the library)
   * and uploaded images (Atlas inputs/), as ComfyUI lists its models and input folder.
   */
  async refreshChoices(): Promise<void> {
    const { images, files } = this.#o;
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

  async queueRemaining(): Promise<number> {
    const [row] = await this.#o.db.query<{ n: string }>(
      `select count(*) as n from workflow_prompts where state in ('pending', 'running')`,
    );
    return Number(row?.n ?? 0);
  }

  /** GET /queue: running and pending prompts, oldest first. */
  async queue(): Promise<{ queue_running: QueueItem[]; queue_pending: QueueItem[] }> {
    const rows = await this.#o.db.query<PromptRow>(
      `select * from workflow_prompts where state in ('pending', 'running') order by number, created_at`,
    );
    return {
      queue_running: rows.filter((r) => r.state === 'running').map((r) => this.#item(r)),
      queue_pending: rows.filter((r) => r.state === 'pending').map((r) => this.#item(r)),
    };
  }

  /** POST /queue {clear} / {delete: [ids]}: removes pending prompts (a running one needs /interrupt). */
  async deleteQueued(ids: string[] | 'all'): Promise<number> {
    const rows =
      ids === 'all'
        ? await this.#o.db.query(`delete from workflow_prompts where state = 'pending' returning id`)
        : await this.#o.db.query(`delete from workflow_prompts where state = 'pending' and id = any($1) returning id`, [
            ids,
          ]);
    await this.#broadcastStatus();
    return rows.length;
  }

  /**
   * POST /interrupt: stops a running prompt at its next node boundary or progress point, on whichever
   * node runs it (the flag is on Atlas; its heartbeat sees it). Without an id: every running prompt.
   */
  async interrupt(promptId?: string): Promise<number> {
    const rows = promptId
      ? await this.#o.db.query<{ id: string }>(
          `update workflow_prompts set interrupt_requested = true where state = 'running' and id = $1 returning id`,
          [promptId],
        )
      : await this.#o.db.query<{ id: string }>(
          `update workflow_prompts set interrupt_requested = true where state = 'running' returning id`,
        );
    if (this.#running && (!promptId || promptId === this.#running.id)) this.#running.controller.abort();
    return rows.length;
  }

  /** GET /history: finished prompts, newest first. */
  async history(opts: { maxItems?: number; offset?: number; id?: string } = {}): Promise<Record<string, HistoryEntry>> {
    const rows = opts.id
      ? await this.#o.db.query<PromptRow>(`select * from workflow_prompts where id = $1 and ${FINISHED}`, [opts.id])
      : await this.#o.db.query<PromptRow>(
          `select * from workflow_prompts where ${FINISHED} order by finished_at desc, number desc limit $1 offset $2`,
          [opts.maxItems ?? 10_000, opts.offset ?? 0],
        );
    const out: Record<string, HistoryEntry> = {};
    for (const r of rows) {
      out[r.id] = {
        prompt: this.#item(r),
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
  async deleteHistory(ids: string[] | 'all'): Promise<number> {
    const rows =
      ids === 'all'
        ? await this.#o.db.query(`delete from workflow_prompts where ${FINISHED} returning id`)
        : await this.#o.db.query(`delete from workflow_prompts where ${FINISHED} and id = any($1) returning id`, [ids]);
    return rows.length;
  }

  /** Saved workflows (the editor's documents), by name. */
  async listSaved(): Promise<Array<{ name: string; updated_at: Date }>> {
    return this.#o.db.query(`select name, updated_at from workflows order by name`);
  }

  async getSaved(name: string): Promise<{ name: string; workflow: unknown; created_at: Date; updated_at: Date }> {
    const [row] = await this.#o.db.query<{ name: string; workflow: unknown; created_at: Date; updated_at: Date }>(
      `select * from workflows where name = $1`,
      [name],
    );
    if (!row)
      throw new HearthError(
        'WORKFLOW_NOT_FOUND',
        `no saved workflow named ${JSON.stringify(name)}: GET /api/workflows lists them`,
      );
    return row;
  }

  async putSaved(name: string, workflow: unknown): Promise<void> {
    if (name.trim() === '' || name.length > 200)
      throw new HearthError('WORKFLOW_INVALID', 'a workflow name is 1 to 200 characters');
    await this.#o.db.query(
      `insert into workflows (name, workflow) values ($1, $2)
       on conflict (name) do update set workflow = excluded.workflow, updated_at = now()`,
      [name, JSON.stringify(workflow)],
    );
  }

  /** Renames a saved workflow in one statement: the old name is gone exactly when the new one exists. */
  async renameSaved(name: string, to: string): Promise<void> {
    if (to.trim() === '' || to.length > 200)
      throw new HearthError('WORKFLOW_INVALID', 'a workflow name is 1 to 200 characters');
    if (to === name) return void (await this.getSaved(name));
    const taken = await this.#o.db.query(`select 1 from workflows where name = $1`, [to]);
    if (taken.length > 0)
      throw new HearthError('WORKFLOW_INVALID', `a workflow named ${JSON.stringify(to)} exists: choose another name`, {
        status: 409,
      });
    const rows = await this.#o.db.query(
      `update workflows set name = $2, updated_at = now() where name = $1 returning name`,
      [name, to],
    );
    if (rows.length === 0)
      throw new HearthError('WORKFLOW_NOT_FOUND', `no saved workflow named ${JSON.stringify(name)}`);
  }

  async deleteSaved(name: string): Promise<void> {
    const rows = await this.#o.db.query(`delete from workflows where name = $1 returning name`, [name]);
    if (rows.length === 0)
      throw new HearthError('WORKFLOW_NOT_FOUND', `no saved workflow named ${JSON.stringify(name)}`);
  }

  /** Stops taking prompts; a prompt running here goes back to the queue for the next node (or the next start). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    const running = this.#running;
    if (running) {
      running.handBack = true;
      running.controller.abort();
      await running.done;
    }
    this.#cache.close();
    this.#listeners.clear();
  }

  #item(r: PromptRow): QueueItem {
    const outputs = Object.keys(r.prompt).filter((id) => {
      const cls = (r.prompt[id] as { class_type?: string } | undefined)?.class_type;
      return cls ? this.registry.get(cls)?.outputNode === true : false;
    });
    return [Number(r.number), r.id, r.prompt, r.extra_data, outputs];
  }

  #emit(frame: WorkflowFrame, clientId: string | null): void {
    for (const l of this.#listeners) {
      try {
        l(frame, clientId);
      } catch (err) {
        this.#o.log.warn({ err }, 'workflow frame listener failed');
      }
    }
  }

  async #broadcastStatus(): Promise<void> {
    if (this.#listeners.size === 0) return;
    const remaining = await this.queueRemaining().catch(() => 0);
    this.#emit({ type: 'status', data: { status: { exec_info: { queue_remaining: remaining } } } }, null);
  }

  /** Takes queued prompts one at a time while there are any. Re-entrant calls just ask for another look. */
  #pump(): void {
    if (this.#closed || this.#o.runPrompts === false) return;
    if (this.#pumping || this.#running) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    void (async () => {
      try {
        do {
          this.#pumpAgain = false;
          const row = await this.#claim();
          if (!row) continue;
          await this.#run(row);
          this.#pumpAgain = true;
        } while (this.#pumpAgain && !this.#closed);
      } catch (err) {
        this.#o.log.warn({ err }, 'workflow queue: claim failed; retrying at the next poll');
      } finally {
        this.#pumping = false;
      }
    })();
  }

  async #claim(): Promise<PromptRow | undefined> {
    const { db, nodeId, settings } = this.#o;
    // A prompt whose node was lost too often fails rather than crash-looping every node.
    await db.query(
      `update workflow_prompts set state = 'error', finished_at = now(), lease_until = null,
         messages = $2::jsonb
       where state = 'running' and lease_until < now() and attempts >= $1`,
      [
        settings.maxAttempts,
        JSON.stringify([
          ['execution_error', { exception_message: `the node running it was lost ${settings.maxAttempts} times` }],
        ]),
      ],
    );
    const [row] = await db.query<PromptRow>(
      `update workflow_prompts set state = 'running', node = $1, attempts = attempts + 1,
         lease_until = now() + $2 * interval '1 millisecond', started_at = coalesce(started_at, now()), interrupt_requested = false
       where id = (select id from workflow_prompts
                   where state = 'pending' or (state = 'running' and lease_until < now())
                   order by number limit 1 for update skip locked)
       returning *`,
      [nodeId, settings.leaseMs],
    );
    return row;
  }

  async #run(row: PromptRow): Promise<void> {
    const controller = new AbortController();
    let finish!: () => void;
    const running = { id: row.id, controller, done: new Promise<void>((r) => (finish = r)), handBack: false };
    this.#running = running;
    const client = row.client_id;
    const messages: Array<[string, Record<string, unknown>]> = [];
    const send = (type: string, data: Record<string, unknown>, keep = false) => {
      const full = { ...data, prompt_id: row.id };
      if (keep) messages.push([type, { ...full, timestamp: Date.now() }]);
      this.#emit({ type, data: keep ? { ...full, timestamp: Date.now() } : full }, client);
    };
    // The closing frame (success, error, interrupted) goes into the history first and out to the
    // client only once that history is on Atlas: a client that reads /history on it finds the entry.
    let closing: WorkflowFrame | undefined;
    const settle = (type: string, data: Record<string, unknown>) => {
      const full = { ...data, prompt_id: row.id, timestamp: Date.now() };
      messages.push([type, full]);
      closing = { type, data: full };
    };
    const heartbeat = setInterval(
      () => void this.#heartbeat(row.id, controller),
      Math.max(50, this.#o.settings.leaseMs / 3),
    );
    let state: 'success' | 'error' | 'interrupted' = 'success';
    let outputs: Record<string, NodeUi> = {};
    const executed: string[] = [];
    try {
      await this.#broadcastStatus();
      await this.refreshChoices();
      const planned = planPrompt(row.prompt, this.registry);
      // Checked at submit; a node type missing on this node (an older build) fails the prompt plainly.
      if (!planned.ok) throw new NodeExecutionError('', '', 'invalid_prompt', planned.rejection.error.message, []);
      const result = await executePlan({
        promptId: row.id,
        prompt: row.prompt,
        extraData: row.extra_data,
        plan: planned.plan,
        cache: this.#cache,
        signal: controller.signal,
        files: this.#o.files,
        engine: this.#o.engine,
        inference: this.#o.inference,
        images: this.#o.images,
        tempDir: this.tempDir,
        log: this.#o.log.child({ prompt: row.id }),
        events: {
          start: () => send('execution_start', {}, true),
          cached: (nodes) => send('execution_cached', { nodes }, true),
          executing: (node) => {
            executed.push(node as string);
            send('executing', { node, display_node: node });
          },
          progress: (node, value, max) => send('progress', { value, max, node }),
          executed: (node, output) => {
            outputs[node] = output;
            send('executed', { node, display_node: node, output });
          },
        },
      });
      outputs = result.outputs;
      settle('execution_success', {});
    } catch (err) {
      if (err instanceof ExecutionInterrupted) {
        state = 'interrupted';
        const node = err.nodeId ? (row.prompt[err.nodeId] as { class_type?: string } | undefined) : undefined;
        if (!running.handBack) {
          settle('execution_interrupted', { node_id: err.nodeId, node_type: node?.class_type ?? null, executed });
        }
      } else {
        state = 'error';
        const e =
          err instanceof NodeExecutionError
            ? err
            : new NodeExecutionError('', '', (err as Error)?.name ?? 'Error', String(err), []);
        settle('execution_error', {
          node_id: e.nodeId,
          node_type: e.nodeType,
          executed,
          exception_message: e.message,
          exception_type: e.exceptionType,
          traceback: e.traceback,
          current_inputs: {},
          current_outputs: {},
        });
      }
    } finally {
      clearInterval(heartbeat);
    }
    try {
      if (running.handBack) {
        // Shutting down mid-run: not the prompt's fault, so it runs again later without counting the attempt.
        await this.#o.db.query(
          `update workflow_prompts set state = 'pending', node = null, lease_until = null, attempts = greatest(attempts - 1, 0)
           where id = $1 and node = $2 and state = 'running'`,
          [row.id, this.#o.nodeId],
        );
      } else {
        await this.#o.db.query(
          `update workflow_prompts set state = $3, outputs = $4, messages = $5, finished_at = now(), lease_until = null
           where id = $1 and node = $2`,
          [row.id, this.#o.nodeId, state, jsonForAtlas(outputs), jsonForAtlas(messages)],
        );
        if (closing) this.#emit(closing, client);
        send('executing', { node: null });
      }
    } catch (err) {
      this.#o.log.error(
        { err, prompt: row.id },
        'could not record a workflow run on Atlas; its lease will expire and it runs again',
      );
    } finally {
      this.#running = undefined;
      finish();
      await this.#broadcastStatus();
    }
  }

  async #heartbeat(id: string, controller: AbortController): Promise<void> {
    try {
      const [row] = await this.#o.db.query<{ interrupt_requested: boolean }>(
        `update workflow_prompts set lease_until = now() + $3 * interval '1 millisecond'
         where id = $1 and node = $2 and state = 'running' returning interrupt_requested`,
        [id, this.#o.nodeId, this.#o.settings.leaseMs],
      );
      // Interrupted from another node, or the prompt was taken away from us: stop.
      if (!row || row.interrupt_requested) controller.abort();
    } catch (err) {
      this.#o.log.warn({ err }, 'workflow lease renewal failed');
    }
  }
}
