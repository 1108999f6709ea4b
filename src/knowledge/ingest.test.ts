import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedAtlas, freshEmbeddedAtlas } from '../../test/support/pglite.js';
import { type AtlasDb, openAtlasDb } from '../atlas/db/index.js';
import type { FileStore } from '../atlas/files/index.js';
import { silentLogger } from '../log.js';
import { KnowledgeIngestion } from './ingest.js';

let atlas: EmbeddedAtlas;
let db: AtlasDb;

beforeAll(async () => {
  atlas = await freshEmbeddedAtlas();
  db = await openAtlasDb({ database: 'embedded', embeddedDir: atlas.embeddedDir, log: silentLogger() });
});

afterAll(async () => {
  await db?.close();
  await atlas?.cleanup();
});

/** PostgreSQL's planner statistics of the chunk table: reltuples is -1 until something analyses it. */
async function reltuples(): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `select reltuples::float8 as n from pg_class where relname = 'knowledge_chunks'`,
  );
  return Number(row?.n);
}

describe('the chunk table on the embedded database (no autovacuum there)', () => {
  it('is analysed after commits cross autovacuum’s threshold, and not before', async () => {
    const ingestion = new KnowledgeIngestion({
      db,
      files: {} as FileStore,
      engine: { embed: async () => Promise.reject(new Error('not used')) },
      inference: {} as never,
      log: silentLogger(),
    });
    const committed = (chunks: number) =>
      (ingestion as unknown as { analyzeLater(chunks: number): void }).analyzeLater(chunks);
    expect(await reltuples()).toBe(-1);
    committed(20); // under 50 + 10% of the table: nothing yet
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(await reltuples()).toBe(-1);
    committed(40); // 60 in all since the last ANALYZE
    await expect.poll(reltuples, { timeout: 10_000, interval: 250 }).toBe(0);
  });
});
