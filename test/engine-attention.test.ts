// Flash attention, the KV cache type and a vision projector in the server engine's memory estimate,
// on the real llama-server (built once per machine by the global setup) with generated models: the
// flags a process gets, what /api/ps shows as its size, and the refusals (a quantized cache with flash
// attention off, the in-process engine, a user's llama-server lacking a flag).
import { createHash } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GgufInsights, getLlama, readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { configFromObject } from '../src/config/index.js';
import type { AttentionSettings } from '../src/engine/attention.js';
import { Engine } from '../src/engine/engine.js';
import { estimateContext, estimateWeights } from '../src/engine/memory.js';
import { defaultLoadOptions } from '../src/engine/options.js';
import { checkLlamaServer, REQUIRED_FLAGS } from '../src/engine/server/flags.js';
import { localSpec } from '../src/engine/test-support.js';
import { silentLogger } from '../src/log.js';
import { generateModel, generateProjector } from './fixtures/gguf/index.js';
import { buildTestEngine } from './support/engine.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { call } from './support/http.js';
import { makeTestModels, type TestModels } from './support/models.js';

const NUM_CTX = 512;
const PARALLEL = 2;

let dirs: HearthDirs;
let hearth: InProcessHearth;
let models: TestModels;
let projectorPath: string;
/** heads of 32 elements: a q8_0 block (the standard test models' heads are 16) */
let widePath: string;

const post = (path: string, body: unknown) => call(hearth.url, path, body);

/** An engine of its own (in-process until a server is attached), as hearth opens it. */
function openEngine(attention?: AttentionSettings): Promise<Engine> {
  return Engine.open({
    gpu: 'cpu',
    gpuFallback: 'cpu',
    threads: 1,
    maxLoadedModels: 1,
    maxQueue: 2,
    numParallel: 1,
    ...(attention ? { attention } : {}),
    log: silentLogger(),
  });
}

async function upload(path: string): Promise<string> {
  const bytes = await readFile(path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const res = await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  expect(res.status).toBeLessThan(300);
  return digest;
}

async function create(name: string, files: Record<string, string>) {
  const created = await post('/api/create', { model: name, files, stream: false });
  expect(created.status, created.text).toBe(200);
}

/** The command line of a running llama-server (what hearth passed it). */
async function argvOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
}

async function psSize(name: string): Promise<number> {
  const ps = (await (await fetch(`${hearth.url}/api/ps`)).json()) as { models: Array<{ name: string; size: number }> };
  const entry = ps.models.find((m) => m.name === name);
  expect(entry, JSON.stringify(ps)).toBeDefined();
  return entry!.size;
}

beforeAll(async () => {
  expect(inject('serverEngineUnavailable'), 'the global setup could not build llama-server').toBe('');
  dirs = await hearthDirs('hearth-engine-attention-');
  models = await makeTestModels(dirs.root);
  projectorPath = (await generateProjector({ path: join(dirs.root, 'mmproj.gguf'), textWidth: 64 })).path;
  widePath = (
    await generateModel({
      path: join(dirs.root, 'wide.gguf'),
      chatTemplate: 'chatml',
      name: 'hearth-test-wide-heads',
      width: 64,
      heads: 2,
      contextLength: 2048,
      seed: 1,
    })
  ).path;
  hearth = await startHearthInProcess(dirs, {
    inference: { numParallel: PARALLEL, numCtx: NUM_CTX, kvCacheType: 'q8_0', keepAlive: '-1' },
  });
  const wide = await upload(widePath);
  await create('chat', { 'wide.gguf': wide });
  await create('seeing', { 'wide.gguf': wide, 'mmproj.gguf': await upload(projectorPath) });
  await create('small-heads', { 'chat.gguf': await upload(models.chat) });
}, 300_000);

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('inference.kvCacheType and inference.flashAttention on the server engine', () => {
  it('starts llama-server with a q8_0 KV cache and flash attention on, and generates', async () => {
    const gen = await post('/api/generate', {
      model: 'chat',
      prompt: 'Say something.',
      stream: false,
      options: { num_predict: 4, seed: 1 },
    });
    expect(gen.status, gen.text).toBe(200);
    expect(gen.json.eval_count).toBeGreaterThan(0);
    expect(hearth.ctx.engine.serverPids()).toHaveLength(1);
    const [pid] = hearth.ctx.engine.serverPids();
    const argv = (await argvOf(pid!)).join(' ');
    // auto becomes on: llama.cpp quantizes the KV cache only with flash attention
    expect(argv).toContain('--flash-attn on --cache-type-k q8_0 --cache-type-v q8_0');
  });

  it('estimates the KV cache at q8_0 bytes: /api/ps shows less than an f16 cache would take', async () => {
    const llama = await getLlama({ gpu: false, build: 'never' });
    const insights = await GgufInsights.from(await readGgufFileInfo(widePath, { logWarnings: false }), llama);
    const context = (kvCacheType: 'f16' | 'q8_0') =>
      estimateContext(insights, {
        contextSize: NUM_CTX,
        sequences: PARALLEL,
        batchSize: Math.min(512, NUM_CTX * PARALLEL),
        gpuLayers: 0,
        embedding: false,
        attention: { flashAttention: 'on', kvCacheType },
      }).ram;
    const weights = estimateWeights(insights, 0, true).ram;
    const size = await psSize('chat:latest');
    expect(size).toBe(Math.ceil(weights + context('q8_0')));
    expect(size).toBeLessThan(Math.ceil(weights + context('f16')));
  });

  it('keeps f16 for a model whose heads are no multiple of a q8_0 block, as Ollama does, and still serves it', async () => {
    const before = hearth.ctx.engine.serverPids();
    const gen = await post('/api/generate', {
      model: 'small-heads',
      prompt: 'Say something.',
      stream: false,
      options: { num_predict: 2, seed: 1 },
    });
    expect(gen.status, gen.text).toBe(200);
    const pid = hearth.ctx.engine.serverPids().find((p) => !before.includes(p));
    expect(pid).toBeDefined();
    const argv = (await argvOf(pid!)).join(' ');
    expect(argv).toContain('--flash-attn auto --cache-type-k f16 --cache-type-v f16');
    // ggml's threads sleep once a graph is done rather than spin for ~150 ms (bench/server-poll.ts)
    expect(argv).toContain('--poll 0');
  });
});

describe("a vision model's projector in the server engine's memory estimate", () => {
  it('counts the mmproj file beside the model: /api/ps and the memory budget see it', async () => {
    const seen = await post('/api/generate', {
      model: 'seeing',
      prompt: 'x',
      stream: false,
      options: { num_predict: 1 },
    });
    expect(seen.status, seen.text).toBe(200);
    const plain = await psSize('chat:latest');
    const seeing = await psSize('seeing:latest');
    const projector = (await stat(projectorPath)).size;
    // the same GGUF and load options; the projector's weights are the difference
    expect(seeing - plain).toBe(projector);
    expect(hearth.ctx.engine.memory.used()).toBeGreaterThanOrEqual(plain + seeing);
  });
});

describe("the server engine's per-request path", () => {
  it("reads a model's GGUF header once a blob, not on every request (the first-token overhead)", async () => {
    const build = await buildTestEngine();
    const engine = await openEngine();
    try {
      engine.attachServer({ path: build.server, libDir: build.libDir, origin: 'test build' });
      const spec = await localSpec(models.chat, 'chat');
      const load = defaultLoadOptions({ numCtx: 256 });
      await engine.load(spec, load, -1);
      // the facts (one read, released) and the running process (its file held)
      const afterFirst = spec.resolved;
      for (let i = 0; i < 3; i++) await engine.load(spec, load, -1);
      expect(spec.resolved).toBe(afterFirst);
    } finally {
      await engine.close();
    }
  });
});

describe('refusals', () => {
  it('refuses a quantized KV cache with flash attention off, naming both keys', () => {
    expect(() =>
      configFromObject({
        atlas: { files: dirs.atlas },
        inference: { kvCacheType: 'q4_0', flashAttention: 'off' },
      }),
    ).toThrow(/inference\.kvCacheType q8_0 and q4_0 need flash attention.*inference\.flashAttention to auto or on/);
    const { config } = configFromObject({ atlas: { files: dirs.atlas }, inference: { flashAttention: 'off' } });
    expect(config.inference).toMatchObject({ flashAttention: 'off', kvCacheType: 'f16' });
  });

  it('the in-process engine refuses a quantized KV cache clearly, naming the server engine', async () => {
    const engine = await openEngine({ flashAttention: 'auto', kvCacheType: 'q4_0' });
    try {
      expect(engine.serving().engine).toBe('inprocess');
      await expect(
        engine.load(await localSpec(models.chat, 'chat'), defaultLoadOptions({ numCtx: 256 }), 0),
      ).rejects.toMatchObject({
        code: 'ENGINE_CAPABILITY',
        message: expect.stringMatching(
          /cannot load with inference\.kvCacheType q4_0: only the server engine \(llama-server\) quantizes the KV cache.*hearth engine build/,
        ),
      });
    } finally {
      await engine.close();
    }
  });

  it("refuses a user's llama-server whose --help lacks --cache-type-v, naming it", async () => {
    const fake = join(dirs.root, 'no-kv-type-llama-server');
    await writeFile(
      join(dirs.root, 'no-kv-type-help.txt'),
      `${REQUIRED_FLAGS.filter((f) => f !== '--cache-type-v').join('\n')}\n`,
    );
    await writeFile(
      fake,
      `#!/bin/sh\ncase "$1" in\n  --version) echo "version: 99 (0000000)" >&2 ;;\n  --help) cat "${join(dirs.root, 'no-kv-type-help.txt')}" ;;\nesac\n`,
    );
    await chmod(fake, 0o755);
    expect(REQUIRED_FLAGS).toEqual(expect.arrayContaining(['--flash-attn', '--cache-type-k', '--cache-type-v']));
    await expect(checkLlamaServer(fake)).rejects.toMatchObject({
      code: 'ENGINE_SERVER_UNSUITABLE',
      message: expect.stringMatching(/lacks --cache-type-v, which hearth passes/),
    });
  });
});
