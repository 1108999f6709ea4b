import { HearthError, isHearthError } from '../../errors.js';
import { FsFileStore } from './fs/store.js';
import type { FileStore } from './store.js';

export { FsFileStore } from './fs/store.js';
export type { ByteRange, FileStat, FileStore, PutOptions, PutSource, StoredFile } from './store.js';
export { INTERNAL_FOLDER, normalizeSha256, STALE_TEMPORARY_MS, validateKey } from './store.js';

/**
 * Opens `atlas.files`: a local folder or an NFS mount, created if missing. (An `s3://` URL is
 * recognised so it fails clearly until the S3 backend exists.)
 */
export async function openFileStore(root: string): Promise<FileStore> {
  if (/^s3:\/\//i.test(root)) {
    throw new HearthError(
      'UNSUPPORTED',
      `atlas.files: ${root} is an S3 location, which hearth does not support yet: use a folder or an NFS mount`,
    );
  }
  return FsFileStore.open(root);
}

/**
 * Opens `atlas.files` for a service that will write to it, and proves it can (a probe file is
 * written, read back and removed). A read-only or full share fails here, in one line that names
 * the folder and says what to do, instead of as a raw EROFS from whatever writes first.
 */
export async function openWritableFileStore(root: string): Promise<FileStore> {
  const files = await openFileStore(root);
  try {
    await files.checkWritable();
  } catch (err) {
    if (!isHearthError(err)) throw err;
    // Clients see checkWritable's message without the path (/readyz); the operator starting hearth gets it.
    throw new HearthError(err.code, err.message.replace(/^atlas\.files\b/, `atlas.files (${files.describe})`), {
      cause: err,
      ...(err.details ? { details: err.details } : {}),
    });
  }
  return files;
}
