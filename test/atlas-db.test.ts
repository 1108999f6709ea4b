import { afterEach, describe, expect, it, vi } from 'vitest';
import { type AtlasDb, type AtlasDbOptions, NOTIFY_PAYLOAD_MAX_BYTES, openAtlasDb } from '../src/atlas/db/index.js';
import { isHearthError } from '../src/errors.js';
import { captureLog } from './support/log.js';
import { freshEmbeddedAtlas } from './support/pglite.js';
import { createTestDatabase, sharedPostgresUrl, startPostgres, withAdmin } from './support/postgres.js';

/** A fresh, empty database for one test and how to get rid of it. */
interface Fresh {
  where: Pick<AtlasDbOptions, 'database' | 'embeddedDir'>;
  cleanup(): Promise<void>;
}

const backends: { name: 'pglite' | 'postgres'; fresh(opts?: { empty?: boolean }): Promise<Fresh> }[] = [
  {
    name: 'pglite',
    async fresh(opts) {
      const atlas = await freshEmbeddedAtlas(opts);
      return { where: { database: 'embedded', embeddedDir: atlas.embeddedDir }, cleanup: atlas.cleanup };
    },
  },
  {
    name: 'postgres',
    async fresh() {
      const db = await createTestDatabase(sharedPostgresUrl());
      return { where: { database: db.url, embeddedDir: '/nonexistent/not-used' }, cleanup: db.drop };
    },
  },
];

// Everything a test opens is closed and removed after it, even when it fails.
const toClose: AtlasDb[] = [];
const toClean: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((db) => db.close()));
  for (const clean of toClean.splice(0).reverse()) await clean();
});

async function open(opts: AtlasDbOptions): Promise<AtlasDb> {
  const db = await openAtlasDb(opts);
  toClose.push(db);
  return db;
}

async function fresh(backend: (typeof backends)[number], opts?: { empty?: boolean }): Promise<Fresh> {
  const made = await backend.fresh(opts);
  toClean.push(made.cleanup);
  return made;
}

const migrationsApplied = (records: Record<string, unknown>[]) =>
  records.filter((r) => r['msg'] === 'atlas database migration applied').map((r) => r['migration']);

describe.each(backends)('Atlas database on $name', (backend) => {
  it('applies the migrations on open; reopening applies nothing and keeps the data', async () => {
    // PGlite: the folder does not exist yet, as on a first start.
    const { where } = await fresh(backend, { empty: true });
    const first = captureLog();
    const db = await open({ ...where, log: first.log });
    expect(migrationsApplied(first.records)).toContain('0001_foundation');
    expect(await db.migrationStatus()).toMatchObject({ current: true, pending: [], unknown: [] });
    await db.query('insert into settings (key, value) values ($1, $2)', ['ui.theme', { dark: true }]);
    await db.close();

    const second = captureLog();
    const again = await open({ ...where, log: second.log });
    expect(migrationsApplied(second.records)).toEqual([]);
    expect(await again.migrate()).toEqual({ applied: [] });
    const status = await again.migrationStatus();
    expect(status.current).toBe(true);
    expect(status.applied).toContain('0001_foundation');
    const [setting] = await again.query<{ value: unknown }>('select value from settings where key = $1', ['ui.theme']);
    expect(setting?.value).toEqual({ dark: true });
  });

  it('migrates to the schema in test/__snapshots__/atlas-schema.txt (the same on both backends)', async () => {
    // The migrations are the one statement of the schema: a change to them shows up here, in review.
    const { where } = await fresh(backend);
    const db = await open({ ...where, log: captureLog().log });
    const columns = await db.query<{ line: string }>(
      `select table_name || '.' || column_name || ' ' || data_type
              || case when is_nullable = 'NO' then ' not null' else '' end
              || coalesce(' default ' || column_default, '') as line
         from information_schema.columns
        where table_schema = 'public'
        order by table_name, ordinal_position`,
    );
    await expect(`${columns.map((c) => c.line).join('\n')}\n`).toMatchFileSnapshot('__snapshots__/atlas-schema.txt');
  });

  it('refuses a database that a newer hearth has migrated, naming the migration', async () => {
    const { where } = await fresh(backend);
    const db = await open({ ...where, log: captureLog().log });
    await db.query('insert into hearth_migrations (id) values ($1)', ['9999_from_the_future']);
    await db.close();

    const err = await openAtlasDb({ ...where, log: captureLog().log }).catch((e: unknown) => e);
    expect(isHearthError(err, 'ATLAS_DB_SCHEMA_TOO_NEW')).toBe(true);
    expect((err as Error).message).toContain('9999_from_the_future');

    // Opening without migrating still works (for `hearth db status`), and says why it is not current.
    const readOnly = await open({ ...where, log: captureLog().log, migrate: false });
    expect(await readOnly.migrationStatus()).toMatchObject({ current: false, unknown: ['9999_from_the_future'] });
  });

  it('gives the same answers through query, exec and transaction', async () => {
    const { where } = await fresh(backend);
    const db = await open({ ...where, log: captureLog().log });
    await db.query('insert into nodes (id, hostname, version) values ($1, $2, $3)', ['gpu-1', 'gpu-box', '0.1.0']);

    const [row] = await db.query<{ started_at: unknown; n: unknown }>(
      'select started_at, (select count(*) from nodes) as n from nodes where id = $1',
      ['gpu-1'],
    );
    expect(row?.started_at).toBeInstanceOf(Date);
    expect(row?.n).toBe('1'); // int8 as a string on both backends, as node-postgres does

    const failed = await db
      .transaction(async (tx) => {
        await tx.query('insert into nodes (id, hostname, version) values ($1, $2, $3)', ['gpu-2', 'other', '0.1.0']);
        throw new Error('changed my mind');
      })
      .catch((e: unknown) => e);
    expect((failed as Error).message).toBe('changed my mind');
    const inside = await db.transaction(async (tx) => {
      await tx.query('insert into nodes (id, hostname, version) values ($1, $2, $3)', ['gpu-3', 'third', '0.1.0']);
      // the same conventions inside a transaction as outside
      return tx.query<{ started_at: unknown; n: unknown }>(
        'select started_at, (select count(*) from nodes) as n from nodes where id = $1',
        ['gpu-3'],
      );
    });
    expect(inside[0]?.started_at).toBeInstanceOf(Date);
    expect(inside[0]?.n).toBe('2');
    const ids = (await db.query<{ id: string }>('select id from nodes order by id')).map((n) => n.id);
    expect(ids).toEqual(['gpu-1', 'gpu-3']);
    // several statements, no parameters: the rows of the last one
    const last = await db.exec<{ n: number }>(
      'create temporary table t (n int); insert into t values (7); select n from t',
    );
    expect(last).toEqual([{ n: 7 }]);
    await expect(db.ping(2000)).resolves.toBeUndefined();
  });

  it('delivers notifications to each listener of a channel until it stops listening; refuses oversized payloads', async () => {
    const { where } = await fresh(backend);
    const db = await open({ ...where, log: captureLog().log });
    const heard: string[] = [];
    const other: string[] = [];
    const stop = await db.listen('hearth_test', (p) => heard.push(p));
    const stopOther = await db.listen('hearth_test', (p) => other.push(`b:${p}`));
    await db.notify('hearth_test', '{"id":"r1","length":12}');
    await db.notify('hearth_elsewhere', 'not for them');
    await vi.waitFor(() => expect(other).toEqual(['b:{"id":"r1","length":12}']));
    expect(heard).toEqual(['{"id":"r1","length":12}']);
    await stop();
    await db.notify('hearth_test', 'second');
    await vi.waitFor(() => expect(other).toHaveLength(2));
    expect(heard).toHaveLength(1);
    await stopOther();

    const tooLong = await db.notify('hearth_test', 'x'.repeat(NOTIFY_PAYLOAD_MAX_BYTES + 1)).catch((e: unknown) => e);
    expect(isHearthError(tooLong, 'INTERNAL')).toBe(true);
    expect((tooLong as Error).message).toContain("over PostgreSQL's limit (7999)");
    const badName = await db.listen('Robert"); drop table nodes; --', () => undefined).catch((e: unknown) => e);
    expect((badName as Error).message).toContain('is not a channel name');
  });
});

describe('Atlas database on PostgreSQL', () => {
  it('lets several nodes start at once on a fresh database, applying each migration once', async () => {
    const { where } = await fresh(backends[1]!);
    const logs = Array.from({ length: 5 }, () => captureLog());
    const dbs = await Promise.all(logs.map(({ log }) => open({ ...where, log })));
    expect(dbs).toHaveLength(5);
    expect(logs.flatMap((l) => migrationsApplied(l.records)).filter((id) => id === '0001_foundation')).toHaveLength(1);
    for (const db of dbs) expect((await db.migrationStatus()).current).toBe(true);
  });

  it('explains an unreachable server without showing the password', async () => {
    // A port nothing listens on: take one from a server we stop.
    const closedPort = await new Promise<number>((resolve) => {
      import('node:net').then(({ createServer }) => {
        const server = createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as { port: number };
          server.close(() => resolve(port));
        });
      });
    });
    const err = await openAtlasDb({
      database: `postgres://hearth:s3cret-pass@127.0.0.1:${closedPort}/hearth`,
      embeddedDir: '/nonexistent',
      log: captureLog().log,
      connectTimeoutMs: 3000,
    }).catch((e: unknown) => e);
    expect(isHearthError(err, 'ATLAS_DB_UNREACHABLE')).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain(`postgres://hearth:***@127.0.0.1:${closedPort}/hearth`);
    expect(message).toContain('ECONNREFUSED');
    expect(message).not.toContain('s3cret-pass');
  });

  it('explains a wrong password and a missing database', async () => {
    const admin = sharedPostgresUrl();
    const role = `hearth_role_${Math.random().toString(36).slice(2, 8)}`;
    await withAdmin(admin, (c) => c.query(`create role ${role} login password 'right-pass'`));
    toClean.push(async () => {
      await withAdmin(admin, (c) => c.query(`drop role if exists ${role}`));
    });
    const base = new URL(admin);
    const url = (password: string, database: string) =>
      `postgres://${role}:${password}@127.0.0.1:${base.port}/${database}`;

    const badPassword = await openAtlasDb({
      database: url('wrong-pass', 'postgres'),
      embeddedDir: '',
      log: captureLog().log,
    })
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(isHearthError(badPassword, 'ATLAS_DB_UNREACHABLE')).toBe(true);
    expect((badPassword as Error).message).toMatch(/authentication failed for user/);
    expect((badPassword as Error).message).not.toContain('wrong-pass');

    const noDatabase = await openAtlasDb({
      database: url('right-pass', 'no_such_db'),
      embeddedDir: '',
      log: captureLog().log,
    })
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(isHearthError(noDatabase, 'ATLAS_DB_UNREACHABLE')).toBe(true);
    expect((noDatabase as Error).message).toMatch(/database 'no_such_db' does not exist/);
    expect((noDatabase as Error).message).not.toContain('right-pass');
  });

  it('reports the server gone while it is stopped and works again once it is back, with no reopen', async () => {
    const server = await startPostgres();
    toClean.push(server.destroy);
    const { url } = await createTestDatabase(server.url);
    const { log, records } = captureLog();
    const db = await open({ database: url, embeddedDir: '', log, connectTimeoutMs: 3000 });
    await db.query('insert into settings (key, value) values ($1, $2)', ['k', 1]);
    // Leave a few idle connections in the pool for the stop to kill.
    await Promise.all([1, 2, 3].map(() => db.query('select pg_sleep(0.05)')));

    // A transaction is under way when the server goes: its connection dies while lent out.
    let serverStopped!: () => void;
    const stopped = new Promise<void>((resolve) => {
      serverStopped = resolve;
    });
    const interrupted = db
      .transaction(async (tx) => {
        await tx.query('insert into settings (key, value) values ($1, $2)', ['during', 2]);
        await stopped;
        await tx.query('insert into settings (key, value) values ($1, $2)', ['after', 3]);
      })
      .catch((e: unknown) => e);
    await vi.waitFor(async () => expect(await countSessions(server.url, url)).toBeGreaterThan(0));
    await server.stop();
    serverStopped();
    expect(isHearthError(await interrupted, 'ATLAS_DB_UNREACHABLE')).toBe(true);

    const down = await db.ping(5000).catch((e: unknown) => e);
    expect(isHearthError(down, 'ATLAS_DB_UNREACHABLE')).toBe(true);
    expect((down as Error).message).toContain('ECONNREFUSED');
    const lost = await db.query('select 1').catch((e: unknown) => e);
    expect(isHearthError(lost, 'ATLAS_DB_UNREACHABLE')).toBe(true);
    // The pool's dropped connections were logged, not thrown at the process.
    expect(records.some((r) => r['msg'] === 'atlas database connection lost; it is replaced on next use')).toBe(true);

    await server.start();
    // The first statement after the restart already works: no dead pooled connection is reused.
    const rows = await db.query<{ key: string }>('select key from settings order by key');
    expect(rows).toEqual([{ key: 'k' }]);
    await expect(db.ping(5000)).resolves.toBeUndefined();
  });

  it('gives back a connection that died unnoticed while idle, so nothing leaks and close() is prompt', async () => {
    const server = await startPostgres();
    toClean.push(server.destroy);
    const { url } = await createTestDatabase(server.url);
    const { log, records } = captureLog();
    const db = await openAtlasDb({ database: url, embeddedDir: '', log, connectTimeoutMs: 3000 });

    // The transaction takes the idle pooled connection, which dies before this process can notice.
    const failed = db.transaction(async () => 'never runs').catch((e: unknown) => e);
    server.stopBlocking();
    expect(isHearthError(await failed, 'ATLAS_DB_UNREACHABLE')).toBe(true);

    await server.start();
    expect(await db.transaction(async (tx) => (await tx.query('select key from settings')).length)).toBe(0);
    const started = Date.now();
    await db.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(records.some((r) => String(r['msg']).includes('still in use'))).toBe(false);
  });
});

describe('LISTEN on PostgreSQL', () => {
  it('hears another process, listens again after its connection is killed, and close() releases it', async () => {
    const adminUrl = sharedPostgresUrl();
    const { url, drop } = await createTestDatabase(adminUrl);
    toClean.push(drop);
    const name = new URL(url).pathname.slice(1);
    const listeners = async () =>
      (
        await withAdmin(adminUrl, (c) =>
          c.query("select pid from pg_stat_activity where datname = $1 and application_name = 'hearth-listen'", [name]),
        )
      ).rows as { pid: number }[];
    const { log, records } = captureLog();
    const db = await openAtlasDb({ database: url, embeddedDir: '', log });
    const writer = await open({ database: url, embeddedDir: '', log: captureLog().log });
    expect(await listeners()).toEqual([]); // nobody listens: no connection of its own
    const heard: string[] = [];
    await db.listen('hearth_a', (p) => heard.push(`a:${p}`));
    await db.listen('hearth_b', (p) => heard.push(`b:${p}`));
    const [first, ...more] = await listeners();
    expect(more).toEqual([]); // one connection for every channel
    await writer.notify('hearth_a', 'one');
    await writer.notify('hearth_b', 'two');
    await vi.waitFor(() => expect(heard).toEqual(['a:one', 'b:two']));

    // The connection dies (a server restart, a network cut): it is opened again, both channels listened to.
    await withAdmin(adminUrl, (c) => c.query('select pg_terminate_backend($1)', [first?.pid]));
    await vi.waitFor(
      async () => {
        await writer.notify('hearth_b', 'three');
        expect(heard).toContain('b:three');
      },
      { timeout: 10_000, interval: 200 },
    );
    await writer.notify('hearth_a', 'four');
    await vi.waitFor(() => expect(heard).toContain('a:four'));
    expect(records.some((r) => r['msg'] === 'atlas database listening connection lost; reconnecting')).toBe(true);
    expect(records.some((r) => r['msg'] === 'atlas database listening again')).toBe(true);
    expect(await listeners()).toHaveLength(1);

    await db.close();
    await vi.waitFor(async () => expect(await listeners()).toEqual([]));
  });
});

async function countSessions(adminUrl: string, dbUrl: string): Promise<number> {
  const name = new URL(dbUrl).pathname.slice(1);
  const { rows } = await withAdmin(adminUrl, (c) =>
    c.query("select count(*)::int as n from pg_stat_activity where datname = $1 and state = 'idle in transaction'", [
      name,
    ]),
  );
  return rows[0].n;
}

describe('Atlas database embedded (PGlite)', () => {
  it('refuses a second open of the same folder while the first is open', async () => {
    const { where } = await fresh(backends[0]!);
    const db = await open({ ...where, log: captureLog().log });

    const err = await openAtlasDb({ ...where, log: captureLog().log }).catch((e: unknown) => e);
    expect(isHearthError(err, 'ATLAS_DB_IN_USE')).toBe(true);
    expect((err as Error).message).toContain(`in use by hearth process ${process.pid}`);
    expect((err as Error).message).toContain(where.embeddedDir);

    await db.close();
    const again = await open({ ...where, log: captureLog().log });
    expect((await again.migrationStatus()).current).toBe(true);
  });
});
