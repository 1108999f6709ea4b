import type { Migration } from './index.js';

/**
 * A person's own settings for the chat UI, kept on Atlas like everything else (docs/ui.md): the
 * theme today (`{"theme": "dark"}`), in one JSON object so that the next setting needs no migration.
 */
export const chatPreferences: Migration = {
  id: '0013_chat_preferences',
  sql: `
alter table users add column preferences jsonb not null default '{}';
`,
};
