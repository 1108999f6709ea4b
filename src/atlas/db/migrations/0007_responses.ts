import type { Migration } from './index.js';

/**
 * Stored responses of the OpenAI Responses API (src/responses, docs/openai-compatibility.md):
 * `previous_response_id` and `GET /v1/responses/{id}` read them on whichever node a request lands.
 */
export const responses: Migration = {
  id: '0007_responses',
  sql: `
create table responses (
  id text primary key,                     -- resp_<hex>
  owner text,                              -- the API key id that made it; null = a loopback caller
  model text not null,
  response jsonb not null,                 -- the response object as the API returned it
  conversation jsonb not null,             -- input items of the whole chain, then this response's output items
  node text,                               -- the node that generated it
  created_at timestamptz not null default now(),
  expires_at timestamptz                   -- null = kept until deleted
);
create index responses_expiry_idx on responses (expires_at) where expires_at is not null;
`,
};
