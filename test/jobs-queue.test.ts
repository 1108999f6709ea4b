// The job queue (pg-boss on the Atlas database) on both backends: leases, heartbeats, retries,
// dead letters, and sends that live or die with the transaction around them.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { type AtlasDb, openAtlasDb } from '../src/atlas/db/index.js';
import { JobQueue, type JobQueueOptions } from '../src/jobs/queue.js';
import { silentLogger } from '../src/log.js';
import { freshEmbeddedAtlas } from './support/pglite.js';
import { createTestDatabase, sharedPostgresUrl } from './support/postgres.js';

const backends = [
  {
    name: 'embedded PGlite',
    async open() {
      const atlas = await freshEmbeddedAtlas();
      return { database: 'embedded', embeddedDir: atlas.embeddedDir, cleanup: atlas.cleanup };
    },
  },
  {
    name: 'real PostgreSQL',
    async open() {
      const db = await createTestDatabase(sharedPostgresUrl());
      return { database: db.url, embeddedDir: '/nonexistent', cleanup: db.drop };
    },
  },
];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean();
});

async function setup(backend: (typeof backends)[number], overrides: Partial<JobQueueOptions> = {}) {
  const where = await backend.open();
  cleanups.push(where.cleanup);
  const db: AtlasDb = await openAtlasDb({
    database: where.database,
    embeddedDir: where.embeddedDir,
    log: silentLogger(),
  });
  cleanups.push(() => db.close());
  const open = (node: string) =>
    JobQueue.open({
      db,
      database: where.database,
      log: silentLogger(),
      node,
      leaseMs: 1000,
      maxAttempts: 3,
      retryDelayMs: 1000,
      maintenanceIntervalMs: 1000,
      ...overrides,
    });
  const queue = await open('node-a');
  cleanups.push(() => queue.close());
  return { db, queue, open };
}

/** Fetches until something comes (bounded), as a worker's poll loop would. */
async function fetchWithin(queue: JobQueue, ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const got = await queue.fetch(1);
    if (got.length) return got;
    await sleep(200);
  }
  return [];
}

describe.each(backends)('job queue on $name', (backend) => {
  it('sends only when the transaction commits', async () => {
    const { db, queue } = await setup(backend);
    await expect(
      db.transaction(async (tx) => {
        await queue.send(tx, [{ kind: 'plan', jobId: 'rolled-back' }]);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await queue.fetch(5)).toEqual([]);
    await db.transaction((tx) =>
      queue.send(tx, [
        { kind: 'shard', jobId: 'j1', shard: 0 },
        { kind: 'plan', jobId: 'j1' },
      ]),
    );
    // The plan comes first: it has priority.
    const got = [...(await queue.fetch(1)), ...(await queue.fetch(5))];
    expect(got.map((t) => t.work)).toEqual([
      { kind: 'plan', jobId: 'j1' },
      { kind: 'shard', jobId: 'j1', shard: 0 },
    ]);
    for (const t of got) await db.transaction((tx) => queue.complete(tx, t));
    expect(await queue.fetch(5)).toEqual([]);
  });

  it('keeps a lease alive with heartbeats, and retries it on expiry with the attempt counted', async () => {
    const { db, queue } = await setup(backend);
    await db.transaction((tx) => queue.send(tx, [{ kind: 'plan', jobId: 'j2' }]));
    const [held] = await queue.fetch(1);
    expect(held?.retryCount).toBe(0);
    // Heartbeats over three lease lengths keep it ours.
    for (let i = 0; i < 6; i++) {
      await sleep(500);
      expect(await queue.heartbeat(held!)).toBe(true);
    }
    // Stop beating: maintenance expires it and it comes back (after the backoff) as attempt 2.
    const again = await fetchWithin(queue, 15_000);
    expect(again[0]?.id).toBe(held!.id);
    expect(again[0]?.retryCount).toBe(1);
    expect(await queue.heartbeat(held!)).toBe(false);
  });

  it('release puts a ticket back at once without counting an attempt', async () => {
    const { db, queue } = await setup(backend);
    await db.transaction((tx) => queue.send(tx, [{ kind: 'finalize', jobId: 'j3' }]));
    const [held] = await queue.fetch(1);
    await queue.release(held!);
    const [again] = await queue.fetch(1);
    expect(again?.id).toBe(held!.id);
    expect(again?.retryCount).toBe(0);
  });

  it('dead-letters a ticket after its last attempt, and cancels a job’s open tickets', async () => {
    const { db, queue } = await setup(backend, { maxAttempts: 1 });
    await db.transaction((tx) => queue.send(tx, [{ kind: 'shard', jobId: 'j4', shard: 3 }]));
    const [held] = await queue.fetch(1);
    expect(await queue.fail(held!, new Error('GPU fell off the bus'))).toBe('dead');
    const dead = await queue.fetchDead(5);
    expect(dead).toEqual([
      { id: expect.any(String), work: { kind: 'shard', jobId: 'j4', shard: 3 }, error: 'GPU fell off the bus' },
    ]);
    await db.transaction((tx) => queue.completeDead(tx, dead[0]!));

    await db.transaction((tx) =>
      queue.send(tx, [
        { kind: 'shard', jobId: 'j5', shard: 0 },
        { kind: 'shard', jobId: 'j5', shard: 1 },
      ]),
    );
    const [active] = await queue.fetch(1);
    expect(await db.transaction((tx) => queue.cancelJob(tx, 'j5'))).toBe(2);
    expect(await queue.fetch(5)).toEqual([]);
    expect(await queue.heartbeat(active!)).toBe(false);
  });

  it('fails the tickets a previous process of this node held, so they need not wait for the lease', async () => {
    const { db, queue, open } = await setup(backend, { leaseMs: 3_600_000 });
    await db.transaction((tx) => queue.send(tx, [{ kind: 'plan', jobId: 'j6' }]));
    const [held] = await queue.fetch(1);
    const restarted = await open('node-a');
    cleanups.push(() => restarted.close());
    expect(await restarted.reclaimOrphans()).toBe(1);
    expect(await queue.heartbeat(held!)).toBe(false);
    const again = await fetchWithin(restarted, 10_000);
    expect(again[0]?.work).toEqual({ kind: 'plan', jobId: 'j6' });
  });
});
