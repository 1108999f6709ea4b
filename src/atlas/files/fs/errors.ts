import { type ErrorCode, errnoOf, HearthError } from '../../../errors.js';

/** What a person can do about an errno met on the Atlas share. */
export function atlasHint(errno: string | undefined): string {
  switch (errno) {
    case 'EACCES':
    case 'EPERM':
      return "give hearth's user write access to it, or choose another path for atlas.files";
    case 'EROFS':
      return 'mount the share read-write or choose another path for atlas.files';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'free space on Atlas or raise its quota';
    case 'ENOENT':
    case 'ENOTDIR':
      return 'atlas.files must be a folder: check the path and that the share is mounted';
    case 'ESTALE':
    case 'EIO':
    case 'ETIMEDOUT':
    case 'EHOSTDOWN':
    case 'EHOSTUNREACH':
      return 'the share is unreachable or stale: check the NFS server and remount it';
    case 'EMFILE':
    case 'ENFILE':
      return "raise the process's open-file limit (ulimit -n)";
    default:
      return 'check that atlas.files points at a healthy, writable folder';
  }
}

/**
 * Turns an OS error met while touching `path` into a HearthError naming the path, the errno and a hint.
 * HearthErrors pass through unchanged, so callers may wrap whole sequences.
 */
export function atlasFsError(code: ErrorCode, action: string, path: string, err: unknown): HearthError {
  if (err instanceof HearthError) return err;
  const errno = errnoOf(err);
  const what = errno ?? (err instanceof Error ? err.message : String(err));
  return new HearthError(code, `atlas.files: cannot ${action} ${path} (${what}): ${atlasHint(errno)}`, {
    cause: err,
    details: { path, errno },
  });
}
