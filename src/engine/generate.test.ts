// Generation and embeddings against the real engine on generated models (random weights, real tokenizer and templates).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModels, type TestModels } from '../../test/support/models.js';
import { isHearthError } from '../errors.js';
import { silentLogger } from '../log.js';
import { Engine } from './engine.js';
import { defaultLoadOptions, defaultSampling } from './options.js';
import { type CountingSpec, localSpec } from './test-support.js';
import type { ChatRequest, CompletionRequest, EmbedRequest } from './types.js';

let dir: string;
let models: TestModels;
let engine: Engine;
let chat: CountingSpec;
let tools: CountingSpec;
let embedder: CountingSpec;

const load = defaultLoadOptions({ numCtx: 1024, numParallel: 2 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-engine-'));
  models = await makeTestModels(dir);
  [chat, tools, embedder] = await Promise.all([
    localSpec(models.chat),
    localSpec(models.tools),
    localSpec(models.embed),
  ]);
  engine = await Engine.open({
    gpu: 'cpu',
    gpuFallback: 'cpu',
    threads: 1,
    maxLoadedModels: 0,
    maxQueue: 8,
    numParallel: 2,
    log: silentLogger(),
  });
});

afterAll(async () => {
  await engine?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function chatRequest(extra: Partial<ChatRequest> = {}): ChatRequest {
  return {
    kind: 'chat',
    model: chat,
    load,
    keepAliveMs: -1,
    messages: [{ role: 'user', content: 'Tell me about lighthouses.' }],
    sampling: defaultSampling({ numPredict: 16, seed: 1 }),
    ...extra,
  };
}

function completionRequest(extra: Partial<CompletionRequest> = {}): CompletionRequest {
  return {
    kind: 'completion',
    model: chat,
    load,
    keepAliveMs: -1,
    prompt: 'Once upon a time',
    sampling: defaultSampling({ numPredict: 16, seed: 1 }),
    ...extra,
  };
}

function embedRequest(extra: Partial<EmbedRequest> = {}): EmbedRequest {
  return {
    model: embedder,
    load: defaultLoadOptions({ numCtx: 64 }),
    keepAliveMs: -1,
    inputs: ['the quick brown fox', 'jumps over the lazy dog'],
    truncate: true,
    ...extra,
  };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => new Error('expected a rejection'),
    (err: unknown) => err,
  );
}

const norm = (v: number[]) => Math.hypot(...v);

describe('chat', () => {
  it('streams the text it returns and reports honest counts and durations', async () => {
    let streamed = '';
    const r = await engine.generate(chatRequest({ onText: (t) => (streamed += t) }));
    expect(streamed).toBe(r.text);
    expect(r.evalTokens).toBeGreaterThan(0);
    expect(r.evalTokens).toBeLessThanOrEqual(16);
    expect(r.doneReason).toBe(r.evalTokens === 16 ? 'length' : 'stop');
    expect(r.promptTokens).toBeGreaterThan(5);
    expect(r.promptEvalDurationNs).toBeGreaterThan(0);
    expect(r.totalDurationNs).toBeGreaterThanOrEqual(r.promptEvalDurationNs + r.evalDurationNs);
    expect(r.context?.length).toBeGreaterThanOrEqual(r.promptTokens);
  });

  it('does not evaluate a repeated prompt again: the sequence keeps it as a prompt cache', async () => {
    const long = 'The keeper climbed the stairs of the lighthouse every evening to light the lamp. '.repeat(6);
    const messages = [{ role: 'user' as const, content: long }];
    const first = await engine.generate(chatRequest({ messages }));
    const second = await engine.generate(chatRequest({ messages }));
    // (the chat template's opening may already sit in a sequence from an earlier test)
    expect(first.promptTokensEvaluated).toBeGreaterThan(first.promptTokens * 0.9);
    expect(second.promptTokens).toBe(first.promptTokens);
    expect(second.promptTokensEvaluated).toBeLessThan(first.promptTokens / 10);
    // a chat that grows: only the new turn is evaluated
    const grown = await engine.generate(
      chatRequest({
        messages: [...messages, { role: 'assistant', content: second.text }, { role: 'user', content: 'And then?' }],
      }),
    );
    expect(grown.promptTokensEvaluated).toBeLessThan(grown.promptTokens / 2);
  });

  it('keeps to format json: the output parses as a JSON object', async () => {
    const r = await engine.generate(
      chatRequest({ format: 'json', sampling: defaultSampling({ numPredict: 300, seed: 2 }) }),
    );
    expect(r.doneReason).toBe('stop');
    const parsed: unknown = JSON.parse(r.text);
    expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)).toBe(true);
  });

  it('keeps to a JSON schema: the output parses and validates', async () => {
    const schema = {
      type: 'object',
      properties: { ok: { type: 'boolean' }, color: { enum: ['red', 'green', 'blue'] } },
      required: ['ok', 'color'],
    };
    for (const r of [
      await engine.generate(
        chatRequest({ format: { schema }, sampling: defaultSampling({ numPredict: 100, seed: 3 }) }),
      ),
      await engine.generate(
        completionRequest({ format: { schema }, sampling: defaultSampling({ numPredict: 100, seed: 3 }) }),
      ),
    ]) {
      expect(r.doneReason).toBe('stop');
      const parsed = JSON.parse(r.text) as Record<string, unknown>;
      expect(Object.keys(parsed).sort()).toEqual(['color', 'ok']);
      expect(typeof parsed['ok']).toBe('boolean');
      expect(['red', 'green', 'blue']).toContain(parsed['color']);
    }
  });

  it('returns the tool call a tool-template model makes (tool_choice required, then a named tool)', async () => {
    const toolsOffered = [
      {
        name: 'get_weather',
        description: 'Current weather in a city',
        parameters: { type: 'object', properties: { unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['unit'] },
      },
      { name: 'get_time', description: 'The time now', parameters: { type: 'object', properties: {} } },
    ];
    const messages = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];
    const required = await engine.generate(
      chatRequest({
        model: tools,
        messages,
        tools: toolsOffered,
        toolChoice: 'required',
        sampling: defaultSampling({ numPredict: 64 }),
      }),
    );
    expect(required.doneReason).toBe('toolCalls');
    expect(required.text).toBe('');
    expect(required.toolCalls).toHaveLength(1);
    const call = required.toolCalls[0]!;
    expect(call.id).toMatch(/^call_[A-Za-z0-9_-]{24}$/);
    expect(['get_weather', 'get_time']).toContain(call.name);
    if (call.name === 'get_weather') expect(['celsius', 'fahrenheit']).toContain(call.arguments['unit']);

    const named = await engine.generate(
      chatRequest({
        model: tools,
        messages,
        tools: toolsOffered,
        toolChoice: { name: 'get_weather' },
        sampling: defaultSampling({ numPredict: 64 }),
      }),
    );
    expect(named.toolCalls.map((c) => c.name)).toEqual(['get_weather']);
    expect(['celsius', 'fahrenheit']).toContain(named.toolCalls[0]!.arguments['unit']);

    // the call and its result go back into the history; the model answers after them
    const followUp = await engine.generate(
      chatRequest({
        model: tools,
        messages: [
          ...messages,
          { role: 'assistant', content: '', toolCalls: named.toolCalls },
          { role: 'tool', toolName: 'get_weather', content: '{"temperature": 21}' },
        ],
        tools: toolsOffered,
      }),
    );
    expect(followUp.promptTokens).toBeGreaterThan(required.promptTokens + 10);

    // tool_choice none: the tools are not even described to the model
    const none = await engine.generate(
      chatRequest({ model: tools, messages, tools: toolsOffered, toolChoice: 'none' }),
    );
    expect(none.toolCalls).toEqual([]);
    expect(none.promptTokens).toBeLessThan(required.promptTokens);
  });

  it('refuses images with ENGINE_CAPABILITY before loading anything', async () => {
    const resolved = chat.resolved;
    const err = await rejection(
      engine.generate(chatRequest({ messages: [{ role: 'user', content: 'What is this?', images: ['aGVsbG8='] }] })),
    );
    expect(isHearthError(err, 'ENGINE_CAPABILITY')).toBe(true);
    expect((err as Error).message).toMatch(/model "chat" does not support images/);
    expect(chat.resolved).toBe(resolved);
  });

  it('refuses to chat with an embedding model', async () => {
    const err = await rejection(engine.generate(chatRequest({ model: embedder })));
    expect(isHearthError(err, 'ENGINE_CAPABILITY')).toBe(true);
    expect((err as Error).message).toMatch(/embedding model/);
  });
});

describe('raw completion', () => {
  it('generates exactly numPredict tokens and says length', async () => {
    let streamed = '';
    const r = await engine.generate(
      completionRequest({ sampling: defaultSampling({ numPredict: 8, seed: 1 }), onText: (t) => (streamed += t) }),
    );
    expect(r.doneReason).toBe('length');
    expect(r.evalTokens).toBe(8);
    expect(streamed).toBe(r.text);
    expect(r.context).toHaveLength(r.promptTokens + 8);
  });

  it('ends at a stop sequence, which is not part of the output', async () => {
    let streamed = '';
    const r = await engine.generate(
      completionRequest({
        sampling: defaultSampling({ numPredict: 300, seed: 1, stop: ['e'] }),
        onText: (t) => (streamed += t),
      }),
    );
    expect(r.doneReason).toBe('stop');
    expect(r.evalTokens).toBeLessThan(300);
    expect(r.text).not.toContain('e');
    expect(streamed).toBe(r.text);
  });

  it('refuses a suffix (fill-in-the-middle) on a model without infill tokens', async () => {
    const err = await rejection(engine.generate(completionRequest({ suffix: 'return x' })));
    expect(isHearthError(err, 'ENGINE_CAPABILITY')).toBe(true);
    expect((err as Error).message).toMatch(/does not support insert/);
  });
});

describe('embeddings', () => {
  it('returns one L2-normalised vector per input, of the model width', async () => {
    const r = await engine.embed(embedRequest());
    expect(r.embeddings).toHaveLength(2);
    for (const v of r.embeddings) {
      expect(v).toHaveLength(64);
      expect(norm(v)).toBeCloseTo(1, 6);
    }
    expect(r.embeddings[0]).not.toEqual(r.embeddings[1]);
    expect(r.promptTokens).toBeGreaterThan(4);
  });

  it('keeps the first N dimensions, normalised again, and refuses more than the model has', async () => {
    const full = (await engine.embed(embedRequest({ inputs: ['lighthouse'] }))).embeddings[0]!;
    const cut = (await engine.embed(embedRequest({ inputs: ['lighthouse'], dimensions: 16 }))).embeddings[0]!;
    expect(cut).toHaveLength(16);
    expect(norm(cut)).toBeCloseTo(1, 6);
    const scale = norm(full.slice(0, 16));
    for (const [i, x] of cut.entries()) expect(x).toBeCloseTo(full[i]! / scale, 5);
    const err = await rejection(engine.embed(embedRequest({ dimensions: 65 })));
    expect(isHearthError(err, 'BAD_REQUEST')).toBe(true);
  });

  it('truncates long inputs by default, and with truncate false names the input that does not fit', async () => {
    const long = 'lighthouse keeper '.repeat(100);
    const cut = await engine.embed(embedRequest({ inputs: ['short', long] }));
    expect(cut.embeddings).toHaveLength(2);
    expect(norm(cut.embeddings[1]!)).toBeCloseTo(1, 6);
    const err = await rejection(engine.embed(embedRequest({ inputs: ['short', long], truncate: false })));
    expect(isHearthError(err, 'BAD_REQUEST')).toBe(true);
    expect((err as Error).message).toMatch(/^input 1 has \d+ tokens, more than the 63 that fit/);
  });

  it('embeds with a chat model too', async () => {
    const r = await engine.embed(embedRequest({ model: chat, load }));
    expect(r.embeddings[0]).toHaveLength(64);
    expect(norm(r.embeddings[0]!)).toBeCloseTo(1, 6);
  });
});

describe('capabilities', () => {
  it('reads what a GGUF can do from its metadata', async () => {
    expect(await engine.capabilities(models.chat)).toEqual({
      completion: true,
      tools: false,
      thinking: false,
      insert: false,
      embedding: false,
      vision: false,
    });
    expect(await engine.capabilities(models.tools)).toMatchObject({ completion: true, tools: true });
    expect(await engine.capabilities(models.embed)).toMatchObject({ completion: false, embedding: true, tools: false });
  });
});
