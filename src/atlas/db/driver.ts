import type { CopyColumns } from './copy-binary.js';

/**
 * Runs one statement with `$1`-style parameters and returns its rows: the one way hearth runs SQL,
 * on the database (AtlasDb) and inside a transaction (AtlasTransaction) alike.
 */
export interface SqlRunner {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

/**
 * One transaction on the Atlas database: the same runner as AtlasDb.query. On the embedded PGlite
 * (one connection) every statement inside a transaction must go through it: a plain `db.query`
 * there would wait for the transaction, which waits for it.
 */
export type AtlasTransaction = SqlRunner;

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
  /** Runs a script of several statements (no parameters) and returns the rows of its last one. */
  exec<R = Record<string, unknown>>(script: string): Promise<R[]>;
  /** Runs `fn` in one transaction; connection failures come out as ATLAS_DB_UNREACHABLE. */
  transaction<T>(fn: (tx: AtlasTransaction) => Promise<T>): Promise<T>;
  /** Answers `select 1` or throws (no timeout of its own). */
  ping(): Promise<void>;
  /**
   * Calls `onNotify` with each notification's payload on `channel` (a valid, lower-case name) until
   * the returned function is called; resolves once listening. `onState` hears the listening
   * connection's losses (false) and returns (true), as AtlasDb.listen says.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onState?: (listening: boolean) => void,
  ): Promise<() => Promise<void>>;
  /** Streams the rows of one SELECT in batches (AtlasDb.copyRows). */
  copyRows<R>(select: string, params: readonly (string | number)[], columns: CopyColumns): AsyncIterable<R[]>;
  /** Lends one dedicated connection to `fn`. */
  withMigrationSession<T>(fn: (session: MigrationSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
