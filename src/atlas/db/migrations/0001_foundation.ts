import type { Migration } from './index.js';

export const foundation: Migration = {
  id: '0001_foundation',
  sql: `
create table nodes (
  id text primary key,
  hostname text not null,
  version text not null,
  started_at timestamptz not null default now(),
  last_seen timestamptz not null default now()
);

create table settings (
  key text primary key,
  value jsonb not null,
  updated_at timestamptz not null default now()
);
`,
};
