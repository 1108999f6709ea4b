// The node's copy of model manifests (src/models/library-cache.ts): a model deleted or changed on
// Atlas stops being served from it at once when the change went through a library (this node's
// or, through NOTIFY, another node's), and within the TTL when it went around every library.
// Two nodes: two libraries with their own database handles (PostgreSQL: two connections, as two
// machines would have; PGlite allows one handle per folder, so there two libraries share it).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { type AtlasDb, openAtlasDb } from '../src/atlas/db/index.js';
import { openFileStore } from '../src/atlas/files/index.js';
import { isHearthError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { ModelLibrary } from '../src/models/library.js';
import { NodeCache } from '../src/node/index.js';
import { freshEmbeddedAtlas } from './support/pglite.js';
import { createTestDatabase, sharedPostgresUrl } from './support/postgres.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean();
});

const backends = [
  {
    name: 'embedded PGlite',
    async open() {
      const atlas = await freshEmbeddedAtlas();
      cleanups.push(atlas.cleanup);
      const db = await openAtlasDb({ database: 'embedded', embeddedDir: atlas.embeddedDir, log: silentLogger() });
      cleanups.push(() => db.close());
      return { dbA: db, dbB: db };
    },
  },
  {
    name: 'real PostgreSQL',
    async open() {
      const created = await createTestDatabase(sharedPostgresUrl());
      cleanups.push(created.drop);
      const open = async () => {
        const db = await openAtlasDb({ database: created.url, embeddedDir: '/nonexistent', log: silentLogger() });
        cleanups.push(() => db.close());
        return db;
      };
      return { dbA: await open(), dbB: await open() };
    },
  },
];

async function library(db: AtlasDb, manifestTtlMs?: number): Promise<ModelLibrary> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-manifests-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const files = await openFileStore(join(dir, 'atlas'));
  const cache = await NodeCache.open({ dir: join(dir, 'cache'), maxBytes: 1 << 20, log: silentLogger() });
  cleanups.push(() => cache.close());
  return new ModelLibrary({ db, files, cache, log: silentLogger(), ...(manifestTtlMs ? { manifestTtlMs } : {}) });
}

/** A manifest row written straight to Atlas (no blob: these tests never load the model). */
async function insertModel(db: AtlasDb, key: string, system: string): Promise<void> {
  await db.query(
    `insert into models (key, name, digest, blob_key, size, details, model_info, system)
     values ($1, $1, $2, 'registered/elsewhere.gguf', 1, '{}', '{}', $3)
     on conflict (key) do update set system = excluded.system, modified_at = now()`,
    [key, 'a'.repeat(64), system],
  );
}

async function notFound(lib: ModelLibrary, name: string): Promise<string> {
  const err = await lib.get(name).then(
    () => null,
    (e: unknown) => e,
  );
  return isHearthError(err) ? err.code : `no error: ${String(err)}`;
}

/** Bounded wait for another node's notification to arrive (it is asynchronous on PostgreSQL). */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

describe.each(backends)('model manifests kept on the node ($name)', (backend) => {
  it('a delete or a change through a library reaches this node and another at once; one around them within the TTL', async () => {
    const { dbA, dbB } = await backend.open();
    const nodeA = await library(dbA, 60_000);
    const nodeB = await library(dbB, 60_000);
    await insertModel(dbA, 'kept:latest', 'first');
    expect((await nodeA.get('kept')).system).toBe('first');
    expect((await nodeB.get('kept')).system).toBe('first');

    // this node's own delete: the next lookup here is a 404 at once
    await nodeA.copy('kept', 'copied');
    expect((await nodeA.get('copied')).system).toBe('first');
    await nodeA.delete('copied');
    expect(await notFound(nodeA, 'copied')).toBe('MODEL_NOT_FOUND');

    // another node's delete: announced, so node A stops serving it without waiting for the TTL
    await nodeA.copy('kept', 'elsewhere');
    expect((await nodeA.get('elsewhere')).name).toBe('elsewhere:latest');
    await nodeB.delete('elsewhere');
    expect(await eventually(async () => (await notFound(nodeA, 'elsewhere')) === 'MODEL_NOT_FOUND')).toBe(true);

    // another node's change (a create over the same name) is announced the same way
    await nodeA.copy('kept', 'renewed');
    expect((await nodeA.get('renewed')).system).toBe('first');
    await dbB.query(`update models set system = 'second' where key = 'renewed:latest'`);
    await nodeB.copy('renewed', 'renewed'); // a library write: announces the key
    expect(await eventually(async () => (await nodeA.get('renewed')).system === 'second')).toBe(true);
  });

  it('a change written around every library (no notification) is seen once the TTL is over', async () => {
    const { dbA } = await backend.open();
    const node = await library(dbA, 300);
    await insertModel(dbA, 'quiet:latest', 'first');
    expect((await node.get('quiet')).system).toBe('first');
    await dbA.query(`delete from models where key = 'quiet:latest'`);
    // still the node's copy right after (what spares the per-request round trip) ...
    expect((await node.get('quiet')).system).toBe('first');
    // ... and gone once the TTL has passed
    await sleep(400);
    expect(await notFound(node, 'quiet')).toBe('MODEL_NOT_FOUND');
  });
});
