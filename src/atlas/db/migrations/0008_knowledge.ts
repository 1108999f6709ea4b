import type { Migration } from './index.js';

/**
 * Knowledge bases (src/knowledge, docs/knowledge.md): bases, their documents (originals on Atlas files,
 * keyed by sha256 so identical bytes are stored once per base) and the chunks retrieval searches. The
 * chunk rows are the authority: the embedding is a float32 `bytea` (a `real[]` parses slowly in JS),
 * the full-text side a generated `tsvector` with a GIN index. The vector index on a node is a cache
 * rebuilt from these rows.
 */
export const knowledge: Migration = {
  id: '0008_knowledge',
  sql: `
create table knowledge_bases (
  id text primary key,
  name text not null unique,
  description text not null default '',
  owner_id text references users (id) on delete cascade,   -- null: made with an API key (no owning user)
  sharing text not null check (sharing in ('private', 'shared')),
  embedding_model text not null,
  chunk_tokens integer not null check (chunk_tokens > 0),
  chunk_overlap integer not null check (chunk_overlap >= 0),
  generation integer not null default 0,                    -- bumped by every change to its chunks (index staleness)
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table knowledge_documents (
  id text primary key,
  base_id text not null references knowledge_bases (id) on delete cascade,
  name text not null,
  file_key text not null,                  -- the original on Atlas files
  sha256 text not null,
  size bigint not null,
  media_type text not null,
  state text not null check (state in ('pending', 'ready', 'failed')),
  error text,
  chunks integer not null default 0,
  tokens integer not null default 0,
  job_id text,                             -- the ingestion job that processed it
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (base_id, sha256)
);
create index knowledge_documents_base_idx on knowledge_documents (base_id, created_at);

create table knowledge_chunks (
  id bigint generated always as identity primary key,
  document_id text not null references knowledge_documents (id) on delete cascade,
  base_id text not null references knowledge_bases (id) on delete cascade,
  position integer not null,
  text text not null,
  heading text not null default '',        -- the heading path: "Install > Linux"
  tokens integer not null,
  embedding bytea not null,                -- float32 little-endian, L2-normalised
  search tsvector generated always as (to_tsvector('english', heading || ' ' || text)) stored,
  unique (document_id, position)
);
create index knowledge_chunks_base_idx on knowledge_chunks (base_id, id);
create index knowledge_chunks_search_idx on knowledge_chunks using gin (search);
`,
};
