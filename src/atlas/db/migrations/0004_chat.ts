import type { Migration } from './index.js';

/**
 * The chat UI (src/chat): accounts, browser sessions, conversations as message
 * trees, presets. A conversation is one row per message with its parent, never
 * one document per chat, so appending to a long chat writes one small row and
 * branches (regenerate, edit) are just siblings.
 */
export const chat: Migration = {
  id: '0004_chat',
  sql: `
create table users (
  id text primary key,
  username text not null,
  password_hash text not null,          -- scrypt$N$r$p$salt$hash
  role text not null check (role in ('admin', 'user')),
  default_model text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index users_username_idx on users (lower(username));

-- A browser session: any node accepts it, and it outlives restarts.
create table user_sessions (
  id text primary key,                  -- sha256 (hex) of the cookie's token; the token itself is never stored
  user_id text not null references users (id) on delete cascade,
  csrf_token text not null,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index user_sessions_user_idx on user_sessions (user_id);
create index user_sessions_expires_idx on user_sessions (expires_at);

create table conversations (
  id text primary key,
  user_id text not null references users (id) on delete cascade,
  title text not null,
  title_source text not null default 'default' check (title_source in ('default', 'generated', 'user', 'imported')),
  model text,
  system_prompt text,
  params jsonb not null default '{}',   -- Ollama options: temperature, num_ctx, num_predict, ...
  current_leaf_id text,                 -- the branch shown: the last message of its path
  pinned boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz                -- soft delete, so the UI can undo; purged later
);
create index conversations_list_idx on conversations (user_id, pinned, updated_at, id) where deleted_at is null;
create index conversations_title_search_idx on conversations using gin (to_tsvector('simple', title));

create table chat_messages (
  id text primary key,
  conversation_id text not null references conversations (id) on delete cascade,
  parent_id text references chat_messages (id) on delete cascade,
  seq bigint generated always as identity,   -- insertion order: siblings are listed in it
  role text not null check (role in ('system', 'user', 'assistant')),
  content text not null default '',
  attachments jsonb not null default '[]',
  model text,
  status text not null default 'done' check (status in ('streaming', 'done', 'stopped', 'error', 'interrupted')),
  error text,
  stats jsonb,
  node_id text,                         -- the node writing a streaming reply
  stop_requested boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index chat_messages_conversation_idx on chat_messages (conversation_id, seq);
create index chat_messages_parent_idx on chat_messages (parent_id);
create index chat_messages_search_idx on chat_messages using gin (to_tsvector('simple', content));
create index chat_messages_streaming_idx on chat_messages (node_id) where status = 'streaming';

create table chat_presets (
  id text primary key,
  owner_id text not null references users (id) on delete cascade,
  name text not null,
  model text,
  system_prompt text,
  params jsonb not null default '{}',
  shared boolean not null default false,  -- made by an admin for everyone
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index chat_presets_owner_idx on chat_presets (owner_id);
`,
};
