import { sql } from 'drizzle-orm';
import type { AtlasDb, AtlasTransaction } from '../atlas/db/index.js';

/**
 * What the job system runs SQL through: the Atlas database itself, or one transaction on it. Every
 * job-record update that must agree with a queue change goes through one transaction, and on the
 * embedded PGlite (one connection) every statement inside a transaction must use the transaction's
 * runner: a plain `db.query` there would wait for the transaction, which waits for it.
 */
export interface SqlRunner {
  /** Runs one statement with `$1`-style parameters and returns its rows. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/**
 * Runs `fn` in one Atlas transaction. Inside it, read only text, numbers, booleans and JSON: the
 * drivers differ on timestamps within a transaction, so cast them (`extract(epoch ...)`) if needed.
 */
export function inTransaction<T>(db: AtlasDb, fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
  return db.transaction((tx) => fn(transactionRunner(tx)));
}

// `$12` → ['', '12', '']: split keeps the captured number between the text around it.
const PLACEHOLDER = /\$(\d+)/g;

/** A runner over a drizzle transaction: `$n` placeholders become drizzle parameters (arrays stay one parameter). */
export function transactionRunner(tx: AtlasTransaction): SqlRunner {
  return {
    async query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
      const parts = text.split(PLACEHOLDER);
      const chunks = [sql.raw(parts[0] ?? '')];
      for (let i = 1; i < parts.length; i += 2) {
        const index = Number(parts[i]) - 1;
        if (index < 0 || index >= params.length)
          throw new Error(`SQL refers to $${index + 1} but has ${params.length} parameters`);
        chunks.push(sql`${sql.param(params[index])}`, sql.raw(parts[i + 1] ?? ''));
      }
      const result = (await tx.execute(sql.join(chunks))) as unknown as { rows: R[] };
      return result.rows;
    },
  };
}

/** The plain database as a runner (outside any transaction). */
export function databaseRunner(db: AtlasDb): SqlRunner {
  return { query: (text, params) => db.query(text, params ? [...params] : undefined) };
}
