import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Logger } from 'pino';
import { BinaryCopyParser, type CopyColumns } from '../copy-binary.js';
import type { PostgresTarget } from '../database-url.js';
import type { AtlasDbDriver, AtlasTransaction, MigrationSession, MigrationTransaction } from '../driver.js';
import { isConnectionError, unreachable } from './connection-errors.js';
import { PostgresListener } from './listener.js';

const CLOSE_WAIT_MS = 5000;

/** How hearth talks to a real PostgreSQL server (normally on Atlas). */
export interface PostgresDriverOptions {
  /** The server and database (parsePostgresUrl). */
  target: PostgresTarget;
  /** Gets connection losses (warn) and driver details (debug). */
  log: Logger;
  /** Most connections this process keeps open. */
  maxConnections: number;
  /** How long to wait for a new connection before failing, ms. */
  connectTimeoutMs: number;
  /** Server-side limit for one statement, ms (migrations run without it). */
  statementTimeoutMs: number;
}

/** Connects (one `select 1` to prove it) or throws ATLAS_DB_UNREACHABLE explaining why not. */
export async function openPostgresDriver(opts: PostgresDriverOptions): Promise<AtlasDbDriver> {
  const driver = new PostgresDriver(opts);
  try {
    await driver.pool.query('select 1');
  } catch (err) {
    await driver.close();
    throw unreachable(err, opts.target, 'cannot connect to');
  }
  return driver;
}

class PostgresDriver implements AtlasDbDriver {
  readonly kind = 'postgres' as const;
  readonly describe: string;
  readonly pool: pg.Pool;
  private readonly opts: PostgresDriverOptions;
  private readonly listener: PostgresListener;
  private closed: Promise<void> | undefined;

  constructor(opts: PostgresDriverOptions) {
    this.opts = opts;
    this.describe = opts.target.masked;
    this.listener = new PostgresListener({
      target: opts.target,
      log: opts.log,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
    this.pool = new pg.Pool({
      connectionString: opts.target.url,
      application_name: 'hearth',
      max: opts.maxConnections,
      connectionTimeoutMillis: opts.connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: opts.statementTimeoutMs,
      // The client-side limit only fires when the server stops answering (a half-open connection):
      // the server's statement_timeout ends a merely slow statement first.
      query_timeout: opts.statementTimeoutMs + 15_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    // An idle connection that dies (server restart, network cut) is reported here and dropped from
    // the pool, which opens a fresh one for the next query. Without a listener it would crash the process.
    this.pool.on('error', (err) => {
      opts.log.warn(
        { database: this.describe, err: err.message },
        'atlas database connection lost; it is replaced on next use',
      );
    });
    // A connection that dies while checked out (e.g. between statements of a transaction) emits 'error'
    // on the client, where the pool listens only while it is idle: catch it too. The failed query reports it.
    this.pool.on('connect', (client) => {
      client.on('error', (err) => opts.log.debug({ database: this.describe, err: err.message }, 'connection error'));
    });
  }

  async query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]> {
    try {
      const result = await this.pool.query(sql, params ? [...params] : undefined);
      return result.rows as R[];
    } catch (err) {
      throw this.toAtlasError(err);
    }
  }

  async exec<R = Record<string, unknown>>(script: string): Promise<R[]> {
    try {
      // Without parameters, node-postgres sends the simple protocol: several statements, one result each.
      const result = (await this.pool.query(script)) as unknown as pg.QueryResult | pg.QueryResult[];
      return ((Array.isArray(result) ? result.at(-1)?.rows : result.rows) ?? []) as R[];
    } catch (err) {
      throw this.toAtlasError(err);
    }
  }

  async transaction<T>(fn: (tx: AtlasTransaction) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.toAtlasError(err);
    }
    let broken: Error | undefined;
    try {
      await client.query('begin');
      const tx: AtlasTransaction = {
        query: async <R>(sql: string, params?: readonly unknown[]) =>
          (await client.query(sql, params ? [...params] : undefined)).rows as R[],
      };
      let result: T;
      try {
        result = await fn(tx);
      } catch (err) {
        if (!isConnectionError(err)) await client.query('rollback');
        throw err;
      }
      await client.query('commit');
      return result;
    } catch (err) {
      if (isConnectionError(err)) broken = err as Error;
      throw this.toAtlasError(err);
    } finally {
      // Given back with the error, the pool drops the connection instead of lending it again.
      client.release(broken);
    }
  }

  // COPY … TO STDOUT (FORMAT binary) through pg-copy-streams (maintained with node-postgres, no
  // dependencies; 7.0.0 runs on Node 20): bytea arrives as its raw bytes, where a plain query gets it as
  // hex text, decoded at about 15k rows/s of 3 KB (docs/knowledge.md, Speed). pg 8's `binary: true`
  // is no way out: it decodes every column, bytea included, as UTF-8 text.
  async *copyRows<R>(select: string, params: readonly (string | number)[], columns: CopyColumns): AsyncIterable<R[]> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.toAtlasError(err);
    }
    // Given back with an error unless the COPY ran to its end: the pool then closes the connection,
    // which may still be receiving the rest of the rows (a consumer that stopped early, a failure).
    let unfinished: Error | undefined = new Error('binary COPY stopped before its end');
    try {
      // COPY takes no parameters: they go in as literals, quoted by node-postgres.
      const sql = select.replace(/\$(\d+)/g, (_, n: string) => literal(client, params[Number(n) - 1], n));
      const stream = client.query(copyTo(`copy (${sql}) to stdout (format binary)`));
      const parser = new BinaryCopyParser(columns);
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const rows = parser.push<R>(chunk);
        if (rows.length) yield rows;
      }
      parser.end();
      unfinished = undefined;
    } catch (err) {
      if (isConnectionError(err)) unfinished = err as Error;
      throw this.toAtlasError(err);
    } finally {
      client.release(unfinished);
    }
  }

  async ping(): Promise<void> {
    await this.query('select 1');
  }

  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onState?: (listening: boolean) => void,
  ): Promise<() => Promise<void>> {
    return this.listener.listen(channel, onNotify, onState);
  }

  private toAtlasError(err: unknown): unknown {
    return isConnectionError(err) ? unreachable(err, this.opts.target, 'cannot reach') : err;
  }

  async withMigrationSession<T>(fn: (session: MigrationSession) => Promise<T>): Promise<T> {
    // Its own connection, outside the pool: the advisory lock belongs to it, and migrations
    // (an index on a big table) may run longer than the pool's statement timeout.
    const client = new pg.Client({
      connectionString: this.opts.target.url,
      application_name: 'hearth-migrate',
      connectionTimeoutMillis: this.opts.connectTimeoutMs,
      keepAlive: true,
    });
    client.on('error', (err) =>
      this.opts.log.warn({ database: this.describe, err: err.message }, 'atlas database migration connection lost'),
    );
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw unreachable(err, this.opts.target, 'cannot connect to');
    }
    const run = async <R>(sql: string, params?: unknown[]): Promise<R[]> => {
      try {
        return (await client.query(sql, params)).rows as R[];
      } catch (err) {
        throw this.toAtlasError(err);
      }
    };
    const tx: MigrationTransaction = {
      query: run,
      exec: async (script) => {
        await run(script);
      },
    };
    const session: MigrationSession = {
      query: run,
      transaction: async (body) => {
        await run('begin');
        try {
          const result = await body(tx);
          await run('commit');
          return result;
        } catch (err) {
          await run('rollback').catch(() => undefined);
          throw err;
        }
      },
    };
    try {
      return await fn(session);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.listener.close();
      // pool.end() waits for every lent connection; one never given back must not hang shutdown.
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), CLOSE_WAIT_MS);
      });
      const ended = this.pool.end().catch((err: unknown) => {
        this.opts.log.debug({ err }, 'atlas database pool closed with an error');
      });
      if ((await Promise.race([ended, waited])) === 'timeout') {
        this.opts.log.warn(
          { database: this.describe, inUse: this.pool.totalCount - this.pool.idleCount },
          `atlas database connections still in use after ${CLOSE_WAIT_MS} ms; closing without them`,
        );
      }
      clearTimeout(timer);
    })();
    return this.closed;
  }
}

function literal(client: pg.PoolClient, value: string | number | undefined, n: string): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string') return client.escapeLiteral(value);
  throw new Error(`binary COPY: parameter $${n} is missing or not a string or finite number`);
}
