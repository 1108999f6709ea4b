import type { Migration } from './index.js';

/**
 * API keys (src/net/keys): every node checks requests against this table, so a
 * key revoked here stops working on all of them at once.
 */
export const apiKeys: Migration = {
  id: '0003_api_keys',
  sql: `
create table api_keys (
  id text primary key,              -- the lookup id in the key's text (hth_<id>_<secret>)
  name text not null,
  hash text not null,               -- scrypt hash of the secret; the key itself is never stored
  scopes text[] not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz
);
-- One active key per name (a revoked key keeps its row, and its name may be reused).
create unique index api_keys_active_name_idx on api_keys (name) where revoked_at is null;
`,
};
