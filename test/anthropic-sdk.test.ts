// Anthropic's Messages API (/v1/messages) through the official `@anthropic-ai/sdk`
// (as Claude Code and agent tools use it) and raw HTTP: plain, streamed, a tool
// round trip, count_tokens, errors in Anthropic's shape, keys by x-api-key.
// One server, one generated model (Qwen-style tool template).
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Anthropic, { AuthenticationError, BadRequestError, NotFoundError } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../src/net/keys/key-store.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let client: Anthropic;

beforeAll(async () => {
  dirs = await hearthDirs('hearth-anthropic-');
  await mkdir(join(dirs.root, 'models'));
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, {
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
      max_tokens: 64,
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
