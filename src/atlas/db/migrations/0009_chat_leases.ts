import type { Migration } from './index.js';

/**
 * Replies that keep going (src/chat/replies.ts, docs/ui.md): a streaming reply holds a lease that its
 * node renews while it writes; a reply past its lease (its node crashed or lost Atlas) is marked
 * interrupted by whoever looks at it, on any node.
 */
export const chatLeases: Migration = {
  id: '0009_chat_leases',
  sql: `
alter table chat_messages add column lease_until timestamptz;
`,
};
