import { errnoOf, HearthError } from '../errors.js';

/** What a person can do about an errno met in `node.cacheDir`. */
function cacheHint(errno: string | undefined): string {
  switch (errno) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return "give hearth's user write access to it, or set node.cacheDir to a writable local folder";
    case 'ENOSPC':
    case 'EDQUOT':
      return "free space on the node's disk or lower node.cacheMaxBytes to fit it";
    case 'ENOTDIR':
    case 'EEXIST':
      return 'node.cacheDir must be a folder: check the path';
    case 'EMFILE':
    case 'ENFILE':
      return "raise the process's open-file limit (ulimit -n)";
    default:
      return 'check node.cacheDir (everything in it may be deleted; hearth rebuilds it from Atlas)';
  }
}

/** An OS error met in the cache folder, as NODE_CACHE_UNUSABLE naming the path, the errno and a hint. */
export function cacheFsError(action: string, path: string, err: unknown): HearthError {
  if (err instanceof HearthError) return err;
  const errno = errnoOf(err);
  const what = errno ?? (err instanceof Error ? err.message : String(err));
  return new HearthError('NODE_CACHE_UNUSABLE', [action, path, what, cacheHint(errno)], {
    cause: err,
    details: { path, errno },
  });
}
