import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { addAbortSignal } from 'node:stream';
import type { Logger } from 'pino';
import { type FileStore, normalizeSha256 } from '../../atlas/files/index.js';
import { describeError, errnoOf, HearthError } from '../../errors.js';
import { formatBytes } from '../../units.js';
import { writeAll } from '../../write-all.js';
import { cacheFsError } from '../errors.js';
import { ScratchArea, type ScratchFolder } from '../scratch.js';

export interface NodeCacheOptions {
  /** `node.cacheDir`: a local folder, created if missing. Everything in it may be deleted at any time. */
  dir: string;
  /** `node.cacheMaxBytes`: the byte budget for cached blobs; least recently used ones are evicted to stay within it */
  maxBytes: number;
  log: Logger;
}

/** A verified local copy of an Atlas blob. */
export interface CachedBlob {
  path: string;
  /** lowercase hex */
  sha256: string;
  size: number;
  /** The blob is pinned (never evicted) until released, e.g. while a loaded model mmaps it. Idempotent. */
  release(): void;
}

interface Entry {
  sha256: string;
  path: string;
  size: number;
  /** use order for LRU: a counter in this process, seeded from file mtimes at open */
  lastUsed: number;
  pins: number;
  /** hashed in this process: a cache file is never trusted across a restart */
  verified: boolean;
}

const BLOB_NAME = /^sha256-([0-9a-f]{64})$/;
const READ_CHUNK_BYTES = 1 << 20;

function shuttingDown(): HearthError {
  return new HearthError('SHUTTING_DOWN', 'node.cache: the cache is closed (hearth is shutting down)');
}

/**
 * The node's cache (`node.cacheDir`): local copies of Atlas blobs (models above all) under a byte
 * budget, plus the scratch area. Disposable by design: a missing or wiped folder only costs copies.
 *
 * Layout: `blobs/sha256-<hex>` (the copies; the name records the digest and the mtime the last use,
 * so no index is needed) and `scratch/` (emptied at open).
 */
export class NodeCache {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly blobsDir: string;
  private readonly log: Logger;
  private readonly scratchArea: ScratchArea;
  private readonly entries = new Map<string, Entry>();
  /** one verification-or-copy per digest at a time; every caller for that digest awaits it */
  private readonly pending = new Map<string, Promise<Entry>>();
  /** callers waiting for a digest: eviction spares it as if it were pinned */
  private readonly wanted = new Map<string, number>();
  /** sum of the entries' sizes */
  private bytes = 0;
  /** bytes promised to copies in flight, so parallel copies cannot overshoot the budget together */
  private reserved = 0;
  private useClock = 0;
  private closed = false;
  private readonly closing = new AbortController();

  private constructor(dir: string, maxBytes: number, log: Logger, scratch: ScratchArea) {
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.blobsDir = join(dir, 'blobs');
    this.log = log;
    this.scratchArea = scratch;
  }

  /** Creates the folder if missing, empties scratch, indexes the blobs already there (verified on first use). */
  static async open(opts: NodeCacheOptions): Promise<NodeCache> {
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes <= 0) {
      throw new HearthError(
        'CONFIG_INVALID',
        `node.cacheMaxBytes must be a positive whole number of bytes, not ${JSON.stringify(opts.maxBytes)}`,
      );
    }
    const dir = resolve(opts.dir);
    const blobsDir = join(dir, 'blobs');
    try {
      await mkdir(blobsDir, { recursive: true });
    } catch (err) {
      throw cacheFsError('create', blobsDir, err);
    }
    const scratch = await ScratchArea.open(join(dir, 'scratch'));
    const cache = new NodeCache(dir, opts.maxBytes, opts.log, scratch);
    await cache.index();
    // The budget may have been lowered since the last run.
    await cache.removeEvicted(cache.reserve(0, 'start-up'), 'start-up');
    opts.log.info({ dir, ...cache.usage() }, 'node cache opened');
    return cache;
  }

  private async index(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.blobsDir);
    } catch (err) {
      throw cacheFsError('read', this.blobsDir, err);
    }
    const found: Array<{ sha256: string; size: number; mtimeMs: number }> = [];
    for (const name of names) {
      const path = join(this.blobsDir, name);
      const match = BLOB_NAME.exec(name);
      if (!match) {
        // Copies a previous process did not finish.
        if (name.startsWith('.') && name.includes('.tmp-')) await rm(path, { force: true }).catch(() => {});
        else this.log.warn({ path }, 'node cache: ignoring a file it did not make');
        continue;
      }
      try {
        const info = await stat(path);
        if (info.isFile()) found.push({ sha256: match[1]!, size: info.size, mtimeMs: info.mtimeMs });
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw cacheFsError('inspect', path, err);
      }
    }
    for (const blob of found.sort((a, b) => a.mtimeMs - b.mtimeMs)) {
      this.entries.set(blob.sha256, {
        sha256: blob.sha256,
        path: join(this.blobsDir, `sha256-${blob.sha256}`),
        size: blob.size,
        lastUsed: ++this.useClock,
        pins: 0,
        verified: false,
      });
      this.bytes += blob.size;
    }
  }

  /**
   * A verified local copy of the Atlas blob `key`, whose sha256 must be `sha256`. A cached copy is
   * hashed once per process before it is first used; a bad one is replaced. Copies go through a
   * temporary file and are hashed while copying: an Atlas file that does not match fails with
   * NODE_CACHE_CORRUPT and nothing is cached. Concurrent calls for one digest share one copy. The
   * returned blob is pinned until `release()`.
   */
  async ensureBlob(store: FileStore, key: string, sha256: string): Promise<CachedBlob> {
    this.assertOpen();
    const digest = normalizeSha256(sha256, 'sha256');
    this.wanted.set(digest, (this.wanted.get(digest) ?? 0) + 1);
    try {
      let task = this.pending.get(digest);
      if (!task) {
        task = this.ready(store, key, digest).finally(() => this.pending.delete(digest));
        this.pending.set(digest, task);
      }
      const entry = await task;
      this.assertOpen();
      entry.pins++;
      entry.lastUsed = ++this.useClock;
      // The mtime carries the use order across restarts; losing it costs only a worse eviction choice.
      const now = new Date();
      await utimes(entry.path, now, now).catch(() => {});
      let released = false;
      return {
        path: entry.path,
        sha256: entry.sha256,
        size: entry.size,
        release: () => {
          if (released) return;
          released = true;
          entry.pins--;
        },
      };
    } finally {
      const left = (this.wanted.get(digest) ?? 1) - 1;
      if (left === 0) this.wanted.delete(digest);
      else this.wanted.set(digest, left);
    }
  }

  usage(): { bytes: number; entries: number; maxBytes: number } {
    return { bytes: this.bytes, entries: this.entries.size, maxBytes: this.maxBytes };
  }

  /** A fresh private folder under `scratch/`, removed by `dispose()` (and at the next start anyway). */
  async scratch(prefix: string): Promise<ScratchFolder> {
    this.assertOpen();
    return this.scratchArea.create(prefix);
  }

  /** Stops copies in flight (their temporary files are removed) and removes scratch folders. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    await Promise.allSettled([...this.pending.values()]);
    await this.scratchArea.close();
  }

  private assertOpen(): void {
    if (this.closed) throw shuttingDown();
  }

  private async ready(store: FileStore, key: string, digest: string): Promise<Entry> {
    const cached = this.entries.get(digest);
    if (cached) {
      if (await this.stillGood(cached)) return cached;
      this.forget(cached);
      await rm(cached.path, { force: true }).catch(() => {});
    }
    return this.copy(store, key, digest);
  }

  /** Whether a cached copy may be used: present, of its size, and (once per process) of its digest. */
  private async stillGood(entry: Entry): Promise<boolean> {
    let size: number;
    try {
      size = (await stat(entry.path)).size;
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw cacheFsError('inspect', entry.path, err);
      this.log.warn({ sha256: entry.sha256 }, 'node cache: a cached blob vanished; copying it again');
      return false;
    }
    if (size !== entry.size) {
      this.log.warn({ sha256: entry.sha256, size, expected: entry.size }, 'node cache: a cached blob changed size');
      return false;
    }
    if (entry.verified) return true;
    const started = Date.now();
    const hash = createHash('sha256');
    try {
      const stream = createReadStream(entry.path, { highWaterMark: READ_CHUNK_BYTES, signal: this.closing.signal });
      for await (const chunk of stream) hash.update(chunk as Buffer);
    } catch (err) {
      if (this.closed) throw shuttingDown();
      throw cacheFsError('read', entry.path, err);
    }
    const actual = hash.digest('hex');
    if (actual !== entry.sha256) {
      this.log.warn({ sha256: entry.sha256, actual }, 'node cache: a cached blob is corrupt; copying it again');
      return false;
    }
    entry.verified = true;
    this.log.debug({ sha256: entry.sha256, ms: Date.now() - started }, 'node cache: verified a cached blob');
    return true;
  }

  private forget(entry: Entry): void {
    if (this.entries.get(entry.sha256) !== entry) return;
    this.entries.delete(entry.sha256);
    this.bytes -= entry.size;
  }

  /**
   * Reserves room for `size` more bytes, choosing least recently used entries to evict. Synchronous,
   * so two copies cannot both count the same free bytes. Pinned and awaited entries stay; when they
   * alone leave too little room, the copy is refused rather than the budget broken. The caller removes
   * the returned entries' files and gives the reservation back with `this.reserved -= size`.
   */
  private reserve(size: number, key: string): Entry[] {
    const excess = this.bytes + this.reserved + size - this.maxBytes;
    const victims: Entry[] = [];
    let freed = 0;
    if (excess > 0) {
      const candidates = [...this.entries.values()]
        .filter((entry) => entry.pins === 0 && !this.wanted.has(entry.sha256))
        .sort((a, b) => a.lastUsed - b.lastUsed);
      for (const entry of candidates) {
        if (freed >= excess) break;
        victims.push(entry);
        freed += entry.size;
      }
      if (freed < excess) {
        const held = this.bytes + this.reserved - freed;
        throw new HearthError(
          'NODE_CACHE_TOO_SMALL',
          [
            `no room for ${JSON.stringify(key)} (${formatBytes(size, { binary: true })}): ${formatBytes(held, { binary: true })} of the ${formatBytes(this.maxBytes, { binary: true })} cache is in use (loaded models, copies in flight); unload something or raise node.cacheMaxBytes`,
          ],
          { details: { key, size, maxBytes: this.maxBytes, inUse: held } },
        );
      }
    }
    for (const entry of victims) this.forget(entry);
    this.reserved += size;
    return victims;
  }

  private async removeEvicted(victims: Entry[], key: string): Promise<void> {
    if (victims.length === 0) return;
    for (const entry of victims) {
      await rm(entry.path, { force: true }).catch((err: unknown) => {
        this.log.warn({ err, path: entry.path }, 'node cache: could not remove an evicted blob');
      });
    }
    this.log.info(
      {
        evicted: victims.map((entry) => entry.sha256),
        freed: victims.reduce((sum, entry) => sum + entry.size, 0),
        for: key,
      },
      'node cache: evicted least recently used blobs',
    );
  }

  private async copy(store: FileStore, key: string, digest: string): Promise<Entry> {
    const info = await store.stat(key);
    if (!info) {
      throw new HearthError(
        'ATLAS_FILES_NOT_FOUND',
        `atlas.files: no file is stored under ${JSON.stringify(key)} in ${store.describe}`,
        {
          details: { key },
        },
      );
    }
    if (info.size > this.maxBytes) {
      throw new HearthError(
        'NODE_CACHE_TOO_SMALL',
        [
          `${JSON.stringify(key)} is ${formatBytes(info.size, { binary: true })}, larger than the whole cache (node.cacheMaxBytes = ${formatBytes(this.maxBytes, { binary: true })}): raise node.cacheMaxBytes`,
        ],
        { details: { key, size: info.size, maxBytes: this.maxBytes } },
      );
    }
    const evicted = this.reserve(info.size, key);
    const path = join(this.blobsDir, `sha256-${digest}`);
    const tmp = join(this.blobsDir, `.sha256-${digest}.tmp-${randomBytes(6).toString('hex')}`);
    const started = Date.now();
    let fh: FileHandle | undefined;
    try {
      await this.removeEvicted(evicted, key);
      const source = addAbortSignal(this.closing.signal, await store.read(key));
      try {
        fh = await open(tmp, 'wx');
      } catch (err) {
        source.destroy();
        throw cacheFsError('create', tmp, err);
      }
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of source) {
        const bytes = chunk as Buffer;
        size += bytes.length;
        if (size > info.size) {
          throw new HearthError(
            'NODE_CACHE_CORRUPT',
            [
              `${JSON.stringify(key)} in ${store.describe} grew while it was copied: try again once it is no longer being written`,
            ],
            { details: { key } },
          );
        }
        hash.update(bytes);
        await writeAll(fh, bytes, (err) => cacheFsError('write', tmp, err));
      }
      // No fsync: a copy torn by a crash fails the first-use hash in the next process and is copied again.
      await fh.close();
      fh = undefined;
      const actual = hash.digest('hex');
      if (actual !== digest) {
        throw new HearthError(
          'NODE_CACHE_CORRUPT',
          [
            `the Atlas copy of ${JSON.stringify(key)} (${store.describe}) is corrupt: its sha256 is ${actual}, expected ${digest}; nothing was cached: restore the file from a backup or pull it again`,
          ],
          { details: { key, expected: digest, actual } },
        );
      }
      try {
        await rename(tmp, path);
      } catch (err) {
        throw cacheFsError('store', path, err);
      }
      const entry: Entry = { sha256: digest, path, size, lastUsed: ++this.useClock, pins: 0, verified: true };
      this.entries.set(digest, entry);
      this.bytes += size;
      this.log.info({ key, sha256: digest, size, ms: Date.now() - started }, 'node cache: copied a blob from Atlas');
      return entry;
    } catch (err) {
      await fh?.close().catch(() => {});
      await rm(tmp, { force: true }).catch(() => {});
      if (this.closed) throw shuttingDown();
      if (err instanceof HearthError) throw err;
      // Writes are wrapped where they happen, so anything else came from reading Atlas.
      throw new HearthError('ATLAS_FILES_UNREADABLE', [JSON.stringify(key), store.describe, describeError(err)], {
        cause: err,
        details: { key },
      });
    } finally {
      this.reserved -= info.size;
    }
  }
}
