import type { Logger } from 'pino';
import { describeError, HearthError } from '../../errors.js';
import type { MigrationSession, SqlRunner } from './driver.js';
import type { Migration } from './migrations/index.js';

/** Where a database stands against the migrations this build knows. */
export interface MigrationStatus {
  /** Every known migration is applied and the database has none this build does not know. */
  current: boolean;
  /** Applied migrations, in id order (including unknown ones). */
  applied: string[];
  /** Known migrations not applied yet, in the order they would run. */
  pending: string[];
  /** Applied migrations this build does not know: a newer hearth wrote them. */
  unknown: string[];
}

// 'hear' and 'th' as integers: a two-key advisory lock no other application takes by accident.
const MIGRATION_LOCK_KEYS = '1751474546, 29800';

const CREATE_BOOKKEEPING = `create table if not exists hearth_migrations (
  id text primary key,
  applied_at timestamptz not null default now()
)`;

/** Reads the migration state without locking or changing anything. */
export async function readMigrationStatus(db: SqlRunner, known: readonly Migration[]): Promise<MigrationStatus> {
  const [table] = await db.query<{ present: boolean }>(
    `select to_regclass('hearth_migrations') is not null as present`,
  );
  const applied = table?.present ? await readApplied(db) : [];
  return compare(applied, known);
}

/**
 * Applies the pending migrations, each in its own transaction, while holding
 * an advisory lock on the session's connection, so hearth processes starting
 * together against one database apply each migration exactly once.
 */
export async function applyMigrations(
  session: MigrationSession,
  known: readonly Migration[],
  log: Logger,
  describe: string,
): Promise<{ applied: string[] }> {
  checkMigrationList(known);
  await session.query(`select pg_advisory_lock(${MIGRATION_LOCK_KEYS})`);
  try {
    await session.query(CREATE_BOOKKEEPING);
    const status = compare(await readApplied(session), known);
    if (status.unknown.length > 0) throw schemaTooNew(status.unknown, describe);
    const applied: string[] = [];
    for (const migration of known.filter((m) => status.pending.includes(m.id))) {
      try {
        await session.transaction(async (tx) => {
          await tx.exec(migration.sql);
          await tx.query('insert into hearth_migrations (id) values ($1)', [migration.id]);
        });
      } catch (err) {
        if (err instanceof HearthError) throw err;
        throw new HearthError('ATLAS_DB_MIGRATION_FAILED', [migration.id, describe, describeError(err)], {
          cause: err,
        });
      }
      applied.push(migration.id);
      log.info({ migration: migration.id, database: describe }, 'atlas database migration applied');
    }
    return { applied };
  } finally {
    // A dead connection already dropped the lock; don't let the unlock error hide the real one.
    await session.query(`select pg_advisory_unlock(${MIGRATION_LOCK_KEYS})`).catch(() => undefined);
  }
}

async function readApplied(db: SqlRunner): Promise<string[]> {
  const rows = await db.query<{ id: string }>('select id from hearth_migrations order by id');
  return rows.map((row) => row.id);
}

function compare(applied: string[], known: readonly Migration[]): MigrationStatus {
  const knownIds = new Set(known.map((m) => m.id));
  const appliedIds = new Set(applied);
  const pending = known.filter((m) => !appliedIds.has(m.id)).map((m) => m.id);
  const unknown = applied.filter((id) => !knownIds.has(id));
  return { current: pending.length === 0 && unknown.length === 0, applied, pending, unknown };
}

function schemaTooNew(unknown: string[], describe: string): HearthError {
  return new HearthError('ATLAS_DB_SCHEMA_TOO_NEW', [describe, unknown.length > 1 ? 's' : '', unknown.join(', ')], {
    details: { unknown },
  });
}

/** The list is code, so a bad one is a bug to stop at once rather than a database to half-migrate. */
export function checkMigrationList(known: readonly Migration[]): void {
  let previous = '';
  for (const { id } of known) {
    if (!/^\d{4}_[a-z0-9_]+$/.test(id) || id <= previous) {
      throw new HearthError(
        'INTERNAL',
        `atlas.database: migration id '${id}' is malformed or out of order (after '${previous}'): ` +
          `ids are NNNN_name, unique and ascending`,
      );
    }
    previous = id;
  }
}
