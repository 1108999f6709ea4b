import { foundation } from './0001_foundation.js';
import { models } from './0002_models.js';
import { apiKeys } from './0003_api_keys.js';
import { chat } from './0004_chat.js';
import { jobs } from './0005_jobs.js';
import { workflows } from './0006_workflows.js';
import { responses } from './0007_responses.js';
import { knowledge } from './0008_knowledge.js';
import { chatLeases } from './0009_chat_leases.js';
import { modelPulls } from './0010_model_pulls.js';
import { workflowTickets } from './0011_workflow_tickets.js';
import { knowledgePresets } from './0012_knowledge_presets.js';
import { chatPreferences } from './0013_chat_preferences.js';

/**
 * One step of the Atlas schema. The SQL lives in TS modules (not .sql files)
 * so `tsc` carries it into dist/ with no copy step.
 */
export interface Migration {
  /** `NNNN_name`; applied in this order, recorded in `hearth_migrations`, never renamed once released. */
  readonly id: string;
  /** Runs in one transaction; must work on PostgreSQL 13+ and PGlite. */
  readonly sql: string;
}

/**
 * Every migration this build knows, oldest first. A feature adds its own as a
 * new module (`0002_models.ts`) appended here; a released one is never edited.
 */
export const migrations: readonly Migration[] = [
  foundation,
  models,
  apiKeys,
  chat,
  jobs,
  workflows,
  responses,
  knowledge,
  chatLeases,
  modelPulls,
  workflowTickets,
  knowledgePresets,
  chatPreferences,
];
