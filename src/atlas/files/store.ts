import type { Readable } from 'node:stream';
import { HearthError } from '../../errors.js';

/** A file as written: what a manifest records about it. */
export interface StoredFile {
  key: string;
  size: number;
  /** lowercase hex sha256 of the content, computed while it was written */
  sha256: string;
}

export interface FileStat {
  key: string;
  size: number;
  modifiedAt: Date;
}

export interface PutOptions {
  /**
   * The sha256 (hex, either case) the content must have. If it differs the write is refused with
   * ATLAS_FILES_DIGEST_MISMATCH and nothing is left behind: no temporary file, and an existing file
   * under the key is unchanged.
   */
  expectedSha256?: string;
  /**
   * Replace a file already stored under the key (default true). With false the write is refused with
   * ATLAS_FILES_EXISTS when the key exists, checked atomically at commit where the backend allows it.
   */
  overwrite?: boolean;
}

/** Content for `put`: a whole buffer or string (UTF-8), or a stream of bytes. */
export type PutSource = Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

/** A byte range of a stored file. Both ends are inclusive offsets, as in HTTP `Range` and `fs.createReadStream`. */
export interface ByteRange {
  /** first byte to read (default 0); a start at or past the end gives an empty stream */
  start?: number;
  /** last byte to read, inclusive (default: the end of the file) */
  end?: number;
}

/**
 * The Atlas file tree (`atlas.files`): models, datasets and outputs. Every byte here is authoritative,
 * so writes are atomic and carry a sha256. Backends: a folder or NFS mount (fs); S3 later.
 *
 * Keys are `/`-separated relative paths (`models/llama/weights.gguf`); see `validateKey` for the rules.
 */
export interface FileStore {
  /** human description, e.g. 'folder /mnt/atlas' */
  readonly describe: string;
  /**
   * Stores `data` under `key` atomically: readers see the old file or the whole new one, never a part.
   * A source that fails (stream error, digest mismatch) leaves nothing behind. A Readable source is
   * destroyed when the write fails, as `stream.pipeline` would.
   */
  put(key: string, data: PutSource, opts?: PutOptions): Promise<StoredFile>;
  /**
   * Streaming read; ATLAS_FILES_NOT_FOUND if absent. The optional inclusive byte range serves resumable
   * copies. Destroy the stream if you stop reading early, so the file handle closes at once.
   */
  read(key: string, range?: ByteRange): Promise<Readable>;
  /** null when no file is stored under the key */
  stat(key: string): Promise<FileStat | null>;
  /**
   * Files whose keys start with `prefix` ('' = all; 'models/' = everything in that folder), recursively,
   * sorted by key. Skips the store's own temporary files and the internal `.hearth/` folder.
   */
  list(prefix?: string): Promise<FileStat[]>;
  /** true if a file was removed, false if there was none */
  delete(key: string): Promise<boolean>;
  /** sha256 (lowercase hex) of a stored file, computed by reading it */
  hash(key: string): Promise<string>;
  /**
   * A local filesystem path for a key when the backend has one (fs: yes; s3: undefined), so the engine
   * can load a GGUF in place. The file need not exist.
   */
  localPath(key: string): string | undefined;
  /**
   * Writes, fsyncs, reads back and deletes a probe file. Throws ATLAS_FILES_UNWRITABLE naming the errno
   * (EACCES, EROFS, ENOSPC, ...) and what to do otherwise.
   */
  checkWritable(): Promise<void>;
  /**
   * Temporary files of writes that never finished (a process killed mid-upload) whose last change is
   * older than `olderThanMs`; with `remove`, they are deleted. A write in progress keeps its
   * temporary file's mtime fresh, so an age of hours is safe across nodes sharing the store.
   */
  staleTemporaries(olderThanMs: number, opts?: { remove?: boolean }): Promise<{ count: number; bytes: number }>;
}

/** Temporaries unchanged this long are leftovers of a dead writer (start-up sweeps them; doctor counts them). */
export const STALE_TEMPORARY_MS = 6 * 60 * 60 * 1000;

/** The folder at the store root reserved for hearth's own files (e.g. the embedded database). */
export const INTERNAL_FOLDER = '.hearth';

const MAX_KEY_BYTES = 1024;
// NAME_MAX on Linux, ext4, XFS, ZFS and NFS exports.
const MAX_SEGMENT_BYTES = 255;
const CONTROL_CHAR = /[\x00-\x1f\x7f]/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Temporary files are `.<name>.tmp-<id>`: hidden, and never a valid key, so listings can skip them. */
export function temporaryName(name: string, id: string): string {
  return `.${name}.tmp-${id}`;
}

export function isTemporaryName(name: string): boolean {
  return /^\..*\.tmp-[0-9A-Za-z]+$/.test(name);
}

/** ATLAS_FILES_BAD_KEY naming the key and the rule it breaks; `problem` reads after the key ('is empty'). */
export function badKey(key: string, rule: string, problem: string): HearthError {
  return new HearthError('ATLAS_FILES_BAD_KEY', [JSON.stringify(key), problem], { details: { key, rule } });
}

/** Refuses a character that no key segment may hold; shared by keys and list prefixes. */
function checkCharacters(key: string, whole: string): void {
  if (key.includes('\\')) throw badKey(whole, 'backslash', 'contains a backslash (use / between folders)');
  if (CONTROL_CHAR.test(key))
    throw badKey(whole, 'control-character', 'contains a control character (NUL, newline, ...)');
}

/**
 * Checks a key's shape and returns its segments. Refused (ATLAS_FILES_BAD_KEY, naming the key and the
 * rule): empty keys, absolute paths, backslashes, control characters (NUL included), empty or `.`
 * segments, `..` segments, over-long keys or segments, keys under `.hearth/`, and segments shaped like
 * the store's temporary files. Escapes through symbolic links are checked by the backend, which can see them.
 */
export function validateKey(key: string): string[] {
  return checkKey(key, key);
}

/** `shown` is what the caller passed (a key, or a list prefix whose folder part is `key`). */
function checkKey(key: string, shown: string): string[] {
  if (typeof key !== 'string' || key.length === 0) throw badKey(String(shown), 'empty', 'is empty');
  checkCharacters(key, shown);
  if (key.startsWith('/')) throw badKey(shown, 'absolute', 'is absolute (keys are relative to the store root)');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw badKey(shown, 'too-long', `is longer than ${MAX_KEY_BYTES} bytes`);
  }
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment === '') throw badKey(shown, 'empty-segment', 'has an empty segment (a doubled or trailing /)');
    if (segment === '.') throw badKey(shown, 'dot-segment', "has a '.' segment");
    if (segment === '..') {
      throw badKey(shown, 'dot-dot-segment', "has a '..' segment (keys may not climb out of the store)");
    }
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
      throw badKey(shown, 'segment-too-long', `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
    if (isTemporaryName(segment)) {
      throw badKey(shown, 'temporary-name', "has a segment named like the store's temporary files (.<name>.tmp-<id>)");
    }
  }
  if (segments[0] === INTERNAL_FOLDER) {
    throw badKey(shown, 'internal', `is under ${INTERNAL_FOLDER}/, which is reserved for hearth's own files`);
  }
  return segments;
}

/** Whether a folder entry's name can be a key segment (files made by other tools may not be). */
export function isKeySegment(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('\\') &&
    !CONTROL_CHAR.test(name) &&
    Buffer.byteLength(name) <= MAX_SEGMENT_BYTES &&
    !isTemporaryName(name)
  );
}

/**
 * Splits a list prefix into the folder to walk (validated like a key) and the partial last segment.
 * 'models/ll' → { folder: ['models'], partial: 'll' }; '' → { folder: [], partial: '' }.
 */
export function parsePrefix(prefix: string): { folder: string[]; partial: string } {
  if (prefix === '') return { folder: [], partial: '' };
  checkCharacters(prefix, prefix);
  if (prefix.startsWith('/')) throw badKey(prefix, 'absolute', 'is absolute (keys are relative to the store root)');
  const cut = prefix.lastIndexOf('/');
  const partial = prefix.slice(cut + 1);
  if (cut === -1) return { folder: [], partial };
  return { folder: checkKey(prefix.slice(0, cut), prefix), partial };
}

/** Lowercases and checks a hex sha256; `what` names it in the error (e.g. 'expectedSha256'). */
export function normalizeSha256(value: string, what: string): string {
  const hex = typeof value === 'string' ? value.toLowerCase() : '';
  if (!SHA256_HEX.test(hex)) {
    throw new HearthError('BAD_REQUEST', `${what} ${JSON.stringify(value)} is not a sha256: expected 64 hex digits`, {
      details: { [what]: value },
    });
  }
  return hex;
}
