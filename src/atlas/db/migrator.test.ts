import { afterEach, describe, expect, it } from 'vitest';
import { captureLog } from '../../../test/support/log.js';
import { freshEmbeddedAtlas } from '../../../test/support/pglite.js';
import { createTestDatabase, sharedPostgresUrl } from '../../../test/support/postgres.js';
import { isHearthError } from '../../errors.js';
import { parsePostgresUrl } from './database-url.js';
import type { AtlasDbDriver } from './driver.js';
import type { Migration } from './migrations/index.js';
import { applyMigrations, readMigrationStatus } from './migrator.js';
import { openPostgresDriver } from './pg/driver.js';
import { openPgliteDriver } from './pglite/driver.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean();
});

const backends: { name: string; open(): Promise<AtlasDbDriver> }[] = [
  {
    name: 'pglite',
    async open() {
      const atlas = await freshEmbeddedAtlas();
      cleanups.push(atlas.cleanup);
      const driver = await openPgliteDriver({ dir: atlas.embeddedDir });
      cleanups.push(() => driver.close());
      return driver;
    },
  },
  {
    name: 'postgres',
    async open() {
      const db = await createTestDatabase(sharedPostgresUrl());
      cleanups.push(db.drop);
      const driver = await openPostgresDriver({
        target: parsePostgresUrl(db.url),
        log: captureLog().log,
        maxConnections: 2,
        connectTimeoutMs: 5000,
        statementTimeoutMs: 10_000,
      });
      cleanups.push(() => driver.close());
      return driver;
    },
  },
];

const good: Migration = { id: '0001_good', sql: 'create table good (id int primary key);' };
const broken: Migration = {
  id: '0002_broken',
  sql: 'create table half_done (id int);\ninsert into good values (1);\nselect no_such_function();',
};
const fixed: Migration = { id: '0002_broken', sql: 'create table half_done (id int);' };

describe.each(backends)('applyMigrations on $name', (backend) => {
  it('rolls a failing migration back whole, keeps the ones before it, and resumes once it is fixed', async () => {
    const driver = await backend.open();
    const { log } = captureLog();
    const migrate = (list: Migration[]) =>
      driver.withMigrationSession((session) => applyMigrations(session, list, log, driver.describe));

    const err = await migrate([good, broken]).catch((e: unknown) => e);
    expect(isHearthError(err, 'ATLAS_DB_MIGRATION_FAILED')).toBe(true);
    expect((err as Error).message).toContain('0002_broken');
    expect((err as Error).message).toContain('no_such_function');

    expect(await readMigrationStatus(driver, [good, broken])).toMatchObject({
      applied: ['0001_good'],
      pending: ['0002_broken'],
    });
    expect(await driver.query(`select to_regclass('half_done') as t`)).toEqual([{ t: null }]);
    expect(await driver.query('select * from good')).toEqual([]);

    expect(await migrate([good, fixed])).toEqual({ applied: ['0002_broken'] });
    expect((await readMigrationStatus(driver, [good, fixed])).current).toBe(true);
  });
});
