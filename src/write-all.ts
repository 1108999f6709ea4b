import type { FileHandle } from 'node:fs/promises';

/**
 * Writes every byte of `bytes` at the file's position. A write may be short (a signal, a nearly full
 * disk), so it keeps going until every byte is down; `fail` turns an OS error, or a write that made
 * no progress, into the caller's error (naming its path and what to do).
 */
export async function writeAll(fh: FileHandle, bytes: Uint8Array, fail: (err: unknown) => Error): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    let written: number;
    try {
      ({ bytesWritten: written } = await fh.write(bytes, offset, bytes.length - offset));
    } catch (err) {
      throw fail(err);
    }
    if (written === 0) throw fail(new Error('no bytes written'));
    offset += written;
  }
}
