import { HearthError } from '../../errors.js';
import { FsFileStore } from './fs/store.js';
import type { FileStore } from './store.js';

export { FsFileStore } from './fs/store.js';
export type { ByteRange, FileStat, FileStore, PutOptions, PutSource, StoredFile } from './store.js';
export { INTERNAL_FOLDER, normalizeSha256, validateKey } from './store.js';

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
