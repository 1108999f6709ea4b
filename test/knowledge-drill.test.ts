// Knowledge ingestion survives SIGKILL: a real `hearth serve` ingesting many documents is killed twice
// mid-job (node cache deleted each time) and restarted; the job finishes, and every chunk of every
// document is stored exactly once (positions 0..n-1, as many as the chunker makes of the document).
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAtlasDb } from '../src/atlas/db/index.js';
import { chunkText } from '../src/knowledge/index.js';
import { silentLogger } from '../src/log.js';
import { type HearthDirs, type HearthProcess, hearthDirs, startHearthProcess } from './support/hearth.js';
import { call, createModel, finished, waitForJob } from './support/jobs.js';
import { makeTestModels } from './support/models.js';

const ENV = {
  HEARTH_JOBS_LEASE: '3s',
  HEARTH_JOBS_RETRY_DELAY: '1s',
  HEARTH_JOBS_MAINTENANCE_INTERVAL: '1s',
  HEARTH_JOBS_POLL_INTERVAL: '200ms',
  HEARTH_NODE_JOBS_CONCURRENCY: '2',
  HEARTH_INFERENCE_NUM_CTX: '256',
  HEARTH_KNOWLEDGE_CHUNK_TOKENS: '16',
  HEARTH_KNOWLEDGE_CHUNK_OVERLAP: '0',
};

const DOCUMENTS = 16;
const PARAGRAPHS = 90;

function documentText(d: number): string {
  const paragraphs = Array.from(
    { length: PARAGRAPHS },
    (_, p) => `Document ${d} paragraph ${p} talks about lamps, shelves and the garden.`,
  );
  return `# Notes ${d}\n\n${paragraphs.join('\n\n')}\n`;
}

let dirs: HearthDirs;
let modelPath: string;
const processes: HearthProcess[] = [];

beforeAll(async () => {
  dirs = await hearthDirs('hearth-knowledge-drill-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  modelPath = (await makeTestModels(join(dirs.root, 'models'))).embed;
});
afterAll(async () => {
  for (const p of processes) await p.stop('SIGKILL');
  await dirs?.cleanup();
});

async function start(): Promise<HearthProcess> {
  const node = await startHearthProcess({ dirs, env: ENV, timeoutMs: 180_000 });
  processes.push(node);
  return node;
}

describe('knowledge ingestion crash drill (embedded Atlas)', () => {
  it('SIGKILL twice mid-ingestion, node cache deleted: each chunk stored exactly once', async () => {
    let node = await start();
    await createModel(node.url, 'embed', modelPath);
    expect((await call(node.url, '/api/knowledge', { name: 'drill', embedding_model: 'embed' })).status).toBe(201);
    const form = new FormData();
    for (let d = 0; d < DOCUMENTS; d++) form.append('file', new Blob([documentText(d)]), `notes-${d}.md`);
    const res = await fetch(`${node.url}/api/knowledge/drill/documents`, { method: 'POST', body: form });
    expect(res.status).toBe(202);
    const { job: id } = (await res.json()) as { job: string };

    for (const committed of [3, 9]) {
      const seen = await waitForJob(
        node.url,
        id,
        (j) => j.progress.shards_committed >= committed || finished(j),
        120_000,
      );
      expect(seen.state, node.logs().slice(-2000)).toBe('running');
      await node.stop('SIGKILL');
      await rm(dirs.cache, { recursive: true, force: true });
      node = await start();
    }
    const done = await waitForJob(node.url, id, finished, 180_000);
    expect(done.state, done.error).toBe('succeeded');
    expect(done.progress).toMatchObject({ shards_total: DOCUMENTS, shards_committed: DOCUMENTS, records_failed: 0 });
    expect(await node.stop('SIGTERM')).toBe(0);

    const db = await openAtlasDb({
      database: 'embedded',
      embeddedDir: join(dirs.atlas, '.hearth', 'db'),
      log: silentLogger(),
    });
    try {
      const rows = await db.query<{ name: string; chunks: number; rows: number; positions: number; top: number }>(
        `select d.name, d.chunks, count(c.id)::int as rows, count(distinct c.position)::int as positions,
                coalesce(max(c.position), -1)::int as top
           from knowledge_documents d left join knowledge_chunks c on c.document_id = d.id
          group by d.id order by d.name`,
      );
      expect(rows.length).toBe(DOCUMENTS);
      for (const row of rows) {
        const d = Number(/notes-(\d+)/.exec(row.name)![1]);
        const expected = chunkText(documentText(d), 'markdown', { size: 16, overlap: 0 }).length;
        expect(row).toEqual({
          name: row.name,
          chunks: expected,
          rows: expected,
          positions: expected,
          top: expected - 1,
        });
      }
    } finally {
      await db.close();
    }
  }, 420_000);
});
