import type { Migration } from './index.js';

/**
 * Batch jobs (src/jobs, docs/jobs.md): the job records, their shards (the unit of work and of commit),
 * per-record error rows and the job log. The queue itself is pg-boss, in its own `pgboss` schema,
 * which pg-boss creates and migrates itself; these tables are the authority on what is done.
 */
export const jobs: Migration = {
  id: '0005_jobs',
  sql: `
create table jobs (
  id text primary key,
  kind text not null,                      -- 'batch'
  spec jsonb not null,                     -- the submitted spec, normalised
  state text not null check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  output text not null,                    -- FileStore folder of the results
  model_digest text,                       -- the model's GGUF digest when the job was submitted
  plan jsonb,                              -- what planning found (format, CSV columns)
  records_total bigint,                    -- known once planned
  shards_total integer,
  shards_committed integer not null default 0,
  records_ok bigint not null default 0,    -- committed output rows
  records_failed bigint not null default 0,-- committed error rows
  prompt_tokens bigint not null default 0,
  eval_tokens bigint not null default 0,
  attempts integer not null default 1,     -- 1 + retries asked for by a person
  error text,                              -- why it failed, for people
  node text,                               -- the node that touched it last
  manifest_sha256 text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now()
);
create index jobs_created_idx on jobs (created_at desc, id desc);
create index jobs_state_idx on jobs (state);
-- Two live jobs never write one output folder.
create unique index jobs_live_output_idx on jobs (output) where state in ('queued', 'running');

create table job_shards (
  job_id text not null references jobs (id) on delete cascade,
  index integer not null,
  range jsonb not null,                    -- where its records are: a byte range and first line, or file keys
  records integer not null,
  state text not null check (state in ('pending', 'running', 'committed')),
  attempts integer not null default 0,
  lease_token text,                        -- the holder's token; a commit must present it
  lease_node text,
  heartbeat_at timestamptz,
  done integer not null default 0,         -- live progress of the running attempt (not committed)
  failed integer not null default 0,
  tokens bigint not null default 0,
  staging_key text,                        -- committed: the staged file that holds the rows
  output_key text,                         -- committed: the final name
  sha256 text,
  bytes bigint,
  rows integer,
  error_rows integer,
  prompt_tokens bigint,
  eval_tokens bigint,
  committed_at timestamptz,
  primary key (job_id, index)
);
create index job_shards_lease_idx on job_shards (lease_node) where state = 'running';

create table job_errors (
  job_id text not null references jobs (id) on delete cascade,
  shard integer not null,
  seq integer not null,                    -- order within the shard
  key text,
  line integer,
  message text not null,
  primary key (job_id, shard, seq)
);

create table job_events (
  id bigint generated always as identity primary key,
  job_id text not null references jobs (id) on delete cascade,
  at timestamptz not null default now(),
  level text not null,
  node text,
  message text not null
);
create index job_events_job_idx on job_events (job_id, id);
`,
};
