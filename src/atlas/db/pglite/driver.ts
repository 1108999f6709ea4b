import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { describeError, HearthError } from '../../../errors.js';
import type { CopyColumns } from '../copy-binary.js';
import type { AtlasDbDriver, AtlasTransaction, MigrationSession } from '../driver.js';
import { EmbeddedDirLock } from './dir-lock.js';

/** How hearth runs its embedded database. */
export interface PgliteDriverOptions {
  /** The data directory (created if missing); `<dir>.lock` guards it. */
  dir: string;
}

// node-postgres returns int8 as a string (lossless); PGlite would return a number. Same answer on both backends.
const INT8 = 20;
// bytea as a Buffer, as node-postgres returns it. PGlite's own hex codec calls parseInt per byte: reading
// 5,000 rows of 3 KB embeddings took 6.8 s with it (docs/knowledge.md, Speed); Buffer's hex codec is native.
const BYTEA = 17;
const parsers = { [INT8]: (value: string) => value, [BYTEA]: (value: string) => Buffer.from(value.slice(2), 'hex') };
const serializers = {
  [BYTEA]: (value: Uint8Array) => `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`,
};

/** Opens (creating if need be) the embedded database, or throws ATLAS_DB_IN_USE / ATLAS_DB_UNREACHABLE. */
export async function openPgliteDriver(opts: PgliteDriverOptions): Promise<AtlasDbDriver> {
  const dir = resolve(opts.dir);
  const describe = `embedded (PGlite) at ${dir}`;
  await mkdir(dirname(dir), { recursive: true }).catch((err: unknown) => {
    throw cannotOpen(describe, err, `make ${dirname(dir)} writable for hearth or choose another atlas.files`);
  });
  const lock = await EmbeddedDirLock.acquire(`${dir}.lock`, `the embedded database at ${dir}`);
  try {
    await mkdir(dir, { recursive: true });
    const pglite = await PGlite.create({ dataDir: dir, parsers, serializers });
    return new PgliteDriver(pglite, lock, describe);
  } catch (err) {
    await lock.release();
    throw cannotOpen(
      describe,
      err,
      `check that ${dir} is writable and holds a database of this hearth's PGlite (or is empty)`,
    );
  }
}

function cannotOpen(describe: string, err: unknown, hint: string): HearthError {
  return new HearthError(
    'ATLAS_DB_UNREACHABLE',
    `atlas.database: cannot open ${describe} (${describeError(err)}): ${hint}`,
    {
      cause: err,
    },
  );
}

class PgliteDriver implements AtlasDbDriver {
  readonly kind = 'pglite' as const;
  readonly describe: string;
  private readonly pglite: PGlite;
  private readonly lock: EmbeddedDirLock;
  private closed: Promise<void> | undefined;

  constructor(pglite: PGlite, lock: EmbeddedDirLock, describe: string) {
    this.pglite = pglite;
    this.lock = lock;
    this.describe = describe;
  }

  async query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]> {
    return (await this.pglite.query<R>(sql, params ? [...params] : undefined)).rows;
  }

  // PGlite runs in this process and hands over rows without a text round trip: the rows come as one
  // batch, with the conventions of `query` (the columns' types are PostgreSQL's own).
  async *copyRows<R>(select: string, params: readonly (string | number)[], _columns: CopyColumns): AsyncIterable<R[]> {
    yield await this.query<R>(select, params);
  }

  async exec<R = Record<string, unknown>>(script: string): Promise<R[]> {
    return ((await this.pglite.exec(script)).at(-1)?.rows ?? []) as R[];
  }

  async ping(): Promise<void> {
    await this.pglite.query('select 1');
  }

  // PGlite has LISTEN/NOTIFY within its one process (the only one that may open the embedded database).
  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    const subscriber = (payload: string) => onNotify(payload);
    const unlisten = await this.pglite.listen(channel, subscriber);
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      await unlisten().catch(() => undefined);
    };
  }

  transaction<T>(fn: (tx: AtlasTransaction) => Promise<T>): Promise<T> {
    return this.pglite.transaction((tx) =>
      fn({ query: async (sql, params) => (await tx.query<never>(sql, params ? [...params] : undefined)).rows }),
    );
  }

  // PGlite is a single connection: the instance itself is the migration session. Its
  // transaction() holds every other query back until it ends, so nothing interleaves.
  withMigrationSession<T>(fn: (session: MigrationSession) => Promise<T>): Promise<T> {
    const pglite = this.pglite;
    return fn({
      query: async (sql, params) => (await pglite.query<never>(sql, params ? [...params] : undefined)).rows,
      transaction: (body) =>
        pglite.transaction((tx) =>
          body({
            query: async (sql, params) => (await tx.query<never>(sql, params ? [...params] : undefined)).rows,
            exec: async (script) => {
              await tx.exec(script);
            },
          }),
        ),
    });
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      try {
        await this.pglite.close();
      } finally {
        await this.lock.release();
      }
    })();
    return this.closed;
  }
}
