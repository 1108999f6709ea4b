// The in-process engine (node-llama-cpp, `inference.engine: inprocess`), the no-build fallback, through the
// official clients: a chat turn on each API, a forced tool call by node-llama-cpp's grammar, and what only the
// server engine can do refused naming it. The API suites run on the server engine; this one keeps the fallback honest.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI, { BadRequestError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { createModel } from './support/jobs.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let openai: OpenAI;
let ollama: Ollama;

beforeAll(async () => {
  dirs = await hearthDirs('hearth-inprocess-');
  await mkdir(join(dirs.root, 'models'));
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, { inference: { numParallel: 1, numCtx: 1024, engine: 'inprocess' } });
  await createModel(hearth.url, 'tools', models.tools);
  openai = new OpenAI({ baseURL: `${hearth.url}/v1`, apiKey: 'sk-anything', maxRetries: 0 });
  ollama = new Ollama({ host: hearth.url });
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('the in-process engine', () => {
  it('answers a chat turn on the Ollama and OpenAI APIs', async () => {
    const chat = await ollama.chat({
      model: 'tools',
      messages: [{ role: 'user', content: 'Say hello' }],
      options: { num_predict: 4, seed: 1 },
    });
    expect(chat.done).toBe(true);
    expect(chat.eval_count).toBeGreaterThan(0);
    const res = await openai.chat.completions.create({
      model: 'tools',
      messages: [{ role: 'user', content: 'Say hello' }],
      max_tokens: 4,
      seed: 1,
    });
    expect(res.usage!.completion_tokens).toBeGreaterThan(0);
    expect(res.usage!.completion_tokens).toBeLessThanOrEqual(4);
    const ps = await ollama.ps();
    expect(ps.models.map((m) => m.name)).toEqual(['tools:latest']);
  });

  it('forces a named tool call with node-llama-cpp grammar', async () => {
    const res = await openai.chat.completions.create({
      model: 'tools',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: {
              type: 'object',
              properties: { city: { type: 'string', enum: ['Paris', 'Oslo', 'Lima'] } },
              required: ['city'],
            },
          },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 64,
      seed: 1,
    });
    expect(res.choices[0]!.finish_reason).toBe('tool_calls');
    const call = res.choices[0]!.message.tool_calls![0]!;
    if (call.type !== 'function') throw new Error('unreachable');
    expect(call.function.name).toBe('get_weather');
    expect(['Paris', 'Oslo', 'Lima']).toContain(JSON.parse(call.function.arguments).city);
  });

  it('refuses logprobs, naming the server engine as the way', async () => {
    const refused = await openai.chat.completions
      .create({ model: 'tools', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, logprobs: true })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BadRequestError);
    expect((refused as BadRequestError).message).toMatch(/server engine \(llama-server\).*hearth engine build/);
  });
});
