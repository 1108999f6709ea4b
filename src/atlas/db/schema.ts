import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

// One schema for PostgreSQL and PGlite. The tables are created by the SQL in
// ./migrations (not generated from here), so a change here needs a migration.

/** The bookkeeping table of the migrator (./migrator.ts): one row per applied migration. */
export const hearthMigrations = pgTable('hearth_migrations', {
  id: text('id').primaryKey(),
  appliedAt: timestamp('applied_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Compute nodes that use this Atlas; each registers itself at start and refreshes `lastSeen`. */
export const nodes = pgTable('nodes', {
  id: text('id').primaryKey(),
  hostname: text('hostname').notNull(),
  version: text('version').notNull(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  lastSeen: timestamp('last_seen', { withTimezone: true }).notNull().defaultNow(),
});

/** Settings shared by every node (the config file holds per-node ones). */
export const settings = pgTable('settings', {
  key: text('key').primaryKey(),
  value: jsonb('value').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** GGUF blobs of the model library (0002_models): in `models/blobs/`, or registered where they already were on Atlas. */
export const modelBlobs = pgTable('model_blobs', {
  digest: text('digest').primaryKey(),
  blobKey: text('blob_key').notNull(),
  size: bigint('size', { mode: 'number' }).notNull(),
  /** a file that was on Atlas before: hearth never deletes it */
  registered: boolean('registered').notNull().default(false),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Model manifests (0002_models): name → blob + Modelfile settings. */
export const models = pgTable(
  'models',
  {
    /** normalised lower-case name, e.g. `llama3.2:latest` */
    key: text('key').primaryKey(),
    name: text('name').notNull(),
    digest: text('digest').notNull(),
    blobKey: text('blob_key').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    details: jsonb('details').notNull(),
    modelInfo: jsonb('model_info').notNull(),
    chatTemplate: text('chat_template'),
    parameters: jsonb('parameters').notNull().default({}),
    system: text('system'),
    template: text('template'),
    license: jsonb('license').notNull().default([]),
    messages: jsonb('messages').notNull().default([]),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    modifiedAt: timestamp('modified_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('models_digest_idx').on(t.digest)],
);

/** API keys (migration 0003): the secret only as an scrypt hash; `id` is the lookup part of the key's text. */
export const apiKeys = pgTable('api_keys', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  hash: text('hash').notNull(),
  scopes: text('scopes').array().notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  expiresAt: timestamp('expires_at', { withTimezone: true }),
  lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
});

/** Chat UI accounts (migration 0004): passwords only as scrypt hashes. */
export const users = pgTable('users', {
  id: text('id').primaryKey(),
  username: text('username').notNull(),
  passwordHash: text('password_hash').notNull(),
  role: text('role').notNull(),
  defaultModel: text('default_model'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Browser sessions (0004): `id` is the sha256 of the cookie's token, so a copy of the database logs no one in. */
export const userSessions = pgTable('user_sessions', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  csrfToken: text('csrf_token').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
});

/** Conversations (0004); their messages are rows of `chat_messages`. */
export const conversations = pgTable('conversations', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  title: text('title').notNull(),
  titleSource: text('title_source').notNull().default('default'),
  model: text('model'),
  systemPrompt: text('system_prompt'),
  params: jsonb('params').notNull().default({}),
  currentLeafId: text('current_leaf_id'),
  pinned: boolean('pinned').notNull().default(false),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  deletedAt: timestamp('deleted_at', { withTimezone: true }),
});

/** One message of a conversation tree (0004): `parentId` null for a first message; siblings are branches. */
export const chatMessages = pgTable(
  'chat_messages',
  {
    id: text('id').primaryKey(),
    conversationId: text('conversation_id').notNull(),
    parentId: text('parent_id'),
    seq: bigint('seq', { mode: 'number' }).generatedAlwaysAsIdentity(),
    role: text('role').notNull(),
    content: text('content').notNull().default(''),
    attachments: jsonb('attachments').notNull().default([]),
    model: text('model'),
    status: text('status').notNull().default('done'),
    error: text('error'),
    stats: jsonb('stats'),
    nodeId: text('node_id'),
    stopRequested: boolean('stop_requested').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('chat_messages_conversation_idx').on(t.conversationId, t.seq),
    index('chat_messages_parent_idx').on(t.parentId),
  ],
);

/** Chat presets (0004): model + system prompt + parameters; `shared` ones (made by admins) are everyone's. */
export const chatPresets = pgTable('chat_presets', {
  id: text('id').primaryKey(),
  ownerId: text('owner_id').notNull(),
  name: text('name').notNull(),
  model: text('model'),
  systemPrompt: text('system_prompt'),
  params: jsonb('params').notNull().default({}),
  shared: boolean('shared').notNull().default(false),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Batch jobs (migration 0005, src/jobs): one row per job; `spec` is the normalised request. */
export const jobs = pgTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    kind: text('kind').notNull(),
    spec: jsonb('spec').notNull(),
    /** queued, running, succeeded, failed, cancelled */
    state: text('state').notNull(),
    /** the output folder (a FileStore key prefix) */
    output: text('output').notNull(),
    modelDigest: text('model_digest'),
    plan: jsonb('plan'),
    recordsTotal: bigint('records_total', { mode: 'number' }),
    shardsTotal: integer('shards_total'),
    shardsCommitted: integer('shards_committed').notNull().default(0),
    recordsOk: bigint('records_ok', { mode: 'number' }).notNull().default(0),
    recordsFailed: bigint('records_failed', { mode: 'number' }).notNull().default(0),
    promptTokens: bigint('prompt_tokens', { mode: 'number' }).notNull().default(0),
    evalTokens: bigint('eval_tokens', { mode: 'number' }).notNull().default(0),
    attempts: integer('attempts').notNull().default(1),
    error: text('error'),
    node: text('node'),
    manifestSha256: text('manifest_sha256'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('jobs_created_idx').on(t.createdAt, t.id),
    index('jobs_state_idx').on(t.state),
    // partial in SQL: only queued and running jobs (two live jobs never write one folder)
    uniqueIndex('jobs_live_output_idx').on(t.output),
  ],
);

/** A job's shards (0005): the unit of work and of commit; `leaseToken` fences the commit. */
export const jobShards = pgTable(
  'job_shards',
  {
    jobId: text('job_id').notNull(),
    index: integer('index').notNull(),
    range: jsonb('range').notNull(),
    records: integer('records').notNull(),
    /** pending, running, committed */
    state: text('state').notNull(),
    attempts: integer('attempts').notNull().default(0),
    leaseToken: text('lease_token'),
    leaseNode: text('lease_node'),
    heartbeatAt: timestamp('heartbeat_at', { withTimezone: true }),
    done: integer('done').notNull().default(0),
    failed: integer('failed').notNull().default(0),
    tokens: bigint('tokens', { mode: 'number' }).notNull().default(0),
    stagingKey: text('staging_key'),
    outputKey: text('output_key'),
    sha256: text('sha256'),
    bytes: bigint('bytes', { mode: 'number' }),
    rows: integer('rows'),
    errorRows: integer('error_rows'),
    promptTokens: bigint('prompt_tokens', { mode: 'number' }),
    evalTokens: bigint('eval_tokens', { mode: 'number' }),
    committedAt: timestamp('committed_at', { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.index] })],
);

/** Per-record error rows of a job (0005), written with their shard's commit. */
export const jobErrors = pgTable(
  'job_errors',
  {
    jobId: text('job_id').notNull(),
    shard: integer('shard').notNull(),
    seq: integer('seq').notNull(),
    key: text('key'),
    line: integer('line'),
    message: text('message').notNull(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.shard, t.seq] })],
);

/** A job's log (0005): what `hearth jobs logs` and the events stream show. */
export const jobEvents = pgTable('job_events', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  jobId: text('job_id').notNull(),
  at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  level: text('level').notNull(),
  node: text('node'),
  message: text('message').notNull(),
});
