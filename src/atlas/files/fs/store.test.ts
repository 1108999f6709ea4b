import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readOnlyFolder } from '../../../../test/support/mounts.js';
import { HearthError } from '../../../errors.js';
import { openFileStore } from '../index.js';
import type { FileStore } from '../store.js';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every name under `dir`, recursively, hidden ones included: proves nothing was left behind. */
async function allNames(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<HearthError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HearthError);
  expect((err as HearthError).code).toBe(code);
  return err as HearthError;
}

let tmp: string;
let root: string;
let store: FileStore;

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hearth-files-'));
  root = join(tmp, 'atlas');
  store = await openFileStore(root);
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('FsFileStore', () => {
  it('creates a missing root and describes itself', async () => {
    expect(store.describe).toBe(`folder ${root}`);
    expect(await allNames(root)).toEqual([]);
  });

  it('stores buffers, strings and streams with the right sha256', async () => {
    const text = 'hello atlas\n';
    expect(await store.put('a/text.txt', text)).toEqual({ key: 'a/text.txt', size: 12, sha256: sha256(text) });

    const bytes = Buffer.alloc(3 * 1024 * 1024 + 7, 0xab);
    expect((await store.put('a/b/buffer.bin', bytes)).sha256).toBe(sha256(bytes));

    const parts = [Buffer.from('one '), Buffer.from('two '), Buffer.from('three')];
    const streamed = await store.put('stream.bin', Readable.from(parts));
    expect(streamed).toEqual({ key: 'stream.bin', size: 13, sha256: sha256('one two three') });

    async function* generated() {
      for (let i = 0; i < 100; i++) yield new Uint8Array(1000).fill(i);
    }
    const gen = await store.put('gen.bin', generated());
    expect(gen.size).toBe(100_000);
    expect(gen.sha256).toBe(await store.hash('gen.bin'));
    // Buffer.equals: a deep toEqual over megabytes is slow.
    expect((await readFile(join(root, 'a/b/buffer.bin'))).equals(bytes)).toBe(true);
    expect(await store.hash('a/b/buffer.bin')).toBe(sha256(bytes));
  });

  it('reads whole files and inclusive byte ranges', async () => {
    await store.put('r.txt', '0123456789');
    expect((await readAll(await store.read('r.txt'))).toString()).toBe('0123456789');
    expect((await readAll(await store.read('r.txt', { start: 4 }))).toString()).toBe('456789');
    expect((await readAll(await store.read('r.txt', { start: 2, end: 4 }))).toString()).toBe('234');
    expect((await readAll(await store.read('r.txt', { start: 10 }))).toString()).toBe('');
    await expectCode(store.read('r.txt', { start: 5, end: 2 }), 'BAD_REQUEST');
    await expectCode(store.read('r.txt', { start: -1 }), 'BAD_REQUEST');
  });

  it('answers NOT_FOUND for a missing key, and for a folder', async () => {
    const err = await expectCode(store.read('nope/missing.gguf'), 'ATLAS_FILES_NOT_FOUND');
    expect(err.message).toContain('"nope/missing.gguf"');
    await store.put('dir/file', 'x');
    await expectCode(store.read('dir'), 'ATLAS_FILES_NOT_FOUND');
    await expectCode(store.hash('dir/missing'), 'ATLAS_FILES_NOT_FOUND');
    await expectCode(store.read('dir/file/below'), 'ATLAS_FILES_NOT_FOUND');
  });

  it('a source that fails mid-stream leaves neither target nor temp file, and an existing target unchanged', async () => {
    await store.put('models/m.gguf', 'the good copy');
    const before = await allNames(root);
    async function* failing() {
      yield Buffer.alloc(256 * 1024, 1);
      yield Buffer.alloc(256 * 1024, 2);
      throw new Error('upload aborted');
    }
    await expect(store.put('models/m.gguf', failing())).rejects.toThrow('upload aborted');
    await expect(store.put('models/new.gguf', failing())).rejects.toThrow('upload aborted');
    await expect(store.put('brand/new/folder/x.gguf', failing())).rejects.toThrow('upload aborted');

    // A Readable destroyed mid-way (a client hanging up) counts as a failure too.
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(1024, 3));
    const pending = store.put('models/other.gguf', source);
    setTimeout(() => source.destroy(new Error('client went away')), 10);
    await expect(pending).rejects.toThrow('client went away');

    expect(await allNames(root)).toEqual(before);
    expect(await readFile(join(root, 'models/m.gguf'), 'utf8')).toBe('the good copy');
    expect(await store.stat('models/new.gguf')).toBeNull();
  });

  it('a digest mismatch stores nothing and keeps the old file', async () => {
    await store.put('d/x.bin', 'old');
    const before = await allNames(root);
    const err = await expectCode(
      store.put('d/x.bin', Readable.from([Buffer.from('new content')]), { expectedSha256: sha256('other') }),
      'ATLAS_FILES_DIGEST_MISMATCH',
    );
    expect(err.message).toContain(sha256('new content'));
    await expectCode(store.put('d/y.bin', 'new', { expectedSha256: sha256('other') }), 'ATLAS_FILES_DIGEST_MISMATCH');
    await expectCode(store.put('e/f/y.bin', 'new', { expectedSha256: sha256('other') }), 'ATLAS_FILES_DIGEST_MISMATCH');
    expect(await allNames(root)).toEqual(before);
    expect(await readFile(join(root, 'd/x.bin'), 'utf8')).toBe('old');

    // The expected digest matches in either case.
    const ok = await store.put('d/y.bin', 'new', { expectedSha256: sha256('new').toUpperCase() });
    expect(ok.sha256).toBe(sha256('new'));
    await expectCode(store.put('d/z.bin', 'new', { expectedSha256: 'abc' }), 'BAD_REQUEST');
  });

  it('overwrite:false refuses an existing key and leaves it alone', async () => {
    await store.put('k.txt', 'first');
    await expectCode(store.put('k.txt', 'second', { overwrite: false }), 'ATLAS_FILES_EXISTS');
    expect(await readFile(join(root, 'k.txt'), 'utf8')).toBe('first');
    expect((await store.put('fresh.txt', 'x', { overwrite: false })).size).toBe(1);
    await store.put('k.txt', 'third');
    expect(await readFile(join(root, 'k.txt'), 'utf8')).toBe('third');
    expect(await allNames(root)).toEqual(['fresh.txt', 'k.txt']);
  });

  it('overwrite:false lets exactly one of two racing writers store the key', async () => {
    async function* slow(text: string) {
      for (const part of [text, ' part two']) {
        await new Promise((done) => setTimeout(done, 20));
        yield Buffer.from(part);
      }
    }
    const results = await Promise.allSettled([
      store.put('race.txt', slow('first'), { overwrite: false }),
      store.put('race.txt', slow('second'), { overwrite: false }),
    ]);
    const stored = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as HearthError] : []));
    expect(stored).toHaveLength(1);
    expect(refused.map((e) => e.code)).toEqual(['ATLAS_FILES_EXISTS']);
    expect(sha256(await readFile(join(root, 'race.txt')))).toBe(stored[0]!.sha256);
    expect(await allNames(root)).toEqual(['race.txt']);
  });

  it('refuses to store a file where a folder is, or below a file', async () => {
    await store.put('f/inner.txt', 'x');
    await expectCode(store.put('f', 'y'), 'ATLAS_FILES_EXISTS');
    await expectCode(store.put('f/inner.txt/deeper', 'y'), 'ATLAS_FILES_EXISTS');
  });

  it('lists, stats and deletes', async () => {
    await store.put('models/b.gguf', 'bb');
    await store.put('models/a.gguf', 'a');
    await store.put('models/sub/c.gguf', 'ccc');
    await store.put('datasets/d.jsonl', 'dddd');
    await store.put('modelsx.txt', 'x');
    // The store's own files and strangers' temp files are not keys.
    await mkdir(join(root, '.hearth/db'), { recursive: true });
    await writeFile(join(root, '.hearth/db/data'), 'internal');
    await writeFile(join(root, 'models/.b.gguf.tmp-abc123'), 'half');

    expect((await store.list()).map((f) => f.key)).toEqual([
      'datasets/d.jsonl',
      'models/a.gguf',
      'models/b.gguf',
      'models/sub/c.gguf',
      'modelsx.txt',
    ]);
    expect((await store.list('models/')).map((f) => f.key)).toEqual([
      'models/a.gguf',
      'models/b.gguf',
      'models/sub/c.gguf',
    ]);
    expect((await store.list('models')).map((f) => f.key)).toContain('modelsx.txt');
    expect((await store.list('models/s')).map((f) => f.key)).toEqual(['models/sub/c.gguf']);
    expect(await store.list('nothing/here/')).toEqual([]);

    const stat = await store.stat('models/sub/c.gguf');
    expect(stat).toMatchObject({ key: 'models/sub/c.gguf', size: 3 });
    expect(stat?.modifiedAt).toBeInstanceOf(Date);
    expect(await store.stat('models/sub')).toBeNull();
    expect(await store.stat('models/zzz')).toBeNull();

    expect(await store.delete('models/a.gguf')).toBe(true);
    expect(await store.delete('models/a.gguf')).toBe(false);
    expect(await store.delete('models/sub')).toBe(false);
    expect(await store.delete('no/such/key')).toBe(false);
    expect(await store.stat('models/a.gguf')).toBeNull();
    expect((await store.list('models/')).map((f) => f.key)).toEqual(['models/b.gguf', 'models/sub/c.gguf']);
  });

  it('refuses every malformed key, naming the key and the rule', async () => {
    const cases: Array<[string, string]> = [
      ['', 'empty'],
      ['/etc/passwd', 'absolute'],
      ['a/../b', 'dot-dot-segment'],
      ['..', 'dot-dot-segment'],
      ['a/./b', 'dot-segment'],
      ['a//b', 'empty-segment'],
      ['a/', 'empty-segment'],
      ['a\\b', 'backslash'],
      ['a\0b', 'control-character'],
      ['a\nb', 'control-character'],
      [`${'x'.repeat(256)}`, 'segment-too-long'],
      [`${'abc/'.repeat(300)}x`, 'too-long'],
      ['.hearth/db/data', 'internal'],
      ['models/.w.gguf.tmp-1a2b', 'temporary-name'],
    ];
    for (const [key, rule] of cases) {
      for (const attempt of [
        () => store.put(key, 'x'),
        () => store.read(key),
        () => store.stat(key),
        () => store.delete(key),
        () => store.hash(key),
        async () => store.localPath(key),
      ]) {
        const err = await expectCode(attempt(), 'ATLAS_FILES_BAD_KEY');
        expect(err.details).toEqual({ key, rule });
        expect(err.message).toContain(JSON.stringify(key));
      }
    }
    await expectCode(store.list('../'), 'ATLAS_FILES_BAD_KEY');
    await expectCode(store.list('/abs'), 'ATLAS_FILES_BAD_KEY');
    expect(await allNames(tmp)).toEqual(['atlas']);
  });

  it('refuses keys that a symbolic link leads outside the store', async () => {
    const outside = join(tmp, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret'), 'not yours');
    await symlink(outside, join(root, 'escape'));
    await symlink(join(outside, 'secret'), join(root, 'secret-link'));

    for (const attempt of [
      () => store.put('escape/new', 'x'),
      () => store.put('escape/deeper/new', 'x'),
      () => store.read('escape/secret'),
      () => store.stat('escape/secret'),
      () => store.hash('secret-link'),
      () => store.delete('escape/secret'),
      () => store.list('escape/'),
      async () => store.localPath('escape/secret'),
    ]) {
      const err = await expectCode(attempt(), 'ATLAS_FILES_BAD_KEY');
      expect(err.details?.['rule']).toBe('symlink-escape');
      expect(err.message).toContain('symbolic link');
      // Where the link points is not the client's business.
      expect(err.message).not.toContain(outside);
    }
    expect(await allNames(outside)).toEqual(['secret']);
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('not yours');

    // A link that stays inside the store is fine.
    await mkdir(join(root, 'real'));
    await symlink(join(root, 'real'), join(root, 'alias'));
    await store.put('alias/f.txt', 'inside');
    expect(await readFile(join(root, 'real/f.txt'), 'utf8')).toBe('inside');
    expect((await readAll(await store.read('alias/f.txt'))).toString()).toBe('inside');
  });

  it('refuses keys that a symbolic link leads into .hearth/, where the database lives', async () => {
    await mkdir(join(root, '.hearth'));
    await writeFile(join(root, '.hearth', 'db.lock'), 'live lock');
    await symlink(join(root, '.hearth'), join(root, 'internal'));
    await symlink(join(root, '.hearth', 'db.lock'), join(root, 'lock-link'));
    for (const attempt of [
      () => store.read('internal/db.lock'),
      () => store.read('lock-link'),
      () => store.stat('lock-link'),
      () => store.put('internal/db.lock', 'overwritten'),
      () => store.put('internal/new', 'x'),
      () => store.delete('internal/db.lock'),
      () => store.list('internal/'),
      async () => store.localPath('internal/db.lock'),
    ]) {
      const err = await expectCode(attempt(), 'ATLAS_FILES_BAD_KEY');
      expect(err.details?.['rule']).toBe('internal');
      expect(err.message).not.toContain(root);
    }
    expect(await readFile(join(root, '.hearth', 'db.lock'), 'utf8')).toBe('live lock');
    expect((await readdir(join(root, '.hearth'))).sort()).toEqual(['db.lock']);
  });

  it('finds and removes temporaries of interrupted writes once they are stale, nothing else', async () => {
    const hour = 60 * 60 * 1000;
    const past = new Date(Date.now() - 7 * hour);
    await mkdir(join(root, 'models', 'deep'), { recursive: true });
    await mkdir(join(root, '.hearth'), { recursive: true });
    for (const [path, old] of [
      ['models/.m.gguf.tmp-abc123', true],
      ['models/deep/.x.tmp-def456', true],
      ['models/.fresh.gguf.tmp-aaa111', false],
      ['.hearth/.db.tmp-bbb222', true],
      ['models/m.gguf', true],
    ] as const) {
      await writeFile(join(root, path), 'partial');
      if (old) await utimes(join(root, path), past, past);
    }
    expect(await store.staleTemporaries(6 * hour)).toEqual({ count: 2, bytes: 14 });
    expect(await store.staleTemporaries(6 * hour, { remove: true })).toEqual({ count: 2, bytes: 14 });
    expect(await store.staleTemporaries(6 * hour)).toEqual({ count: 0, bytes: 0 });
    expect(await allNames(root)).toEqual(
      [
        '.hearth',
        '.hearth/.db.tmp-bbb222',
        'models',
        'models/.fresh.gguf.tmp-aaa111',
        'models/deep',
        'models/m.gguf',
      ].sort(),
    );
  });

  it('gives a local path for a key', async () => {
    await store.put('models/m.gguf', 'gguf');
    expect(await readFile(store.localPath('models/m.gguf')!, 'utf8')).toBe('gguf');
    expect(store.localPath('models/not-yet.gguf')).toBe(join(root, 'models/not-yet.gguf'));
  });

  it('checkWritable passes on a healthy folder and leaves nothing behind', async () => {
    await store.checkWritable();
    expect(await allNames(root)).toEqual([]);
  });

  it('checkWritable names the errno and what to do when the folder is unusable', async () => {
    // Tests may run as root, which chmod cannot stop; a file where the folder was fails for anyone.
    await rm(root, { recursive: true });
    await writeFile(root, 'not a folder');
    const err = await expectCode(store.checkWritable(), 'ATLAS_FILES_UNWRITABLE');
    expect(err.message).toBe(
      'atlas.files is not writable (ENOTDIR): atlas.files must be a folder: check the path and that the share is mounted',
    );
    // /readyz shows this message to any client: where Atlas lives on the server stays out of it.
    expect(err.message).not.toContain(root);
    await expectCode(openFileStore(root), 'ATLAS_FILES_UNWRITABLE');

    // A read-only share (root ignores chmod, so a read-only bind mount stands in for it).
    const locked = join(tmp, 'locked');
    const lockedStore = await openFileStore(locked);
    const mount = await readOnlyFolder(locked);
    try {
      const refused = await expectCode(lockedStore.checkWritable(), 'ATLAS_FILES_UNWRITABLE');
      expect(refused.message).toBe(
        'atlas.files is not writable (EROFS): mount the share read-write or choose another path for atlas.files',
      );
      const put = await expectCode(lockedStore.put('a/b.txt', 'x'), 'ATLAS_FILES_UNWRITABLE');
      expect(put.message).toMatch(/^atlas\.files: cannot create folder "a" \(EROFS\)/);
    } finally {
      mount.unmount();
    }
  });

  it('refuses an S3 location clearly', async () => {
    await expectCode(openFileStore('s3://bucket/atlas'), 'UNSUPPORTED');
  });
});
