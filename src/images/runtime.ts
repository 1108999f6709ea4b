import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MemoryBudget } from '../engine/budget.js';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ImageFiles, ModelEntry, ModelLibrary } from '../models/library.js';
import { ImagePipeline } from './pipeline.js';

export interface ImageRuntimeSettings {
  /** ONNX Runtime execution providers in order of preference (images.executionProviders) */
  executionProviders: string[];
  /** how long an idle image model stays loaded (inference.keepAlive) */
  keepAliveMs: number;
  /** image models loaded at once; the least recently used idle one is unloaded first (images.maxLoadedModels) */
  maxLoaded: number;
  /** ONNX Runtime intra-op threads (node.threads; 0 = its default) */
  threads: number;
  /** the node's memory budget, shared with the language models (the engine's); none: only maxLoaded limits */
  budget?: MemoryBudget;
  /** how long a load waits for busy models to free the budget (the engine's load wait) */
  loadWaitMs?: number;
}

/**
 * What an image model's sessions hold, estimated: its ONNX files (the weights ONNX Runtime keeps,
 * in RAM or VRAM), plus a quarter for activations and the runtime's arenas.
 */
export function imageMemoryEstimate(files: ImageFiles): number {
  const bytes = Object.entries(files).reduce((n, [, f]) => n + f.size, 0);
  return Math.ceil(bytes * 1.25);
}

/** Where onnxruntime-node keeps its native libraries (the CUDA provider goes there when installed). */
export function ortBinaryDir(): string {
  const root = join(fileURLToPath(import.meta.resolve('onnxruntime-node')), '..', '..');
  return join(root, 'bin', 'napi-v6', process.platform, process.arch);
}

/** `images.executionProvider` → the providers to try, in order. */
export function executionProviders(setting: 'auto' | 'cpu' | 'cuda'): string[] {
  if (setting === 'cpu') return ['cpu'];
  if (setting === 'cuda') return ['cuda'];
  const cuda = existsSync(join(ortBinaryDir(), 'libonnxruntime_providers_cuda.so'));
  return cuda ? ['cuda', 'cpu'] : ['cpu'];
}

interface Loaded {
  name: string;
  digest: string;
  pipeline: ImagePipeline;
  users: number;
  lastUsed: number;
  /** Date.now() of the last use (the shared budget's LRU spans language models too) */
  lastUsedAt: number;
  /** estimated bytes in the budgeted memory */
  bytes: number;
  release: () => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Image models on this node: loads a library model into ONNX Runtime sessions on first use (through
 * the verified node cache), shares it between runs, unloads it after keep_alive, and keeps at most
 * `maxLoaded` at once, unloading the least recently used idle one to make room.
 */
export class ImageRuntime {
  private readonly loaded = new Map<string, Loaded>();
  private readonly loading = new Map<string, Promise<Loaded>>();
  private clock = 0;
  private _provider = '';

  /** loads under way: they hold their share of the budget already */
  private readonly reserved = new Map<string, number>();

  constructor(
    private readonly models: ModelLibrary,
    private readonly settings: ImageRuntimeSettings,
    private readonly log: Logger,
  ) {
    settings.budget?.addSource(() => [
      ...[...this.loaded.values()].map((l) => ({
        name: l.name,
        kind: 'image' as const,
        bytes: l.bytes,
        lastUsed: l.lastUsedAt,
        busy: () => l.users > 0 || this.loaded.get(l.name) !== l,
        evict: (reason: string) => this.unload(l, reason),
      })),
      ...[...this.reserved].map(([name, bytes]) => ({
        name,
        kind: 'image' as const,
        bytes,
        lastUsed: Date.now(),
        busy: () => true,
        evict: async () => undefined,
      })),
    ]);
  }

  /** The execution provider the last load ended up on ('' before any load). */
  get provider(): string {
    return this._provider;
  }

  get configuredProviders(): readonly string[] {
    return this.settings.executionProviders;
  }

  /** Names of the image models in the library (ComfyUI's checkpoint list). */
  async names(): Promise<string[]> {
    return (await this.models.list())
      .filter((m) => this.models.imageFiles(m))
      .map((m) => m.name)
      .sort();
  }

  loadedNames(): string[] {
    return [...this.loaded.keys()];
  }

  /** The model's pipeline, loaded if needed; call `release` when done with it. */
  async acquire(name: string): Promise<{ pipeline: ImagePipeline; entry: ModelEntry; release: () => void }> {
    const entry = await this.models.find(name);
    const files = entry ? this.models.imageFiles(entry) : null;
    if (!entry || !files)
      throw new HearthError(
        'MODEL_NOT_FOUND',
        entry
          ? `"${name}" is a language model, not an image model`
          : `image model "${name}" not found: create it with hearth create (FROM ./folder in the diffusers ONNX layout)`,
      );
    let loaded = this.loaded.get(entry.name);
    if (loaded && loaded.digest !== entry.digest) {
      // replaced in the library since it was loaded: unload when idle, load the new one
      if (loaded.users === 0) await this.unload(loaded, 'replaced');
      loaded = undefined;
    }
    if (!loaded) {
      let task = this.loading.get(entry.name);
      if (!task) {
        task = this.load(entry, files).finally(() => this.loading.delete(entry.name));
        this.loading.set(entry.name, task);
      }
      loaded = await task;
    }
    const l = loaded;
    l.users++;
    l.lastUsed = ++this.clock;
    l.lastUsedAt = Date.now();
    if (l.timer) clearTimeout(l.timer);
    l.timer = undefined;
    let done = false;
    return {
      pipeline: l.pipeline,
      entry,
      release: () => {
        if (done) return;
        done = true;
        l.users--;
        l.lastUsedAt = Date.now();
        if (l.users === 0) {
          this.arm(l);
          this.settings.budget?.changed();
        }
      },
    };
  }

  private async load(entry: ModelEntry, files: NonNullable<ReturnType<ModelLibrary['imageFiles']>>): Promise<Loaded> {
    // make room: unload idle models, least recently used first
    const idle = [...this.loaded.values()].filter((l) => l.users === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.loaded.size >= this.settings.maxLoaded && idle.length) {
      const victim = idle.shift()!;
      this.log.info({ model: victim.name, for: entry.name }, 'unloading image model to make room');
      await this.unload(victim, 'evicted');
    }
    // Then the shared budget: idle models of either kind are evicted, least recently used first, or
    // the load waits for busy ones (the log names each).
    const bytes = imageMemoryEstimate(files);
    const { budget } = this.settings;
    if (budget) {
      await budget.makeRoom({ name: entry.name, kind: 'image', bytes, waitMs: this.settings.loadWaitMs ?? 60_000 });
      this.reserved.set(entry.name, bytes);
    }
    let pipeline: ImagePipeline;
    let view: Awaited<ReturnType<ModelLibrary['imageView']>>;
    try {
      view = await this.models.imageView({ digest: entry.digest, files });
      try {
        pipeline = await ImagePipeline.load(view.dir, {
          executionProviders: this.settings.executionProviders,
          threads: this.settings.threads,
        });
      } catch (err) {
        view.release();
        throw err;
      }
    } finally {
      this.reserved.delete(entry.name);
    }
    this._provider = pipeline.provider;
    this.log.info({ model: entry.name, provider: pipeline.provider }, 'image model loaded');
    const loaded: Loaded = {
      name: entry.name,
      digest: entry.digest,
      pipeline,
      users: 0,
      lastUsed: ++this.clock,
      lastUsedAt: Date.now(),
      bytes,
      release: view.release,
      timer: undefined,
    };
    this.loaded.set(entry.name, loaded);
    return loaded;
  }

  private arm(l: Loaded): void {
    if (this.settings.keepAliveMs < 0) return; // negative keep_alive: stay loaded
    l.timer = setTimeout(() => {
      if (l.users === 0) void this.unload(l, 'keep_alive expired');
    }, this.settings.keepAliveMs);
    l.timer.unref();
  }

  private async unload(l: Loaded, why: string): Promise<void> {
    if (this.loaded.get(l.name) !== l) return;
    this.loaded.delete(l.name);
    if (l.timer) clearTimeout(l.timer);
    await l.pipeline.release();
    l.release();
    this.log.info({ model: l.name, why }, 'image model unloaded');
    this.settings.budget?.changed();
  }

  /** /free: unloads every idle image model. */
  async unloadIdle(): Promise<void> {
    for (const l of [...this.loaded.values()]) if (l.users === 0) await this.unload(l, 'freed');
  }

  async close(): Promise<void> {
    for (const l of [...this.loaded.values()]) await this.unload(l, 'closing');
  }
}
