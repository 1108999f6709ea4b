// Reranking in retrieval, on the server engine with a generated reranker GGUF (random weights: the
// scores mean nothing, so what is tested is that the order follows them): POST /api/knowledge/{id}/query
// with `rerank`, chat retrieval with knowledge.reranker, the errors for a missing reranker or a model
// that is not one, and the chat's logged fallback to the fusion order.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateReranker } from './fixtures/gguf/index.js';
import {
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  runHearthCli,
  startHearthInProcess,
} from './support/hearth.js';
import { call, createModel, finished, waitForJob } from './support/jobs.js';
import { captureLog } from './support/log.js';
import { makeTestModels } from './support/models.js';

const PANTRY = `# Pantry

The saffron jar sits behind the lentils on the second shelf.

## Spices

Cumin, coriander and paprika are in the drawer under the kettle.

## Grains

Rice, barley and oats are in the tall tins by the window.

## Tea

Green tea and black tea are on the top shelf, next to the honey.
`;

const GARDEN = `# Garden

The hose is coiled by the shed door.

## Tools

The spade and the rake hang on the shed wall; the shears are in the blue box.

## Seeds

Tomato and basil seeds are in the paper envelopes in the cold frame.
`;

let dirs: HearthDirs;
let hearth: InProcessHearth;
let base: string;
const logged = captureLog('warn');

beforeAll(async () => {
  dirs = await hearthDirs('hearth-knowledge-rerank-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  const reranker = await generateReranker({ path: join(dirs.root, 'models', 'rerank.gguf'), contextLength: 512 });
  hearth = await startHearthInProcess(
    dirs,
    {
      inference: { numParallel: 1, numCtx: 512 },
      jobs: { pollInterval: '200ms' },
      knowledge: { chunkTokens: 48, chunkOverlap: 8, embeddingModel: 'embed', topK: 3, reranker: 'reranker' },
    },
    {},
    logged.log,
  );
  base = hearth.url;
  await createModel(base, 'embed', models.embed);
  await createModel(base, 'chat', models.chat);
  await createModel(base, 'reranker', reranker.path);
  expect((await call(base, '/api/knowledge', { name: 'house' })).status).toBe(201);
  const form = new FormData();
  form.append('file', new Blob([PANTRY]), 'pantry.md');
  form.append('file', new Blob([GARDEN]), 'garden.md');
  const up = await fetch(`${base}/api/knowledge/house/documents`, { method: 'POST', body: form });
  expect(up.status).toBe(202);
  const job = await waitForJob(base, ((await up.json()) as any).job, finished, 120_000);
  expect(job.state).toBe('succeeded');
}, 300_000);

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

const QUESTION = 'where is the saffron jar';

/** A chat with the base attached (the OpenAI extension), its citations in `hearth.citations`. */
const askChat = () =>
  call(base, '/v1/chat/completions', {
    model: 'chat',
    messages: [{ role: 'user', content: QUESTION }],
    max_tokens: 4,
    knowledge: ['house'],
  });

describe('reranking retrieved chunks', () => {
  it("orders the fused candidates by the reranker's scores, and says each score", async () => {
    // Every chunk of this small base is a candidate (fewer than the 40 each side hands to fusion).
    const fused = await call(base, '/api/knowledge/house/query', { query: QUESTION, limit: 50, rerank: false });
    expect(fused.status, fused.text).toBe(200);
    const candidates = fused.json.results;
    expect(candidates.length).toBeGreaterThan(4);
    for (const r of candidates) expect(r.rerank_score).toBeUndefined();

    // What the reranker says of each candidate, through the rerank API (the passage as embedded: heading, text).
    const scored = await call(base, '/api/rerank', {
      model: 'reranker',
      query: QUESTION,
      documents: candidates.map((c: any) => (c.heading ? `${c.heading}\n\n${c.text}` : c.text)),
    });
    expect(scored.status, scored.text).toBe(200);
    const expected = scored.json.results
      .slice(0, 3)
      .map((r: any) => ({ chunk_id: candidates[r.index].chunk_id, score: r.relevance_score }));

    const reranked = await call(base, '/api/knowledge/house/query', { query: QUESTION, limit: 3, rerank: 'reranker' });
    expect(reranked.status, reranked.text).toBe(200);
    const results = reranked.json.results;
    expect(results.map((r: any) => r.chunk_id)).toEqual(expected.map((e: any) => e.chunk_id));
    results.forEach((r: any, i: number) => {
      expect(r.rerank_score).toBeCloseTo(expected[i].score, 4);
      // the fusion score stays next to the reranker's
      expect(r.score).toBe(candidates.find((c: any) => c.chunk_id === r.chunk_id).score);
    });
    const scores = results.map((r: any) => r.rerank_score);
    expect(scores).toEqual([...scores].sort((a: number, b: number) => b - a));

    // Without `rerank`, the configured knowledge.reranker orders them; `true` names it too.
    for (const rerank of [undefined, true]) {
      const configured = await call(base, '/api/knowledge/house/query', { query: QUESTION, limit: 3, rerank });
      expect(configured.json.results.map((r: any) => r.chunk_id)).toEqual(results.map((r: any) => r.chunk_id));
    }
  });

  it('puts the reranked sources, with their scores, into a chat', async () => {
    const reply = await askChat();
    expect(reply.status, reply.text).toBe(200);
    const citations = reply.json.hearth.citations;
    const query = await call(base, '/api/knowledge/house/query', { query: QUESTION, limit: 3 });
    expect(citations.map((c: any) => c.chunk_id)).toEqual(query.json.results.map((r: any) => r.chunk_id));
    expect(citations.map((c: any) => c.n)).toEqual([1, 2, 3]);
    for (const [i, c] of citations.entries()) expect(c.rerank_score).toBeCloseTo(query.json.results[i].rerank_score, 4);
  });

  it('reranks from the CLI: hearth kb query --rerank', async () => {
    const env = { env: { HEARTH_HOST: base } };
    const expected = (await call(base, '/api/knowledge/house/query', { query: QUESTION, limit: 2 })).json.results;
    const ran = await runHearthCli(dirs, ['kb', 'query', 'house', '-n', '2', '--rerank', 'reranker', QUESTION], env);
    expect(ran.code, ran.stderr).toBe(0);
    const shown = [...ran.stdout.matchAll(/^\[(\d)\] .*\(score [\d.]+, rerank ([\d.]+)\)$/gm)];
    expect(shown.map((m) => Number(m[1]))).toEqual([1, 2]);
    for (const [i, m] of shown.entries()) expect(Number(m[2])).toBeCloseTo(expected[i].rerank_score, 3);
    const plain = await runHearthCli(dirs, ['kb', 'query', 'house', '-n', '2', '--no-rerank', QUESTION], env);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).not.toMatch(/rerank/);
  });

  it('refuses a reranker that is missing or is not a reranker, and a malformed rerank', async () => {
    const notReranker = await call(base, '/api/knowledge/house/query', { query: QUESTION, rerank: 'chat' });
    expect(notReranker.status).toBe(400);
    expect(notReranker.json.error).toMatch(/^rerank: model "chat:latest" is not a reranker/);
    const missing = await call(base, '/api/knowledge/house/query', { query: QUESTION, rerank: 'nope' });
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatch(
      /reranker "nope" \(rerank\) is not in the library: create it from a reranker GGUF/,
    );
    const malformed = await call(base, '/api/knowledge/house/query', { query: QUESTION, rerank: 7 });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error).toMatch(/rerank is true, false or a reranker model name/);
  });

  it('keeps the fusion order in a chat when the configured reranker is gone, and logs why', async () => {
    const fused = await call(base, '/api/knowledge/house/query', { query: QUESTION, limit: 3, rerank: false });
    expect((await call(base, '/api/delete', { model: 'reranker' }, 'DELETE')).status).toBe(200);
    // The query API says what is wrong...
    const refused = await call(base, '/api/knowledge/house/query', { query: QUESTION, limit: 3 });
    expect(refused.status).toBe(404);
    expect(refused.json.error).toMatch(/reranker "reranker" \(knowledge\.reranker\) is not in the library/);
    // ...a chat answers from the fusion order.
    const reply = await askChat();
    expect(reply.status, reply.text).toBe(200);
    const citations = reply.json.hearth.citations;
    expect(citations.map((c: any) => c.chunk_id)).toEqual(fused.json.results.map((r: any) => r.chunk_id));
    for (const c of citations) expect(c.rerank_score).toBeUndefined();
    const warning = logged.records.find(
      (r) => r['msg'] === 'knowledge: reranking failed; the sources keep the fusion order',
    );
    expect(warning).toMatchObject({ reranker: 'reranker' });
    expect(String(warning?.['error'])).toMatch(/knowledge\.reranker/);
  });
});
