import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FileStore, openFileStore } from '../../atlas/files/index.js';
import { HearthError } from '../../errors.js';
import { type CachedBlob, NodeCache } from './node-cache.js';

const log = pino({ level: 'silent' });
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

async function expectCode(promise: Promise<unknown>, code: string): Promise<HearthError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HearthError);
  expect((err as HearthError).code).toBe(code);
  return err as HearthError;
}

/** The real folder store, counting reads so a test can tell a cache hit from a copy. */
function countingStore(inner: FileStore): FileStore & { reads: number } {
  const counted = Object.create(inner) as FileStore & { reads: number };
  counted.reads = 0;
  counted.read = (key, range) => {
    counted.reads++;
    return inner.read(key, range);
  };
  return counted;
}

let tmp: string;
let atlas: FileStore & { reads: number };
let cacheDir: string;
const opened: NodeCache[] = [];

async function openCache(maxBytes = 10_000): Promise<NodeCache> {
  const cache = await NodeCache.open({ dir: cacheDir, maxBytes, log });
  opened.push(cache);
  return cache;
}

/** Puts `size` bytes of `fill` on Atlas under `key` and returns its digest. */
async function blob(key: string, size: number, fill: number): Promise<string> {
  return (await atlas.put(key, Buffer.alloc(size, fill))).sha256;
}

const blobNames = async () => (await readdir(join(cacheDir, 'blobs'))).sort();

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hearth-cache-'));
  atlas = countingStore(await openFileStore(join(tmp, 'atlas')));
  cacheDir = join(tmp, 'node', 'cache');
});

afterEach(async () => {
  for (const cache of opened.splice(0)) await cache.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('NodeCache', () => {
  it('opens on a missing folder, copies a blob once and verifies it', async () => {
    const cache = await openCache();
    expect(cache.usage()).toEqual({ bytes: 0, entries: 0, maxBytes: 10_000 });
    const digest = await blob('models/a.gguf', 1000, 7);

    const first = await cache.ensureBlob(atlas, 'models/a.gguf', digest.toUpperCase());
    expect(first).toMatchObject({ sha256: digest, size: 1000, path: join(cacheDir, 'blobs', `sha256-${digest}`) });
    expect((await readFile(first.path)).equals(Buffer.alloc(1000, 7))).toBe(true);
    const again = await cache.ensureBlob(atlas, 'models/a.gguf', digest);
    expect(again.path).toBe(first.path);
    expect(atlas.reads).toBe(1);
    expect(cache.usage()).toEqual({ bytes: 1000, entries: 1, maxBytes: 10_000 });
    expect(await blobNames()).toEqual([`sha256-${digest}`]);
    first.release();
    again.release();
  });

  it('re-verifies cached blobs after a restart and re-copies a corrupted or truncated one', async () => {
    const digest = await blob('m.gguf', 4096, 1);
    const first = await openCache();
    const { path } = await first.ensureBlob(atlas, 'm.gguf', digest);
    await first.close();

    // A bit flipped on the node's disk: same size, wrong content.
    const bytes = await readFile(path);
    bytes[100] = bytes[100]! ^ 0xff;
    await writeFile(path, bytes);
    const second = await openCache();
    expect(second.usage().entries).toBe(1);
    await second.ensureBlob(atlas, 'm.gguf', digest);
    expect(sha256(await readFile(path))).toBe(digest);
    expect(atlas.reads).toBe(2);
    await second.close();

    // Truncated (a crash mid-copy, a full disk): caught even in a process that has verified it.
    const third = await openCache();
    await third.ensureBlob(atlas, 'm.gguf', digest);
    expect(atlas.reads).toBe(2);
    await truncate(path, 10);
    const fixed = await third.ensureBlob(atlas, 'm.gguf', digest);
    expect(sha256(await readFile(fixed.path))).toBe(digest);
    expect(atlas.reads).toBe(3);
    expect(third.usage().bytes).toBe(4096);
  });

  it('refuses a corrupt Atlas blob and caches nothing', async () => {
    const cache = await openCache();
    await atlas.put('bad.gguf', 'these are not the bytes the manifest promised');
    const err = await expectCode(cache.ensureBlob(atlas, 'bad.gguf', sha256('the real bytes')), 'NODE_CACHE_CORRUPT');
    expect(err.message).toContain('Atlas copy of "bad.gguf"');
    expect(err.message).toContain(sha256('the real bytes'));
    expect(await blobNames()).toEqual([]);
    expect(cache.usage()).toEqual({ bytes: 0, entries: 0, maxBytes: 10_000 });
    await expectCode(cache.ensureBlob(atlas, 'missing.gguf', sha256('x')), 'ATLAS_FILES_NOT_FOUND');
    await expectCode(cache.ensureBlob(atlas, 'bad.gguf', 'not-a-digest'), 'BAD_REQUEST');
  });

  it('evicts the least recently used blobs to stay within budget', async () => {
    const cache = await openCache(250);
    const a = await blob('a', 100, 1);
    const b = await blob('b', 100, 2);
    const c = await blob('c', 100, 3);
    (await cache.ensureBlob(atlas, 'a', a)).release();
    (await cache.ensureBlob(atlas, 'b', b)).release();
    (await cache.ensureBlob(atlas, 'a', a)).release(); // a is now more recent than b
    (await cache.ensureBlob(atlas, 'c', c)).release();
    expect(await blobNames()).toEqual([`sha256-${a}`, `sha256-${c}`].sort());
    expect(cache.usage()).toEqual({ bytes: 200, entries: 2, maxBytes: 250 });
  });

  it('never evicts a pinned blob, and refuses a copy that only eviction of pinned blobs would fit', async () => {
    const cache = await openCache(250);
    const a = await blob('a', 100, 1);
    const b = await blob('b', 100, 2);
    const c = await blob('c', 100, 3);
    const pinnedA = await cache.ensureBlob(atlas, 'a', a); // oldest, but in use
    (await cache.ensureBlob(atlas, 'b', b)).release();
    const pinnedC = await cache.ensureBlob(atlas, 'c', c);
    expect(await blobNames()).toEqual([`sha256-${a}`, `sha256-${c}`].sort());

    const d = await blob('d', 100, 4);
    const err = await expectCode(cache.ensureBlob(atlas, 'd', d), 'NODE_CACHE_TOO_SMALL');
    expect(err.message).toContain('node.cacheMaxBytes');
    expect(await blobNames()).toEqual([`sha256-${a}`, `sha256-${c}`].sort());

    pinnedA.release();
    pinnedA.release(); // twice is harmless: c stays pinned
    (await cache.ensureBlob(atlas, 'd', d)).release();
    expect(await blobNames()).toEqual([`sha256-${c}`, `sha256-${d}`].sort());
    pinnedC.release();
  });

  it('refuses a blob bigger than the whole budget', async () => {
    const cache = await openCache(250);
    const big = await blob('big.gguf', 300, 9);
    const err = await expectCode(cache.ensureBlob(atlas, 'big.gguf', big), 'NODE_CACHE_TOO_SMALL');
    expect(err.message).toMatch(/larger than the whole cache .*raise node\.cacheMaxBytes/);
    expect(atlas.reads).toBe(0);
  });

  it('concurrent calls for one digest share one copy', async () => {
    const cache = await openCache(1 << 24);
    const digest = await blob('shared.gguf', 4 << 20, 5);
    const blobs = await Promise.all(Array.from({ length: 6 }, () => cache.ensureBlob(atlas, 'shared.gguf', digest)));
    expect(atlas.reads).toBe(1);
    expect(new Set(blobs.map((b: CachedBlob) => b.path)).size).toBe(1);
    expect(await blobNames()).toEqual([`sha256-${digest}`]);
    for (const b of blobs) b.release();
  });

  it('keeps what is cached across restarts, shrinking to a lowered budget by last use', async () => {
    const a = await blob('a', 100, 1);
    const b = await blob('b', 100, 2);
    const first = await openCache(1000);
    (await first.ensureBlob(atlas, 'a', a)).release();
    await new Promise((done) => setTimeout(done, 20));
    (await first.ensureBlob(atlas, 'b', b)).release();
    await new Promise((done) => setTimeout(done, 20));
    (await first.ensureBlob(atlas, 'a', a)).release();
    await first.close();
    // Leftovers of a copy that a crash interrupted are swept.
    await writeFile(join(cacheDir, 'blobs', `.sha256-${b}.tmp-abc123`), 'half');

    const second = await openCache(150);
    expect(await blobNames()).toEqual([`sha256-${a}`]);
    expect(second.usage()).toEqual({ bytes: 100, entries: 1, maxBytes: 150 });
    (await second.ensureBlob(atlas, 'a', a)).release();
    expect(atlas.reads).toBe(2);
  });

  it('gives private scratch folders, removed on dispose and cleared at open', async () => {
    const cache = await openCache();
    const one = await cache.scratch('job 42/../x');
    const two = await cache.scratch('job 42/../x');
    expect(one.path).not.toBe(two.path);
    expect(one.path.startsWith(join(cacheDir, 'scratch'))).toBe(true);
    await writeFile(join(one.path, 'partial.jsonl'), 'x');
    await one.dispose();
    await one.dispose();
    await expect(stat(one.path)).rejects.toMatchObject({ code: 'ENOENT' });

    // A crash leaves scratch behind: the next start clears it.
    await mkdir(join(cacheDir, 'scratch', 'left-behind'), { recursive: true });
    await writeFile(join(cacheDir, 'scratch', 'left-behind', 'f'), 'x');
    await openCache();
    expect(await readdir(join(cacheDir, 'scratch'))).toEqual([]);
  });

  it('close removes scratch folders and refuses further use', async () => {
    const cache = await openCache();
    const folder = await cache.scratch('run');
    await cache.close();
    await expect(stat(folder.path)).rejects.toMatchObject({ code: 'ENOENT' });
    await expectCode(cache.ensureBlob(atlas, 'a', sha256('a')), 'SHUTTING_DOWN');
  });

  it('refuses a cache folder that is a file, and a budget that is not a byte count', async () => {
    await mkdir(join(tmp, 'node'), { recursive: true });
    await writeFile(cacheDir, 'not a folder');
    const err = await expectCode(NodeCache.open({ dir: cacheDir, maxBytes: 1000, log }), 'NODE_CACHE_UNUSABLE');
    expect(err.message).toContain(cacheDir);
    await expectCode(NodeCache.open({ dir: join(tmp, 'other'), maxBytes: 0, log }), 'CONFIG_INVALID');
  });
});
