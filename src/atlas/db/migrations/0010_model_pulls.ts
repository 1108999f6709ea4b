import type { Migration } from './index.js';

/**
 * Model pulls as server-side tasks (src/models/pull-tasks.ts, docs/ui.md): one row per pull, written
 * by the node that runs it (progress, speed, its end). A running pull holds a lease its node renews
 * while it downloads; one past its lease (its node died) is marked interrupted by whoever looks.
 */
export const modelPulls: Migration = {
  id: '0010_model_pulls',
  sql: `
create table model_pulls (
  id text primary key,
  source text not null,
  model text,
  state text not null check (state in ('running', 'done', 'failed', 'cancelled', 'interrupted')),
  status text not null default '',
  completed bigint not null default 0,
  total bigint,
  bytes_per_second double precision,
  error text,
  node_id text not null,
  lease_until timestamptz,
  cancel_requested boolean not null default false,
  created_by text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
create index model_pulls_recent on model_pulls (created_at desc);
create unique index model_pulls_one_running on model_pulls (source) where state = 'running';
`,
};
