import { randomUUID } from 'node:crypto';
import type { AtlasDb, SqlRunner } from '../atlas/db/index.js';
import type { FileStore } from '../atlas/files/index.js';
import { describeError, isHearthError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseOptions } from '../models/options.js';
import type { ShardCommitter } from './commit.js';
import { shardFileName } from './commit.js';
import { type DatasetRecord, planDataset, readShard } from './datasets/dataset.js';
import type { EngineFaults } from './faults.js';
import { compileOutputSchema } from './output-schema.js';
import type { HeldTicket, JobQueue, TicketWork } from './queue.js';
import {
  type JobEngine,
  JobFailure,
  type JobInference,
  type RecordOutcome,
  RecordProcessor,
} from './record-processor.js';
import { errorLimit, LIVE_STATES } from './spec.js';
import { type ErrorRow, type JobCore, jobStore, type ShardWork } from './store.js';
import { QueueWake } from './wake.js';

/**
 * The work of a job kind other than 'batch' (knowledge ingestion, src/knowledge): its shards are queued
 * at submit (no plan step), and each runs here with the same claim, lease, heartbeat, retry and cancel
 * as a batch shard. `run` does the work outside any transaction (throw to retry the attempt); the
 * `commit` it returns runs inside the shard's commit transaction, fenced by the lease token, so what it
 * writes is written exactly once. Finalize only marks the job succeeded.
 */
export interface ShardHandler {
  run(job: JobCore, shard: ShardWork, signal: AbortSignal, progress: (done: number) => void): Promise<ShardOutcome>;
}

export interface ShardOutcome {
  /** records done well and their error rows (they show in the job's progress and errors) */
  rows: number;
  errors: ErrorRow[];
  /** tokens the engine processed */
  tokens: number;
  /** writes the shard's results inside the commit transaction */
  commit(tx: SqlRunner): Promise<void>;
}

/** Why a worker stopped a piece of work before it finished. */
type StopReason = 'shutdown' | 'cancelled' | 'lease-lost';

/** The abort reason of a worker's own stops (as opposed to failures). */
class StopWork extends Error {
  constructor(readonly reason: StopReason) {
    super(`work stopped: ${reason}`);
  }
}

/** How the workers of one node behave; durations in ms. */
export interface JobWorkersOptions {
  db: AtlasDb;
  files: FileStore;
  queue: JobQueue;
  committer: ShardCommitter;
  engine: JobEngine;
  inference: JobInference;
  faults: EngineFaults;
  log: Logger;
  /** this node's id (leases, logs, job records) */
  node: string;
  /** tickets (shards, plans, finalizes) this node works on at once (`node.jobs.concurrency`, ≥ 1) */
  concurrency: number;
  /**
   * how often an idle node looks for work no notification announces (chiefly retries whose node
   * stopped before they came due); while it cannot listen, every min(this, 1 s) (see QueueWake)
   */
  pollIntervalMs: number;
  /** the lease length; heartbeats come several times within it */
  leaseMs: number;
  /** attempts per ticket (for messages) */
  maxAttempts: number;
  /** the work of other job kinds, by kind */
  handlers?: ReadonlyMap<string, ShardHandler>;
}

/** The shard a ticket holds, with its live progress (what heartbeats report). */
interface HeldShard {
  index: number;
  token: string;
  done: number;
  failed: number;
  tokens: number;
  /** committed bad records of the job, refreshed by heartbeats (the error budget spans nodes) */
  committedFailed: number;
}

interface Running {
  ticket: HeldTicket;
  controller: AbortController;
  shard: HeldShard | null;
  finished: Promise<void>;
}

const isLive = (state: string | undefined) => state !== undefined && LIVE_STATES.includes(state as never);

function describeWork(work: TicketWork): string {
  return work.kind === 'shard' ? `shard ${work.shard}` : work.kind === 'plan' ? 'planning' : 'finalizing';
}

/**
 * The workers of one node: a loop that takes tickets from the queue while it has free slots, and runs
 * each (plan, shard or finalize) with a heartbeat that renews its lease, reports progress and notices
 * a cancel within seconds. A failure hands the ticket back for a retry with backoff; a failure no
 * retry can fix fails the job; a shutdown hands the work back without counting an attempt.
 */
export class JobWorkers {
  private readonly o: JobWorkersOptions;
  private readonly db: SqlRunner;
  private readonly running = new Map<string, Running>();
  private readonly heartbeatMs: number;
  private readonly wake: QueueWake;
  private loop: Promise<void> | undefined;
  private stopping = false;

  constructor(opts: JobWorkersOptions) {
    this.o = opts;
    this.db = opts.db;
    this.heartbeatMs = Math.max(200, Math.min(opts.leaseMs / 3, 2000));
    // An idle loop must not spin, whatever the configuration says (minPollMs).
    this.wake = new QueueWake({
      source: opts.queue,
      log: opts.log,
      what: 'jobs',
      pollMs: opts.pollIntervalMs,
      minPollMs: 100,
    });
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Looks for work now (a job was just submitted or retried here). */
  notify(): void {
    this.wake.wake();
  }

  /** Stops this node's work on a job at once (it was cancelled or failed). */
  abortJob(jobId: string, reason: StopReason = 'cancelled'): void {
    for (const running of this.running.values()) {
      if (running.ticket.work.jobId === jobId) running.controller.abort(new StopWork(reason));
    }
  }

  /** Stops taking work, hands back what is running (no attempt counted) and waits for it. */
  async close(): Promise<void> {
    this.stopping = true;
    for (const running of this.running.values()) running.controller.abort(new StopWork('shutdown'));
    await this.wake.close();
    await this.loop;
    await Promise.all([...this.running.values()].map((r) => r.finished));
  }

  private async run(): Promise<void> {
    try {
      const reclaimed = await this.o.queue.reclaimOrphans();
      if (reclaimed)
        this.o.log.info({ reclaimed }, 'jobs: work this node held before it restarted goes back to the queue');
    } catch (err) {
      this.o.log.warn(
        { err: describeError(err) },
        'jobs: cannot reclaim work held before a restart; its leases will expire',
      );
    }
    while (!this.stopping) {
      try {
        const free = this.o.concurrency - this.running.size;
        if (free > 0) for (const ticket of await this.o.queue.fetch(free)) this.startTicket(ticket);
        if (this.wake.deadDue()) await this.handleDead();
      } catch (err) {
        this.o.log.warn({ err: describeError(err) }, 'jobs: cannot reach the queue; trying again');
      }
      if (this.stopping) break;
      await this.wake.wait();
    }
  }

  private startTicket(ticket: HeldTicket): void {
    const controller = new AbortController();
    const running: Running = { ticket, controller, shard: null, finished: Promise.resolve() };
    this.running.set(ticket.id, running);
    running.finished = this.handle(running)
      .catch((err: unknown) => this.o.log.error({ err, work: ticket.work }, 'jobs: unexpected error in a worker'))
      .finally(() => {
        this.running.delete(ticket.id);
        this.wake.wake();
      });
  }

  private async handle(running: Running): Promise<void> {
    const { ticket, controller } = running;
    let beating = false;
    const beat = setInterval(() => {
      if (beating || controller.signal.aborted) return;
      beating = true;
      void this.heartbeat(running)
        .catch((err: unknown) => this.o.log.warn({ err: describeError(err) }, 'jobs: heartbeat failed'))
        .finally(() => {
          beating = false;
        });
    }, this.heartbeatMs);
    try {
      const work = ticket.work;
      if (work.kind === 'plan') await this.plan(ticket, controller.signal);
      else if (work.kind === 'shard') await this.shard(running, work.shard, controller.signal);
      else await this.finalize(ticket, controller.signal);
    } catch (err) {
      await this.afterFailure(running, err);
    } finally {
      clearInterval(beat);
    }
  }

  /** Renews the lease, reports shard progress, and stops the work if it is no longer wanted or ours. */
  private async heartbeat(running: Running): Promise<void> {
    const { ticket, controller, shard } = running;
    if (!(await this.o.queue.heartbeat(ticket))) {
      controller.abort(new StopWork('lease-lost'));
      return;
    }
    const job = await jobStore.core(this.db, ticket.work.jobId);
    if (!isLive(job?.state)) {
      controller.abort(new StopWork('cancelled'));
      return;
    }
    if (shard && job) {
      shard.committedFailed = job.records_failed;
      if (!(await jobStore.shardHeartbeat(this.db, ticket.work.jobId, shard.index, shard.token, shard))) {
        controller.abort(new StopWork('lease-lost'));
      }
    }
  }

  private async afterFailure(running: Running, err: unknown): Promise<void> {
    const { ticket, controller } = running;
    const { jobId } = ticket.work;
    const what = describeWork(ticket.work);
    const stop =
      controller.signal.aborted && controller.signal.reason instanceof StopWork
        ? controller.signal.reason.reason
        : undefined;
    if (running.shard && stop !== 'lease-lost') {
      await jobStore.releaseShard(this.db, jobId, running.shard.index, running.shard.token).catch(() => undefined);
    }
    try {
      if (stop === 'shutdown') {
        await this.o.queue.release(ticket);
        await jobStore.event(
          this.db,
          jobId,
          'info',
          this.o.node,
          `${what} handed back: node ${this.o.node} is shutting down`,
        );
      } else if (stop === 'lease-lost') {
        await jobStore.event(
          this.db,
          jobId,
          'warn',
          this.o.node,
          `${what}: node ${this.o.node} lost its lease; another attempt takes over`,
        );
      } else if (stop === 'cancelled') {
        // The cancel (or the job's failure) already closed the ticket.
      } else if (err instanceof JobFailure) {
        await this.failJob(jobId, err.message);
      } else {
        const outcome = await this.o.queue.fail(ticket, err);
        if (outcome === 'lost') return;
        const attempt = ticket.retryCount + 1;
        const message = `${what} failed on ${this.o.node} (attempt ${attempt} of ${ticket.retryLimit + 1}): ${describeError(err)}`;
        this.o.log.warn({ jobId, work: ticket.work, err: describeError(err) }, `jobs: ${message}`);
        if (outcome === 'retry') {
          await jobStore.event(this.db, jobId, 'warn', this.o.node, `${message}; it will be retried`);
        } else {
          await this.failJob(jobId, `${what} failed on every attempt (${attempt}); last error: ${describeError(err)}`);
        }
      }
    } catch (inner) {
      // The database is unreachable: the lease expires and the work is retried.
      this.o.log.warn(
        { err: describeError(inner), jobId },
        'jobs: cannot record the end of an attempt; its lease will expire',
      );
    }
  }

  /** Fails a job for good (no retry can help): closes its tickets and stops its work here. */
  private async failJob(jobId: string, message: string): Promise<void> {
    const failed = await this.o.db.transaction(async (tx) => {
      if (!(await jobStore.setState(tx, jobId, 'failed', { error: message, node: this.o.node }))) return false;
      await this.o.queue.cancelJob(tx, jobId);
      await jobStore.event(tx, jobId, 'error', this.o.node, `job failed: ${message}`);
      return true;
    });
    if (failed) this.abortJob(jobId);
  }

  /** Tickets that used up their attempts (also those whose node died on the last one): their jobs fail. */
  private async handleDead(): Promise<void> {
    for (const dead of await this.o.queue.fetchDead(10)) {
      const { jobId } = dead.work;
      const message = `${describeWork(dead.work)} failed on every attempt (${this.o.maxAttempts}); last error: ${dead.error}`;
      const failed = await this.o.db.transaction(async (tx) => {
        const changed = await jobStore.setState(tx, jobId, 'failed', { error: message });
        if (changed) {
          await this.o.queue.cancelJob(tx, jobId);
          await jobStore.event(tx, jobId, 'error', this.o.node, `job failed: ${message}`);
        }
        await this.o.queue.completeDead(tx, dead);
        return changed;
      });
      if (failed) this.abortJob(jobId);
    }
  }

  /** Completes a ticket whose work is moot (the job is gone, finished, or the work was done before). */
  private async drop(ticket: HeldTicket): Promise<void> {
    await this.o.db.transaction((tx) => this.o.queue.complete(tx, ticket));
  }

  // ---- plan: cut the dataset into shards and queue them ----

  private async plan(ticket: HeldTicket, signal: AbortSignal): Promise<void> {
    const { jobId } = ticket.work;
    const job = await jobStore.core(this.db, jobId);
    if (!job || !isLive(job.state) || (await jobStore.shardCount(this.db, jobId)) > 0) return this.drop(ticket);
    const spec = job.spec;
    let plan: Awaited<ReturnType<typeof planDataset>>;
    try {
      plan = await planDataset(this.o.files, { input: spec.input, format: spec.format }, spec.shard_size);
    } catch (err) {
      if (isHearthError(err, 'ATLAS_FILES_NOT_FOUND')) {
        throw new JobFailure(
          `the dataset ${spec.input} is no longer in the file store: upload it again and retry the job`,
        );
      }
      if (isHearthError(err, 'JOB_INVALID')) throw new JobFailure(err.message);
      throw err;
    }
    signal.throwIfAborted();
    await this.o.db.transaction(async (tx) => {
      const current = await jobStore.core(tx, jobId, true);
      if (current && isLive(current.state) && (await jobStore.shardCount(tx, jobId)) === 0) {
        await jobStore.savePlan(tx, jobId, plan);
        await jobStore.setState(tx, jobId, 'running', { node: this.o.node });
        await this.o.queue.send(
          tx,
          plan.shards.length > 0
            ? plan.shards.map((_, shard) => ({ kind: 'shard' as const, jobId, shard }))
            : [{ kind: 'finalize', jobId }],
        );
        await jobStore.event(
          tx,
          jobId,
          'info',
          this.o.node,
          `planned on ${this.o.node}: ${plan.records} records in ${plan.shards.length} shards of up to ${spec.shard_size}`,
        );
      }
      await this.o.queue.complete(tx, ticket);
    });
    this.notify();
  }

  // ---- shard: run its records through the engine, stage, commit, publish ----

  private async shard(running: Running, index: number, signal: AbortSignal): Promise<void> {
    const { ticket } = running;
    const { jobId } = ticket.work;
    const job = await jobStore.core(this.db, jobId);
    if (!job || !isLive(job.state)) return this.drop(ticket);
    const token = randomUUID();
    const claimed = await this.o.db.transaction(async (tx) => {
      // The job row first, then the shard: every transaction locks in this order, so none deadlock.
      const current = await jobStore.core(tx, jobId, true);
      const shard =
        current && isLive(current.state) ? await jobStore.claimShard(tx, jobId, index, token, this.o.node) : null;
      if (!shard) {
        await this.o.queue.complete(tx, ticket);
        return null;
      }
      await jobStore.setState(tx, jobId, 'running', { node: this.o.node });
      if (shard.attempts > 1) {
        await jobStore.event(
          tx,
          jobId,
          'info',
          this.o.node,
          `shard ${index}: attempt ${shard.attempts} on ${this.o.node}`,
        );
      }
      return shard;
    });
    if (!claimed) return;
    running.shard = { index, token, done: 0, failed: 0, tokens: 0, committedFailed: job.records_failed };
    const held = running.shard;
    const handler = this.o.handlers?.get(job.kind);
    if (handler) return this.handlerShard(running, job, claimed, handler, signal);

    const spec = job.spec;
    const prepared = await this.o.inference
      .prepare(spec.model, parseOptions(spec.options), undefined)
      .catch((err: unknown) => {
        if (isHearthError(err, 'MODEL_NOT_FOUND')) {
          throw new JobFailure(`model "${spec.model}" is no longer in the library: create it again and retry the job`);
        }
        throw err;
      });
    if (job.model_digest && prepared.entry.digest !== job.model_digest) {
      throw new JobFailure(
        `model "${spec.model}" changed since the job was submitted (digest ${job.model_digest.slice(0, 12)} → ${prepared.entry.digest.slice(0, 12)}): submit a new job to use the new model`,
      );
    }
    const processor = new RecordProcessor(
      spec,
      prepared,
      this.o.engine,
      this.o.inference,
      spec.schema ? compileOutputSchema(spec.schema) : undefined,
      this.o.faults,
    );
    const limit = errorLimit(spec.max_errors, job.records_total ?? 0);
    const outcomes: RecordOutcome[] = [];
    const firstErrors: ErrorRow[] = [];
    // Keep the model's parallel sequences full: up to numParallel records in flight.
    await runPool(
      readShard(this.o.files, { input: spec.input, format: spec.format }, job.plan ?? {}, claimed.range),
      Math.max(1, prepared.load.numParallel),
      signal,
      async (record: DatasetRecord, position: number, recordSignal: AbortSignal) => {
        const outcome = await processor.process(record, recordSignal);
        outcomes[position] = outcome;
        if ('ok' in outcome) {
          held.done++;
          held.tokens += outcome.tokens;
          return;
        }
        held.failed++;
        if (firstErrors.length < 3) firstErrors.push(outcome.error);
        if (held.committedFailed + held.failed > limit) {
          throw new JobFailure(tooManyErrors(job, held.committedFailed + held.failed, limit, firstErrors));
        }
      },
    );

    const rows = outcomes.flatMap((o) => ('ok' in o ? [JSON.stringify(o.ok)] : []));
    const errors = outcomes.flatMap((o) => ('error' in o ? [o.error] : []));
    const promptTokens = outcomes.reduce((sum, o) => sum + ('ok' in o ? o.promptTokens : 0), 0);
    const evalTokens = outcomes.reduce((sum, o) => sum + ('ok' in o ? o.tokens : 0), 0);
    const staged = await this.o.committer.stage(job.output, index, token, rows.length ? `${rows.join('\n')}\n` : '');
    const commit = {
      index,
      token,
      stagingKey: staged.key,
      outputKey: `${job.output}/${shardFileName(index)}`,
      sha256: staged.sha256,
      bytes: staged.size,
    };
    const result = { rows: rows.length, errors, promptTokens, evalTokens };
    const outcome = signal.aborted
      ? 'stopped'
      : await this.o.db.transaction(async (tx) => {
          const current = await jobStore.core(tx, jobId, true);
          if (!current || !isLive(current.state)) return 'stopped';
          if (!(await jobStore.commitShard(tx, jobId, commit, result))) return 'stopped';
          const totals = await jobStore.addCommitted(tx, jobId, this.o.node, { ...result, errors: errors.length });
          await this.o.queue.complete(tx, ticket);
          await jobStore.event(
            tx,
            jobId,
            'info',
            this.o.node,
            `shard ${index} committed on ${this.o.node}: ${rows.length} rows, ${errors.length} errors`,
          );
          const limitNow = errorLimit(current.spec.max_errors, totals.records);
          if (totals.failed > limitNow) {
            const message = tooManyErrors(current, totals.failed, limitNow, errors.slice(0, 3));
            await jobStore.setState(tx, jobId, 'failed', { error: message, node: this.o.node });
            await this.o.queue.cancelJob(tx, jobId);
            await jobStore.event(tx, jobId, 'error', this.o.node, `job failed: ${message}`);
            return 'failed';
          }
          if (totals.committed >= totals.total) await this.o.queue.send(tx, [{ kind: 'finalize', jobId }]);
          return 'committed';
        });
    if (outcome === 'stopped') {
      await this.o.committer.discard(staged.key);
      // Whatever stopped it (cancel, lost lease, shutdown) is in the signal, or will be on the next heartbeat.
      throw signal.reason ?? new StopWork('lease-lost');
    }
    running.shard = null;
    if (outcome === 'failed') this.abortJob(jobId);
    try {
      await this.o.committer.publish({ ...commit, rows: rows.length, errorRows: errors.length });
    } catch (err) {
      this.o.log.warn(
        { err: describeError(err), jobId, shard: index },
        'jobs: cannot publish a committed shard yet; finalize will',
      );
    }
  }

  /** A shard of another kind's job: its handler's work, committed with the shard (see ShardHandler). */
  private async handlerShard(
    running: Running,
    job: JobCore,
    shard: ShardWork,
    handler: ShardHandler,
    signal: AbortSignal,
  ): Promise<void> {
    const { ticket } = running;
    const jobId = job.id;
    const held = running.shard!;
    const outcome = await handler.run(job, shard, signal, (done) => {
      held.done = done;
    });
    signal.throwIfAborted();
    const result = { rows: outcome.rows, errors: outcome.errors, promptTokens: outcome.tokens, evalTokens: 0 };
    const committed = await this.o.db.transaction(async (tx) => {
      const current = await jobStore.core(tx, jobId, true);
      if (!current || !isLive(current.state)) return false;
      const fence = { index: shard.index, token: held.token, stagingKey: '', outputKey: '', sha256: '', bytes: 0 };
      if (!(await jobStore.commitShard(tx, jobId, fence, result))) return false;
      await outcome.commit(tx);
      const totals = await jobStore.addCommitted(tx, jobId, this.o.node, { ...result, errors: outcome.errors.length });
      await this.o.queue.complete(tx, ticket);
      await jobStore.event(
        tx,
        jobId,
        outcome.errors.length ? 'warn' : 'info',
        this.o.node,
        `shard ${shard.index} committed on ${this.o.node}: ${outcome.rows} rows${outcome.errors.map((e) => `; ${e.message}`).join('')}`,
      );
      if (totals.committed >= totals.total) await this.o.queue.send(tx, [{ kind: 'finalize', jobId }]);
      return true;
    });
    if (!committed) throw signal.reason ?? new StopWork('lease-lost');
    running.shard = null;
  }

  // ---- finalize: publish everything, write the errors file and the manifest ----

  private async finalize(ticket: HeldTicket, signal: AbortSignal): Promise<void> {
    const { jobId } = ticket.work;
    const job = await jobStore.core(this.db, jobId);
    if (job?.state !== 'running') return this.drop(ticket);
    const manifestSha256 = this.o.handlers?.has(job.kind)
      ? undefined
      : await this.o.committer.finalize(job, { name: job.spec.model, digest: job.model_digest });
    signal.throwIfAborted();
    await this.o.db.transaction(async (tx) => {
      const current = await jobStore.core(tx, jobId, true);
      if (current?.state === 'running') {
        await jobStore.setState(tx, jobId, 'succeeded', {
          ...(manifestSha256 ? { manifestSha256 } : {}),
          node: this.o.node,
        });
        await jobStore.event(
          tx,
          jobId,
          'info',
          this.o.node,
          manifestSha256 ? `succeeded: the output is complete in ${job.output}/` : 'succeeded',
        );
      }
      await this.o.queue.complete(tx, ticket);
    });
  }
}

function tooManyErrors(
  job: Pick<JobCore, 'spec' | 'records_total'>,
  failed: number,
  limit: number,
  examples: ErrorRow[],
): string {
  const shown = examples
    .map((e) => `${e.line !== null ? `line ${e.line}` : `key ${JSON.stringify(e.key)}`}: ${e.message}`)
    .join('; ');
  return (
    `too many bad records: ${failed} of ${job.records_total ?? '?'} failed, more than max_errors ` +
    `${JSON.stringify(job.spec.max_errors)} allows (${limit})${shown ? `; for example ${shown}` : ''}. ` +
    'Fix the dataset, or retry with a higher max_errors'
  );
}

/**
 * Runs `fn` over `items` with at most `limit` in flight, in order of arrival. The first failure stops
 * feeding, aborts the rest (through the signal each call gets) and is rethrown once all have settled.
 */
async function runPool<T>(
  items: AsyncIterable<T>,
  limit: number,
  signal: AbortSignal,
  fn: (item: T, position: number, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const inner = new AbortController();
  const onAbort = () => inner.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const inflight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  let position = 0;
  try {
    for await (const item of items) {
      if (failure || inner.signal.aborted) break;
      const call: Promise<void> = fn(item, position++, inner.signal)
        .catch((err: unknown) => {
          failure ??= { err };
          inner.abort(err);
        })
        .finally(() => inflight.delete(call));
      inflight.add(call);
      if (inflight.size >= limit) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (signal.aborted) throw signal.reason;
  if (failure) throw failure.err;
}
