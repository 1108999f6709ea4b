// Thinking and logprobs on the server engine, through the official clients. Thinking: a generated model whose template has a Qwen 3
// style <think> section (the generation prompt opens it, so even random weights "think"), llama-server
// extracting the reasoning. Ollama's `think`, OpenAI's `reasoning_effort`, the Responses API's `reasoning` and
// Anthropic's `thinking`; a model that cannot think; /api/show's capabilities.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { call, createModel } from './support/jobs.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let ollama: Ollama;
let openai: OpenAI;

const post = (path: string, body: unknown) => call(hearth.url, path, body);

beforeAll(async () => {
  expect(inject('serverEngineUnavailable'), 'the global setup could not build llama-server').toBe('');
  dirs = await hearthDirs('hearth-thinking-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, { inference: { numParallel: 1, numCtx: 512 } });
  await createModel(hearth.url, 'thinker', models.thinking);
  await createModel(hearth.url, 'chat', models.chat);
  ollama = new Ollama({ host: hearth.url });
  openai = new OpenAI({ baseURL: `${hearth.url}/v1`, apiKey: 'unused' });
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

const options = { num_predict: 12, seed: 1, temperature: 0 };

describe('thinking on the server engine', () => {
  it('lists thinking among the capabilities of a model whose template thinks, and not for one that cannot', async () => {
    expect(hearth.ctx.engine.serving().engine).toBe('server');
    expect((await ollama.show({ model: 'thinker' })).capabilities).toEqual(['completion', 'thinking']);
    expect((await ollama.show({ model: 'chat' })).capabilities).toEqual(['completion']);
  });

  it('/api/chat with think: the reasoning in message.thinking, apart from the content; streamed as thinking chunks', async () => {
    const res = await ollama.chat({
      model: 'thinker',
      messages: [{ role: 'user', content: 'hi' }],
      think: true,
      options,
    });
    expect(res.message.thinking?.length).toBeGreaterThan(0);
    expect(res.message.content).not.toContain('<think>');

    const stream = await ollama.chat({
      model: 'thinker',
      messages: [{ role: 'user', content: 'hi' }],
      think: 'high',
      stream: true,
      options,
    });
    let thinking = '';
    for await (const part of stream) thinking += part.message.thinking ?? '';
    expect(thinking.length).toBeGreaterThan(0);

    // think: false closes the section in the prompt: no reasoning comes back
    const off = await ollama.chat({
      model: 'thinker',
      messages: [{ role: 'user', content: 'hi' }],
      think: false,
      options,
    });
    expect(off.message.thinking ?? '').toBe('');
  });

  it('/api/generate with think: the reasoning in thinking', async () => {
    const res = await ollama.generate({ model: 'thinker', prompt: 'hi', think: true, options });
    expect(res.thinking?.length).toBeGreaterThan(0);
  });

  it('answers think: true on a model that cannot think with 400, as Ollama does', async () => {
    const res = await post('/api/chat', {
      model: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      think: true,
      stream: false,
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('"chat:latest" does not support thinking');
  });

  it("OpenAI reasoning_effort: reasoning_content (and Ollama's reasoning) on a thinking model, accepted on any", async () => {
    const res = await openai.chat.completions.create({
      model: 'thinker',
      messages: [{ role: 'user', content: 'hi' }],
      reasoning_effort: 'low',
      max_tokens: 12,
      seed: 1,
    });
    const message = res.choices[0]!.message as unknown as { reasoning_content?: string; reasoning?: string };
    expect(message.reasoning_content?.length).toBeGreaterThan(0);
    expect(message.reasoning).toBe(message.reasoning_content);

    const stream = await openai.chat.completions.create({
      model: 'thinker',
      messages: [{ role: 'user', content: 'hi' }],
      reasoning_effort: 'high',
      max_tokens: 12,
      stream: true,
    });
    let reasoning = '';
    for await (const chunk of stream) {
      reasoning += (chunk.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
    }
    expect(reasoning.length).toBeGreaterThan(0);

    const plain = await openai.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      reasoning_effort: 'high',
      max_tokens: 4,
    });
    expect(plain.choices[0]!.message).not.toHaveProperty('reasoning_content');
  });

  it('Responses reasoning.effort gives a reasoning item; Anthropic thinking a thinking block', async () => {
    const response = await openai.responses.create({
      model: 'thinker',
      input: 'hi',
      reasoning: { effort: 'medium' },
      max_output_tokens: 12,
    });
    const item = response.output[0] as { type: string; summary: Array<{ text: string }> };
    expect(item.type).toBe('reasoning');
    expect(item.summary[0]!.text.length).toBeGreaterThan(0);

    const message = await post('/v1/messages', {
      model: 'thinker',
      max_tokens: 12,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(message.status, message.text).toBe(200);
    expect(message.json.content[0].type).toBe('thinking');
    expect(message.json.content[0].thinking.length).toBeGreaterThan(0);
  });
});

describe('logprobs on the server engine', () => {
  const check = (entries: any[], top: number) => {
    expect(entries.length).toBeGreaterThan(0);
    for (const e of entries) {
      expect(typeof e.token).toBe('string');
      expect(e.logprob).toBeLessThanOrEqual(0);
      expect(Array.isArray(e.bytes)).toBe(true);
      expect(e.top_logprobs).toHaveLength(top);
      const alternatives = e.top_logprobs.map((t: any) => t.logprob);
      expect(alternatives).toEqual([...alternatives].sort((a, b) => b - a));
    }
  };

  it('Ollama logprobs and top_logprobs on /api/generate and /api/chat', async () => {
    const gen = await post('/api/generate', {
      model: 'chat',
      prompt: 'hi',
      logprobs: true,
      top_logprobs: 3,
      stream: false,
      options,
    });
    expect(gen.status, gen.text).toBe(200);
    check(gen.json.logprobs, 3);
    expect(gen.json.logprobs.map((e: any) => e.token).join('')).toBe(gen.json.response);

    const chat = await post('/api/chat', {
      model: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      logprobs: true,
      top_logprobs: 2,
      options,
    });
    expect(chat.status, chat.text).toBe(200);
    const lines = chat.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const streamed = lines.flatMap((l) => l.logprobs ?? []);
    check(streamed, 2);

    const bad = await post('/api/generate', { model: 'chat', prompt: 'hi', top_logprobs: 50, stream: false });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/top_logprobs/);
  });

  it('OpenAI logprobs/top_logprobs on /v1/chat/completions and logprobs on /v1/completions', async () => {
    const res = await openai.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      logprobs: true,
      top_logprobs: 2,
      max_tokens: 8,
      seed: 1,
    });
    check(res.choices[0]!.logprobs!.content!, 2);

    const stream = await openai.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      logprobs: true,
      max_tokens: 8,
      seed: 1,
      stream: true,
    });
    const entries: any[] = [];
    for await (const chunk of stream) entries.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    check(entries, 0);

    const completion = await openai.completions.create({ model: 'chat', prompt: 'hi', logprobs: 2, max_tokens: 8 });
    const lp = completion.choices[0]!.logprobs!;
    expect(lp.tokens!.length).toBeGreaterThan(0);
    expect(lp.token_logprobs).toHaveLength(lp.tokens!.length);
    expect(Object.keys(lp.top_logprobs![0]!).length).toBeLessThanOrEqual(2);
    expect(lp.text_offset![0]).toBe(0);

    await expect(
      openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], top_logprobs: 2 }),
    ).rejects.toMatchObject({ status: 400, param: 'top_logprobs' });
  });
});
