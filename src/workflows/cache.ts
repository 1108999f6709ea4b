import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import type { Logger } from '../log.js';
import type { NodeUi } from './types.js';

/** A node's result as the cache keeps it. */
export interface CachedOutput {
  readonly outputs: readonly unknown[];
  /** which outputs are lists (declared so, or because the node ran once per item of a list) */
  readonly listOutputs: readonly boolean[];
  readonly ui?: NodeUi;
}

export interface OutputCacheOptions {
  /** a folder in the node cache (disposable: wiping it only costs recomputation) */
  dir: string;
  /** bytes of results kept in memory */
  memoryMaxBytes: number;
  /** bytes of results kept on the node's disk */
  diskMaxBytes: number;
  log: Logger;
}

const SIGNATURE = /^[0-9a-f]{64}$/;

/**
 * Node outputs by signature: a small in-memory LRU in front of files in the node cache, both within
 * a byte budget. Everything here is recomputable, so any read problem is a miss, never an error.
 */
export class OutputCache {
  private readonly memory = new Map<string, { value: CachedOutput; bytes: number }>();
  private memoryBytes = 0;
  /** insertion order = least recently used first */
  private readonly disk = new Map<string, number>();
  private diskBytes = 0;

  private constructor(private readonly opts: OutputCacheOptions) {}

  static async open(opts: OutputCacheOptions): Promise<OutputCache> {
    const cache = new OutputCache(opts);
    await mkdir(opts.dir, { recursive: true });
    const found: Array<{ sig: string; size: number; at: number }> = [];
    for (const name of await readdir(opts.dir)) {
      const sig = name.replace(/\.v8$/, '');
      if (!SIGNATURE.test(sig) || !name.endsWith('.v8')) {
        await rm(join(opts.dir, name), { force: true, recursive: true }); // a crashed write's temporary file
        continue;
      }
      const s = await stat(join(opts.dir, name)).catch(() => null);
      if (s) found.push({ sig, size: s.size, at: s.mtimeMs });
    }
    for (const f of found.sort((a, b) => a.at - b.at)) {
      cache.disk.set(f.sig, f.size);
      cache.diskBytes += f.size;
    }
    await cache.trimDisk();
    return cache;
  }

  has(signature: string): boolean {
    return this.memory.has(signature) || this.disk.has(signature);
  }

  async get(signature: string): Promise<CachedOutput | undefined> {
    const hit = this.memory.get(signature);
    if (hit) {
      this.memory.delete(signature);
      this.memory.set(signature, hit);
      return hit.value;
    }
    if (!this.disk.has(signature)) return undefined;
    try {
      const bytes = await readFile(this.path(signature));
      const value = deserialize(bytes) as CachedOutput;
      this.touchDisk(signature, bytes.length);
      this.remember(signature, value, bytes.length);
      return value;
    } catch (err) {
      this.opts.log.warn({ err, signature }, 'workflow cache entry unreadable; recomputing');
      await this.dropDisk(signature);
      return undefined;
    }
  }

  async set(signature: string, value: CachedOutput): Promise<void> {
    const bytes = serialize(value);
    this.remember(signature, value, bytes.length);
    if (bytes.length > this.opts.diskMaxBytes) return;
    const tmp = `${this.path(signature)}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, bytes);
      await rename(tmp, this.path(signature));
      this.touchDisk(signature, bytes.length);
      await this.trimDisk();
    } catch (err) {
      // A full or missing cache disk costs recomputation later, never the run.
      await rm(tmp, { force: true });
      this.opts.log.warn({ err }, 'workflow cache write failed');
    }
  }

  /** Bytes held: memory and disk. */
  size(): { memoryBytes: number; diskBytes: number; entries: number } {
    return {
      memoryBytes: this.memoryBytes,
      diskBytes: this.diskBytes,
      entries: new Set([...this.memory.keys(), ...this.disk.keys()]).size,
    };
  }

  /** Forgets everything (memory and disk). */
  async clear(): Promise<void> {
    this.memory.clear();
    this.memoryBytes = 0;
    for (const sig of [...this.disk.keys()]) await this.dropDisk(sig);
  }

  close(): void {
    this.memory.clear();
    this.memoryBytes = 0;
  }

  private path(signature: string): string {
    return join(this.opts.dir, `${signature}.v8`);
  }

  private remember(signature: string, value: CachedOutput, bytes: number): void {
    if (bytes > this.opts.memoryMaxBytes) return;
    const old = this.memory.get(signature);
    if (old) this.memoryBytes -= old.bytes;
    this.memory.delete(signature);
    this.memory.set(signature, { value, bytes });
    this.memoryBytes += bytes;
    for (const [sig, entry] of this.memory) {
      if (this.memoryBytes <= this.opts.memoryMaxBytes) break;
      this.memory.delete(sig);
      this.memoryBytes -= entry.bytes;
    }
  }

  private touchDisk(signature: string, bytes: number): void {
    const old = this.disk.get(signature);
    if (old !== undefined) this.diskBytes -= old;
    this.disk.delete(signature);
    this.disk.set(signature, bytes);
    this.diskBytes += bytes;
  }

  private async dropDisk(signature: string): Promise<void> {
    const size = this.disk.get(signature);
    if (size === undefined) return;
    this.disk.delete(signature);
    this.diskBytes -= size;
    await rm(this.path(signature), { force: true });
  }

  private async trimDisk(): Promise<void> {
    for (const sig of [...this.disk.keys()]) {
      if (this.diskBytes <= this.opts.diskMaxBytes) break;
      await this.dropDisk(sig);
    }
  }
}
