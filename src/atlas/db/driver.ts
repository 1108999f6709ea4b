import type { ExtractTablesWithRelations } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import type * as schema from './schema.js';

/** The typed drizzle database over the Atlas schema; the same type for PostgreSQL and PGlite. */
export type AtlasOrm = PgDatabase<PgQueryResultHKT, typeof schema>;

/** A drizzle transaction over the Atlas schema (raw SQL: `tx.execute(sql\`...\`)`). */
export type AtlasTransaction = PgTransaction<
  PgQueryResultHKT,
  typeof schema,
  ExtractTablesWithRelations<typeof schema>
>;

/** Runs SQL with `$1`-style parameters and returns the rows. */
export interface SqlRunner {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
}

/** A transaction on the migration connection. */
export interface MigrationTransaction extends SqlRunner {
  /** Runs a script of several statements (no parameters). */
  exec(script: string): Promise<void>;
}

/** One dedicated connection, held while migrating, so a session-level advisory lock means something. */
export interface MigrationSession extends SqlRunner {
  /** Runs `fn` inside one transaction on this connection: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: MigrationTransaction) => Promise<T>): Promise<T>;
}

/**
 * What each backend (./pg, ./pglite) provides; ../atlas-db.ts builds the
 * public AtlasDb on it. Connection failures come out of `query`, `transaction`
 * and `ping` as HearthError ATLAS_DB_UNREACHABLE; SQL errors pass through.
 */
export interface AtlasDbDriver extends SqlRunner {
  readonly kind: 'postgres' | 'pglite';
  /** Where the database is, secrets masked. */
  readonly describe: string;
  readonly orm: AtlasOrm;
  /** Runs `fn` in one drizzle transaction; connection failures come out as ATLAS_DB_UNREACHABLE. */
  transaction<T>(fn: (tx: AtlasTransaction) => Promise<T>): Promise<T>;
  /** Answers `select 1` or throws (no timeout of its own). */
  ping(): Promise<void>;
  /** Lends one dedicated connection to `fn`. */
  withMigrationSession<T>(fn: (session: MigrationSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
