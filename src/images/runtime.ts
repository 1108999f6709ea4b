import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ModelEntry, ModelLibrary } from '../models/library.js';
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
  release: () => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Image models on this node: loads a library model into ONNX Runtime sessions on first use (through
 * the verified node cache), shares it between runs, unloads it after keep_alive, and keeps at most
 * `maxLoaded` at once, unloading the least recently used idle one to make room.
 */
export class ImageRuntime {
  readonly #loaded = new Map<string, Loaded>();
  readonly #loading = new Map<string, Promise<Loaded>>();
  #clock = 0;
  #provider = '';

  constructor(
    private readonly models: ModelLibrary,
    private readonly settings: ImageRuntimeSettings,
    private readonly log: Logger,
  ) {}

  /** The execution provider the last load ended up on ('' before any load). */
  get provider(): string {
    return this.#provider;
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
    return [...this.#loaded.keys()];
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
    let loaded = this.#loaded.get(entry.name);
    if (loaded && loaded.digest !== entry.digest) {
      // replaced in the library since it was loaded: unload when idle, load the new one
      if (loaded.users === 0) await this.#unload(loaded, 'replaced');
      loaded = undefined;
    }
    if (!loaded) {
      let task = this.#loading.get(entry.name);
      if (!task) {
        task = this.#load(entry, files).finally(() => this.#loading.delete(entry.name));
        this.#loading.set(entry.name, task);
      }
      loaded = await task;
    }
    const l = loaded;
    l.users++;
    l.lastUsed = ++this.#clock;
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
        if (l.users === 0) this.#arm(l);
      },
    };
  }

  async #load(entry: ModelEntry, files: NonNullable<ReturnType<ModelLibrary['imageFiles']>>): Promise<Loaded> {
    // make room: unload idle models, least recently used first
    const idle = [...this.#loaded.values()].filter((l) => l.users === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.#loaded.size >= this.settings.maxLoaded && idle.length) {
      const victim = idle.shift()!;
      this.log.info({ model: victim.name, for: entry.name }, 'unloading image model to make room');
      await this.#unload(victim, 'evicted');
    }
    const view = await this.models.imageView({ digest: entry.digest, files });
    let pipeline: ImagePipeline;
    try {
      pipeline = await ImagePipeline.load(view.dir, {
        executionProviders: this.settings.executionProviders,
        threads: this.settings.threads,
      });
    } catch (err) {
      view.release();
      throw err;
    }
    this.#provider = pipeline.provider;
    this.log.info({ model: entry.name, provider: pipeline.provider }, 'image model loaded');
    const loaded: Loaded = {
      name: entry.name,
      digest: entry.digest,
      pipeline,
      users: 0,
      lastUsed: ++this.#clock,
      release: view.release,
      timer: undefined,
    };
    this.#loaded.set(entry.name, loaded);
    return loaded;
  }

  #arm(l: Loaded): void {
    if (this.settings.keepAliveMs < 0) return; // negative keep_alive: stay loaded
    l.timer = setTimeout(() => {
      if (l.users === 0) void this.#unload(l, 'keep_alive expired');
    }, this.settings.keepAliveMs);
    l.timer.unref();
  }

  async #unload(l: Loaded, why: string): Promise<void> {
    if (this.#loaded.get(l.name) !== l) return;
    this.#loaded.delete(l.name);
    if (l.timer) clearTimeout(l.timer);
    await l.pipeline.release();
    l.release();
    this.log.info({ model: l.name, why }, 'image model unloaded');
  }

  /** /free: unloads every idle image model. */
  async unloadIdle(): Promise<void> {
    for (const l of [...this.#loaded.values()]) if (l.users === 0) await this.#unload(l, 'freed');
  }

  async close(): Promise<void> {
    for (const l of [...this.#loaded.values()]) await this.#unload(l, 'closing');
  }
}
