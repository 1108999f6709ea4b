// The scheduler against the real engine: instances, continuous batching, queue bound, abort, keep-alive, eviction.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModels, type TestModels } from '../../test/support/models.js';
import { isHearthError } from '../errors.js';
import { silentLogger } from '../log.js';
import { Engine } from './engine.js';
import { defaultLoadOptions, defaultSampling } from './options.js';
import { type CountingSpec, eventually, localSpec } from './test-support.js';
import type { ChatRequest, GenerateResult, LoadOptions } from './types.js';

let dir: string;
let models: TestModels;
let engine: Engine;
let chat: CountingSpec;
let embedder: CountingSpec;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-engine-'));
  models = await makeTestModels(dir);
  [chat, embedder] = await Promise.all([localSpec(models.chat), localSpec(models.embed)]);
  engine = await Engine.open({
    gpu: 'cpu',
    gpuFallback: 'cpu',
    threads: 1,
    maxLoadedModels: 0,
    maxQueue: 3,
    numParallel: 1,
    log: silentLogger(),
  });
});

afterAll(async () => {
  await engine?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function chatRequest(spec: CountingSpec, load: LoadOptions, extra: Partial<ChatRequest> = {}): ChatRequest {
  return {
    kind: 'chat',
    model: spec,
    load,
    keepAliveMs: -1,
    messages: [{ role: 'user', content: 'Tell me a story about a lighthouse.' }],
    sampling: defaultSampling({ numPredict: 16, seed: 1 }),
    ...extra,
  };
}

/**
 * A generation that cannot end by itself before its first text: the grammar forces `{"story": "` first,
 * so a test that aborts on the first chunk never races a random model's end-of-turn token.
 */
const UNTIL_ABORTED: Partial<ChatRequest> = {
  format: { schema: { type: 'object', properties: { story: { type: 'string' } }, required: ['story'] } },
  sampling: defaultSampling({ numPredict: -1, seed: 1 }),
};

function instancesOf(spec: CountingSpec) {
  return engine.loaded().filter((m) => m.digest === spec.digest);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => new Error('expected a rejection'),
    (err: unknown) => err,
  );
}

describe('Engine scheduling', () => {
  it('serves concurrent chats to one model from one instance, its sequences decoding together', async () => {
    const load = defaultLoadOptions({ numCtx: 512, numParallel: 4 });
    await engine.load(chat, load, -1);
    let mostActive = 0;
    const watch = () => {
      for (const m of instancesOf(chat)) mostActive = Math.max(mostActive, m.activeSequences);
    };
    const results = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        engine.generate(
          chatRequest(chat, load, {
            messages: [{ role: 'user', content: `Question number ${i}: what is a lighthouse?` }],
            sampling: defaultSampling({ numPredict: 24, seed: i }),
            onText: watch,
          }),
        ),
      ),
    );
    for (const r of results) {
      expect(r.evalTokens).toBeGreaterThan(0);
      expect(r.promptTokens).toBeGreaterThan(10);
    }
    const loaded = instancesOf(chat);
    expect(loaded).toHaveLength(1);
    expect(loaded[0]).toMatchObject({ parallel: 4, contextLength: 512, activeSequences: 0, expiresAt: null });
    expect(mostActive).toBeGreaterThan(1);
    expect(engine.queueDepth()).toBe(0);
  });

  it('refuses a request beyond maxQueue while the model is already loaded, and aborted waiters leave the queue', async () => {
    const load = defaultLoadOptions({ numCtx: 512, numParallel: 1 });
    await engine.load(chat, load, -1);
    const controllers = [0, 1, 2, 3].map(() => new AbortController());
    let firstText!: () => void;
    const started = new Promise<void>((r) => {
      firstText = r;
    });
    const running = engine.generate(
      chatRequest(chat, load, { ...UNTIL_ABORTED, signal: controllers[0]!.signal, onText: () => firstText() }),
    );
    await started;
    const waiting = [1, 2, 3].map((i) => engine.generate(chatRequest(chat, load, { signal: controllers[i]!.signal })));
    expect(engine.queueDepth()).toBe(3);
    const refused = await rejection(engine.generate(chatRequest(chat, load)));
    expect(isHearthError(refused, 'QUEUE_FULL')).toBe(true);
    expect((refused as Error).message).toMatch(/maximum pending requests exceeded/);

    for (const c of controllers.slice(1)) c.abort();
    for (const w of waiting) expect(isHearthError(await rejection(w), 'CLIENT_CLOSED')).toBe(true);
    expect(engine.queueDepth()).toBe(0);
    controllers[0]!.abort();
    expect(isHearthError(await rejection(running), 'CLIENT_CLOSED')).toBe(true);
  });

  it('stops an aborted generation at once and gives its sequence to the next request', async () => {
    const load = defaultLoadOptions({ numCtx: 1024, numParallel: 1 });
    await engine.load(chat, load, -1);
    const controller = new AbortController();
    let chunks = 0;
    const aborted = engine.generate(
      chatRequest(chat, load, {
        ...UNTIL_ABORTED,
        signal: controller.signal,
        onText: () => {
          if (++chunks === 1) controller.abort();
        },
      }),
    );
    // queued behind the running request: it gets the one sequence only once the abort frees it
    const next = engine.generate(chatRequest(chat, load));
    const t0 = Date.now();
    expect(isHearthError(await rejection(aborted), 'CLIENT_CLOSED')).toBe(true);
    const result = await next;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(result.evalTokens).toBeGreaterThan(0);
    expect(chunks).toBeLessThan(10);
    expect(instancesOf(chat).find((m) => m.contextLength === 1024)?.activeSequences).toBe(0);
  });

  it('gives a different numCtx its own instance, sharing the loaded weights', async () => {
    const resolvedBefore = chat.resolved;
    const small = defaultLoadOptions({ numCtx: 256, numParallel: 1 });
    const r = await engine.generate(chatRequest(chat, small));
    expect(r.evalTokens).toBeGreaterThan(0);
    const contexts = instancesOf(chat).map((m) => m.contextLength);
    expect(contexts).toContain(256);
    expect(contexts).toContain(512);
    // the LlamaModel of the other instances is reused: the blob was not resolved again
    expect(chat.resolved).toBe(resolvedBefore);
  });

  it('keys instances by the effective numCtx: beyond the trained context, requests share one instance', async () => {
    // The test model was trained with 2048 tokens: 4096 and 100000 both run with 2048.
    const counts: number[] = [];
    for (const numCtx of [4096, 100_000, 2048]) {
      const r = await engine.generate(chatRequest(chat, defaultLoadOptions({ numCtx, numParallel: 1 })));
      expect(r.evalTokens).toBeGreaterThan(0);
      counts.push(instancesOf(chat).length);
    }
    expect(instancesOf(chat).filter((m) => m.contextLength === 2048)).toHaveLength(1);
    expect(new Set(counts).size).toBe(1);
  });

  it('unloads an instance when its keep-alive expires, and releases the blob', async () => {
    const load = defaultLoadOptions({ numCtx: 128 });
    await engine.embed({ model: embedder, load, keepAliveMs: 300, inputs: ['lighthouse'], truncate: true });
    const [instance] = instancesOf(embedder);
    expect(instance?.expiresAt).toBeInstanceOf(Date);
    expect(instance!.expiresAt!.getTime() - Date.now()).toBeLessThanOrEqual(300);
    expect(await eventually(() => instancesOf(embedder).length === 0 && embedder.released === embedder.resolved)).toBe(
      true,
    );
    // once to read its header (what keys its instances), once to load it
    expect(embedder.resolved).toBe(2);
  });

  it('unloads right after the request with keep-alive 0', async () => {
    const load = defaultLoadOptions({ numCtx: 128, numParallel: 1 });
    const r: GenerateResult = await engine.generate(chatRequest(chat, load, { keepAliveMs: 0 }));
    expect(r.loadDurationNs).toBeGreaterThan(0);
    expect(instancesOf(chat).map((m) => m.contextLength)).not.toContain(128);
  });

  it('unload() unloads every instance of a model and says whether there was one', async () => {
    const load = defaultLoadOptions({ numCtx: 128 });
    const { loadDurationNs } = await engine.load(embedder, load, -1);
    expect(loadDurationNs).toBeGreaterThan(0);
    expect(instancesOf(embedder)).toHaveLength(1);
    expect(await engine.unload(embedder.digest)).toBe(true);
    expect(instancesOf(embedder)).toHaveLength(0);
    expect(await engine.unload(embedder.digest)).toBe(false);
    expect(await eventually(() => embedder.released === embedder.resolved)).toBe(true);
  });
});

describe('Engine limits', () => {
  it('evicts the idle model when maxLoadedModels is 1 and a second model loads', async () => {
    const single = await Engine.open({
      gpu: 'cpu',
      gpuFallback: 'cpu',
      threads: 1,
      maxLoadedModels: 1,
      maxQueue: 4,
      numParallel: 1,
      log: silentLogger(),
    });
    try {
      const [a, b] = await Promise.all([localSpec(models.chat, 'a'), localSpec(models.embed, 'b')]);
      const load = defaultLoadOptions({ numCtx: 256, numParallel: 1 });
      await single.generate(chatRequest(a, load));
      expect(single.loaded().map((m) => m.name)).toEqual(['a']);
      await single.load(b, load, -1);
      expect(single.loaded().map((m) => m.name)).toEqual(['b']);
      expect(await eventually(() => a.resolved > 0 && a.released === a.resolved)).toBe(true);
    } finally {
      await single.close();
    }
  });

  it('fails with ENGINE_OUT_OF_MEMORY, naming need and budget, when a model cannot fit the memory budget', async () => {
    const tight = await Engine.open({
      gpu: 'cpu',
      gpuFallback: 'cpu',
      threads: 1,
      maxLoadedModels: 0,
      maxQueue: 4,
      numParallel: 1,
      memoryBudget: 100_000,
      log: silentLogger(),
    });
    try {
      const spec = await localSpec(models.chat);
      const err = await rejection(tight.generate(chatRequest(spec, defaultLoadOptions({ numCtx: 256 }))));
      expect(isHearthError(err, 'ENGINE_OUT_OF_MEMORY')).toBe(true);
      expect((err as Error).message).toMatch(/needs .* MB of RAM but the engine's memory budget is 100 KB/);
      expect(spec.released).toBe(spec.resolved);
      expect(tight.loaded()).toHaveLength(0);
    } finally {
      await tight.close();
    }
  });

  it('close() cuts running requests short with SHUTTING_DOWN and refuses new ones', async () => {
    const closing = await Engine.open({
      gpu: 'cpu',
      gpuFallback: 'cpu',
      threads: 1,
      maxLoadedModels: 0,
      maxQueue: 4,
      numParallel: 1,
      log: silentLogger(),
    });
    const spec = await localSpec(models.chat);
    const load = defaultLoadOptions({ numCtx: 1024 });
    let firstText!: () => void;
    const started = new Promise<void>((r) => {
      firstText = r;
    });
    const running = closing.generate(chatRequest(spec, load, { ...UNTIL_ABORTED, onText: () => firstText() }));
    await started;
    const outcome = rejection(running);
    await closing.close();
    expect(isHearthError(await outcome, 'SHUTTING_DOWN')).toBe(true);
    expect(isHearthError(await rejection(closing.generate(chatRequest(spec, load))), 'SHUTTING_DOWN')).toBe(true);
    expect(spec.released).toBe(spec.resolved);
  });
});
