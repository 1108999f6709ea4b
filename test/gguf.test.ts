// The GGUF fixture generator, checked by node-llama-cpp's own reader and by the real engine.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChatHistoryItem,
  defineChatSessionFunction,
  getLlama,
  type Llama,
  LlamaChatSession,
  type LlamaModel,
  readGgufFileInfo,
  resolveChatWrapper,
  TokenBias,
} from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenerateModelOptions, generateModel, modelSpec, presets } from './fixtures/gguf/index.js';
import { makeTestModels, type TestModels } from './support/models.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** node-llama-cpp nests metadata by the dots in its keys; flatten it back to GGUF keys. */
function flatten(obj: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix + k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flatten(v as never, key + '.'));
    else out[key] = v;
  }
  return out;
}

function parameterCount(opts: Omit<GenerateModelOptions, 'path'>): number {
  return modelSpec(opts).tensors.reduce((n, t) => n + t.dims.reduce((a, d) => a * d, 1), 0);
}

describe('generateModel', () => {
  it('is deterministic: the same seed gives the same bytes, another seed other weights', async () => {
    const a = await generateModel({ path: join(dir, 'a.gguf'), seed: 7 });
    const b = await generateModel({ path: join(dir, 'b.gguf'), seed: 7 });
    const c = await generateModel({ path: join(dir, 'c.gguf'), seed: 8 });
    expect(b.sha256).toBe(a.sha256);
    expect(c.sha256).not.toBe(a.sha256);
    expect(c.size).toBe(a.size);
    const bytes = await readFile(a.path);
    expect(a.size).toBe(bytes.byteLength);
    expect(a.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it("writes metadata and tensors that node-llama-cpp's reader parses exactly", async () => {
    const opts = { chatTemplate: 'qwen-tools', type: 'Q8_0', embedding: true, name: 'parse-check' } as const;
    const written = await generateModel({ ...opts, path: join(dir, 'parse.gguf') });
    const spec = modelSpec(opts);
    const info = await readGgufFileInfo(written.path, { logWarnings: false });

    const expected = Object.fromEntries(
      Object.entries(spec.metadata).map(([key, v]) => {
        if (v.type === 'float32') return [key, Math.fround(v.value)];
        return [key, v.value];
      }),
    );
    expect(flatten(info.metadata as never)).toEqual(expected);
    expect(info.metadata.general.architecture).toBe('llama');
    expect(info.architectureMetadata.attention?.head_count).toBe(4);

    const tensors = info.tensorInfo ?? [];
    expect(tensors.map((t) => [t.name, t.dimensions, t.ggmlType])).toEqual(
      spec.tensors.map((t) => [t.name, t.dims, t.type === 'F32' ? 0 : 8]),
    );
    expect(tensors.some((t) => t.name === 'blk.1.ffn_down.weight')).toBe(true);
    expect(written.parameters).toBe(parameterCount(opts));
  });

  it('has presets of the advertised sizes (counted, not written)', () => {
    expect(parameterCount(presets.tiny)).toBeLessThan(500_000);
    expect(parameterCount(presets.m125)).toBeGreaterThan(115e6);
    expect(parameterCount(presets.m125)).toBeLessThan(135e6);
    expect(parameterCount(presets.b1)).toBeGreaterThan(0.9e9);
    expect(parameterCount(presets.b1)).toBeLessThan(1.1e9);
  });

  it('refuses shapes llama.cpp cannot run, saying which', async () => {
    await expect(generateModel({ path: join(dir, 'x.gguf'), width: 64, heads: 3 })).rejects.toThrow(/heads/);
    await expect(generateModel({ path: join(dir, 'x.gguf'), heads: 4, kvHeads: 3 })).rejects.toThrow(/kvHeads/);
    await expect(generateModel({ path: join(dir, 'x.gguf'), width: 48, heads: 2, type: 'Q8_0' })).rejects.toThrow(
      /multiples of 32/,
    );
  });
});

describe('node-llama-cpp on generated models', () => {
  let llama: Llama;
  let models: TestModels;
  const loaded: LlamaModel[] = [];
  const load = async (path: string): Promise<LlamaModel> => {
    const model = await llama.loadModel({ modelPath: path });
    loaded.push(model);
    return model;
  };
  /** Keeps generation going for exactly maxTokens: random weights would otherwise sometimes pick an end token. */
  const noEndTokens = (model: LlamaModel): TokenBias => {
    const bias = new TokenBias(model.tokenizer);
    const vocabSize = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    for (let t = 0; t < vocabSize; t++) {
      if (model.isEogToken(t as never) || model.isSpecialToken(t as never)) bias.set(t as never, 'never');
    }
    return bias;
  };

  beforeAll(async () => {
    llama = await getLlama({ gpu: false });
    models = await makeTestModels(dir);
  });
  afterAll(async () => {
    for (const model of loaded) await model.dispose();
    await llama?.dispose();
  });

  it('tokenizes and detokenizes text exactly, with fewer tokens than bytes for English', async () => {
    const model = await load(models.chat);
    for (const text of [
      'The quick brown fox jumps over the lazy dog. "Quotes", tabs\tand\nnew lines; 12345!',
      'héllo wörld 👋',
      '  leading and trailing spaces  ',
    ]) {
      const tokens = model.tokenize(text);
      expect(model.detokenize(tokens)).toBe(text);
    }
    const english = 'the people of the world have water and time';
    expect(model.tokenize(english).length).toBeLessThan(Buffer.byteLength(english) / 2);
    // Chat control tokens are single special tokens, not text.
    const imStart = model.tokenize('<|im_start|>', true);
    expect(imStart).toHaveLength(1);
    expect(model.isSpecialToken(imStart[0])).toBe(true);
    expect(model.detokenize([model.tokens.eos!], true)).toBe('<|im_end|>');
  });

  it('resolves each chat template to its node-llama-cpp wrapper, not the fallback', async () => {
    const llama3Path = (await generateModel({ path: join(dir, 'llama3.gguf'), chatTemplate: 'llama3' })).path;
    const nonePath = (await generateModel({ path: join(dir, 'none.gguf'), chatTemplate: 'none' })).path;
    expect(resolveChatWrapper(await load(models.chat)).wrapperName).toBe('ChatML');
    expect(resolveChatWrapper(await load(llama3Path)).wrapperName).toBe('Llama 3');
    expect(resolveChatWrapper(await load(nonePath)).wrapperName).toBe('General');

    const tools = resolveChatWrapper(await load(models.tools));
    expect(tools.wrapperName).toBe('JinjaTemplate');
    // node-llama-cpp learnt the tool-call syntax from the template itself.
    expect((tools as unknown as { usingJinjaFunctionCallTemplate: boolean }).usingJinjaFunctionCallTemplate).toBe(true);
    expect(JSON.stringify(tools.settings.functions.call.prefix)).toContain('<tool_call>');
  });

  it('generates the requested number of varied tokens in a chat session', async () => {
    const model = await load(models.chat);
    const context = await model.createContext({ contextSize: 512, threads: 1 });
    try {
      const session = new LlamaChatSession({ contextSequence: context.getSequence() });
      const tokens: number[] = [];
      const answer = await session.prompt('Hello, how are you today?', {
        maxTokens: 24,
        temperature: 0.8,
        seed: 42,
        tokenBias: noEndTokens(model),
        onToken: (chunk) => tokens.push(...chunk),
      });
      expect(tokens).toHaveLength(24);
      expect(new Set(tokens).size).toBeGreaterThan(4);
      expect(answer.length).toBeGreaterThan(0);
    } finally {
      await context.dispose();
    }
  });

  it('runs a prompt with functions on the tool model, rendering calls in its <tool_call> syntax', async () => {
    const model = await load(models.tools);
    const context = await model.createContext({ contextSize: 2048, threads: 1 });
    try {
      const session = new LlamaChatSession({ contextSequence: context.getSequence() });
      const functions = {
        getWeather: defineChatSessionFunction({
          description: 'Current weather in a city',
          params: { type: 'object', properties: { city: { type: 'string' } } },
          handler: ({ city }) => `sunny in ${city}`,
        }),
      };
      const answer = await session.prompt('What is the weather in Oslo?', { functions, maxTokens: 8, seed: 1 });
      expect(typeof answer).toBe('string');

      // A past call is rendered the way the template (and so the model) writes one.
      const history: ChatHistoryItem[] = [
        { type: 'user', text: 'Weather in Oslo?' },
        {
          type: 'model',
          response: [{ type: 'functionCall', name: 'getWeather', params: { city: 'Oslo' }, result: 'sunny' }],
        },
      ];
      const { contextText } = session.chatWrapper.generateContextState({
        chatHistory: history,
        availableFunctions: { getWeather: { description: 'Current weather in a city' } },
      });
      const rendered = contextText.toString();
      expect(rendered).toContain('<tool_call>\n{"name": "getWeather", "arguments": {"city": "Oslo"}}\n</tool_call>');
      expect(rendered).toContain('<tool_response>\nsunny\n</tool_response>');
    } finally {
      await context.dispose();
    }
  });

  it('loads F16 and Q8_0 weights and samples finite, varied tokens from them', async () => {
    for (const type of ['F16', 'Q8_0'] as const) {
      const { path } = await generateModel({ path: join(dir, `${type}.gguf`), type });
      const model = await load(path);
      const context = await model.createContext({ contextSize: 256, threads: 1 });
      try {
        const sequence = context.getSequence();
        const tokens: number[] = [];
        for await (const token of sequence.evaluate(model.tokenize('Hello world'), { temperature: 0.8, seed: 3 })) {
          tokens.push(token);
          if (tokens.length >= 16) break;
        }
        expect(tokens).toHaveLength(16);
        expect(new Set(tokens).size).toBeGreaterThan(2);
      } finally {
        await context.dispose();
      }
    }
  });

  it('gives a finite embedding of the model width from the embedding model', async () => {
    const model = await load(models.embed);
    const context = await model.createEmbeddingContext({ contextSize: 256, threads: 1 });
    try {
      const a = await context.getEmbeddingFor('hello world');
      const b = await context.getEmbeddingFor('the weather today');
      expect(a.vector).toHaveLength(64);
      expect(a.vector.every(Number.isFinite)).toBe(true);
      expect(a.vector.some((x) => x !== 0)).toBe(true);
      expect(a.calculateCosineSimilarity(b)).toBeLessThan(0.9999);
    } finally {
      await context.dispose();
    }
  });
});
