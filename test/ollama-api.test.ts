// The Ollama-compatible API, endpoint by endpoint, over real HTTP against a
// real engine on generated models.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { call as callHearth } from './support/http.js';
import { makeTestModels, type TestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let models: TestModels;

const call = (path: string, body?: unknown, method?: string) => callHearth(hearth.url, path, body, method);

function ndjson(text: string): any[] {
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

async function uploadModel(name: string, path: string, extra: Record<string, unknown> = {}) {
  const bytes = await readFile(path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const up = await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  expect([200, 201]).toContain(up.status);
  const created = await call('/api/create', {
    model: name,
    files: { [path.split('/').pop()!]: digest },
    stream: false,
    ...extra,
  });
  expect(created.status, created.text).toBe(200);
  return digest;
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-api-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, { inference: { numParallel: 2, numCtx: 1024 } });
  await uploadModel('chat', models.chat, {
    system: 'You are terse.',
    parameters: { temperature: 0.5, stop: ['<|im_end|>'] },
  });
  await uploadModel('tools', models.tools);
  await uploadModel('embed', models.embed);
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('basics', () => {
  it('answers GET and HEAD / with the banner, and /api/version', async () => {
    const root = await call('/');
    expect(root.status).toBe(200);
    expect(root.text).toBe('hearth is running');
    expect((await fetch(`${hearth.url}/`, { method: 'HEAD' })).status).toBe(200);
    // The Ollama API version hearth implements (clients gate features on it), and hearth's own beside it.
    const version = await fetch(`${hearth.url}/api/version`);
    const body = (await version.json()) as { version: string; hearth_version: string };
    expect(body.version).toBe('0.14.0');
    expect(body.hearth_version).toMatch(/^\d+\.\d+\.\d+/);
    expect(version.headers.get('x-hearth-version')).toBe(body.hearth_version);
  });

  it('reports readiness', async () => {
    const ready = await call('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json.checks).toEqual({ database: 'ok', files: 'ok' });
  });

  it("answers unknown routes with 404 in Ollama's error shape", async () => {
    const res = await call('/api/nope');
    expect(res.status).toBe(404);
    expect(res.json.error).toMatch(/no such route/);
  });
});

describe('model library', () => {
  it("lists models with Ollama's fields", async () => {
    const { json } = await call('/api/tags');
    const chat = json.models.find((m: any) => m.name === 'chat:latest');
    expect(chat).toMatchObject({ model: 'chat:latest', details: { format: 'gguf', family: 'llama' } });
    expect(chat.digest).toMatch(/^[a-f0-9]{64}$/);
    expect(chat.size).toBeGreaterThan(0);
    expect(chat.details.parameter_size).toMatch(/[KMB]$/);
    expect(Date.parse(chat.modified_at)).not.toBeNaN();
  });

  it('shows a model: modelfile, parameters, system, capabilities, model_info', async () => {
    const { status, json } = await call('/api/show', { model: 'chat' });
    expect(status).toBe(200);
    expect(json.system).toBe('You are terse.');
    expect(json.parameters).toMatch(/temperature\s+0.5/);
    expect(json.parameters).toMatch(/stop\s+"<\|im_end\|>"/);
    expect(json.modelfile).toContain('SYSTEM """You are terse."""');
    expect(json.capabilities).toContain('completion');
    expect(json.model_info['general.architecture']).toBe('llama');
    expect(json.template).toContain('im_start');
    const tools = await call('/api/show', { model: 'tools' });
    expect(tools.json.capabilities).toContain('tools');
    const embed = await call('/api/show', { model: 'embed' });
    expect(embed.json.capabilities).toContain('embedding');
  });

  it('copies and deletes', async () => {
    expect((await call('/api/copy', { source: 'chat', destination: 'chat-copy:v1' })).status).toBe(200);
    const shown = await call('/api/show', { model: 'chat-copy:v1' });
    expect(shown.json.system).toBe('You are terse.');
    // served (its manifest now kept on the node), then deleted: the next request is a 404 at once
    const one = { model: 'chat-copy:v1', prompt: 'hi', stream: false, options: { num_predict: 1 } };
    expect((await call('/api/generate', one)).status).toBe(200);
    expect((await call('/api/delete', { model: 'chat-copy:v1' }, 'DELETE')).status).toBe(200);
    const unserved = await call('/api/generate', one);
    expect(unserved.status).toBe(404);
    expect(unserved.json.error).toBe('model "chat-copy:v1" not found, try pulling it first');
    const gone = await call('/api/delete', { model: 'chat-copy:v1' }, 'DELETE');
    expect(gone.status).toBe(404);
    expect(gone.json.error).toBe('model "chat-copy:v1" not found, try pulling it first');
    expect((await call('/api/copy', { source: 'missing', destination: 'x' })).status).toBe(404);
  });

  it('creates a model from another, with a streamed status', async () => {
    const res = await call('/api/create', { model: 'chat-cold', from: 'chat', parameters: { temperature: 0 } });
    expect(res.status).toBe(200);
    expect(res.type).toContain('application/x-ndjson');
    const lines = ndjson(res.text);
    expect(lines.at(-1)).toEqual({ status: 'success' });
    const shown = await call('/api/show', { model: 'chat-cold' });
    expect(shown.json.parameters).toMatch(/temperature\s+0$/m);
    expect(shown.json.details.parent_model).toBe('chat:latest');
  });

  it('registers a GGUF already on Atlas without copying it', async () => {
    const bytes = await readFile(models.chat);
    await hearth.ctx.atlas.files.put('library/shared/chat.gguf', bytes);
    const res = await call('/api/create', {
      model: 'registered',
      from: 'atlas:library/shared/chat.gguf',
      stream: false,
    });
    expect(res.status, res.text).toBe(200);
    const tags = await call('/api/tags');
    const entry = tags.json.models.find((m: any) => m.name === 'registered:latest');
    expect(entry.digest).toBe(createHash('sha256').update(bytes).digest('hex'));
    // Deleting it never deletes the file it points at.
    expect((await call('/api/delete', { model: 'registered' }, 'DELETE')).status).toBe(200);
    expect(await hearth.ctx.atlas.files.stat('library/shared/chat.gguf')).not.toBeNull();
  });

  it('refuses what it cannot honour, clearly', async () => {
    const tpl = await call('/api/create', { model: 'x', from: 'chat', template: '{{ .Prompt }}', stream: false });
    expect(tpl.status).toBe(400);
    expect(tpl.json.error).toMatch(/TEMPLATE cannot be honoured/);
    // quantize works (test/rerank-quantize.test.ts); a type it does not make is named
    const q = await call('/api/create', { model: 'x', from: 'chat', quantize: 'q2_K', stream: false });
    expect(q.status).toBe(400);
    expect(q.json.error).toMatch(/use one of q4_K_M, q5_K_M, q8_0/);
    const nothing = await call('/api/create', { model: 'x', stream: false });
    expect(nothing.status).toBe(400);
    const badName = await call('/api/create', { model: 'bad name!', from: 'chat', stream: false });
    expect(badName.status).toBe(400);
    expect(badName.json.error).toMatch(/invalid model name/);
    const push = await call('/api/push', { model: 'chat' });
    expect(push.status).toBe(501);
    expect(push.json.error).toMatch(/push is not supported/);
  });

  it('checks blob digests on upload', async () => {
    const data = Buffer.from('not the right bytes');
    const wrong = `sha256:${'0'.repeat(64)}`;
    const res = await fetch(`${hearth.url}/api/blobs/${wrong}`, { method: 'POST', body: data });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatch(/digest mismatch/);
    expect((await fetch(`${hearth.url}/api/blobs/${wrong}`, { method: 'HEAD' })).status).toBe(404);
    const bad = await fetch(`${hearth.url}/api/blobs/sha256:xyz`, { method: 'HEAD' });
    expect(bad.status).toBe(400);
  });
});

describe('generate', () => {
  it('streams NDJSON with the metrics in the final chunk', async () => {
    const res = await call('/api/generate', { model: 'chat', prompt: 'Hello', options: { num_predict: 8, seed: 1 } });
    expect(res.status).toBe(200);
    expect(res.type).toContain('application/x-ndjson');
    const lines = ndjson(res.text);
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines.slice(0, -1)) expect(l).toMatchObject({ model: 'chat', done: false });
    const last = lines.at(-1);
    expect(last).toMatchObject({ done: true, response: '' });
    expect(['stop', 'length']).toContain(last.done_reason);
    for (const k of [
      'total_duration',
      'load_duration',
      'prompt_eval_count',
      'prompt_eval_duration',
      'eval_count',
      'eval_duration',
    ]) {
      expect(typeof last[k], k).toBe('number');
    }
    expect(last.eval_count).toBeLessThanOrEqual(8);
  });

  it('keeps the CORS headers on a streamed response, as on a plain one', async () => {
    const origin = new URL(hearth.url).origin;
    for (const stream of [true, false]) {
      const res = await fetch(`${hearth.url}/api/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin },
        body: JSON.stringify({ model: 'chat', prompt: 'Hi', stream, options: { num_predict: 2, seed: 1 } }),
      });
      const text = await res.text();
      expect(res.status, text).toBe(200);
      expect(res.headers.get('content-type')).toContain(stream ? 'application/x-ndjson' : 'application/json');
      expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      expect(res.headers.get('vary')).toContain('Origin');
    }
  });

  it('answers stream:false with one object, done_reason length at num_predict', async () => {
    const res = await call('/api/generate', {
      model: 'chat',
      prompt: 'Count',
      stream: false,
      raw: true,
      options: { num_predict: 5, temperature: 1, seed: 42 }, // seeded: an unseeded sample may draw end-of-text early
    });
    expect(res.status).toBe(200);
    expect(res.json.done).toBe(true);
    expect(res.json.done_reason).toBe('length');
    expect(res.json.eval_count).toBe(5);
    expect(typeof res.json.response).toBe('string');
  });

  it('constrains output to JSON and to a schema', async () => {
    const json = await call('/api/generate', {
      model: 'chat',
      prompt: 'Give JSON',
      format: 'json',
      stream: false,
      options: { num_predict: 48, seed: 1 }, // seeded: the grammar walk closes the value well within 48 tokens
    });
    expect(json.status).toBe(200);
    expect(json.json.done_reason).toBe('stop');
    expect(() => JSON.parse(json.json.response)).not.toThrow();
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
    const res = await call('/api/generate', {
      model: 'chat',
      prompt: 'Answer',
      format: schema,
      stream: false,
      options: { num_predict: 64, seed: 1 }, // seeded: an unseeded grammar walk may not close the object in 64 tokens
    });
    expect(res.status).toBe(200);
    expect(res.json.done_reason).toBe('stop');
    const parsed = JSON.parse(res.json.response);
    expect(typeof parsed.ok).toBe('boolean');
  });

  it('loads on an empty prompt and unloads with keep_alive 0', async () => {
    const load = await call('/api/generate', { model: 'chat', prompt: '', stream: false });
    expect(load.json).toMatchObject({ done: true, done_reason: 'load', response: '' });
    const ps = await call('/api/ps');
    expect(ps.json.models.map((m: any) => m.name)).toContain('chat:latest');
    const unload = await call('/api/generate', { model: 'chat', keep_alive: 0 });
    expect(unload.json).toMatchObject({ done: true, done_reason: 'unload' });
    const after = await call('/api/ps');
    expect(after.json.models.map((m: any) => m.name)).not.toContain('chat:latest');
  });

  it('refuses images, thinking and templates for a model that cannot honour them', async () => {
    const img = await call('/api/generate', {
      model: 'chat',
      prompt: 'what is this',
      images: ['aGVsbG8='],
      stream: false,
    });
    expect(img.status).toBe(400);
    expect(img.json.error).toMatch(/does not support images/);
    const think = await call('/api/generate', { model: 'chat', prompt: 'hi', think: true, stream: false });
    expect(think.status).toBe(400);
    expect(think.json.error).toMatch(/does not support thinking/);
    const thinkOff = await call('/api/generate', {
      model: 'chat',
      prompt: 'hi',
      think: false,
      stream: false,
      options: { num_predict: 1 },
    });
    expect(thinkOff.status, thinkOff.text).toBe(200);
  });

  it('refuses tools on /api/chat for a model whose template has none, as Ollama does', async () => {
    const res = await call('/api/chat', {
      model: 'chat',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
      stream: false,
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/^model "chat:latest" does not support tools/);
  });
});

describe('chat', () => {
  it('streams messages and ends with the metrics', async () => {
    const res = await call('/api/chat', {
      model: 'chat',
      messages: [{ role: 'user', content: 'Hi' }],
      options: { num_predict: 6 },
    });
    expect(res.status).toBe(200);
    const lines = ndjson(res.text);
    for (const l of lines.slice(0, -1)) expect(l.message.role).toBe('assistant');
    expect(lines.at(-1)).toMatchObject({ done: true, message: { role: 'assistant', content: '' } });
  });

  it("returns tool calls in Ollama's shape", async () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Get the weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ];
    const res = await call('/api/chat', {
      model: 'tools',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools,
      stream: false,
      options: { num_predict: 64, seed: 3 },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json.done).toBe(true);
    expect(res.json.message.role).toBe('assistant');
    // A random-weight model may or may not choose to call the tool; whatever it returns must be well-formed.
    for (const call of res.json.message.tool_calls ?? []) {
      expect(call.function.name).toBe('get_weather');
      expect(typeof call.function.arguments).toBe('object');
    }
    // A conversation that already holds a tool call and its result is accepted.
    const followUp = await call('/api/chat', {
      model: 'tools',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
        },
        { role: 'tool', content: '{"temp": 21}', tool_name: 'get_weather' },
      ],
      tools,
      stream: false,
      options: { num_predict: 8 },
    });
    expect(followUp.status, followUp.text).toBe(200);
  });

  it('loads on empty messages', async () => {
    const res = await call('/api/chat', { model: 'chat', messages: [], stream: false });
    expect(res.json).toMatchObject({ done: true, done_reason: 'load' });
  });
});

describe('embeddings', () => {
  it('embeds a string and a batch, normalised', async () => {
    const one = await call('/api/embed', { model: 'embed', input: 'hello world' });
    expect(one.status).toBe(200);
    expect(one.json.embeddings).toHaveLength(1);
    const v = one.json.embeddings[0] as number[];
    expect(Math.hypot(...v)).toBeCloseTo(1, 3);
    const batch = await call('/api/embed', { model: 'embed', input: ['a', 'b', 'c'] });
    expect(batch.json.embeddings).toHaveLength(3);
    expect(batch.json.prompt_eval_count).toBeGreaterThan(0);
  });

  it('honours dimensions and truncate:false', async () => {
    const dims = await call('/api/embed', { model: 'embed', input: 'hello', dimensions: 8 });
    expect(dims.json.embeddings[0]).toHaveLength(8);
    const long = 'word '.repeat(5000);
    const refused = await call('/api/embed', { model: 'embed', input: long, truncate: false });
    expect(refused.status).toBe(400);
    const cut = await call('/api/embed', { model: 'embed', input: long });
    expect(cut.status).toBe(200);
  });

  it('keeps the legacy /api/embeddings', async () => {
    const res = await call('/api/embeddings', { model: 'embed', prompt: 'hello' });
    expect(res.status).toBe(200);
    expect(Array.isArray(res.json.embedding)).toBe(true);
    expect(res.json.embedding.length).toBeGreaterThan(0);
  });
});

describe('bad input', () => {
  it('answers malformed bodies with 400 and a message naming the problem', async () => {
    const badJson = await call('/api/generate', '{"model": ');
    expect(badJson.status).toBe(400);
    expect(badJson.json.error).toMatch(/invalid JSON/);
    const noModel = await call('/api/generate', { prompt: 'hi' });
    expect(noModel.status).toBe(400);
    expect(noModel.json.error).toMatch(/model/);
    const wrongType = await call('/api/chat', { model: 'chat', messages: 'hi' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.json.error).toMatch(/messages/);
    const badRole = await call('/api/chat', { model: 'chat', messages: [{ role: 'wizard', content: 'hi' }] });
    expect(badRole.status).toBe(400);
    const badOption = await call('/api/generate', { model: 'chat', prompt: 'hi', options: { temperature: 'hot' } });
    expect(badOption.status).toBe(400);
    expect(badOption.json.error).toMatch(/temperature/);
    const unknownOption = await call('/api/generate', { model: 'chat', prompt: 'hi', options: { warp_speed: 9 } });
    expect(unknownOption.status).toBe(400);
    const keepAlive = await call('/api/generate', { model: 'chat', prompt: 'hi', keep_alive: 'soon' });
    expect(keepAlive.status).toBe(400);
    expect(keepAlive.json.error).toMatch(/keep_alive/);
  });

  it('refuses absurd load options with 400 naming the option and its range, loading nothing', async () => {
    const cpus = availableParallelism();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ num_thread: 600 }, new RegExp(`num_thread must be an integer from 0 to \\d+ \\(this node has ${cpus} CPUs`)],
      [{ num_ctx: 1e9 }, /option "num_ctx" must be an integer from 16 to 16777216, got 1000000000/],
      [{ num_ctx: 1e300 }, /option "num_ctx" must be an integer from 16 to 16777216/],
      [{ num_ctx: 4096.5 }, /option "num_ctx" must be an integer/],
      [{ num_parallel: 100000 }, /option "num_parallel" must be an integer from 1 to 256/],
      [{ num_predict: 1e300 }, /option "num_predict" must be an integer/],
    ];
    const loadedBefore = (await call('/api/ps')).json.models.length;
    for (const [options, message] of cases) {
      for (const stream of [true, false]) {
        const res = await call('/api/generate', { model: 'chat', prompt: 'hi', stream, options });
        expect(res.status, JSON.stringify(options)).toBe(400);
        expect(res.json.error).toMatch(message);
      }
    }
    expect((await call('/api/ps')).json.models.length).toBeLessThanOrEqual(loadedBefore);
  });

  it("answers unknown models with Ollama's 404", async () => {
    for (const path of ['/api/generate', '/api/chat', '/api/embed', '/api/show']) {
      const res = await call(path, {
        model: 'nope',
        prompt: 'x',
        messages: [{ role: 'user', content: 'x' }],
        input: 'x',
      });
      expect(res.status, path).toBe(404);
      expect(res.json.error).toBe('model "nope" not found, try pulling it first');
    }
  });
});
