import type { Migration } from './index.js';

/** The model library: manifests (name → GGUF blob + Modelfile settings) and the blobs they use. */
export const models: Migration = {
  id: '0002_models',
  sql: `
create table model_blobs (
  digest text primary key,          -- sha256 hex of the GGUF
  blob_key text not null,           -- FileStore key on Atlas
  size bigint not null,
  registered boolean not null default false, -- a file that was already on Atlas: hearth never deletes it
  created_at timestamptz not null default now()
);

create table models (
  key text primary key,             -- normalised, lower-case name (llama3.2:latest)
  name text not null,               -- the name as created
  digest text not null,
  blob_key text not null,
  size bigint not null,
  details jsonb not null,
  model_info jsonb not null,
  chat_template text,
  parameters jsonb not null default '{}',
  system text,
  template text,
  license jsonb not null default '[]',
  messages jsonb not null default '[]',
  created_at timestamptz not null default now(),
  modified_at timestamptz not null default now()
);
create index models_digest_idx on models (digest);
`,
};
