import { createHash, randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import {
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { errnoOf, HearthError } from '../../../errors.js';
import { writeAll } from '../../../write-all.js';
import {
  type ByteRange,
  badKey,
  type FileStat,
  type FileStore,
  INTERNAL_FOLDER,
  isKeySegment,
  isTemporaryName,
  normalizeSha256,
  type PutOptions,
  type PutSource,
  parsePrefix,
  type StoredFile,
  temporaryName,
  validateKey,
} from '../store.js';
import { atlasFsError, atlasHint } from './errors.js';

const READ_CHUNK_BYTES = 1 << 20;
// Errnos meaning "this path is not there" (a missing file, or a file where a folder was expected).
const ABSENT = new Set(['ENOENT', 'ENOTDIR']);
// Filesystems that cannot fsync a directory say so with these; the rename is still atomic there.
const DIR_SYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EBADF', 'EPERM']);
// Filesystems without hard links refuse link() with these; overwrite:false then falls back to check-then-rename.
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK']);

function randomId(): string {
  return randomBytes(6).toString('hex');
}

function notFound(key: string, where: string): HearthError {
  return new HearthError(
    'ATLAS_FILES_NOT_FOUND',
    `atlas.files: no file is stored under ${JSON.stringify(key)} in ${where}`,
    {
      details: { key },
    },
  );
}

function exists(key: string, why: string): HearthError {
  return new HearthError('ATLAS_FILES_EXISTS', [JSON.stringify(key), why], {
    details: { key },
  });
}

/** Every source `put` accepts, as a sequence of byte chunks (a Readable in string mode yields strings). */
function chunksOf(data: PutSource): Iterable<Uint8Array> | AsyncIterable<Uint8Array | string> {
  if (typeof data === 'string') return [Buffer.from(data)];
  if (data instanceof Uint8Array) return [data];
  return data;
}

/** Removes folders a failed write made, deepest first; one another writer has filled since stays. */
async function removeFolders(created: string[]): Promise<void> {
  for (const folder of [...created].reverse()) {
    try {
      await rmdir(folder);
    } catch {
      return;
    }
  }
}

/** Makes a rename or unlink in `dir` durable (`shown` names it in errors). */
async function syncDir(dir: string, shown: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    if (!DIR_SYNC_UNSUPPORTED.has(errnoOf(err) ?? ''))
      throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'sync folder', shown, err);
  } finally {
    await fh?.close().catch(() => {});
  }
}

/**
 * The Atlas file tree on a local folder or an NFS mount. Writes go to a temporary file beside the
 * target (`.<name>.tmp-<id>`), are fsynced, renamed into place, and the folder is fsynced, so a crash
 * or a failed source never leaves a half-written file under a key.
 */
export class FsFileStore implements FileStore {
  readonly describe: string;
  /** the root as configured, made absolute */
  readonly root: string;
  /** the root with symbolic links resolved: every path the store touches must lie inside it */
  private readonly realRoot: string;

  private constructor(root: string, realRoot: string) {
    this.root = root;
    this.realRoot = realRoot;
    this.describe = `folder ${root}`;
  }

  /** Opens (creating if missing) the folder at `root`. */
  static async open(root: string): Promise<FsFileStore> {
    const absolute = resolve(root);
    try {
      await mkdir(absolute, { recursive: true });
    } catch (err) {
      if (errnoOf(err) === 'EEXIST' || errnoOf(err) === 'ENOTDIR') {
        throw new HearthError(
          'ATLAS_FILES_UNWRITABLE',
          `atlas.files: ${absolute} is not a folder (${errnoOf(err)}): ${atlasHint('ENOTDIR')}`,
          { cause: err, details: { path: absolute } },
        );
      }
      throw new HearthError(
        'ATLAS_FILES_UNWRITABLE',
        `atlas.files: cannot create ${absolute} (${errnoOf(err) ?? String(err)}): ${atlasHint(errnoOf(err))}`,
        { cause: err, details: { path: absolute, errno: errnoOf(err) } },
      );
    }
    let realRoot: string;
    try {
      realRoot = await realpath(absolute);
    } catch (err) {
      throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'open', absolute, err);
    }
    return new FsFileStore(absolute, realRoot);
  }

  private inside(real: string): boolean {
    if (real === this.realRoot) return true;
    return real.startsWith(this.realRoot.endsWith(sep) ? this.realRoot : this.realRoot + sep);
  }

  /**
   * A path as messages show it: relative to the root. Messages reach clients, and where the store
   * lives on the server (or where a symbolic link points) is none of their business.
   */
  private shown(path: string): string {
    const rel = relative(this.realRoot, path);
    if (rel === '') return 'the store root';
    return rel.startsWith('..') || isAbsolute(rel)
      ? 'a path outside the store'
      : JSON.stringify(rel.split(sep).join('/'));
  }

  /**
   * Refuses a key whose real path (symbolic links followed) lies outside the root, or inside
   * `.hearth/` (the database and its lock live there: no key may read, replace or delete them).
   */
  private refuseEscape(key: string, real: string): void {
    if (!this.inside(real)) {
      throw badKey(key, 'symlink-escape', 'resolves outside the store through a symbolic link');
    }
    const internal = join(this.realRoot, INTERNAL_FOLDER);
    if (real === internal || real.startsWith(internal + sep)) {
      throw badKey(
        key,
        'internal',
        `leads into ${INTERNAL_FOLDER}/ through a symbolic link; that folder is reserved for hearth's own files`,
      );
    }
  }

  /**
   * The real path of an existing key, or null when nothing is there. Refuses a key that a symbolic
   * link (in a folder or the file itself) leads outside the root.
   */
  private async resolveExisting(key: string, segments: string[]): Promise<string | null> {
    const path = join(this.realRoot, ...segments);
    let real: string;
    try {
      real = await realpath(path);
    } catch (err) {
      if (ABSENT.has(errnoOf(err) ?? '')) return null;
      throw atlasFsError('ATLAS_FILES_UNREADABLE', 'resolve', this.shown(path), err);
    }
    this.refuseEscape(key, real);
    return real;
  }

  /** The folder a new file goes in, made where missing; refuses folders that a symlink leads outside the root. */
  private async makeFolder(key: string, folder: string[]): Promise<{ dir: string; created: string[] }> {
    let dir = this.realRoot;
    const created: string[] = [];
    for (const [index, segment] of folder.entries()) {
      const next = join(dir, segment);
      try {
        await mkdir(next);
        created.push(next);
        dir = next;
        continue;
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST')
          throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'create folder', this.shown(next), err);
      }
      let info = await lstat(next).catch((err: unknown) => {
        throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'inspect', this.shown(next), err);
      });
      if (info.isSymbolicLink()) {
        const real = await realpath(next).catch((err: unknown) => {
          throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'resolve', this.shown(next), err);
        });
        this.refuseEscape(key, real);
        info = await stat(real);
        dir = real;
      } else {
        dir = next;
      }
      if (!info.isDirectory()) {
        throw exists(
          key,
          `${folder.slice(0, index + 1).join('/')} is a file, not a folder; delete it or choose another key`,
        );
      }
    }
    return { dir, created };
  }

  async put(key: string, data: PutSource, opts: PutOptions = {}): Promise<StoredFile> {
    try {
      return await this.write(key, data, opts);
    } catch (err) {
      if (data instanceof Readable) data.destroy();
      throw err;
    }
  }

  private async write(key: string, data: PutSource, opts: PutOptions): Promise<StoredFile> {
    const segments = validateKey(key);
    const expected =
      opts.expectedSha256 === undefined ? undefined : normalizeSha256(opts.expectedSha256, 'expectedSha256');
    const overwrite = opts.overwrite ?? true;
    const name = segments.at(-1)!;
    // Folders made here are removed again if the write fails, so a refused put leaves nothing. A
    // concurrent put's cleanup may remove a folder just made for this one: then make it again.
    let dir = '';
    let created: string[] = [];
    let tmp = '';
    let fh: FileHandle | undefined;
    for (let attempt = 1; fh === undefined; attempt++) {
      ({ dir, created } = await this.makeFolder(key, segments.slice(0, -1)));
      if (!overwrite && (await lstat(join(dir, name)).catch(() => null))) {
        // Known before reading the source; the commit checks again, atomically.
        throw exists(key, 'a file is already stored there');
      }
      tmp = join(dir, temporaryName(name, randomId()));
      try {
        fh = await open(tmp, 'wx');
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT' || attempt === 3) {
          await removeFolders(created);
          throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'create a temporary file in', this.shown(dir), err);
        }
      }
    }
    const target = join(dir, name);
    let renamed = false;
    let committed = false;
    try {
      const hash = createHash('sha256');
      let size = 0;
      // Errors thrown by the source itself (an aborted upload) pass through unchanged: they are not Atlas's fault.
      for await (const chunk of chunksOf(data)) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        hash.update(bytes);
        size += bytes.length;
        await writeAll(fh, bytes, (err) => atlasFsError('ATLAS_FILES_UNWRITABLE', 'write', this.shown(tmp), err));
      }
      try {
        await fh.sync();
        await fh.close();
        fh = undefined;
      } catch (err) {
        throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'sync', this.shown(tmp), err);
      }
      const sha256 = hash.digest('hex');
      if (expected !== undefined && sha256 !== expected) {
        throw new HearthError('ATLAS_FILES_DIGEST_MISMATCH', [JSON.stringify(key), sha256, expected], {
          details: { key, sha256, expected },
        });
      }
      renamed = await this.commit(key, tmp, target, overwrite);
      committed = true;
      // The new entry in `dir` and any folders made for it must survive a crash too.
      for (const folder of new Set([dir, ...created.map((path) => dirname(path))]))
        await syncDir(folder, this.shown(folder));
      return { key, size, sha256 };
    } finally {
      await fh?.close().catch(() => {});
      if (!renamed) await unlink(tmp).catch(() => {});
      if (!committed) await removeFolders(created);
    }
  }

  /** Moves the finished temporary file to `target`; true when `tmp` is gone (renamed), false when it was linked. */
  private async commit(key: string, tmp: string, target: string, overwrite: boolean): Promise<boolean> {
    if (!overwrite) {
      try {
        // link() refuses an existing target atomically, even against another node writing the same key.
        await link(tmp, target);
        return false;
      } catch (err) {
        const errno = errnoOf(err) ?? '';
        if (errno === 'EEXIST') throw exists(key, 'a file is already stored there');
        if (!NO_HARD_LINKS.has(errno)) throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'store', this.shown(target), err);
        if (await lstat(target).catch(() => null)) throw exists(key, 'a file is already stored there');
      }
    }
    try {
      await rename(tmp, target);
      return true;
    } catch (err) {
      const errno = errnoOf(err) ?? '';
      if (errno === 'EISDIR' || errno === 'ENOTEMPTY' || errno === 'EEXIST') {
        throw exists(key, 'a folder of that name is there; choose another key');
      }
      throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'store', this.shown(target), err);
    }
  }

  async read(key: string, range: ByteRange = {}): Promise<Readable> {
    const segments = validateKey(key);
    const { start, end } = range;
    for (const [name, value] of [
      ['start', start],
      ['end', end],
    ] as const) {
      if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
        throw new HearthError(
          'BAD_REQUEST',
          `atlas.files: range ${name} ${value} must be a whole number of bytes >= 0`,
        );
      }
    }
    if (start !== undefined && end !== undefined && end < start) {
      throw new HearthError('BAD_REQUEST', `atlas.files: range end ${end} is before start ${start} (end is inclusive)`);
    }
    const real = await this.resolveExisting(key, segments);
    if (real === null) throw notFound(key, this.describe);
    let fh: FileHandle;
    try {
      fh = await open(real, 'r');
    } catch (err) {
      if (ABSENT.has(errnoOf(err) ?? '')) throw notFound(key, this.describe);
      throw atlasFsError('ATLAS_FILES_UNREADABLE', 'open', this.shown(real), err);
    }
    try {
      const info = await fh.stat();
      if (!info.isFile()) throw notFound(key, this.describe);
    } catch (err) {
      await fh.close().catch(() => {});
      throw atlasFsError('ATLAS_FILES_UNREADABLE', 'inspect', this.shown(real), err);
    }
    return fh.createReadStream({ start, end, highWaterMark: READ_CHUNK_BYTES });
  }

  async stat(key: string): Promise<FileStat | null> {
    const real = await this.resolveExisting(key, validateKey(key));
    if (real === null) return null;
    try {
      const info = await stat(real);
      return info.isFile() ? { key, size: info.size, modifiedAt: info.mtime } : null;
    } catch (err) {
      if (ABSENT.has(errnoOf(err) ?? '')) return null;
      throw atlasFsError('ATLAS_FILES_UNREADABLE', 'inspect', this.shown(real), err);
    }
  }

  async list(prefix = ''): Promise<FileStat[]> {
    const { folder, partial } = parsePrefix(prefix);
    let start = this.realRoot;
    if (folder.length > 0) {
      const real = await this.resolveExisting(prefix, folder);
      if (real === null) return [];
      start = real;
    }
    const found: FileStat[] = [];
    await this.walk(start, folder.join('/'), partial, found);
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Collects the files under `dir` (whose key is `folderKey`, '' at the root). Symbolic links are not
   * followed, so a listing can neither loop nor leave the store.
   */
  private async walk(dir: string, folderKey: string, partial: string, found: FileStat[]): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      // A folder removed while we walk simply has nothing in it.
      if (ABSENT.has(errnoOf(err) ?? '')) return;
      throw atlasFsError('ATLAS_FILES_UNREADABLE', 'list', this.shown(dir), err);
    }
    const files: Promise<FileStat | null>[] = [];
    for (const entry of entries) {
      if (!isKeySegment(entry.name) || !entry.name.startsWith(partial)) continue;
      if (folderKey === '' && entry.name === INTERNAL_FOLDER) continue;
      const key = folderKey === '' ? entry.name : `${folderKey}/${entry.name}`;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        await this.walk(path, key, '', found);
      } else if (entry.isFile()) {
        files.push(
          stat(path).then(
            (info) => ({ key, size: info.size, modifiedAt: info.mtime }),
            (err: unknown) => {
              if (ABSENT.has(errnoOf(err) ?? '')) return null;
              throw atlasFsError('ATLAS_FILES_UNREADABLE', 'inspect', this.shown(path), err);
            },
          ),
        );
      }
    }
    for (const file of await Promise.all(files)) if (file) found.push(file);
  }

  async delete(key: string): Promise<boolean> {
    const segments = validateKey(key);
    const folder = segments.slice(0, -1);
    const dir = folder.length === 0 ? this.realRoot : await this.resolveExisting(key, folder);
    if (dir === null) return false;
    const path = join(dir, segments.at(-1)!);
    try {
      // Deleting a key never removes a folder (or what a symbolic link points at: unlink removes the link).
      if ((await lstat(path)).isDirectory()) return false;
      await unlink(path);
    } catch (err) {
      if (ABSENT.has(errnoOf(err) ?? '')) return false;
      throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'delete', this.shown(path), err);
    }
    await syncDir(dir, this.shown(dir));
    return true;
  }

  async hash(key: string): Promise<string> {
    const stream = await this.read(key);
    const hash = createHash('sha256');
    try {
      for await (const chunk of stream) hash.update(chunk as Buffer);
    } catch (err) {
      throw atlasFsError('ATLAS_FILES_UNREADABLE', 'read', JSON.stringify(key), err);
    }
    return hash.digest('hex');
  }

  localPath(key: string): string {
    const segments = validateKey(key);
    const path = join(this.realRoot, ...segments);
    // Check the deepest part that exists: a symlink there could lead outside the store.
    for (let depth = segments.length; depth >= 0; depth--) {
      let real: string;
      try {
        real = realpathSync(join(this.realRoot, ...segments.slice(0, depth)));
      } catch {
        continue;
      }
      this.refuseEscape(key, real);
      break;
    }
    return path;
  }

  async staleTemporaries(
    olderThanMs: number,
    opts: { remove?: boolean } = {},
  ): Promise<{ count: number; bytes: number }> {
    const found = { count: 0, bytes: 0 };
    const cutoff = Date.now() - olderThanMs;
    // Breadth-first over real folders (symbolic links are not followed); .hearth/ is not ours to touch.
    const folders = [this.realRoot];
    while (folders.length > 0) {
      const dir = folders.pop()!;
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (ABSENT.has(errnoOf(err) ?? '')) continue;
        throw atlasFsError('ATLAS_FILES_UNREADABLE', 'list', this.shown(dir), err);
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (!(dir === this.realRoot && entry.name === INTERNAL_FOLDER)) folders.push(path);
          continue;
        }
        if (!entry.isFile() || !isTemporaryName(entry.name)) continue;
        const info = await lstat(path).catch(() => null);
        if (!info || info.mtimeMs > cutoff) continue;
        if (opts.remove) {
          try {
            await unlink(path);
          } catch (err) {
            if (ABSENT.has(errnoOf(err) ?? '')) continue;
            throw atlasFsError('ATLAS_FILES_UNWRITABLE', 'delete', this.shown(path), err);
          }
        }
        found.count++;
        found.bytes += info.size;
      }
    }
    return found;
  }

  async checkWritable(): Promise<void> {
    const probe = join(this.realRoot, temporaryName('hearth-probe', randomId()));
    const content = Buffer.from(`hearth write probe ${new Date().toISOString()} ${randomId()}\n`);
    try {
      const fh = await open(probe, 'wx');
      try {
        await writeAll(fh, content, (err) => atlasFsError('ATLAS_FILES_UNWRITABLE', 'write', this.shown(probe), err));
        await fh.sync();
      } finally {
        await fh.close();
      }
      const back = await readFile(probe);
      if (!back.equals(content)) {
        throw new HearthError(
          'ATLAS_FILES_UNWRITABLE',
          `atlas.files returned different bytes than were written to a probe file: check the share's health`,
          { details: { path: this.root } },
        );
      }
      await unlink(probe);
      await syncDir(this.realRoot, this.shown(this.realRoot));
    } catch (err) {
      await unlink(probe).catch(() => {});
      const cause = err instanceof HearthError ? err.cause : err;
      const errno = errnoOf(cause);
      if (errno === undefined && err instanceof HearthError) throw err;
      throw new HearthError(
        'ATLAS_FILES_UNWRITABLE',
        `atlas.files is not writable (${errno ?? describeCause(cause)}): ${atlasHint(errno)}`,
        { cause, details: { path: this.root, errno } },
      );
    }
  }
}

function describeCause(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
