// Batch jobs against real `hearth serve` processes: the crash drill (SIGKILL mid-job at several points,
// delete the node cache, restart: the job completes with every key exactly once), and two nodes on one
// real PostgreSQL splitting a job, one of them killed. (The GPU-loss path is in jobs-batch.test.ts.)
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthDirs, type HearthProcess, hearthDirs, startHearthProcess } from './support/hearth.js';
import { call, createModel, finished, jsonlDataset, putFile, waitForJob } from './support/jobs.js';
import { makeTestModels, type TestModels } from './support/models.js';
import { createTestDatabase, sharedPostgresUrl } from './support/postgres.js';

// Short leases and quick retries, so lost work comes back within seconds.
const JOB_ENV = {
  HEARTH_JOBS_LEASE: '3s',
  HEARTH_JOBS_RETRY_DELAY: '1s',
  HEARTH_JOBS_MAINTENANCE_INTERVAL: '1s',
  HEARTH_JOBS_POLL_INTERVAL: '200ms',
  HEARTH_NODE_JOBS_CONCURRENCY: '2',
  HEARTH_INFERENCE_NUM_PARALLEL: '4',
  HEARTH_INFERENCE_NUM_CTX: '256',
  HEARTH_LOG_LEVEL: 'warn',
};

let models: TestModels;
let modelDir: string;
const processes: HearthProcess[] = [];

beforeAll(async () => {
  modelDir = await mkdtemp(join(tmpdir(), 'hearth-jobs-models-'));
  models = await makeTestModels(modelDir);
});
afterAll(async () => {
  for (const p of processes) await p.stop('SIGKILL');
  await rm(modelDir, { recursive: true, force: true });
});

async function start(opts: Parameters<typeof startHearthProcess>[0]): Promise<HearthProcess> {
  const started = await startHearthProcess({ ...opts, env: { ...JOB_ENV, HEARTH_LOG_LEVEL: 'info', ...opts.env } });
  processes.push(started);
  return started;
}

/** Every output row of a finished job, checked against its manifest (sha256 and row counts). */
async function outputRows(atlas: string, output: string): Promise<any[]> {
  const folder = join(atlas, output);
  const manifest = JSON.parse(await readFile(join(folder, '_manifest.json'), 'utf8'));
  const rows: any[] = [];
  for (const shard of manifest.shards) {
    const bytes = await readFile(join(folder, shard.file));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(shard.sha256);
    const lines = bytes
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.length).toBe(shard.rows);
    rows.push(...lines);
  }
  expect(manifest.counts.ok).toBe(rows.length);
  return rows;
}

function expectEachKeyOnce(rows: any[], count: number): void {
  const keys = rows.map((r) => r.key).sort();
  expect(keys.length).toBe(count);
  expect(keys).toEqual(Array.from({ length: count }, (_, i) => `r${String(i).padStart(4, '0')}`));
}

const between = (low: number, high: number) => low + Math.floor(Math.random() * (high - low));

describe('on the embedded Atlas (PGlite)', () => {
  let dirs: HearthDirs;

  beforeAll(async () => {
    dirs = await hearthDirs('hearth-jobs-drill-');
  });
  afterAll(async () => {
    await dirs?.cleanup();
  });

  it('crash drill: SIGKILL at several points mid-job, node cache deleted each time; every key exactly once', async () => {
    let node = await start({ dirs });
    await createModel(node.url, 'chat', models.chat);
    await putFile(node.url, 'datasets/drill.jsonl', jsonlDataset(500));
    const submitted = await call(node.url, '/api/jobs', {
      input: 'datasets/drill.jsonl',
      model: 'chat',
      template: 'Describe {{text}}',
      key_field: 'id',
      options: { num_predict: 2 },
      output: 'results/drill',
      shard_size: 25,
    });
    expect(submitted.status, submitted.text).toBe(201);
    const id = submitted.json.id;

    // SIGKILL early (first shards running), in the middle and late (the last shards, or finalizing);
    // one clean SIGTERM between them hands its work back without counting an attempt.
    const stops: Array<{ at: number; signal: NodeJS.Signals }> = [
      { at: between(5, 60), signal: 'SIGKILL' },
      { at: between(100, 180), signal: 'SIGTERM' },
      { at: between(220, 320), signal: 'SIGKILL' },
      { at: between(420, 499), signal: 'SIGKILL' },
    ];
    for (const { at, signal } of stops) {
      const seen = await waitForJob(node.url, id, (j) => j.progress.records_done >= at || finished(j), 120_000);
      expect(seen.state, `${seen.error}\n${node.logs().slice(-3000)}`).not.toBe('failed');
      const code = await node.stop(signal);
      if (signal === 'SIGTERM') expect(code, node.logs().slice(-3000)).toBe(0);
      await rm(dirs.cache, { recursive: true, force: true });
      node = await start({ dirs });
    }
    const done = await waitForJob(node.url, id, finished, 120_000);
    expect(done.state, done.error).toBe('succeeded');
    expect(done.progress).toMatchObject({ records_total: 500, records_ok: 500, records_failed: 0 });
    expectEachKeyOnce(await outputRows(dirs.atlas, 'results/drill'), 500);
    // Nothing but the published shards, the errors file and the manifest under final names.
    const listed = await call(node.url, '/api/files?prefix=results/drill/');
    expect(
      listed.json.files
        .map((f: any) => f.key)
        .filter((k: string) => !/\/(part-\d{5}\.jsonl|_manifest\.json|_errors\.jsonl)$/.test(k)),
    ).toEqual([]);
    expect(await node.stop('SIGTERM')).toBe(0);
    // Four hearth starts, each loading the model into a new llama-server: over a minute on a busy 2-core machine.
  }, 180_000);
});

describe('two nodes on one real PostgreSQL Atlas', () => {
  let dirs: HearthDirs;
  let database: { url: string; drop(): Promise<void> };

  beforeAll(async () => {
    dirs = await hearthDirs('hearth-jobs-two-');
    database = await createTestDatabase(sharedPostgresUrl());
  });
  afterAll(async () => {
    for (const p of processes.splice(0)) await p.stop('SIGKILL');
    await database?.drop();
    await dirs?.cleanup();
  });

  it('split one job’s shards; killing one node leaves the other to finish it', async () => {
    const nodeEnv = (name: string) => ({
      HEARTH_NODE_ID: name,
      HEARTH_NODE_CACHE_DIR: join(dirs.root, `cache-${name}`),
    });
    const a = await start({ dirs, database: database.url, env: nodeEnv('node-a') });
    const b = await start({ dirs, database: database.url, env: nodeEnv('node-b') });
    await createModel(a.url, 'chat', models.chat);
    await putFile(a.url, 'datasets/two.jsonl', jsonlDataset(600));
    const submitted = await call(a.url, '/api/jobs', {
      input: 'datasets/two.jsonl',
      model: 'chat',
      template: 'About {{text}}',
      key_field: 'id',
      options: { num_predict: 2 },
      output: 'results/two',
      shard_size: 20,
    });
    expect(submitted.status, submitted.text).toBe(201);
    const id = submitted.json.id;
    const committedOn = async (node: string) =>
      (await call(a.url, `/api/jobs/${id}/logs`)).json.events.filter((e: any) =>
        e.message.includes(`committed on ${node}`),
      ).length;
    // Both nodes take shards of the one job.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && ((await committedOn('node-a')) === 0 || (await committedOn('node-b')) === 0)) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await committedOn('node-a')).toBeGreaterThan(0);
    expect(await committedOn('node-b')).toBeGreaterThan(0);
    const before = await waitForJob(a.url, id, () => true);
    expect(before.state).toBe('running');

    await b.stop('SIGKILL');
    const done = await waitForJob(a.url, id, finished, 120_000);
    expect(done.state, done.error).toBe('succeeded');
    expectEachKeyOnce(await outputRows(dirs.atlas, 'results/two'), 600);
    expect(await a.stop('SIGTERM')).toBe(0);
  });
});
