import type { Logger } from 'pino';
import { describeError, HearthError } from '../../errors.js';
import type { CopyColumns } from './copy-binary.js';
import { isEmbeddedDatabase, parsePostgresUrl } from './database-url.js';
import type { AtlasDbDriver, AtlasTransaction, SqlRunner } from './driver.js';
import { migrations } from './migrations/index.js';
import { applyMigrations, type MigrationStatus, readMigrationStatus } from './migrator.js';
import { openPostgresDriver } from './pg/driver.js';
import { openPgliteDriver } from './pglite/driver.js';

/** How to open the Atlas state database. */
export interface AtlasDbOptions {
  /** 'embedded' (PGlite in `embeddedDir`) or a postgres:// / postgresql:// URL. */
  database: string;
  /** Where PGlite keeps its data when database === 'embedded' (hearth passes `<atlas.files>/.hearth/db`). */
  embeddedDir: string;
  /** Gets the open, each applied migration (info) and connection losses (warn). */
  log: Logger;
  /** Apply pending migrations on open (default true). With false, open never changes the schema. */
  migrate?: boolean;
  /** PostgreSQL only: most connections this process keeps open (default 10). */
  maxConnections?: number;
  /** PostgreSQL only: how long to wait for a connection before failing, ms (default 10 000). */
  connectTimeoutMs?: number;
  /** PostgreSQL only: server-side limit for one statement, ms (default 60 000); migrations run without it. */
  statementTimeoutMs?: number;
}

/** The Atlas state database: PostgreSQL on Atlas, or the embedded PGlite default. */
export interface AtlasDb extends SqlRunner {
  readonly kind: 'postgres' | 'pglite';
  /** Where it is, secrets masked: 'postgres://hearth:***@atlas:5432/hearth' or 'embedded (PGlite) at <dir>'. */
  readonly describe: string;
  /**
   * Runs one statement with `$1`-style parameters and returns its rows (node-postgres conventions on both
   * backends: timestamptz → Date, json → parsed, int8 and numeric → string). Throws ATLAS_DB_UNREACHABLE
   * when the database cannot be reached; SQL errors pass through.
   */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs a script of several statements (no parameters; pg-boss's schema and maintenance) and returns its last statement's rows. */
  exec<R = Record<string, unknown>>(script: string): Promise<R[]>;
  /**
   * Runs `fn` in one transaction: committed if it resolves, rolled back if it throws. `tx.query` is
   * the same raw `$n` runner as `query`; inside `fn` use only it (PGlite has one connection).
   */
  transaction<T>(fn: (tx: AtlasTransaction) => Promise<T>): Promise<T>;
  /**
   * Streams the rows of one SELECT in batches, for reading many rows at once (the knowledge index
   * rebuild). PostgreSQL: a binary COPY on one pooled connection, columns decoded as `columns` says
   * (int4 → number, int8 → string, text → string, bytea → Buffer; NULL → null), `$n` parameters quoted
   * in as literals (strings and finite numbers only); stopping early closes that connection. PGlite: the
   * query's rows, as `query` returns them, in one batch.
   */
  copyRows<R = Record<string, unknown>>(
    select: string,
    params: readonly (string | number)[],
    columns: CopyColumns,
  ): AsyncIterable<R[]>;
  /**
   * Sends `payload` to every session listening on `channel` (PostgreSQL's NOTIFY, sent when the
   * statement commits). The payload is a short signal, under NOTIFY_PAYLOAD_MAX_BYTES: listeners read
   * the state it points to from the database. Throws INTERNAL for a longer payload or a bad channel name.
   * `within` (a transaction) sends it with that transaction: it goes out when, and only if, it commits.
   */
  notify(channel: string, payload: string, within?: SqlRunner): Promise<void>;
  /**
   * Calls `onNotify` with each payload sent on `channel` (by this process or any other on the same
   * database) until the returned function is called; resolves once listening. PostgreSQL: one
   * dedicated connection per process, outside the pool, opened again with a bounded back-off when
   * lost (notifications sent meanwhile are lost: listeners that must not miss a change also poll,
   * slowly). PGlite: in-process. Throws ATLAS_DB_UNREACHABLE when the database cannot be reached.
   * `onState` hears when the dedicated connection is lost (false: nothing is heard until it is back)
   * and when it listens again (true: notifications sent meanwhile were lost; read the state once).
   * PGlite never loses it.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onState?: (listening: boolean) => void,
  ): Promise<() => Promise<void>>;
  /** Throws ATLAS_DB_UNREACHABLE within `timeoutMs` (default 5000) if the database does not answer `select 1`. */
  ping(timeoutMs?: number): Promise<void>;
  /** Applies pending migrations (see ./migrator.ts); throws ATLAS_DB_SCHEMA_TOO_NEW if a newer hearth migrated it. */
  migrate(): Promise<{ applied: string[] }>;
  migrationStatus(): Promise<MigrationStatus>;
  /** Closes connections (and the embedded database's lock). Idempotent. */
  close(): Promise<void>;
}

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
export const NOTIFY_PAYLOAD_MAX_BYTES = 7999;

/** Channel names: plain lower-case identifiers, so they need no quoting rules and match on both backends. */
const CHANNEL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function checkChannel(channel: string): void {
  if (!CHANNEL_NAME.test(channel)) {
    throw new HearthError(
      'INTERNAL',
      `atlas database: ${JSON.stringify(channel)} is not a channel name (lower-case letters, digits and _, at most 63)`,
    );
  }
}

/**
 * Opens the Atlas database and (unless `migrate: false`) brings its schema up
 * to date. Throws ATLAS_DB_UNREACHABLE, ATLAS_DB_IN_USE (embedded, another
 * process has it), ATLAS_DB_SCHEMA_TOO_NEW or ATLAS_DB_MIGRATION_FAILED.
 */
export async function openAtlasDb(opts: AtlasDbOptions): Promise<AtlasDb> {
  const driver = isEmbeddedDatabase(opts.database)
    ? await openPgliteDriver({ dir: opts.embeddedDir })
    : await openPostgresDriver({
        target: parsePostgresUrl(opts.database),
        log: opts.log,
        maxConnections: opts.maxConnections ?? 10,
        connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
        statementTimeoutMs: opts.statementTimeoutMs ?? 60_000,
      });
  const db = new AtlasDatabase(driver, opts.log);
  try {
    if (opts.migrate ?? true) await db.migrate();
  } catch (err) {
    await db.close();
    throw err;
  }
  opts.log.info({ database: db.describe }, 'atlas database open');
  return db;
}

class AtlasDatabase implements AtlasDb {
  private readonly driver: AtlasDbDriver;
  private readonly log: Logger;
  // One migrate() at a time per instance (PGlite's advisory lock is re-entrant for its single session).
  private migrating: Promise<unknown> = Promise.resolve();

  constructor(driver: AtlasDbDriver, log: Logger) {
    this.driver = driver;
    this.log = log;
  }

  get kind() {
    return this.driver.kind;
  }
  get describe() {
    return this.driver.describe;
  }
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]> {
    return this.driver.query<R>(sql, params);
  }

  copyRows<R = Record<string, unknown>>(
    select: string,
    params: readonly (string | number)[],
    columns: CopyColumns,
  ): AsyncIterable<R[]> {
    return this.driver.copyRows<R>(select, params, columns);
  }

  exec<R = Record<string, unknown>>(script: string): Promise<R[]> {
    return this.driver.exec<R>(script);
  }

  transaction<T>(fn: (tx: AtlasTransaction) => Promise<T>): Promise<T> {
    return this.driver.transaction(fn);
  }

  async notify(channel: string, payload: string, within?: SqlRunner): Promise<void> {
    checkChannel(channel);
    const bytes = Buffer.byteLength(payload);
    if (bytes > NOTIFY_PAYLOAD_MAX_BYTES) {
      throw new HearthError(
        'INTERNAL',
        `atlas database: a notification on ${channel} of ${bytes} bytes is over PostgreSQL's limit (${NOTIFY_PAYLOAD_MAX_BYTES})`,
      );
    }
    await (within ?? this.driver).query('select pg_notify($1, $2)', [channel, payload]);
  }

  async listen(
    channel: string,
    onNotify: (payload: string) => void,
    onState?: (listening: boolean) => void,
  ): Promise<() => Promise<void>> {
    checkChannel(channel);
    return this.driver.listen(channel, onNotify, onState);
  }

  async ping(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new HearthError(
              'ATLAS_DB_UNREACHABLE',
              `atlas.database: ${this.describe} did not answer within ${timeoutMs} ms: ` +
                `check that the database server on Atlas is up and reachable from this node`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.driver.ping(), timeout]);
    } catch (err) {
      if (err instanceof HearthError) throw err;
      throw new HearthError(
        'ATLAS_DB_UNREACHABLE',
        `atlas.database: ${this.describe} did not answer (${describeError(err)})`,
        {
          cause: err,
        },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  migrate(): Promise<{ applied: string[] }> {
    const run = this.migrating.then(() =>
      this.driver.withMigrationSession((session) => applyMigrations(session, migrations, this.log, this.describe)),
    );
    this.migrating = run.catch(() => undefined);
    return run;
  }

  migrationStatus(): Promise<MigrationStatus> {
    return readMigrationStatus(this.driver, migrations);
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
