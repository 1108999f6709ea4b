// Idle workers wake on the queue's NOTIFY, not on a poll: two nodes share one real PostgreSQL Atlas,
// both with the fallback polls set to 2 minutes. Work queued where nothing runs it (a job submitted
// through an API-only node, a prompt queued by a service that runs no prompts) must start on the
// other node far sooner than any poll would find it: only the notification can wake it. Bounds are
// coarse (40 s against a 120 s poll); speed itself is measured in bench/idle.ts.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAtlasDb } from '../src/atlas/db/index.js';
import { silentLogger } from '../src/log.js';
import { WorkflowService } from '../src/workflows/service.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { call, createModel, finished, jsonlDataset, putFile, waitForJob } from './support/jobs.js';
import { makeTestModels } from './support/models.js';
import { createTestDatabase, sharedPostgresUrl, withAdmin } from './support/postgres.js';

/** Far longer than any bound below: work found by the poll would fail the test. */
const POLL = '120s';
/** How soon queued work must be done on the other node (a tiny job or prompt takes a few seconds). */
const PROMPTLY_MS = 40_000;

let dirs: HearthDirs;
let other: HearthDirs;
let api: InProcessHearth | undefined;
let worker: InProcessHearth | undefined;
let database: { url: string; drop(): Promise<void> };

beforeAll(async () => {
  dirs = await hearthDirs('hearth-wake-');
  other = await hearthDirs('hearth-wake-b-');
  const models = await makeTestModels(join(dirs.root));
  database = await createTestDatabase(sharedPostgresUrl());
  const atlas = { files: dirs.atlas, database: database.url };
  const slow = { jobs: { pollInterval: POLL }, workflows: { pollInterval: POLL } };
  // Node A answers the API only: it runs no job work.
  api = await startHearthInProcess(dirs, { ...slow, atlas, node: { id: 'node-a', jobs: { concurrency: 0 } } });
  worker = await startHearthInProcess(other, { ...slow, atlas, node: { cacheDir: other.cache, id: 'node-b' } });
  await createModel(api.url, 'chat', models.chat);
}, 300_000); // test models, a database and two nodes: slow on a busy 2-core machine

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await database?.drop();
  await other?.cleanup();
  await dirs?.cleanup();
});

/** Submits a tiny job through node A and waits (within PROMPTLY_MS) for it to end; returns its id. */
async function jobThroughApi(name: string, records: number): Promise<string> {
  await putFile(api!.url, `datasets/${name}.jsonl`, jsonlDataset(records));
  const submitted = await call(api!.url, '/api/jobs', {
    input: `datasets/${name}.jsonl`,
    model: 'chat',
    template: '{{text}}',
    key_field: 'id',
    options: { num_predict: 2 },
    output: `results/${name}`,
  });
  expect(submitted.status, submitted.text).toBe(201);
  const job = await waitForJob(api!.url, submitted.json.id, finished, PROMPTLY_MS);
  expect(job.state, job.error).toBe('succeeded');
  return submitted.json.id;
}

describe('idle nodes woken by the queue notification', () => {
  it('runs a job submitted on an API-only node on the other node, without waiting for a poll', async () => {
    const id = await jobThroughApi('wake', 4);
    const logs = (await call(api!.url, `/api/jobs/${id}/logs`)).json.events.map((e: any) => e.message);
    expect(logs).toContainEqual(expect.stringMatching(/^planned on node-b:/));
  });

  it('wakes again after its listening connection is cut (PostgreSQL restarting)', async () => {
    const name = new URL(database.url).pathname.slice(1);
    const cut = await withAdmin(sharedPostgresUrl(), (c) =>
      c.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = 'hearth-listen'`,
        [name],
      ),
    );
    expect(cut.rowCount).toBe(2); // one listening connection per node
    await jobThroughApi('again', 2);
  });

  it('starts a prompt queued by a node that runs no prompts, without waiting for a poll', async () => {
    const db = await openAtlasDb({
      database: database.url,
      embeddedDir: join(dirs.root, 'unused'),
      log: silentLogger(),
    });
    const queuer = await WorkflowService.open({
      db,
      database: database.url,
      files: undefined as never,
      engine: undefined as never,
      inference: undefined as never,
      images: undefined as never,
      cacheDir: join(dirs.root, 'queuer-cache'),
      nodeId: 'queuer',
      log: silentLogger(),
      settings: {
        cacheMaxBytes: 1 << 20,
        memoryCacheMaxBytes: 1 << 20,
        pollIntervalMs: 120_000,
        leaseMs: 60_000,
        maxAttempts: 3,
      },
      runPrompts: false,
    });
    try {
      const { prompt_id } = await queuer.submit({
        prompt: {
          '1': { class_type: 'Text', inputs: { text: 'woken' } },
          '2': { class_type: 'SaveText', inputs: { text: ['1', 0], filename_prefix: 'wake' } },
        },
      });
      const deadline = Date.now() + PROMPTLY_MS;
      let entry: any;
      while (!entry && Date.now() < deadline) {
        entry = (await call(worker!.url, `/history/${prompt_id}`)).json[prompt_id];
        if (!entry) await new Promise((r) => setTimeout(r, 200));
      }
      expect(entry?.status, 'the prompt did not finish within the bound').toMatchObject({
        status_str: 'success',
        completed: true,
      });
      expect(entry.outputs['2'].text).toEqual(['woken']);
    } finally {
      await queuer.close();
      await db.close();
    }
  });
});
