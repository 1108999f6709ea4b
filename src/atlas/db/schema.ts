import { jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

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
