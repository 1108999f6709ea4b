import { randomBytes } from 'node:crypto';
import type { AtlasDb, SqlRunner } from '../atlas/db/index.js';
import { type FileStore, validateKey } from '../atlas/files/index.js';
import { suggest } from '../config/schema.js';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseOptions } from '../models/options.js';
import { ShardCommitter } from './commit.js';
import { type DatasetRecord, locateDataset, sampleDataset } from './datasets/dataset.js';
import { type EngineFaultPlan, EngineFaults } from './faults.js';
import { compileOutputSchema } from './output-schema.js';
import { JobQueue } from './queue.js';
import type { JobEngine, JobInference } from './record-processor.js';
import { type BatchRequest, type BatchSpec, defaultMaxErrors, type JobState } from './spec.js';
import { type JobEvent, type JobView, jobStore } from './store.js';
import { fieldValue, templateFields } from './template.js';
import { JobWorkers, type ShardHandler } from './workers.js';

/** How many of a dataset's first records the checks at submit look at. */
const SAMPLE_RECORDS = 20;

/** The job system's settings (config `jobs.*` and `node.jobs.*`); durations in ms. */
export interface JobSettings {
  /** tickets this node works on at once; 0 = an API-only node that runs no work */
  concurrency: number;
  /** records per shard when a job does not say */
  shardSize: number;
  /** attempts per shard (and per plan or finalize), the first included */
  maxAttempts: number;
  /** a lease not renewed for this long expires and its work is retried elsewhere */
  leaseMs: number;
  /** delay before the first retry (doubling after) */
  retryDelayMs: number;
  /** how often expired leases are looked for */
  maintenanceIntervalMs: number;
  /** how often an idle worker asks for work */
  pollIntervalMs: number;
}

export interface JobServiceOptions {
  db: AtlasDb;
  files: FileStore;
  engine: JobEngine;
  inference: JobInference;
  log: Logger;
  /** `atlas.database`: 'embedded' or the PostgreSQL URL (pg-boss opens its own pool to it) */
  database: string;
  /** this node's id */
  node: string;
  /** hearth's version, written into manifests */
  version: string;
  settings: JobSettings;
  /** test hook: engine calls to fail as a lost GPU does (see faults.ts) */
  engineFault?: EngineFaultPlan | undefined;
  /** the work of other job kinds (knowledge ingestion), by kind; see ShardHandler */
  handlers?: ReadonlyMap<string, ShardHandler>;
}

/** A job of another kind whose shards are known at submit (see `JobService.submitPlanned`). */
export interface PlannedJob {
  kind: string;
  /** stored as the job's spec; `model`, `input` and `output` show in job listings (output: unique per live job) */
  spec: { model: string; input: string; output: string } & Record<string, unknown>;
  modelDigest: string;
  /** one per shard: where its work is (the handler reads it) and how many records it holds */
  shards: Array<{ range: Record<string, unknown>; records: number }>;
  /** the first line of the job's log */
  summary: string;
}

/** A page of jobs, newest first; `next` is the `before` of the following page. */
export interface JobPage {
  jobs: JobView[];
  next: string | null;
}

/**
 * Batch jobs: submit (with the checks that refuse a job before it is queued), list, inspect, cancel and
 * retry; and, unless this node is API-only, the workers that run them. State lives in the Atlas
 * database, outputs in the Atlas file store (docs/jobs.md).
 */
export class JobService {
  private readonly o: JobServiceOptions;
  private readonly queue: JobQueue;
  private readonly workers: JobWorkers | null;
  private readonly db: SqlRunner;
  private closed: Promise<void> | undefined;

  private constructor(opts: JobServiceOptions, queue: JobQueue, workers: JobWorkers | null) {
    this.o = opts;
    this.queue = queue;
    this.workers = workers;
    this.db = opts.db;
  }

  /** Opens the queue (creating pg-boss's schema on first use) and starts this node's workers. */
  static async open(opts: JobServiceOptions): Promise<JobService> {
    const s = opts.settings;
    const faults = new EngineFaults(opts.engineFault);
    const queue = await JobQueue.open({
      db: opts.db,
      database: opts.database,
      log: opts.log,
      node: opts.node,
      leaseMs: s.leaseMs,
      maxAttempts: s.maxAttempts,
      retryDelayMs: s.retryDelayMs,
      maintenanceIntervalMs: s.maintenanceIntervalMs,
    });
    const workers =
      s.concurrency > 0
        ? new JobWorkers({
            db: opts.db,
            files: opts.files,
            queue,
            committer: new ShardCommitter(opts.files, opts.db, opts.log, opts.version),
            engine: opts.engine,
            inference: opts.inference,
            faults,
            log: opts.log,
            node: opts.node,
            concurrency: s.concurrency,
            pollIntervalMs: s.pollIntervalMs,
            leaseMs: s.leaseMs,
            maxAttempts: s.maxAttempts,
            ...(opts.handlers ? { handlers: opts.handlers } : {}),
          })
        : null;
    workers?.start();
    opts.log.info(
      { concurrency: s.concurrency, lease: s.leaseMs, maxAttempts: s.maxAttempts },
      workers
        ? `jobs: ${s.concurrency} worker slot(s) on node ${opts.node}`
        : 'jobs: API only (node.jobs.concurrency is 0)',
    );
    return new JobService(opts, queue, workers);
  }

  /**
   * Checks a batch job and queues it. Refused, before anything is queued: an unknown model (or one
   * that cannot do the operation), a missing dataset, a template field none of the first records has,
   * a schema that does not compile, and an output folder that already holds files.
   */
  async submit(request: BatchRequest): Promise<JobView> {
    const o = this.o;
    const operation = request.operation;
    if (operation === 'generate' && !request.template) {
      throw new HearthError(
        'JOB_INVALID',
        'template is required for operation "generate": give a prompt with {{field}} placeholders',
        {
          details: { param: 'template' },
        },
      );
    }
    const options = parseOptions(request.options ?? {});
    const prepared = await o.inference.prepare(request.model, options, undefined);
    const capabilities = await o.inference.capabilities(prepared.entry);
    const needs = operation === 'embed' ? 'embedding' : 'completion';
    if (!capabilities.includes(needs)) {
      throw new HearthError(
        'ENGINE_CAPABILITY',
        `model "${request.model}" cannot do ${operation === 'embed' ? 'embeddings' : 'text generation'}: choose a model with the ${needs} capability`,
        { details: { param: 'model' } },
      );
    }
    const output = request.output.replace(/\/+$/, '');
    validateKey(output);
    const dataset = await locateDataset(o.files, request.input, request.format);
    if (output === dataset.input || output.startsWith(`${dataset.input}/`) || dataset.input.startsWith(`${output}/`)) {
      throw new HearthError(
        'JOB_INVALID',
        `output ${output} overlaps the input ${dataset.input}: write the results to a folder of their own`,
        {
          details: { param: 'output' },
        },
      );
    }
    if (request.schema) compileOutputSchema(request.schema);
    const sample = await sampleDataset(o.files, dataset, SAMPLE_RECORDS);
    checkFieldsInSample(request, dataset.input, sample);
    await this.checkOutputFree(output);

    const spec: BatchSpec = {
      type: 'batch',
      input: dataset.input,
      format: dataset.format,
      model: request.model,
      operation,
      options: request.options ?? {},
      output,
      shard_size: request.shard_size ?? o.settings.shardSize,
      max_errors: request.max_errors ?? defaultMaxErrors(),
      ...(request.key_field !== undefined ? { key_field: request.key_field } : {}),
      ...(request.template !== undefined ? { template: request.template } : {}),
      ...(request.system !== undefined ? { system: request.system } : {}),
      ...(request.schema !== undefined ? { schema: request.schema } : {}),
      ...(request.messages_field !== undefined ? { messages_field: request.messages_field } : {}),
      ...(request.text_field !== undefined ? { text_field: request.text_field } : {}),
    };
    const id = randomBytes(6).toString('hex');
    try {
      await o.db.transaction(async (tx) => {
        await jobStore.insert(tx, { id, spec, modelDigest: prepared.entry.digest, node: o.node });
        await jobStore.event(
          tx,
          id,
          'info',
          o.node,
          `submitted on ${o.node}: ${operation} over ${spec.input} with ${spec.model} → ${output}/`,
        );
        await this.queue.send(tx, [{ kind: 'plan', jobId: id }]);
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw await this.outputTaken(output);
      throw err;
    }
    this.workers?.notify();
    return this.get(id);
  }

  /**
   * Queues a job of another kind whose shards are known now: the job, its shards and one ticket per
   * shard, in one transaction together with whatever `alongside` writes (the records the job is for).
   * Returns the job's id.
   */
  async submitPlanned(job: PlannedJob, alongside?: (tx: SqlRunner, jobId: string) => Promise<void>): Promise<string> {
    const o = this.o;
    const id = randomBytes(6).toString('hex');
    await o.db.transaction(async (tx) => {
      await jobStore.insert(tx, { id, spec: job.spec, modelDigest: job.modelDigest, node: o.node, kind: job.kind });
      await alongside?.(tx, id);
      const records = job.shards.reduce((sum, shard) => sum + shard.records, 0);
      await jobStore.savePlan(tx, id, { format: job.kind, records, shards: job.shards as never });
      await jobStore.event(tx, id, 'info', o.node, `submitted on ${o.node}: ${job.summary}`);
      await this.queue.send(
        tx,
        job.shards.length > 0
          ? job.shards.map((_, shard) => ({ kind: 'shard' as const, jobId: id, shard }))
          : [{ kind: 'finalize', jobId: id }],
      );
    });
    this.workers?.notify();
    return id;
  }

  async get(id: string): Promise<JobView> {
    const view = await jobStore.view(this.db, id);
    if (!view) throw notFound(id);
    return view;
  }

  async list(opts: { states?: readonly JobState[]; limit?: number; before?: string } = {}): Promise<JobPage> {
    const limit = Math.min(Math.max(opts.limit ?? 50, 1), 500);
    const jobs = await jobStore.list(this.db, { ...opts, limit: limit + 1 });
    const page = jobs.slice(0, limit);
    return { jobs: page, next: jobs.length > limit ? (page.at(-1)?.id ?? null) : null };
  }

  /** Stops a queued or running job: its tickets close now, and running work stops within a heartbeat. */
  async cancel(id: string): Promise<JobView> {
    const cancelled = await this.o.db.transaction(async (tx) => {
      if (!(await jobStore.setState(tx, id, 'cancelled', { node: this.o.node }))) return false;
      await this.queue.cancelJob(tx, id);
      await jobStore.event(tx, id, 'info', this.o.node, `cancelled (asked on ${this.o.node})`);
      return true;
    });
    if (!cancelled) throw await this.notLive(id, 'cancel');
    this.workers?.abortJob(id);
    return this.get(id);
  }

  /**
   * Queues a failed or cancelled job again. Committed shards stay done; the rest run again. `maxErrors`
   * replaces the job's bad-record allowance (for a job that failed on it).
   */
  async retry(id: string, opts: { maxErrors?: number | string } = {}): Promise<JobView> {
    const retried = await this.o.db
      .transaction(async (tx) => {
        if (!(await jobStore.requeue(tx, id, opts.maxErrors))) return false;
        await this.queue.cancelJob(tx, id);
        const job = await jobStore.core(tx, id);
        const pending = await jobStore.pendingShards(tx, id);
        await this.queue.send(
          tx,
          job?.shards_total === null || job?.shards_total === undefined
            ? [{ kind: 'plan', jobId: id }]
            : pending.length > 0
              ? pending.map((shard) => ({ kind: 'shard' as const, jobId: id, shard }))
              : [{ kind: 'finalize', jobId: id }],
        );
        await jobStore.event(
          tx,
          id,
          'info',
          this.o.node,
          `retry asked on ${this.o.node}: ${pending.length} shard(s) to run`,
        );
        return true;
      })
      .catch(async (err: unknown) => {
        if ((err as { code?: string }).code === '23505') throw await this.outputTaken((await this.get(id)).output);
        throw err;
      });
    if (!retried) {
      const job = await this.get(id);
      throw new HearthError(
        'JOB_STATE_CONFLICT',
        `job ${id} is ${job.state}: only a failed or cancelled job can be retried`,
        { details: { state: job.state } },
      );
    }
    this.workers?.notify();
    return this.get(id);
  }

  /** The job's log, oldest first, after event `afterId`. */
  async events(id: string, afterId = 0, limit = 500): Promise<JobEvent[]> {
    const events = await jobStore.events(this.db, id, afterId, limit);
    if (events.length === 0) await this.get(id);
    return events;
  }

  /** Hands back running work (no attempt counted), then stops the queue. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.workers?.close();
      await this.queue.close();
    })();
    return this.closed;
  }

  private async checkOutputFree(output: string): Promise<void> {
    const existing = await this.o.files.list(`${output}/`);
    if (existing.length > 0) {
      throw new HearthError(
        'JOB_OUTPUT_EXISTS',
        `output folder ${output}/ already holds ${existing.length} file(s) (${existing[0]!.key}${existing.length > 1 ? ', ...' : ''}): choose another output, or delete them first`,
        { details: { param: 'output' } },
      );
    }
    const [live] = await this.db.query<{ id: string }>(
      `select id from jobs where output = $1 and state in ('queued', 'running')`,
      [output],
    );
    if (live) throw await this.outputTaken(output);
  }

  private async outputTaken(output: string): Promise<HearthError> {
    const [live] = await this.db.query<{ id: string }>(
      `select id from jobs where output = $1 and state in ('queued', 'running')`,
      [output],
    );
    return new HearthError(
      'JOB_OUTPUT_EXISTS',
      `output folder ${output}/ is being written by job ${live?.id ?? '(another job)'}: choose another output, or cancel that job`,
      { details: { param: 'output', job: live?.id } },
    );
  }

  private async notLive(id: string, verb: string): Promise<HearthError> {
    const job = await this.get(id);
    return new HearthError('JOB_STATE_CONFLICT', `job ${id} already ${job.state}: there is nothing to ${verb}`, {
      details: { state: job.state },
    });
  }
}

function notFound(id: string): HearthError {
  return new HearthError('JOB_NOT_FOUND', [JSON.stringify(id)], {
    details: { id },
  });
}

/**
 * Refuses a job whose fields none of the first records has (a typo, or the wrong dataset). Fields some
 * records lack are the records' problem: they become error rows.
 */
function checkFieldsInSample(request: BatchRequest, input: string, sample: DatasetRecord[]): void {
  const readable = sample.filter((r) => r.fields);
  if (sample.length === 0) {
    throw new HearthError('JOB_INVALID', `input ${input} has no records`, { details: { param: 'input' } });
  }
  if (readable.length === 0) {
    throw new HearthError(
      'JOB_INVALID',
      `none of the first ${sample.length} records of ${input} can be read (${sample[0]?.error ?? 'unknown format'}): check the file and its format`,
      { details: { param: 'input' } },
    );
  }
  const wanted: Array<{ field: string; param: string }> = [];
  if (request.operation === 'generate')
    for (const field of templateFields(request.template ?? '')) wanted.push({ field, param: 'template' });
  if (request.operation === 'chat')
    wanted.push({ field: request.messages_field ?? 'messages', param: 'messages_field' });
  if (request.operation === 'embed') wanted.push({ field: request.text_field ?? 'text', param: 'text_field' });
  if (request.key_field) wanted.push({ field: request.key_field, param: 'key_field' });
  const known = new Set(readable.flatMap((r) => Object.keys(r.fields!)));
  for (const { field, param } of wanted) {
    if (readable.some((r) => fieldValue(r.fields!, field) !== undefined)) continue;
    throw new HearthError(
      'JOB_TEMPLATE_FIELD_MISSING',
      [param, field, readable.length, input, suggest(field, known), [...known].slice(0, 20).join(', ')],
      { details: { param, field } },
    );
  }
}
