// Two start-up jobs of the server engine's build: reranking (hearth's /api/rerank and /v1/rerank, llama.cpp's and Jina's shape) on the server engine:
// a generated reranker GGUF (qwen3 layout, rank pooling, a two-label classifier head) run by llama-server --rerank;
// and Ollama's create `quantize`, run by the built llama-quantize on a generated F32 model.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateReranker } from './fixtures/gguf/index.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;

async function create(name: string, path: string) {
  const bytes = await readFile(path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  const res = await fetch(`${hearth.url}/api/create`, {
    method: 'POST',
    body: JSON.stringify({ model: name, files: { 'm.gguf': digest }, stream: false }),
  });
  expect(res.status, await res.text()).toBe(200);
}

async function post(path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${hearth.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

const documents = ['a cat is a small animal', 'Paris is in France', 'hello there', 'cats purr'];

beforeAll(async () => {
  dirs = await hearthDirs('hearth-rerank-');
  const models = await makeTestModels(dirs.root);
  const reranker = await generateReranker({ path: join(dirs.root, 'rerank.gguf'), contextLength: 512 });
  hearth = await startHearthInProcess(dirs, { inference: { numParallel: 1, numCtx: 512 } });
  await create('reranker', reranker.path);
  await create('chat', models.chat);
}, 300_000);

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('POST /api/rerank and /v1/rerank', () => {
  it('scores every document, best first, in the llama.cpp/Jina shape', async () => {
    const { status, json } = await post('/api/rerank', { model: 'reranker', query: 'what is a cat', documents });
    expect(status).toBe(200);
    expect(json).toMatchObject({ model: 'reranker', object: 'list' });
    expect(json.usage.prompt_tokens).toBeGreaterThan(0);
    expect(json.results.map((r: any) => r.index).sort()).toEqual([0, 1, 2, 3]);
    const scores = json.results.map((r: any) => r.relevance_score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    for (const s of scores) expect(s >= 0 && s <= 1).toBe(true);
    // the same request on /v1 gives the same ranking
    const v1 = await post('/v1/rerank', { model: 'reranker', query: 'what is a cat', documents });
    expect(v1.json.results.map((r: any) => r.index)).toEqual(json.results.map((r: any) => r.index));
  });

  it('cuts to top_n and returns the documents when asked', async () => {
    const { json } = await post('/v1/rerank', {
      model: 'reranker',
      query: 'cats',
      documents: documents.map((text) => ({ text })),
      top_n: 2,
      return_documents: true,
    });
    expect(json.results).toHaveLength(2);
    for (const r of json.results) expect(r.document.text).toBe(documents[r.index]);
  });

  it('refuses a model that is not a reranker, and a reranker asked to chat', async () => {
    const notReranker = await post('/api/rerank', { model: 'chat', query: 'q', documents });
    expect(notReranker.status).toBe(400);
    expect(notReranker.json.error).toMatch(/"chat:latest" is not a reranker/);
    const chat = await post('/api/chat', {
      model: 'reranker',
      stream: false,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(chat.status).toBe(400);
    expect(chat.json.error).toMatch(/is a reranker .* use it with \/api\/rerank/);
  });

  it('answers malformed requests with a 400 naming the field, in each API family', async () => {
    const ollama = await post('/api/rerank', { model: 'reranker', query: 'q', documents: [] });
    expect(ollama.status).toBe(400);
    expect(ollama.json.error).toMatch(/documents must hold at least one document/);
    const openai = await post('/v1/rerank', { model: 'reranker', documents });
    expect(openai.status).toBe(400);
    expect(openai.json.error.message).toMatch(/query/);
    const missing = await post('/v1/rerank', { model: 'absent', query: 'q', documents });
    expect(missing.status).toBe(404);
  });
});

describe('POST /api/create with quantize', () => {
  async function createLines(body: Record<string, unknown>): Promise<{ status: number; lines: any[] }> {
    const res = await fetch(`${hearth.url}/api/create`, { method: 'POST', body: JSON.stringify(body) });
    const text = await res.text();
    return {
      status: res.status,
      lines: text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    };
  }

  it("quantizes an F32 model with llama-quantize, with Ollama's progress, and the result generates", async () => {
    // q8_0 over plain HTTP; Q4_K_M through the official ollama client, as `ollama create --quantize` sends it
    const ollama = new Ollama({ host: hearth.url });
    for (const [type, level, client] of <Array<[string, string, 'http' | 'ollama']>>[
      ['q8_0', 'Q8_0', 'http'],
      ['Q4_K_M', 'Q4_K_M', 'ollama'],
    ]) {
      const name = `chat-${type.toLowerCase()}`;
      let statuses: string[];
      if (client === 'http') {
        const { status, lines } = await createLines({ model: name, from: 'chat', quantize: type });
        expect(status).toBe(200);
        statuses = lines.map((l) => l.status);
      } else {
        statuses = [];
        for await (const progress of await ollama.create({ model: name, from: 'chat', quantize: type, stream: true })) {
          statuses.push(progress.status);
        }
      }
      expect(statuses).toContain(`quantizing F32 model to ${level}`);
      expect(statuses.at(-1)).toBe('success');
      const show = await post('/api/show', { model: name });
      expect(show.json.details.quantization_level).toBe(level);
      const generated = await post('/api/generate', {
        model: name,
        prompt: 'Hello',
        stream: false,
        options: { num_predict: 3 },
      });
      expect(generated.status).toBe(200);
      expect(generated.json.eval_count).toBeGreaterThan(0);
    }
    const tags: any = await (await fetch(`${hearth.url}/api/tags`)).json();
    const sizes = Object.fromEntries(tags.models.map((m: any) => [m.name, m.size]));
    expect(sizes['chat-q4_k_m:latest']).toBeLessThan(sizes['chat-q8_0:latest']);
    expect(sizes['chat-q8_0:latest']).toBeLessThan(sizes['chat:latest']);
  });

  it('refuses an unknown type naming the allowed ones, and an already-quantized source as Ollama', async () => {
    const unknown = await createLines({ model: 'x', from: 'chat', quantize: 'q3_k_s', stream: false });
    expect(unknown.status).toBe(400);
    expect(unknown.lines[0].error).toMatch(/unsupported quantization type "q3_k_s": use one of q4_K_M, q5_K_M, q8_0/);
    const again = await createLines({ model: 'x', from: 'chat-q4_k_m', quantize: 'q5_K_M', stream: false });
    expect(again.status).toBe(400);
    expect(again.lines[0].error).toMatch(/quantization is only supported for F16 and F32 models.*Q4_K_M/);
    expect((await post('/api/show', { model: 'x' })).status).toBe(404);
  });
});
