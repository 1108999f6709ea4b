// Anthropic's Messages API (/v1/messages) through the official `@anthropic-ai/sdk`
// (as Claude Code and agent tools use it) and raw HTTP: plain, streamed, a tool
// round trip, count_tokens, errors in Anthropic's shape, keys by x-api-key.
// One server, one generated model (Qwen-style tool template).
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Anthropic, { AuthenticationError, BadRequestError, NotFoundError } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../src/net/keys/key-store.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let client: Anthropic;

beforeAll(async () => {
  expect(inject('serverEngineUnavailable'), 'the global setup could not build llama-server').toBe('');
  dirs = await hearthDirs('hearth-anthropic-');
  await mkdir(join(dirs.root, 'models'));
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, {
    // The server engine (llama-server): a forced tool call comes in the template's own format.
    inference: { numParallel: 2, numCtx: 1024 },
    listeners: [
      { name: 'local', address: '127.0.0.1:0', zones: ['loopback'], auth: 'loopback-exempt' },
      { name: 'keyed', address: '127.0.0.1:0', zones: ['loopback'], auth: 'required' },
    ],
  });
  const bytes = await readFile(models.tools);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const up = await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  expect([200, 201]).toContain(up.status);
  // A seeded sampler (a Modelfile PARAMETER), so the random model's answers repeat: Anthropic's API has no seed.
  const res = await fetch(`${hearth.url}/api/create`, {
    method: 'POST',
    body: JSON.stringify({ model: 'tools', files: { 'tools.gguf': digest }, parameters: { seed: 1 }, stream: false }),
  });
  expect(res.status, await res.text()).toBe(200);
  client = new Anthropic({ baseURL: hearth.url, apiKey: 'sk-ant-anything', maxRetries: 0 });
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

const weatherTool: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Get the weather for a city',
  // An enum keeps a random-weight model's arguments short: the grammar allows nothing else.
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string', enum: ['Paris', 'Oslo', 'Lima'] } },
    required: ['city'],
  },
};

describe('messages.create', () => {
  it("answers in Anthropic's message shape, with real token counts", async () => {
    const msg = await client.messages.create({
      model: 'tools',
      max_tokens: 6,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Say hello' }],
    });
    expect(msg.id).toMatch(/^msg_/);
    expect(msg.type).toBe('message');
    expect(msg.role).toBe('assistant');
    expect(msg.model).toBe('tools');
    expect(['end_turn', 'max_tokens']).toContain(msg.stop_reason);
    expect(msg.stop_sequence).toBeNull();
    expect(msg.content.every((b) => b.type === 'text')).toBe(true);
    expect(msg.usage.input_tokens).toBeGreaterThan(0);
    expect(msg.usage.output_tokens).toBeGreaterThan(0);
    expect(msg.usage.output_tokens).toBeLessThanOrEqual(6);
    if (msg.stop_reason === 'max_tokens') expect(msg.usage.output_tokens).toBe(6);
  });

  it('uses a tool, and continues from its tool_result', async () => {
    const question: Anthropic.MessageParam = { role: 'user', content: 'What is the weather in Paris?' };
    const first = await client.messages.create({
      model: 'tools',
      max_tokens: 256,
      messages: [question],
      tools: [weatherTool],
      tool_choice: { type: 'any' },
    });
    expect(first.stop_reason).toBe('tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    if (use?.type !== 'tool_use') throw new Error(`no tool_use in ${JSON.stringify(first.content)}`);
    expect(use.id).toMatch(/^toolu_/);
    expect(use.name).toBe('get_weather');
    expect(['Paris', 'Oslo', 'Lima']).toContain((use.input as { city: string }).city);

    const second = await client.messages.create({
      model: 'tools',
      max_tokens: 6,
      messages: [
        question,
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 degrees, sunny' }] },
      ],
      tools: [weatherTool],
      tool_choice: { type: 'none' },
    });
    expect(second.role).toBe('assistant');
    expect(['end_turn', 'max_tokens']).toContain(second.stop_reason);
  });

  it('returns structured output constrained by output_config.format', async () => {
    const msg = await client.messages.create({
      model: 'tools',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Is the sky blue? Answer in JSON.' }],
      output_config: {
        format: {
          type: 'json_schema',
          schema: {
            type: 'object',
            properties: { answer: { type: 'string', enum: ['yes', 'no'] }, sure: { type: 'boolean' } },
            required: ['answer', 'sure'],
            additionalProperties: false,
          },
        },
      },
    });
    const text = msg.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    const parsed = JSON.parse(text) as { answer: string; sure: boolean };
    expect(['yes', 'no']).toContain(parsed.answer);
    expect(typeof parsed.sure).toBe('boolean');
  });

  it('counts the tokens of a prompt', async () => {
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Say hello' }];
    const count = await client.messages.countTokens({ model: 'tools', messages });
    const longer = await client.messages.countTokens({
      model: 'tools',
      system: 'You are a helpful assistant who answers every question in great detail.',
      messages,
    });
    expect(count.input_tokens).toBeGreaterThan(0);
    expect(longer.input_tokens).toBeGreaterThan(count.input_tokens);
  });
});

describe('streaming', () => {
  it("sends Anthropic's events in order; the SDK assembles the message", async () => {
    const stream = await client.messages.create({
      model: 'tools',
      max_tokens: 6,
      messages: [{ role: 'user', content: 'Say hello' }],
      stream: true,
    });
    const events: Anthropic.RawMessageStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const types = events.map((e) => e.type).filter((t, i, all) => t !== all[i - 1]);
    expect(types).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const delta = events.find((e) => e.type === 'message_delta');
    if (delta?.type !== 'message_delta') throw new Error('unreachable');
    expect(['end_turn', 'max_tokens']).toContain(delta.delta.stop_reason);
    expect(delta.usage.output_tokens).toBeGreaterThan(0);
    expect(delta.usage.input_tokens).toBeGreaterThan(0);

    const final = await client.messages
      .stream({ model: 'tools', max_tokens: 6, messages: [{ role: 'user', content: 'Say hello' }] })
      .finalMessage();
    const text = events.flatMap((e) =>
      e.type === 'content_block_delta' && e.delta.type === 'text_delta' ? [e.delta.text] : [],
    );
    expect(final.content).toEqual([{ type: 'text', text: text.join('') }]);
    expect(final.usage.input_tokens).toBe(delta.usage.input_tokens);
  });

  it('streams a tool_use block as input_json_delta, parsed by the SDK', async () => {
    const final = await client.messages
      .stream({
        model: 'tools',
        max_tokens: 256,
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
        tools: [weatherTool],
        tool_choice: { type: 'tool', name: 'get_weather' },
      })
      .finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    const use = final.content.find((b) => b.type === 'tool_use');
    if (use?.type !== 'tool_use') throw new Error(`no tool_use in ${JSON.stringify(final.content)}`);
    expect(['Paris', 'Oslo', 'Lima']).toContain((use.input as { city: string }).city);
  });

  it('names every SSE event by its type, a ping after message_start (raw HTTP)', async () => {
    const res = await fetch(`${hearth.url}/v1/messages`, {
      method: 'POST',
      headers: { 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'tools',
        max_tokens: 3,
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const blocks = (await res.text()).split('\n\n').filter(Boolean);
    const names = blocks.map((block) => {
      const [eventLine, dataLine] = block.split('\n');
      const data = JSON.parse(dataLine!.replace(/^data: /, '')) as { type: string };
      expect(eventLine).toBe(`event: ${data.type}`);
      return data.type;
    });
    expect(names.slice(0, 2)).toEqual(['message_start', 'ping']);
    expect(names.at(-1)).toBe('message_stop');
  });
});

describe('models', () => {
  it("lists the library in Anthropic's model shape for Anthropic's clients", async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) {
      expect(m.type).toBe('model');
      expect(Number.isNaN(Date.parse(m.created_at))).toBe(false);
      ids.push(m.id);
    }
    expect(ids).toEqual(['tools:latest']);
    expect(await client.models.retrieve('tools')).toMatchObject({ type: 'model', id: 'tools:latest' });
  });
});

describe('errors and auth', () => {
  it("raises Anthropic's typed errors from Anthropic-shaped bodies", async () => {
    const missing = await client.messages
      .create({ model: 'nope', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).error).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error', message: expect.stringMatching(/model.*nope/) },
    });
    const bad = await client.messages
      // temperature left this SDK's types with the newest models; older clients still send it.
      .create({
        model: 'tools',
        max_tokens: 4,
        ...({ temperature: 1.5 } as object),
        messages: [{ role: 'user', content: 'hi' }],
      })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect((bad as BadRequestError).error).toMatchObject({
      type: 'error',
      error: { type: 'invalid_request_error', message: expect.stringMatching(/temperature/) },
    });

    const raw = await fetch(`${hearth.url}/v1/messages`, {
      method: 'POST',
      body: JSON.stringify({ model: 'tools', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: expect.stringMatching(/max_tokens/) },
    });
    // Streamed or not: an error before the first event keeps its status and shape.
    const streamed = await fetch(`${hearth.url}/v1/messages`, {
      method: 'POST',
      body: JSON.stringify({ model: 'nope', max_tokens: 4, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(streamed.status).toBe(404);
    expect(await streamed.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    const serverTool = await fetch(`${hearth.url}/v1/messages`, {
      method: 'POST',
      body: JSON.stringify({
        model: 'tools',
        max_tokens: 4,
        messages: [{ role: 'user', content: 'hi' }],
        tools: [{ type: 'web_search_20250305', name: 'web_search' }],
      }),
    });
    expect(serverTool.status).toBe(400);
    expect(((await serverTool.json()) as { error: { message: string } }).error.message).toMatch(
      /tools\.0\.type.*web_search_20250305.*not supported/,
    );
  });

  it('takes the same scoped API keys from x-api-key, and refuses others in Anthropic shape', async () => {
    const keys = new ApiKeyStore({ db: hearth.ctx.atlas.db });
    const { key } = await keys.create({ name: 'claude-code', scopes: ['inference'] });
    const keyed = hearth.urls[1]!;
    const ok = await new Anthropic({ baseURL: keyed, apiKey: key, maxRetries: 0 }).messages.create({
      model: 'tools',
      max_tokens: 2,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(ok.type).toBe('message');
    const refused = await new Anthropic({ baseURL: keyed, apiKey: 'hth_nope_nope', maxRetries: 0 }).messages
      .create({ model: 'tools', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect((refused as AuthenticationError).error).toMatchObject({
      type: 'error',
      error: { type: 'authentication_error' },
    });
  });
});
