import type { Migration } from './index.js';

/**
 * Workflows (src/workflows, docs/workflows.md): the prompt queue and its history (one row per prompt,
 * claimed with FOR UPDATE SKIP LOCKED by whichever node is free), and saved workflows for the editor.
 */
export const workflows: Migration = {
  id: '0006_workflows',
  sql: `
create sequence workflow_prompt_number;
create table workflow_prompts (
  id text primary key,                     -- prompt_id (a UUID unless the client chose one)
  number bigint not null,                  -- queue position; front=true takes a negative number
  prompt jsonb not null,
  extra_data jsonb not null default '{}',
  client_id text,                          -- the WebSocket client that submitted it
  state text not null check (state in ('pending', 'running', 'success', 'error', 'interrupted')),
  node text,                               -- the node running it, or that ran it
  lease_until timestamptz,                 -- a running prompt past this is retried by any node
  attempts integer not null default 0,
  interrupt_requested boolean not null default false,
  outputs jsonb not null default '{}',     -- node id -> ui output (images, text)
  messages jsonb not null default '[]',    -- ComfyUI status messages: [[event, data], ...]
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);
create index workflow_prompts_queue_idx on workflow_prompts (number) where state in ('pending', 'running');
create index workflow_prompts_history_idx on workflow_prompts (finished_at) where finished_at is not null;

create table workflows (
  name text primary key,
  workflow jsonb not null,                 -- the editor's graph or an API-format prompt
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
`,
};
