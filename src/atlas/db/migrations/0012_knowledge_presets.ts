import type { Migration } from './index.js';

/**
 * Knowledge bases attached to presets and conversations (docs/knowledge.md): a chat started from a preset
 * (the preset applied to it) answers from the preset's bases, as if its messages tagged them with `#name`.
 * Names, not ids: a base is attached the way a person writes it, and one deleted later is skipped.
 */
export const knowledgePresets: Migration = {
  id: '0012_knowledge_presets',
  sql: `
alter table chat_presets add column knowledge text[] not null default '{}';
alter table conversations add column knowledge text[] not null default '{}';
`,
};
