// OpenAI's Responses API (/v1/responses) through the official `openai` SDK and
// raw HTTP: plain, streamed, tools, structured output, stored responses on
// Atlas (previous_response_id across a restart, GET/DELETE, visibility by key).
// One server, one generated model (Qwen-style tool template).
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import type { FunctionTool, ResponseStreamEvent } from 'openai/resources/responses/responses';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { ApiKeyStore } from '../src/net/keys/key-store.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let client: OpenAI;

const config = {
  // The server engine (llama-server): a forced tool call comes in the template's own format.
  inference: { numParallel: 2, numCtx: 1024 },
  listeners: [
    { name: 'local', address: '127.0.0.1:0', zones: ['loopback'], auth: 'loopback-exempt' },
    // The same machine, but every caller needs a key: where stored responses are told apart by key.
    { name: 'keyed', address: '127.0.0.1:0', zones: ['loopback'], auth: 'required' },
  ],
};

async function start(): Promise<void> {
  hearth = await startHearthInProcess(dirs, config);
  client = new OpenAI({ baseURL: `${hearth.url}/v1`, apiKey: 'sk-anything', maxRetries: 0 });
}

beforeAll(async () => {
  expect(inject('serverEngineUnavailable'), 'the global setup could not build llama-server').toBe('');
  dirs = await hearthDirs('hearth-responses-');
  await mkdir(join(dirs.root, 'models'));
  const models = await makeTestModels(join(dirs.root, 'models'));
  await start();
  const bytes = await readFile(models.tools);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  expect([200, 201]).toContain(
    (await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes })).status,
  );
  const res = await fetch(`${hearth.url}/api/create`, {
    method: 'POST',
    body: JSON.stringify({ model: 'tools', files: { 'tools.gguf': digest }, stream: false }),
  });
  expect(res.status, await res.text()).toBe(200);
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

const weatherTool: FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Get the weather for a city',
  // An enum keeps a random-weight model's arguments short: the grammar allows nothing else.
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', enum: ['Paris', 'Oslo', 'Lima'] } },
    required: ['city'],
  },
  strict: true,
};

/** hearth's extension: a seeded sampler, so a random model's answers repeat. */
const seeded = { seed: 1 } as Record<string, unknown>;

describe('responses.create', () => {
  it("answers in OpenAI's response shape, with output_text and real token counts", async () => {
    const res = await client.responses.create({
      model: 'tools',
      instructions: 'Be brief.',
      input: 'Say hello',
      max_output_tokens: 6,
      ...seeded,
    });
    expect(res.id).toMatch(/^resp_[0-9a-f]{32}$/);
    expect(res.object).toBe('response');
    expect(res.model).toBe('tools');
    expect(res.instructions).toBe('Be brief.');
    expect(['completed', 'incomplete']).toContain(res.status);
    if (res.status === 'incomplete') expect(res.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(res.output).toHaveLength(1);
    const [message] = res.output;
    expect(message).toMatchObject({ type: 'message', role: 'assistant', id: expect.stringMatching(/^msg_/) });
    if (message?.type !== 'message') throw new Error('unreachable');
    expect(message.content[0]).toMatchObject({ type: 'output_text', annotations: [] });
    // The SDK derives output_text from the output items.
    expect(typeof res.output_text).toBe('string');
    expect(res.usage!.input_tokens).toBeGreaterThan(0);
    expect(res.usage!.output_tokens).toBeGreaterThan(0);
    expect(res.usage!.output_tokens).toBeLessThanOrEqual(6);
    expect(res.usage!.total_tokens).toBe(res.usage!.input_tokens + res.usage!.output_tokens);
  });

  it('returns structured output that the SDK parses with a zod schema', async () => {
    const Verdict = z.object({ answer: z.enum(['yes', 'no']), sure: z.boolean() });
    const res = await client.responses.parse({
      model: 'tools',
      input: [{ role: 'user', content: 'Is the sky blue? Answer in JSON.' }],
      text: { format: zodTextFormat(Verdict, 'verdict') },
      max_output_tokens: 64,
      ...seeded,
    });
    expect(res.output_parsed).not.toBeNull();
    expect(Verdict.parse(res.output_parsed)).toEqual(res.output_parsed);
  });

  it('calls a function, and continues from its output with previous_response_id', async () => {
    const first = await client.responses.create({
      model: 'tools',
      input: 'What is the weather in Paris?',
      tools: [weatherTool],
      tool_choice: 'required',
      // one call: the grammar admits further calls after the first, which a random model goes on to make
      parallel_tool_calls: false,
      max_output_tokens: 256,
      seed: 3,
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    const call = first.output.find((o) => o.type === 'function_call');
    if (call?.type !== 'function_call') throw new Error(`no function call in ${JSON.stringify(first.output)}`);
    expect(call.id).toMatch(/^fc_/);
    expect(call.call_id).toMatch(/^call_/);
    expect(call.name).toBe('get_weather');
    expect(call.status).toBe('completed');
    expect(['Paris', 'Oslo', 'Lima']).toContain(JSON.parse(call.arguments).city);

    // The stored response carries the conversation: only the function's output is sent.
    const second = await client.responses.create({
      model: 'tools',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temperature": 21}' }],
      tools: [weatherTool],
      max_output_tokens: 6,
      ...seeded,
    });
    expect(second.previous_response_id).toBe(first.id);
    expect(second.output.length).toBeGreaterThan(0);
    // The prompt held the whole chain (same tools, plus the call and its output): more tokens than the first's.
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);

    // The items the second prompt was made of, the chain included, with stable ids.
    const listed = await client.responses.inputItems.list(second.id, { order: 'asc' });
    expect(listed.data.map((item) => item.type)).toEqual(['message', 'function_call', 'function_call_output']);
    expect(listed.data[1]).toMatchObject({ call_id: call.call_id, name: 'get_weather' });
    const again = await client.responses.inputItems.list(second.id, { order: 'asc' });
    expect(again.data.map((item) => item.id)).toEqual(listed.data.map((item) => item.id));

    // Without the chain, the output names a call hearth never saw.
    const orphan = await client.responses
      .create({
        model: 'tools',
        input: [{ type: 'function_call_output', call_id: call.call_id, output: '{}' }],
      })
      .catch((e: unknown) => e);
    expect(orphan).toBeInstanceOf(BadRequestError);
    expect(orphan).toMatchObject({ param: 'input.0.call_id' });
  });
});

describe('streaming', () => {
  /** The event types in order, with the consecutive run of each collapsed (deltas). */
  const shape = (events: Array<{ type: string }>) => events.map((e) => e.type).filter((t, i, all) => t !== all[i - 1]);

  it('sends the typed events in order, numbered, with the usage in the last; the SDK assembles them', async () => {
    const stream = await client.responses.create({
      model: 'tools',
      input: 'Say hello',
      max_output_tokens: 6,
      stream: true,
      ...seeded,
    });
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const last = events.at(-1)!;
    expect(shape(events)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      last.type,
    ]);
    expect(['response.completed', 'response.incomplete']).toContain(last.type);
    if (last.type !== 'response.completed' && last.type !== 'response.incomplete') throw new Error('unreachable');
    const deltas = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : []));
    const done = events.find((e) => e.type === 'response.output_text.done');
    if (done?.type !== 'response.output_text.done') throw new Error('unreachable');
    expect(deltas.join('')).toBe(done.text);
    expect(last.response.output[0]).toMatchObject({
      type: 'message',
      status: last.response.status,
      content: [{ type: 'output_text', text: done.text }],
    });
    expect(last.response.usage!.output_tokens).toBeGreaterThan(0);
    expect(last.response.usage!.total_tokens).toBe(
      last.response.usage!.input_tokens + last.response.usage!.output_tokens,
    );
    // The stored copy is the streamed one.
    expect((await client.responses.retrieve(last.response.id)).output).toEqual(last.response.output);

    // The SDK's stream helper folds the same events into one response.
    const runner = client.responses.stream({ model: 'tools', input: 'Say hello', max_output_tokens: 6, ...seeded });
    const final = await runner.finalResponse();
    expect(final.output[0]).toMatchObject({ type: 'message', content: [{ type: 'output_text', text: done.text }] });
  });

  it('streams a function call as its arguments delta and done events', async () => {
    const stream = await client.responses.create({
      model: 'tools',
      input: 'Weather in Oslo?',
      tools: [weatherTool],
      tool_choice: { type: 'function', name: 'get_weather' },
      // one call's events (as above)
      parallel_tool_calls: false,
      max_output_tokens: 256,
      stream: true,
      ...seeded,
    });
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const calls = events.filter((e) => e.type.startsWith('response.function_call_arguments'));
    expect(calls.map((e) => e.type)).toEqual([
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
    ]);
    const done = calls[1]!;
    if (done.type !== 'response.function_call_arguments.done') throw new Error('unreachable');
    expect(['Paris', 'Oslo', 'Lima']).toContain(JSON.parse(done.arguments).city);
    const last = events.at(-1)!;
    if (last.type !== 'response.completed') throw new Error(`ended with ${last.type}`);
    const item = last.response.output.find((o) => o.type === 'function_call');
    expect(item).toMatchObject({ name: 'get_weather', arguments: done.arguments, status: 'completed' });
  });

  it('names every SSE event by its type (raw HTTP)', async () => {
    const res = await fetch(`${hearth.url}/v1/responses`, {
      method: 'POST',
      body: JSON.stringify({ model: 'tools', input: 'hi', max_output_tokens: 3, stream: true, seed: 1 }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const blocks = (await res.text()).split('\n\n').filter(Boolean);
    for (const block of blocks) {
      const [eventLine, dataLine] = block.split('\n');
      const data = JSON.parse(dataLine!.replace(/^data: /, '')) as { type: string };
      expect(eventLine).toBe(`event: ${data.type}`);
    }
    expect(blocks.at(-1)).toMatch(/^event: response\.(completed|incomplete)\n/);
  });
});

describe('stored responses', () => {
  it('survive a restart: GET returns them and previous_response_id continues them; DELETE removes them', async () => {
    const first = await client.responses.create({
      model: 'tools',
      input: 'My name is Ada.',
      max_output_tokens: 4,
      ...seeded,
    });
    const unstored = await client.responses.create({
      model: 'tools',
      input: 'Forget this.',
      store: false,
      max_output_tokens: 2,
      ...seeded,
    });

    await hearth.close();
    await start();

    const again = await client.responses.retrieve(first.id);
    expect(again).toMatchObject({ id: first.id, status: first.status, output: first.output, usage: first.usage });
    const next = await client.responses.create({
      model: 'tools',
      previous_response_id: first.id,
      input: 'What is my name?',
      max_output_tokens: 4,
      ...seeded,
    });
    expect(next.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);

    const gone = await client.responses.retrieve(unstored.id).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(gone).toMatchObject({ status: 404, code: 'response_not_found' });

    await client.responses.delete(first.id);
    const deleted = await client.responses.retrieve(first.id).catch((e: unknown) => e);
    expect(deleted).toBeInstanceOf(NotFoundError);
    const chained = await client.responses
      .create({ model: 'tools', previous_response_id: first.id, input: 'Hi' })
      .catch((e: unknown) => e);
    expect(chained).toMatchObject({ status: 404, param: 'previous_response_id', code: 'response_not_found' });
  });

  it('are visible only to the key that made them, and to loopback callers of a loopback-exempt listener', async () => {
    const keys = new ApiKeyStore({ db: hearth.ctx.atlas.db });
    const alice = await keys.create({ name: 'alice', scopes: ['inference'] });
    const bob = await keys.create({ name: 'bob', scopes: ['inference'] });
    const keyed = hearth.urls[1]!;
    const as = (key: string) => new OpenAI({ baseURL: `${keyed}/v1`, apiKey: key, maxRetries: 0 });

    const mine = await as(alice.key).responses.create({ model: 'tools', input: 'secret', max_output_tokens: 2 });
    expect((await as(alice.key).responses.retrieve(mine.id)).id).toBe(mine.id);
    // Another key sees nothing: not even that the id exists.
    await expect(as(bob.key).responses.retrieve(mine.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(as(bob.key).responses.delete(mine.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      as(bob.key).responses.create({ model: 'tools', previous_response_id: mine.id, input: 'more' }),
    ).rejects.toBeInstanceOf(NotFoundError);
    // The machine's own (loopback-exempt) callers see every stored response.
    expect((await client.responses.retrieve(mine.id)).id).toBe(mine.id);
    // A loopback caller's response is not a key's.
    const local = await client.responses.create({ model: 'tools', input: 'local', max_output_tokens: 2 });
    await expect(as(alice.key).responses.retrieve(local.id)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('errors', () => {
  const post = (body: unknown) =>
    fetch(`${hearth.url}/v1/responses`, { method: 'POST', body: JSON.stringify(body) }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as { error: Record<string, unknown> },
    }));

  it("answers in OpenAI's error shape, naming the field", async () => {
    expect(await post({ model: 'nope', input: 'hi' })).toEqual({
      status: 404,
      body: { error: expect.objectContaining({ param: 'model', code: 'model_not_found', type: 'not_found_error' }) },
    });
    // Streamed or not: an error before the first event keeps its status and shape.
    expect(await post({ model: 'nope', input: 'hi', stream: true })).toEqual({
      status: 404,
      body: { error: expect.objectContaining({ param: 'model', code: 'model_not_found' }) },
    });
    const badTemp = await post({ model: 'tools', input: 'hi', temperature: 9 });
    expect(badTemp.status).toBe(400);
    expect(badTemp.body.error).toMatchObject({ param: 'temperature', type: 'invalid_request_error' });
    const hosted = await post({ model: 'tools', input: 'hi', tools: [{ type: 'web_search' }] });
    expect(hosted.status).toBe(400);
    expect(hosted.body.error).toMatchObject({ param: 'tools.0.type' });
    expect(hosted.body.error['message']).toMatch(/web_search.*not supported/);
    const badItem = await post({ model: 'tools', input: [{ type: 'function_call', name: 'f' }] });
    expect(badItem.status).toBe(400);
    expect(badItem.body.error['message']).toMatch(/input\.0.*call_id/);
    const background = await post({ model: 'tools', input: 'hi', background: true });
    expect(background.body.error).toMatchObject({ param: 'background' });
    // A route hearth does not have answers 404 in its family's shape, whatever the body (not "invalid JSON").
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array([1, 2, 3])]), 'speech.wav');
    form.append('model', 'whisper-1');
    const audio = await fetch(`${hearth.url}/v1/audio/transcriptions`, { method: 'POST', body: form });
    expect(audio.status).toBe(404);
    expect(((await audio.json()) as { error: unknown }).error).toMatchObject({
      code: 'not_found',
      type: 'not_found_error',
    });
    const ollama = await fetch(`${hearth.url}/api/nothing`, { method: 'POST', body: 'not json' });
    expect(ollama.status).toBe(404);
    expect(await ollama.json()).toEqual({ error: expect.stringMatching(/no such route/) });
    const missing = await fetch(`${hearth.url}/v1/responses/resp_nothing`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: unknown }).error).toMatchObject({ code: 'response_not_found' });
  });
});
