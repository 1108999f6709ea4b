// The OpenAI-compatible API driven through the official `openai` SDK, as
// LangChain, IDE assistants and scripts use it: real HTTP, real engine,
// generated models.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import type { ChatCompletionChunk, ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let client: OpenAI;

async function uploadModel(name: string, path: string, extra: Record<string, unknown> = {}) {
  const bytes = await readFile(path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const up = await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  expect([200, 201]).toContain(up.status);
  const files = { [path.split('/').pop()!]: digest };
  const res = await fetch(`${hearth.url}/api/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: name, files, stream: false, ...extra }),
  });
  expect(res.status, await res.text()).toBe(200);
}

beforeAll(async () => {
  expect(inject('serverEngineUnavailable'), 'the global setup could not build llama-server').toBe('');
  dirs = await hearthDirs('hearth-openai-sdk-');
  await mkdir(join(dirs.root, 'models'));
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, {
    // The server engine (llama-server): a forced tool call comes in the template's own format.
    inference: { numParallel: 2, numCtx: 1024 },
    // Loopback peers need no key here: the Bearer token every OpenAI client sends is accepted and not checked.
    listeners: [{ name: 'test', address: '127.0.0.1:0', zones: ['loopback'], auth: 'loopback-exempt' }],
  });
  await uploadModel('chat', models.chat, { parameters: { stop: ['<|im_end|>'] } });
  await uploadModel('tools', models.tools);
  await uploadModel('embed', models.embed);
  // Any key is accepted until API keys arrive with the network zones; retries would hide the errors under test.
  client = new OpenAI({ baseURL: `${hearth.url}/v1`, apiKey: 'sk-anything', maxRetries: 0 });
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

const hello = [{ role: 'user' as const, content: 'Say hello' }];

// An enum keeps a random-weight model's arguments short: the grammar allows nothing else.
const weatherParameters = {
  type: 'object',
  properties: { city: { type: 'string', enum: ['Paris', 'Oslo', 'Lima'] } },
  required: ['city'],
};

const weatherTool: ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the weather for a city',
    parameters: weatherParameters,
  },
};

/** tool_choice required on the weather question, seeded. */
function forcedWeatherCall(maxTokens: number, seed: number) {
  return client.chat.completions.create({
    model: 'tools',
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    tools: [weatherTool],
    tool_choice: 'required',
    max_tokens: maxTokens,
    seed,
  });
}

describe('chat completions', () => {
  it('answers without streaming, with real token counts', async () => {
    const res = await client.chat.completions.create({ model: 'chat', messages: hello, max_tokens: 6, seed: 1 });
    expect(res.object).toBe('chat.completion');
    expect(res.id).toMatch(/^chatcmpl-/);
    expect(res.model).toBe('chat');
    expect(res.choices).toHaveLength(1);
    const [choice] = res.choices;
    expect(choice!.message.role).toBe('assistant');
    expect(typeof choice!.message.content).toBe('string');
    // seeded: the test model's noise runs to the 6-token limit
    expect(choice!.finish_reason).toBe('length');
    expect(res.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(res.usage!.completion_tokens).toBe(6);
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
  });

  it('streams chunks: the role first, the finish reason last; the SDK assembles them', async () => {
    const stream = await client.chat.completions.create({
      model: 'chat',
      messages: hello,
      max_tokens: 6,
      seed: 1,
      stream: true,
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]!.object).toBe('chat.completion.chunk');
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
    expect(['stop', 'length']).toContain(chunks.at(-1)!.choices[0]!.finish_reason);
    expect(chunks.every((c) => c.usage === undefined)).toBe(true);

    // The SDK's stream helper folds the same chunks into one completion.
    const runner = client.chat.completions.stream({ model: 'chat', messages: hello, max_tokens: 6, seed: 1 });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0]!.message.role).toBe('assistant');
    expect(typeof final.choices[0]!.message.content).toBe('string');
  });

  it('streams with include_usage: a last chunk with no choices and the totals', async () => {
    const stream = await client.chat.completions.create({
      model: 'chat',
      messages: hello,
      max_tokens: 5,
      seed: 1,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(last.usage!.completion_tokens).toBeGreaterThan(0);
    expect(last.usage!.completion_tokens).toBeLessThanOrEqual(5);
    expect(last.usage!.total_tokens).toBe(last.usage!.prompt_tokens + last.usage!.completion_tokens);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('returns structured output the SDK parses with a zod schema', async () => {
    // zod 4 schemas work with this SDK's helper (openai >= 5.x ships zod/v3 and zod/v4 support).
    const Verdict = z.object({ answer: z.enum(['yes', 'no']), sure: z.boolean() });
    const res = await client.chat.completions.parse({
      model: 'chat',
      messages: [{ role: 'user', content: 'Is the sky blue? Answer in JSON.' }],
      response_format: zodResponseFormat(Verdict, 'verdict'),
      max_tokens: 64,
      seed: 1,
    });
    const parsed = res.choices[0]!.message.parsed;
    expect(parsed).not.toBeNull();
    expect(Verdict.parse(parsed)).toEqual(parsed);
  });

  it('calls a tool when tool_choice is required, streamed and not', async () => {
    const res = await forcedWeatherCall(256, 3);
    const choice = res.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls![0]!;
    expect(call.id).toMatch(/^call_/);
    expect(call.type).toBe('function');
    if (call.type !== 'function') throw new Error('unreachable');
    expect(call.function.name).toBe('get_weather');
    expect(['Paris', 'Oslo', 'Lima']).toContain(JSON.parse(call.function.arguments).city);

    // The answer goes back as a tool message; the model continues the conversation.
    const followUp = await client.chat.completions.create({
      model: 'tools',
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' },
      ],
      tools: [weatherTool],
      max_tokens: 6,
      seed: 1,
    });
    expect(followUp.choices[0]!.message.role).toBe('assistant');

    // Streamed: the call arrives as delta.tool_calls, which the SDK's helper assembles.
    const runner = client.chat.completions.stream({
      model: 'tools',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 256,
      seed: 1,
    });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    const streamed = final.choices[0]!.message.tool_calls![0]!;
    expect(streamed.id).toMatch(/^call_/);
    if (streamed.type !== 'function') throw new Error('unreachable');
    expect(streamed.function.name).toBe('get_weather');
    expect(['Paris', 'Oslo', 'Lima']).toContain(JSON.parse(streamed.function.arguments).city);
  });

  it('stops with finish_reason length when max_tokens cuts a forced call', async () => {
    // 20 tokens reach into the call (its name, the start of its arguments) but not to its end
    const cut = await forcedWeatherCall(20, 1);
    expect(cut.choices[0]!.finish_reason).toBe('length');
    expect(cut.choices[0]!.message.tool_calls ?? []).toEqual([]);
    expect(cut.usage!.completion_tokens).toBe(20);
  });
});

describe('completions', () => {
  it('completes a prompt, an array of prompts, with echo and streamed', async () => {
    const one = await client.completions.create({ model: 'chat', prompt: 'Once upon a time', max_tokens: 5, seed: 1 });
    expect(one.object).toBe('text_completion');
    expect(one.id).toMatch(/^cmpl-/);
    expect(typeof one.choices[0]!.text).toBe('string');
    expect(['stop', 'length']).toContain(one.choices[0]!.finish_reason);
    expect(one.usage!.completion_tokens).toBeLessThanOrEqual(5);

    const many = await client.completions.create({
      model: 'chat',
      prompt: ['Red', 'Green'],
      max_tokens: 3,
      seed: 1,
      echo: true,
    });
    expect(many.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(many.choices[0]!.text.startsWith('Red')).toBe(true);
    expect(many.choices[1]!.text.startsWith('Green')).toBe(true);

    const stream = await client.completions.create({
      model: 'chat',
      prompt: 'Once',
      max_tokens: 4,
      seed: 1,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]!.text;
      finish = chunk.choices[0]!.finish_reason ?? finish;
    }
    expect(typeof text).toBe('string');
    expect(['stop', 'length']).toContain(finish);
  });
});

describe('embeddings', () => {
  it('returns floats, and base64 the SDK decodes to the same vectors', async () => {
    const input = ['hello world', 'goodbye'];
    const floats = await client.embeddings.create({ model: 'embed', input, encoding_format: 'float' });
    expect(floats.object).toBe('list');
    expect(floats.data.map((d) => d.index)).toEqual([0, 1]);
    expect(floats.usage.prompt_tokens).toBeGreaterThan(0);
    const v = floats.data[0]!.embedding;
    expect(Math.hypot(...v)).toBeCloseTo(1, 3);

    // Without encoding_format the SDK asks for base64 and decodes it itself.
    const decoded = await client.embeddings.create({ model: 'embed', input });
    for (const [i, d] of decoded.data.entries()) {
      const expected = floats.data[i]!.embedding;
      expect(d.embedding).toHaveLength(expected.length);
      for (const [j, x] of d.embedding.entries()) expect(x).toBeCloseTo(expected[j]!, 5);
    }

    const short = await client.embeddings.create({
      model: 'embed',
      input: 'hello',
      dimensions: 8,
      encoding_format: 'float',
    });
    expect(short.data[0]!.embedding).toHaveLength(8);
  });
});

describe('models', () => {
  it('lists and retrieves models from the library', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) {
      expect(m.object).toBe('model');
      expect(Number.isInteger(m.created)).toBe(true);
      expect(m.owned_by).toBe('library');
      ids.push(m.id);
    }
    expect(ids).toEqual(expect.arrayContaining(['chat:latest', 'tools:latest', 'embed:latest']));
    const chat = await client.models.retrieve('chat');
    expect(chat).toMatchObject({ id: 'chat:latest', object: 'model', owned_by: 'library' });
    expect(Math.abs(chat.created - Date.now() / 1000)).toBeLessThan(3600);
  });
});

describe('errors', () => {
  it('surfaces an unknown model as NotFoundError and a bad field as BadRequestError naming it', async () => {
    const missing = await client.models.retrieve('nope').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    const chat = await client.chat.completions.create({ model: 'nope', messages: hello }).catch((e: unknown) => e);
    expect(chat).toBeInstanceOf(NotFoundError);
    expect(chat).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });

    const bad = await client.chat.completions
      .create({ model: 'chat', messages: hello, temperature: 7 })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect(bad).toMatchObject({ status: 400, param: 'temperature', type: 'invalid_request_error' });
    expect((bad as BadRequestError).message).toMatch(/temperature/);
  });

  it('refuses tools on a model whose template has none, on every API, as Ollama does', async () => {
    const refusal = /model "chat:latest" does not support tools/;
    const chat = await client.chat.completions
      .create({ model: 'chat', messages: hello, tools: [weatherTool], tool_choice: 'required' })
      .catch((e: unknown) => e);
    expect(chat).toBeInstanceOf(BadRequestError);
    expect(chat).toMatchObject({ status: 400, param: 'tools' });
    expect((chat as BadRequestError).message).toMatch(refusal);

    const response = await client.responses
      .create({
        model: 'chat',
        input: 'hi',
        tools: [{ type: 'function', strict: false, name: 'get_weather', parameters: weatherParameters }],
      })
      .catch((e: unknown) => e);
    expect(response).toBeInstanceOf(BadRequestError);
    expect((response as BadRequestError).message).toMatch(refusal);

    const post = (path: string, body: unknown) =>
      fetch(`${hearth.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const anthropic = await post('/v1/messages', {
      model: 'chat',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ name: 'get_weather', input_schema: weatherParameters }],
    });
    expect(anthropic.status).toBe(400);
    expect(await anthropic.json()).toMatchObject({
      type: 'error',
      error: { type: 'invalid_request_error', message: expect.stringMatching(refusal) },
    });

    const ollama = await post('/api/chat', {
      model: 'chat',
      messages: hello,
      tools: [weatherTool],
      stream: false,
    });
    expect(ollama.status).toBe(400);
    expect(((await ollama.json()) as { error: string }).error).toMatch(refusal);
  });
});
