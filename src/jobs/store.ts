import type { SqlRunner } from '../atlas/db/index.js';
import type { ShardRange } from './datasets/dataset.js';
import type { BatchSpec, JobState } from './spec.js';

/** A job as clients see it (GET /api/jobs/:id): the record plus live progress. */
export interface JobView {
  id: string;
  /** 'batch', or the kind of a job another service runs on this machinery ('knowledge': ingestion) */
  type: string;
  state: JobState;
  model: string;
  model_digest: string | null;
  input: string;
  output: string;
  spec: BatchSpec;
  progress: {
    /** records in the dataset; null until planned */
    records_total: number | null;
    /** records finished (ok + failed), committed or in a running shard */
    records_done: number;
    records_ok: number;
    records_failed: number;
    shards_total: number | null;
    shards_committed: number;
    shards_running: number;
    prompt_tokens: number;
    eval_tokens: number;
  };
  attempts: number;
  error: string | null;
  node: string | null;
  /** the manifest's key, once the job succeeded */
  manifest: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

/** One line of a job's log. */
export interface JobEvent {
  id: number;
  at: string;
  level: 'info' | 'warn' | 'error';
  node: string | null;
  message: string;
}

/** The job row fields a worker needs inside its transactions (no timestamps: see sql.ts). */
export interface JobCore {
  id: string;
  /** 'batch', or another service's kind (see ShardHandler in workers.ts) */
  kind: string;
  state: JobState;
  spec: BatchSpec;
  output: string;
  model_digest: string | null;
  plan: { columns?: string[] } | null;
  records_total: number | null;
  shards_total: number | null;
  records_failed: number;
}

/** A shard as a worker holds it. */
export interface ShardWork {
  index: number;
  range: ShardRange;
  records: number;
  attempts: number;
}

/** A committed shard, as finalize and the manifest need it. */
export interface CommittedShard {
  index: number;
  stagingKey: string;
  outputKey: string;
  sha256: string;
  bytes: number;
  rows: number;
  errorRows: number;
}

/** One per-record error row. */
export interface ErrorRow {
  key: string | number | null;
  line: number | null;
  message: string;
}

const num = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value));
const maybeNum = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
const iso = (value: unknown): string | null =>
  value === null || value === undefined
    ? null
    : value instanceof Date
      ? value.toISOString()
      : new Date(String(value)).toISOString();

// A running shard whose holder has not beaten for this long is not counted as running (its node is
// gone; the attempt will be retried), so progress does not count work that will be redone.
const LIVE_HEARTBEAT_SECONDS = 10;

const VIEW_SQL = `
  select j.*, coalesce(s.done, 0) as live_done, coalesce(s.failed, 0) as live_failed,
         coalesce(s.tokens, 0) as live_tokens, coalesce(s.running, 0) as live_running
    from jobs j
    left join lateral (
      select sum(done) as done, sum(failed) as failed, sum(tokens) as tokens, count(*) as running
        from job_shards where job_id = j.id and state = 'running' and heartbeat_at > now() - interval '${LIVE_HEARTBEAT_SECONDS} seconds'
    ) s on true`;

/** The job tables (migration 0005_jobs). Every method takes the runner to use: the database or a transaction. */
export const jobStore = {
  async insert(
    q: SqlRunner,
    job: { id: string; spec: Pick<BatchSpec, 'output'>; modelDigest: string; node: string; kind?: string },
  ): Promise<void> {
    await q.query(
      `insert into jobs (id, kind, spec, state, output, model_digest, node) values ($1, $6, $2::jsonb, 'queued', $3, $4, $5)`,
      [job.id, JSON.stringify(job.spec), job.spec.output, job.modelDigest, job.node, job.kind ?? 'batch'],
    );
  },

  async view(q: SqlRunner, id: string): Promise<JobView | null> {
    const [row] = await q.query(`${VIEW_SQL} where j.id = $1`, [id]);
    return row ? toView(row) : null;
  },

  /** Newest first; `before` is the id of the last job of the previous page. */
  async list(q: SqlRunner, opts: { states?: readonly JobState[]; limit: number; before?: string }): Promise<JobView[]> {
    const params: unknown[] = [opts.limit];
    const where: string[] = [];
    if (opts.states?.length) {
      params.push([...opts.states]);
      where.push(`j.state = any($${params.length}::text[])`);
    }
    if (opts.before) {
      params.push(opts.before);
      where.push(`(j.created_at, j.id) < (select created_at, id from jobs where id = $${params.length})`);
    }
    const rows = await q.query(
      `${VIEW_SQL} ${where.length ? `where ${where.join(' and ')}` : ''} order by j.created_at desc, j.id desc limit $1`,
      params,
    );
    return rows.map(toView);
  },

  async core(q: SqlRunner, id: string, lock = false): Promise<JobCore | null> {
    const [row] = await q.query<Record<string, unknown>>(
      `select id, kind, state, spec, output, model_digest, plan, records_total::int as records_total, shards_total,
              records_failed::int as records_failed
         from jobs where id = $1 ${lock ? 'for update' : ''}`,
      [id],
    );
    if (!row) return null;
    return {
      id: String(row['id']),
      kind: String(row['kind']),
      state: row['state'] as JobState,
      spec: row['spec'] as BatchSpec,
      output: String(row['output']),
      model_digest: (row['model_digest'] as string | null) ?? null,
      plan: (row['plan'] as JobCore['plan']) ?? null,
      records_total: maybeNum(row['records_total']),
      shards_total: maybeNum(row['shards_total']),
      records_failed: num(row['records_failed']),
    };
  },

  async event(
    q: SqlRunner,
    jobId: string,
    level: JobEvent['level'],
    node: string | null,
    message: string,
  ): Promise<void> {
    await q.query(`insert into job_events (job_id, level, node, message) values ($1, $2, $3, $4)`, [
      jobId,
      level,
      node,
      message,
    ]);
  },

  async events(q: SqlRunner, jobId: string, afterId: number, limit: number): Promise<JobEvent[]> {
    const rows = await q.query<Record<string, unknown>>(
      `select id, at, level, node, message from job_events where job_id = $1 and id > $2 order by id limit $3`,
      [jobId, afterId, limit],
    );
    return rows.map((r) => ({
      id: Number(r['id']),
      at: iso(r['at'])!,
      level: r['level'] as JobEvent['level'],
      node: (r['node'] as string | null) ?? null,
      message: String(r['message']),
    }));
  },

  /** Records the plan and inserts the shards (in slices, so a huge dataset makes no huge statement). */
  async savePlan(
    q: SqlRunner,
    jobId: string,
    plan: {
      format: string;
      columns?: string[];
      records: number;
      shards: Array<{ range: ShardRange; records: number }>;
    },
  ): Promise<void> {
    const meta = { format: plan.format, ...(plan.columns ? { columns: plan.columns } : {}) };
    await q.query(
      `update jobs set plan = $2::jsonb, records_total = $3, shards_total = $4, updated_at = now() where id = $1`,
      [jobId, JSON.stringify(meta), plan.records, plan.shards.length],
    );
    for (let i = 0; i < plan.shards.length; i += 2000) {
      const slice = plan.shards
        .slice(i, i + 2000)
        .map((s, j) => ({ index: i + j, range: s.range, records: s.records }));
      await q.query(
        `insert into job_shards (job_id, index, range, records, state)
         select $1, x.index, x.range, x.records, 'pending' from json_to_recordset($2::json) as x(index int, range jsonb, records int)`,
        [jobId, JSON.stringify(slice)],
      );
    }
  },

  async shardCount(q: SqlRunner, jobId: string): Promise<number> {
    const [row] = await q.query<{ n: number }>(`select count(*)::int as n from job_shards where job_id = $1`, [jobId]);
    return num(row?.n);
  },

  /** Takes a shard for one attempt; null when it is committed already (or unknown). */
  async claimShard(q: SqlRunner, jobId: string, index: number, token: string, node: string): Promise<ShardWork | null> {
    const [row] = await q.query<Record<string, unknown>>(
      `update job_shards set state = 'running', lease_token = $3, lease_node = $4, heartbeat_at = now(),
              attempts = attempts + 1, done = 0, failed = 0, tokens = 0
        where job_id = $1 and index = $2 and state <> 'committed'
        returning index, range, records, attempts`,
      [jobId, index, token, node],
    );
    if (!row) return null;
    return {
      index: num(row['index']),
      range: row['range'] as ShardRange,
      records: num(row['records']),
      attempts: num(row['attempts']),
    };
  },

  /** Live progress of a held shard; false when the lease token is no longer this attempt's. */
  async shardHeartbeat(
    q: SqlRunner,
    jobId: string,
    index: number,
    token: string,
    progress: { done: number; failed: number; tokens: number },
  ): Promise<boolean> {
    const rows = await q.query(
      `update job_shards set heartbeat_at = now(), done = $4, failed = $5, tokens = $6
        where job_id = $1 and index = $2 and lease_token = $3 and state = 'running' returning 1`,
      [jobId, index, token, progress.done, progress.failed, progress.tokens],
    );
    return rows.length === 1;
  },

  /** Hands a shard back (its attempt ended without a commit). */
  async releaseShard(q: SqlRunner, jobId: string, index: number, token: string): Promise<void> {
    await q.query(
      `update job_shards set state = 'pending', lease_token = null, lease_node = null, done = 0, failed = 0, tokens = 0
        where job_id = $1 and index = $2 and lease_token = $3 and state = 'running'`,
      [jobId, index, token],
    );
  },

  /**
   * The commit point of a shard: its staged file becomes part of the job. Fenced by the lease token:
   * false (nothing changed) when another attempt took the shard over.
   */
  async commitShard(
    q: SqlRunner,
    jobId: string,
    shard: { index: number; token: string; stagingKey: string; outputKey: string; sha256: string; bytes: number },
    result: { rows: number; errors: ErrorRow[]; promptTokens: number; evalTokens: number },
  ): Promise<boolean> {
    const updated = await q.query(
      `update job_shards set state = 'committed', lease_token = null, staging_key = $4, output_key = $5, sha256 = $6,
              bytes = $7, rows = $8, error_rows = $9, prompt_tokens = $10, eval_tokens = $11, committed_at = now(),
              done = 0, failed = 0, tokens = 0
        where job_id = $1 and index = $2 and lease_token = $3 and state = 'running' returning 1`,
      [
        jobId,
        shard.index,
        shard.token,
        shard.stagingKey,
        shard.outputKey,
        shard.sha256,
        shard.bytes,
        result.rows,
        result.errors.length,
        result.promptTokens,
        result.evalTokens,
      ],
    );
    if (updated.length !== 1) return false;
    for (let i = 0; i < result.errors.length; i += 2000) {
      const slice = result.errors.slice(i, i + 2000).map((e, j) => ({
        seq: i + j,
        key: e.key === null ? null : String(e.key),
        line: e.line,
        message: e.message,
      }));
      await q.query(
        `insert into job_errors (job_id, shard, seq, key, line, message)
         select $1, $2, x.seq, x.key, x.line, x.message from json_to_recordset($3::json) as x(seq int, key text, line int, message text)`,
        [jobId, shard.index, JSON.stringify(slice)],
      );
    }
    return true;
  },

  /** Adds a committed shard to the job's totals; returns where the job stands. */
  async addCommitted(
    q: SqlRunner,
    jobId: string,
    node: string,
    result: { rows: number; errors: number; promptTokens: number; evalTokens: number },
  ): Promise<{ committed: number; total: number; failed: number; records: number }> {
    const [row] = await q.query<Record<string, unknown>>(
      `update jobs set shards_committed = shards_committed + 1, records_ok = records_ok + $3,
              records_failed = records_failed + $4, prompt_tokens = prompt_tokens + $5, eval_tokens = eval_tokens + $6,
              node = $2, updated_at = now()
        where id = $1
        returning shards_committed, shards_total, records_failed::int as failed, records_total::int as records`,
      [jobId, node, result.rows, result.errors, result.promptTokens, result.evalTokens],
    );
    return {
      committed: num(row?.['shards_committed']),
      total: num(row?.['shards_total']),
      failed: num(row?.['failed']),
      records: num(row?.['records']),
    };
  },

  /** Moves a live job to `state` (running, succeeded, failed, cancelled); false if it was not live. */
  async setState(
    q: SqlRunner,
    jobId: string,
    state: JobState,
    extra: { error?: string; node?: string; manifestSha256?: string } = {},
  ): Promise<boolean> {
    const finished = state === 'succeeded' || state === 'failed' || state === 'cancelled';
    const from = state === 'succeeded' ? ['running'] : ['queued', 'running'];
    const rows = await q.query(
      `update jobs set state = $2, updated_at = now(),
              started_at = case when $2 = 'running' then coalesce(started_at, now()) else started_at end,
              finished_at = case when $3 then now() else finished_at end,
              error = coalesce($4, error), node = coalesce($5, node), manifest_sha256 = coalesce($6, manifest_sha256)
        where id = $1 and state = any($7::text[]) returning 1`,
      [jobId, state, finished, extra.error ?? null, extra.node ?? null, extra.manifestSha256 ?? null, from],
    );
    return rows.length === 1;
  },

  /** A finished (failed or cancelled) job back to queued, uncommitted shards back to pending. */
  async requeue(q: SqlRunner, jobId: string, maxErrors: number | string | undefined): Promise<boolean> {
    const rows = await q.query(
      `update jobs set state = 'queued', attempts = attempts + 1, error = null, finished_at = null, updated_at = now(),
              spec = case when $3 then jsonb_set(spec, '{max_errors}', $2::jsonb) else spec end
        where id = $1 and state in ('failed', 'cancelled') returning 1`,
      [jobId, JSON.stringify(maxErrors ?? null), maxErrors !== undefined],
    );
    if (rows.length !== 1) return false;
    await q.query(
      `update job_shards set state = 'pending', lease_token = null, lease_node = null, done = 0, failed = 0, tokens = 0
        where job_id = $1 and state <> 'committed'`,
      [jobId],
    );
    return true;
  },

  async pendingShards(q: SqlRunner, jobId: string): Promise<number[]> {
    const rows = await q.query<{ index: number }>(
      `select index from job_shards where job_id = $1 and state <> 'committed' order by index`,
      [jobId],
    );
    return rows.map((r) => num(r.index));
  },

  async committedShards(q: SqlRunner, jobId: string): Promise<CommittedShard[]> {
    const rows = await q.query<Record<string, unknown>>(
      `select index, staging_key, output_key, sha256, bytes, rows, error_rows from job_shards
        where job_id = $1 and state = 'committed' order by index`,
      [jobId],
    );
    return rows.map((r) => ({
      index: num(r['index']),
      stagingKey: String(r['staging_key']),
      outputKey: String(r['output_key']),
      sha256: String(r['sha256']),
      bytes: num(r['bytes']),
      rows: num(r['rows']),
      errorRows: num(r['error_rows']),
    }));
  },

  async errors(q: SqlRunner, jobId: string): Promise<ErrorRow[]> {
    const rows = await q.query<Record<string, unknown>>(
      `select key, line, message from job_errors where job_id = $1 order by shard, seq`,
      [jobId],
    );
    return rows.map((r) => ({
      key: (r['key'] as string | null) ?? null,
      line: maybeNum(r['line']),
      message: String(r['message']),
    }));
  },

  /** Totals for the manifest. */
  async totals(q: SqlRunner, jobId: string) {
    const [row] = await q.query<Record<string, unknown>>(
      `select records_total, records_ok, records_failed, prompt_tokens, eval_tokens, created_at, started_at, attempts
         from jobs where id = $1`,
      [jobId],
    );
    return {
      records: num(row?.['records_total']),
      ok: num(row?.['records_ok']),
      failed: num(row?.['records_failed']),
      promptTokens: num(row?.['prompt_tokens']),
      evalTokens: num(row?.['eval_tokens']),
      createdAt: iso(row?.['created_at']),
      startedAt: iso(row?.['started_at']),
      attempts: num(row?.['attempts']),
    };
  },
};

function toView(row: Record<string, unknown>): JobView {
  const spec = row['spec'] as BatchSpec;
  const ok = num(row['records_ok']);
  const failed = num(row['records_failed']);
  const state = row['state'] as JobState;
  const batch = row['kind'] === 'batch';
  return {
    id: String(row['id']),
    type: String(row['kind']),
    state,
    model: spec.model,
    model_digest: (row['model_digest'] as string | null) ?? null,
    input: spec.input,
    output: String(row['output']),
    spec,
    progress: {
      records_total: maybeNum(row['records_total']),
      records_done: ok + failed + num(row['live_done']) + num(row['live_failed']),
      records_ok: ok + num(row['live_done']),
      records_failed: failed + num(row['live_failed']),
      shards_total: maybeNum(row['shards_total']),
      shards_committed: num(row['shards_committed']),
      shards_running: num(row['live_running']),
      prompt_tokens: num(row['prompt_tokens']),
      eval_tokens: num(row['eval_tokens']) + num(row['live_tokens']),
    },
    attempts: num(row['attempts']),
    error: (row['error'] as string | null) ?? null,
    node: (row['node'] as string | null) ?? null,
    manifest: batch && state === 'succeeded' ? `${String(row['output'])}/_manifest.json` : null,
    created_at: iso(row['created_at'])!,
    started_at: iso(row['started_at']),
    finished_at: iso(row['finished_at']),
    updated_at: iso(row['updated_at'])!,
  };
}
