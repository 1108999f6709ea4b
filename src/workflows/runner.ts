import { randomUUID } from 'node:crypto';
import type { AtlasDb } from '../atlas/db/index.js';
import type { FileStore } from '../atlas/files/index.js';
import type { Engine } from '../engine/index.js';
import { describeError } from '../errors.js';
import type { ImageRuntime } from '../images/runtime.js';
import type { HeldTicket } from '../jobs/queue.js';
import { QUEUE_SCHEMA } from '../jobs/queue.js';
import { QueueWake } from '../jobs/wake.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import type { OutputCache } from './cache.js';
import type { WorkflowEvents, WorkflowFrame } from './events.js';
import { ExecutionInterrupted, executePlan, NodeExecutionError } from './executor.js';
import { planPrompt } from './graph.js';
import { PROMPT_QUEUE, type PromptQueue, type PromptTicket } from './queue.js';
import type { NodeRegistry } from './registry.js';
import { type FinishedState, type PromptRow, promptStore } from './store.js';
import type { NodeUi } from './types.js';

export interface PromptRunnerOptions {
  db: AtlasDb;
  queue: PromptQueue;
  events: WorkflowEvents;
  registry: NodeRegistry;
  /** fills the registry's checkpoint and upload choices before a prompt is planned */
  refreshChoices(): Promise<void>;
  cache: OutputCache;
  tempDir: string;
  files: FileStore;
  engine: Engine;
  inference: InferencePlanner;
  images: ImageRuntime;
  log: Logger;
  node: string;
  /**
   * how often an idle node looks for prompts no notification announces; while it cannot listen,
   * every min(this, 1 s) (see QueueWake)
   */
  pollIntervalMs: number;
  /** the lease length; heartbeats come several times within it */
  leaseMs: number;
  /** runs of a prompt before node loss fails it (for messages) */
  maxAttempts: number;
}

/** Why a run stopped before its prompt finished (an interrupt is a finish: state `interrupted`). */
type Stop = 'shutdown' | 'lease-lost';

interface Running {
  ticket: HeldTicket<PromptTicket>;
  row: PromptRow;
  token: string;
  controller: AbortController;
  stop: Stop | undefined;
  done: Promise<void>;
}

/**
 * The prompt runner of one node: one prompt at a time, on the jobs' lease pattern. It takes a ticket
 * (SKIP LOCKED), claims the prompt's row under a fresh token, runs it with a heartbeat that renews the
 * ticket's lease and notices interrupts and lost leases, and records the end and completes the ticket
 * in one transaction fenced by the token, so a prompt has exactly one recorded end however often nodes
 * die on the way. A node killed mid-prompt: its ticket expires (another node) or is reclaimed when it
 * restarts (the same node), and the prompt runs once more; after `maxAttempts` lost runs it fails.
 */
export class PromptRunner {
  private readonly o: PromptRunnerOptions;
  private readonly heartbeatMs: number;
  private readonly wake: QueueWake;
  private running: Running | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;

  constructor(opts: PromptRunnerOptions) {
    this.o = opts;
    this.heartbeatMs = Math.max(50, Math.min(opts.leaseMs / 3, 2000));
    this.wake = new QueueWake({
      source: opts.queue,
      log: opts.log,
      what: 'workflow queue',
      pollMs: opts.pollIntervalMs,
      minPollMs: 50,
    });
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Looks for a prompt now (one was just queued). */
  notify(): void {
    this.wake.wake();
  }

  /** Stops the prompt running here (`id` or any) at its next node boundary or progress point. */
  interruptHere(id?: string): void {
    const running = this.running;
    if (running && (!id || id === running.row.id)) running.controller.abort();
  }

  /** Stops taking prompts and hands a running one back to the queue (no attempt counted). */
  async close(): Promise<void> {
    this.stopping = true;
    const running = this.running;
    if (running) {
      running.stop = 'shutdown';
      running.controller.abort();
    }
    await this.wake.close();
    await this.loop;
    await running?.done;
  }

  private async run(): Promise<void> {
    await this.recover();
    while (!this.stopping) {
      try {
        if (!this.running) {
          const [ticket] = await this.o.queue.fetch(1);
          if (ticket) await this.take(ticket);
        }
        if (this.wake.deadDue()) await this.handleDead();
      } catch (err) {
        this.o.log.warn({ err: describeError(err) }, 'workflow queue: cannot reach the queue; trying again');
      }
      if (this.stopping) break;
      if (this.running) {
        await this.running.done;
        continue;
      }
      await this.wake.wait();
    }
  }

  /**
   * At start: tickets this node held before it restarted go back to the queue now (their runs died
   * with the process) rather than after their leases; prompts with no open ticket (queued before the
   * upgrade to this queue) get one.
   */
  private async recover(): Promise<void> {
    const { db, queue, log } = this.o;
    try {
      const reclaimed = await queue.reclaimOrphans();
      if (reclaimed) log.info({ reclaimed }, 'workflow queue: prompts this node ran before it restarted run again');
      for (const { id, number } of await promptStore.orphans(db, QUEUE_SCHEMA, PROMPT_QUEUE)) {
        const ticket = randomUUID();
        await db.transaction(async (tx) => {
          const row = await promptStore.get(tx, id);
          if (!row || (row.state !== 'pending' && row.state !== 'running')) return;
          await promptStore.attach(tx, id, ticket);
          await queue.send(tx, [ticketFor(id, ticket, Number(number))], [ticket]);
        });
      }
    } catch (err) {
      log.warn({ err: describeError(err) }, 'workflow queue: cannot recover work from before a restart; leases will');
    }
  }

  /** Claims the ticket's prompt and starts it; a stale ticket (prompt gone, finished, re-ticketed) is dropped. */
  private async take(ticket: HeldTicket<PromptTicket>): Promise<void> {
    const token = randomUUID();
    const row = await promptStore.claim(this.o.db, ticket.work.promptId, ticket.id, this.o.node, token);
    if (!row) {
      await this.o.db.transaction((tx) => this.o.queue.complete(tx, ticket));
      return;
    }
    if (ticket.retryCount > 0) {
      this.o.log.info(
        { prompt: row.id, attempt: ticket.retryCount + 1 },
        'workflow queue: running a prompt again; the node that ran it was lost',
      );
    }
    const running: Running = {
      ticket,
      row,
      token,
      controller: new AbortController(),
      stop: undefined,
      done: Promise.resolve(),
    };
    this.running = running;
    running.done = this.execute(running)
      .catch((err: unknown) => this.o.log.error({ err, prompt: row.id }, 'workflow queue: unexpected runner error'))
      .finally(() => {
        this.running = undefined;
        this.wake.wake();
      });
  }

  private async execute(running: Running): Promise<void> {
    const { row, controller } = running;
    const { events } = this.o;
    const client = row.client_id;
    const messages: Array<[string, Record<string, unknown>]> = [];
    const send = (type: string, data: Record<string, unknown>, keep = false) => {
      const full = { ...data, prompt_id: row.id };
      if (keep) messages.push([type, { ...full, timestamp: Date.now() }]);
      events.emit({ type, data: keep ? { ...full, timestamp: Date.now() } : full }, client);
    };
    // The closing frame (success, error, interrupted) goes into the history first and out to the
    // client only once that history is on Atlas: a client that reads /history on it finds the entry.
    let closing: WorkflowFrame | undefined;
    const settle = (type: string, data: Record<string, unknown>) => {
      const full = { ...data, prompt_id: row.id, timestamp: Date.now() };
      messages.push([type, full]);
      closing = { type, data: full };
    };
    let beating = false;
    const heartbeat = setInterval(() => {
      if (beating || controller.signal.aborted) return;
      beating = true;
      void this.heartbeat(running).finally(() => {
        beating = false;
      });
    }, this.heartbeatMs);
    let state: FinishedState = 'success';
    let outputs: Record<string, NodeUi> = {};
    const executed: string[] = [];
    try {
      await events.broadcastStatus();
      await this.o.refreshChoices();
      const planned = planPrompt(row.prompt, this.o.registry);
      // Checked at submit; a node type missing on this node (an older build) fails the prompt plainly.
      if (!planned.ok) throw new NodeExecutionError('', '', 'invalid_prompt', planned.rejection.error.message, []);
      const result = await executePlan({
        promptId: row.id,
        prompt: row.prompt,
        extraData: row.extra_data,
        plan: planned.plan,
        cache: this.o.cache,
        signal: controller.signal,
        files: this.o.files,
        engine: this.o.engine,
        inference: this.o.inference,
        images: this.o.images,
        tempDir: this.o.tempDir,
        log: this.o.log.child({ prompt: row.id }),
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
        settle('execution_interrupted', { node_id: err.nodeId, node_type: node?.class_type ?? null, executed });
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
    await this.end(running, { state, outputs, messages }, closing);
  }

  /** Records how the run ended: handed back, lost, or finished (history + ticket in one transaction). */
  private async end(
    running: Running,
    end: { state: FinishedState; outputs: Record<string, NodeUi>; messages: unknown[] },
    closing: WorkflowFrame | undefined,
  ): Promise<void> {
    const { db, queue, events, log, node } = this.o;
    const { row, token, ticket } = running;
    try {
      if (running.stop === 'shutdown') {
        // Not the prompt's fault: it runs again (here after a restart, or on another node), uncounted.
        await promptStore.handBack(db, row.id, token);
        await queue.release(ticket);
      } else if (running.stop === 'lease-lost') {
        log.warn({ prompt: row.id }, `workflow queue: node ${node} lost the prompt's lease; another run takes over`);
      } else {
        const recorded = await db.transaction(async (tx) => {
          if (!(await promptStore.finish(tx, row.id, token, end))) return false;
          await queue.complete(tx, ticket);
          return true;
        });
        if (recorded) {
          if (closing) events.emit(closing, row.client_id);
          events.emit({ type: 'executing', data: { node: null, prompt_id: row.id } }, row.client_id);
        }
      }
    } catch (err) {
      log.error(
        { err: describeError(err), prompt: row.id },
        'could not record a workflow run on Atlas; its lease will expire and it runs again',
      );
    } finally {
      await events.broadcastStatus();
    }
  }

  /** Renews the lease; stops the run when it is interrupted (anywhere) or no longer ours. */
  private async heartbeat(running: Running): Promise<void> {
    try {
      const held = await this.o.queue.heartbeat(running.ticket);
      const { ours, interrupt } = await promptStore.look(this.o.db, running.row.id, running.token);
      if (!held || !ours) {
        running.stop = 'lease-lost';
        running.controller.abort();
      } else if (interrupt) {
        running.controller.abort();
      }
    } catch (err) {
      this.o.log.warn({ err: describeError(err) }, 'workflow lease renewal failed');
    }
  }

  /** Tickets that used up their runs (each lost with its node): their prompts fail. */
  private async handleDead(): Promise<void> {
    const { db, queue, maxAttempts } = this.o;
    for (const dead of await queue.fetchDead(10)) {
      const { promptId, ticket } = dead.work;
      const message = `the node running it was lost ${maxAttempts} times (last: ${dead.error})`;
      await db.transaction(async (tx) => {
        await promptStore.failLost(tx, promptId, ticket, message);
        await queue.completeDead(tx, dead);
      });
      this.o.log.warn({ prompt: promptId }, `workflow queue: prompt failed: ${message}`);
    }
  }
}

/** The ticket of a prompt: its own id inside (a dead-lettered copy gets a new id), front ones first. */
export function ticketFor(promptId: string, ticket: string, number: number): PromptTicket {
  return { promptId, ticket, priority: number < 0 ? -number : 0 };
}
