import type { Migration } from './index.js';

/**
 * Workflow prompts move onto the jobs' lease queue (src/workflows/queue.ts, docs/workflows.md): a
 * prompt row names the queue ticket that carries it (`ticket`), and a run writes its end only while it
 * holds the run's token (`lease_token`). The lease itself lives on the ticket, so `lease_until` goes.
 */
export const workflowTickets: Migration = {
  id: '0011_workflow_tickets',
  sql: `
alter table workflow_prompts add column ticket text;
alter table workflow_prompts add column lease_token text;
alter table workflow_prompts drop column lease_until;
`,
};
