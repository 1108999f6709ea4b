// The OpenAI-compatible API on the wire (plain fetch): the SSE framing, the
// error shape and the 400s that name the field, the things an SDK hides.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { call as callHearth } from './support/http.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;

type Json = any;

const call = (path: string, body?: unknown) =>
  callHearth(hearth.url, path, body, { headers: { authorization: 'Bearer sk-anything' } });

/** The `data:` payloads of an SSE body, checking the framing on the way. */
function sseEvents(text: string): string[] {
  expect(text.endsWith('\n\n')).toBe(true);
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((event) => {
      expect(event.startsWith('data: ')).toBe(true);
      return event.slice('data: '.length);
    });
}

async function uploadModel(name: string, path: string, extra: Record<string, unknown> = {}) {
  const bytes = await readFile(path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  const created = await call('/api/create', {
    model: name,
    files: { [path.split('/').pop()!]: digest },
    stream: false,
    ...extra,
  });
  expect(created.status, created.text).toBe(200);
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-openai-api-');
  await mkdir(join(dirs.root, 'models'));
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, {
    inference: { numParallel: 2, numCtx: 2048 },
    // Loopback peers need no key here: the Bearer token every OpenAI client sends is accepted and not checked.
    listeners: [{ name: 'test', address: '127.0.0.1:0', zones: ['loopback'], auth: 'loopback-exempt' }],
  });
  await uploadModel('chat', models.chat);
  // The library's parameters are what set the context per model, for OpenAI clients as for Ollama ones.
  await uploadModel('chat-small', models.chat, { parameters: { num_ctx: 512 } });
  await uploadModel('embed', models.embed);
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

const hello = [{ role: 'user', content: 'Say hello' }];

describe('streaming', () => {
  it('sends server-sent events in the chunk shape and ends with [DONE]', async () => {
    const res = await call('/v1/chat/completions', {
      model: 'chat',
      messages: hello,
      max_tokens: 4,
      seed: 1,
      stream: true,
    });
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/event-stream/);
    const events = sseEvents(res.text);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      expect(c).toMatchObject({ id: chunks[0].id, object: 'chat.completion.chunk', model: 'chat' });
      expect(c).not.toHaveProperty('usage');
    }
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(['stop', 'length']).toContain(chunks.at(-1).choices[0].finish_reason);
  });

  it('streams text completions with the usage chunk last', async () => {
    const res = await call('/v1/completions', {
      model: 'chat',
      prompt: 'Once',
      max_tokens: 3,
      seed: 1,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = sseEvents(res.text)
      .slice(0, -1)
      .map((e) => JSON.parse(e));
    expect(chunks[0].object).toBe('text_completion');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: expect.any(Number) } });
    expect(chunks.at(-1).usage.completion_tokens).toBeLessThanOrEqual(3);
  });

  it('keeps the status code for an error before any output', async () => {
    const res = await call('/v1/chat/completions', { model: 'nope', messages: hello, stream: true });
    expect(res.status).toBe(404);
    expect(res.type).toMatch(/^application\/json/);
    expect(res.json.error).toMatchObject({ param: 'model', code: 'model_not_found' });
  });

  it('stops generating when the client hangs up', async () => {
    const controller = new AbortController();
    const res = await fetch(`${hearth.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'chat',
        prompt: 'Tell a long story',
        max_tokens: 1500,
        seed: 1,
        temperature: 1,
        stream: true,
      }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    const busy = () => hearth.ctx.engine.loaded().reduce((n, m) => n + m.activeSequences, 0);
    expect(busy()).toBe(1);
    controller.abort();
    // 1500 tokens take far longer than this here; only the abort frees the sequence in time.
    const deadline = Date.now() + 3_000;
    while (busy() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(busy()).toBe(0);
  });
});

describe('chat completions', () => {
  it('answers n choices and counts the prompt once', async () => {
    const one = await call('/v1/chat/completions', { model: 'chat', messages: hello, max_tokens: 3, seed: 1 });
    const two = await call('/v1/chat/completions', { model: 'chat', messages: hello, max_tokens: 3, seed: 1, n: 2 });
    expect(two.status, two.text).toBe(200);
    expect(two.json.choices.map((c: Json) => c.index)).toEqual([0, 1]);
    expect(two.json.usage.prompt_tokens).toBe(one.json.usage.prompt_tokens);
  });

  it('constrains json_object output so it parses', async () => {
    const res = await call('/v1/chat/completions', {
      model: 'chat',
      messages: [{ role: 'user', content: 'Reply in JSON' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'flag',
          schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
        },
      },
      max_tokens: 48,
      seed: 1,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json.choices[0].finish_reason).toBe('stop');
    expect(typeof JSON.parse(res.json.choices[0].message.content).ok).toBe('boolean');
    const object = await call('/v1/chat/completions', {
      model: 'chat',
      messages: [{ role: 'user', content: 'Reply in JSON' }],
      response_format: { type: 'json_object' },
      max_tokens: 48,
      seed: 1,
    });
    expect(object.status, object.text).toBe(200);
    // seeded: the grammar walk closes the object well within 48 tokens
    expect(object.json.choices[0].finish_reason).toBe('stop');
    expect(() => JSON.parse(object.json.choices[0].message.content)).not.toThrow();
  });

  it("uses the library's num_ctx for the model", async () => {
    const res = await call('/v1/chat/completions', { model: 'chat-small', messages: hello, max_tokens: 2, seed: 1 });
    expect(res.status, res.text).toBe(200);
    const loaded = hearth.ctx.engine.loaded().find((m) => m.name === 'chat-small:latest');
    expect(loaded?.contextLength).toBe(512);
  });

  it('accepts developer messages and text content parts', async () => {
    const res = await call('/v1/chat/completions', {
      model: 'chat',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hi' },
            { type: 'text', text: 'there' },
          ],
        },
      ],
      max_tokens: 2,
      seed: 1,
      logprobs: false,
      user: 'someone',
      store: false,
    });
    expect(res.status, res.text).toBe(200);
  });
});

describe("errors in OpenAI's shape", () => {
  const cases: Array<[string, string, unknown, string]> = [
    ['/v1/chat/completions', 'no model', { messages: hello }, 'model'],
    ['/v1/chat/completions', 'messages not an array', { model: 'chat', messages: 'hi' }, 'messages'],
    ['/v1/chat/completions', 'no messages', { model: 'chat', messages: [] }, 'messages'],
    [
      '/v1/chat/completions',
      'an unknown role',
      { model: 'chat', messages: [{ role: 'wizard', content: 'hi' }] },
      'messages.0.role',
    ],
    [
      '/v1/chat/completions',
      'a user message without content',
      { model: 'chat', messages: [{ role: 'user' }] },
      'messages.0.content',
    ],
    [
      '/v1/chat/completions',
      'temperature of the wrong type',
      { model: 'chat', messages: hello, temperature: 'hot' },
      'temperature',
    ],
    ['/v1/chat/completions', 'max_tokens 0', { model: 'chat', messages: hello, max_tokens: 0 }, 'max_tokens'],
    ['/v1/chat/completions', 'n 0', { model: 'chat', messages: hello, n: 0 }, 'n'],
    [
      '/v1/chat/completions',
      'top_logprobs without logprobs',
      { model: 'chat', messages: hello, top_logprobs: 2 },
      'top_logprobs',
    ],
    ['/v1/chat/completions', 'logit_bias', { model: 'chat', messages: hello, logit_bias: { '42': 10 } }, 'logit_bias'],
    [
      '/v1/chat/completions',
      'audio output',
      { model: 'chat', messages: hello, modalities: ['text', 'audio'] },
      'modalities',
    ],
    [
      '/v1/chat/completions',
      'an unknown response_format',
      { model: 'chat', messages: hello, response_format: { type: 'yaml' } },
      'response_format.type',
    ],
    [
      '/v1/chat/completions',
      'tool_choice naming a function not in tools',
      {
        model: 'chat',
        messages: hello,
        tools: [{ type: 'function', function: { name: 'a' } }],
        tool_choice: { type: 'function', function: { name: 'b' } },
      },
      'tool_choice',
    ],
    [
      '/v1/chat/completions',
      'a tool result answering no call',
      { model: 'chat', messages: [...hello, { role: 'tool', tool_call_id: 'call_x', content: '1' }] },
      'messages.1.tool_call_id',
    ],
    [
      '/v1/chat/completions',
      'assistant tool-call arguments that are not JSON',
      {
        model: 'chat',
        messages: [
          ...hello,
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{oops' } }],
          },
        ],
      },
      'messages.1.tool_calls.0.function.arguments',
    ],
    [
      '/v1/chat/completions',
      'an image by URL',
      {
        model: 'chat',
        messages: [
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] },
        ],
      },
      'messages.0.content.0.image_url.url',
    ],
    ['/v1/completions', 'a token-array prompt', { model: 'chat', prompt: [1, 2, 3] }, 'prompt'],
    ['/v1/completions', 'no prompt', { model: 'chat' }, 'prompt'],
    ['/v1/completions', 'logprobs above 5', { model: 'chat', prompt: 'x', logprobs: 9 }, 'logprobs'],
    [
      '/v1/completions',
      'suffix on a model without infill tokens',
      { model: 'chat', prompt: 'def f(', suffix: ')', stream: true },
      'suffix',
    ],
    ['/v1/embeddings', 'token-array input', { model: 'embed', input: [[1, 2]] }, 'input'],
    [
      '/v1/embeddings',
      'an unknown encoding',
      { model: 'embed', input: 'x', encoding_format: 'hex' },
      'encoding_format',
    ],
    ['/v1/embeddings', 'dimensions 0', { model: 'embed', input: 'x', dimensions: 0 }, 'dimensions'],
  ];

  it.each(cases)('%s: %s → 400 naming the field', async (path, _what, body, param) => {
    const res = await call(path, body);
    expect(res.status, res.text).toBe(400);
    expect(res.json.error).toMatchObject({ type: 'invalid_request_error', param });
    expect(typeof res.json.error.message).toBe('string');
    expect(res.json.error.message.length).toBeGreaterThan(10);
    expect(typeof res.json.error.code).toBe('string');
  });

  it('answers invalid JSON and an image to a model that cannot see with 400', async () => {
    const badJson = await call('/v1/chat/completions', '{"model": ');
    expect(badJson.status).toBe(400);
    expect(badJson.json.error.message).toMatch(/invalid JSON/);
    const image = await call('/v1/chat/completions', {
      model: 'chat',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8=' } },
          ],
        },
      ],
    });
    expect(image.status).toBe(400);
    expect(image.json.error).toMatchObject({ param: 'messages', code: 'engine_capability' });
    expect(image.json.error.message).toMatch(/does not support images/);
  });

  it("answers unknown models and routes with 404, leaving the Ollama API's shape alone", async () => {
    const model = await call('/v1/models/nope');
    expect(model.status).toBe(404);
    expect(model.json.error).toMatchObject({ type: 'not_found_error', param: 'model', code: 'model_not_found' });
    const embed = await call('/v1/embeddings', { model: 'nope', input: 'x' });
    expect(embed.status).toBe(404);
    expect(embed.json.error.param).toBe('model');
    const route = await call('/v1/nope');
    expect(route.status).toBe(404);
    expect(route.json.error).toMatchObject({ type: 'not_found_error', code: 'not_found' });
    const ollama = await call('/api/nope');
    expect(ollama.json.error).toMatch(/no such route/);
  });
});

describe('embeddings and models on the wire', () => {
  it('encodes base64 as little-endian float32', async () => {
    const floats = await call('/v1/embeddings', { model: 'embed', input: 'hello', encoding_format: 'float' });
    const b64 = await call('/v1/embeddings', { model: 'embed', input: 'hello', encoding_format: 'base64' });
    const bytes = Buffer.from(b64.json.data[0].embedding, 'base64');
    const expected: number[] = floats.json.data[0].embedding;
    expect(bytes.length).toBe(expected.length * 4);
    for (const [i, x] of expected.entries()) expect(bytes.readFloatLE(i * 4)).toBeCloseTo(x, 5);
  });

  it('retrieves a model by its full name, namespaced names included', async () => {
    const res = await call('/v1/models/chat:latest');
    expect(res.json).toMatchObject({ id: 'chat:latest', object: 'model', owned_by: 'library' });
    const copy = await call('/api/copy', { source: 'chat', destination: 'house/chat:v2' });
    expect(copy.status).toBe(200);
    const namespaced = await call(`/v1/models/${encodeURIComponent('house/chat:v2')}`);
    expect(namespaced.json).toMatchObject({ id: 'house/chat:v2', owned_by: 'house' });
  });
});
